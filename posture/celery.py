import os

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posture.settings")

app = Celery("posture")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def drop_unusable_database_connection(task, **kwargs) -> None:
    """Before a worker's task, as before a request: a connection kept from earlier tasks
    (CELERY_DB_REUSE_MAX) is dropped if it broke or is older than CONN_MAX_AGE. Not for an
    eager task, which runs inside its caller's request and transaction."""
    if task.request.is_eager:
        return
    from django.db import close_old_connections

    close_old_connections()
