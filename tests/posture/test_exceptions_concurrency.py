"""Two approvers clicking at once: exactly one transition happens (PostgreSQL row locks)."""

import threading

import pytest
from django.db import connection

from audit.models import Event, EventKind
from posture.exceptions import ExceptionRefused, exception_approve, exception_request
from posture.models import ExceptionApproval, ExceptionState, PolicyException, Rule
from tests.conftest import make_person

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]

APPROVERS = 6


def _approve_at_once(exception: PolicyException, approvers: list) -> tuple[list, list]:
    done, refused = [], []
    start = threading.Barrier(len(approvers))

    def approve(person) -> None:
        start.wait()
        try:
            exception_approve(exception=exception, approver=person, comment="ok")
            done.append(person.username)
        except ExceptionRefused as error:
            refused.append(str(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(person,)) for person in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done, refused


def _transitions_to(state: str) -> int:
    return sum(
        1
        for row in Event.objects.filter(kind=EventKind.EXCEPTION_TRANSITION)
        if row.action == state
    )


def test_approvers_at_once_make_exactly_one_transition(people):
    rule = Rule.objects.create(policy="p", name="r", severity="high")
    exception = exception_request(
        rule=rule, requester=people["engineer"], justification="why", duration_days=3
    )
    approvers = [make_person(f"approver-{n}", "approver") for n in range(APPROVERS)]

    done, refused = _approve_at_once(exception, approvers)

    assert len(done) == 1
    assert len(refused) == APPROVERS - 1
    assert PolicyException.objects.get().state == ExceptionState.APPROVED
    assert ExceptionApproval.objects.count() == 1
    assert _transitions_to("approved") == 1


def test_a_critical_exception_takes_exactly_two_approvals_at_once(people):
    rule = Rule.objects.create(policy="p", name="critical", severity="critical")
    exception = exception_request(
        rule=rule, requester=people["engineer"], justification="why", duration_days=3
    )
    approvers = [make_person(f"approver-{n}", "approver") for n in range(APPROVERS)]

    done, refused = _approve_at_once(exception, approvers)

    assert len(done) == 2
    assert len(refused) == APPROVERS - 2
    assert PolicyException.objects.get().state == ExceptionState.APPROVED
    assert ExceptionApproval.objects.count() == 2
    assert _transitions_to("approved") == 1
