import gc
import os
import sys

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posture.settings")

application = get_wsgi_application()

# DEBUG defaults to on so that a clone runs at once; a production server must say otherwise.
if settings.DEBUG and "gunicorn" in sys.modules:
    raise ImproperlyConfigured(
        "DEBUG is on under gunicorn: set DEBUG=false, SECRET_KEY and the signing key for "
        "production (DEBUG=true only for local development)."
    )

# Everything loaded so far lives as long as the process: keep the garbage collector from
# walking it again and again while requests allocate thousands of short-lived objects
# (about 4 µs an ingested event otherwise; docs/benchmarks.md).
gc.collect()
gc.freeze()
gc.set_threshold(50_000, 50, 100)
