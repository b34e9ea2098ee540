import os

from celery import Celery
from celery.signals import task_prerun, worker_process_init, worker_ready

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


@worker_ready.connect
@worker_process_init.connect
def settle_worker_garbage_collector(**kwargs) -> None:
    """As in the web workers (posture.wsgi), in every process that runs tasks: the worker
    itself once it is ready (solo and threads pools) and each pool process as it starts
    (prefork children; Celery sends that for the solo pool too, and settling twice is
    harmless)."""
    from posture.runtime import garbage_collector_settle

    garbage_collector_settle()
