import os
import sys

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

from posture.runtime import garbage_collector_settle

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posture.settings")

application = get_wsgi_application()

# DEBUG defaults to on so that a clone runs at once; a production server must say otherwise.
if settings.DEBUG and "gunicorn" in sys.modules:
    raise ImproperlyConfigured(
        "DEBUG is on under gunicorn: set DEBUG=false, SECRET_KEY and the signing key for "
        "production (DEBUG=true only for local development)."
    )

garbage_collector_settle()
