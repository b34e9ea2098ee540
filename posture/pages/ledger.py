"""(Being written: see posture/pages/urls.py for this module's pages.)"""

from django.http import Http404


def _todo(request, *args, **kwargs):
    raise Http404("this page is being built")


events = _todo
events_csv = _todo
event = _todo
event_verify = _todo
event_triage = _todo
