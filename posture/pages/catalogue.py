"""(Being written: see posture/pages/urls.py for this module's pages.)"""

from django.http import Http404


def _todo(request, *args, **kwargs):
    raise Http404("this page is being built")


frameworks = _todo
framework = _todo
control = _todo
rules = _todo
rule = _todo
