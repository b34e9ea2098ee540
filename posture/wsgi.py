import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posture.settings")

application = get_wsgi_application()

# Everything loaded so far lives as long as the process: keep the garbage collector from
# walking it again and again while requests allocate thousands of short-lived objects
# (about 4 µs an ingested event otherwise; docs/benchmarks.md).
gc.collect()
gc.freeze()
gc.set_threshold(50_000, 50, 100)
