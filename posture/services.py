"""Writes of the posture domain: people and their API tokens, triage labels."""

import secrets
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, Group

from audit.models import Event, EventKind
from audit.services import internal_event_append, token_digest
from posture.models import PersonalToken, TriageLabel
from posture.roles import ROLES

PERSONAL_TOKEN_PREFIX = "ptk_"  # noqa: S105 (a public prefix, not a secret)


def personal_token_create(
    *, user: AbstractBaseUser, label: str = "", expires_at: datetime | None = None
) -> tuple[PersonalToken, str]:
    """A new API token for a person; the plain token is returned once and never stored."""
    plain = PERSONAL_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = PersonalToken.objects.create(
        user=user,
        label=label,
        token_hash=token_digest(plain),
        token_prefix=plain[:10],
        expires_at=expires_at,
    )
    return token, plain


def roles_ensure() -> None:
    """Create the role groups that are missing (run after every migrate)."""
    for name in ROLES:
        Group.objects.get_or_create(name=name)


MAX_TRIAGE_NOTE = 2000


class TriageRefused(Exception):
    """A triage label that cannot be recorded; nothing was written."""


def triage_label(*, event: Event, label: str, note: str, user: AbstractBaseUser) -> Event:
    """Mark a denied decision as a false positive or as confirmed, with a note.

    The label is a ledger event of Posture's own chain, never an edit of the decision; the
    latest label of a decision is the one M4 counts.
    """
    if event.kind != EventKind.DECISION or event.outcome != "deny":
        raise TriageRefused("only denied decisions are triaged")
    if label not in TriageLabel.values:
        raise TriageRefused(f"label must be one of {', '.join(TriageLabel.values)}")
    if len(note) > MAX_TRIAGE_NOTE:
        raise TriageRefused(f"the note is longer than {MAX_TRIAGE_NOTE} characters")
    return internal_event_append(
        kind=EventKind.TRIAGE_LABEL,
        subject=user.get_username(),
        attributes={
            "source": event.source.name,
            "seq": event.seq,
            "event_id": event.event_id,
            "event": event.pk,
            "label": label,
            "note": note,
        },
        action=label,
        policy=event.policy,
        rule=event.rule,
        environment=event.environment,
        service=event.service,
        resource=event.resource,
    )
