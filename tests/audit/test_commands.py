import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from audit.models import ChainHead, Source
from tests.conftest import event, post_events

pytestmark = pytest.mark.django_db


def test_create_source_prints_a_working_token_alone_on_its_last_line():
    out = io.StringIO()
    call_command(
        "create_source", "gateway-prod", "--kind", "gateway", "--environment", "prod", stdout=out
    )

    token = out.getvalue().strip().splitlines()[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert token.startswith("pst_") and len(token) >= 40
    assert post_events(client, [event(1)]).status_code == 201
    source = Source.objects.get(name="gateway-prod")
    assert (source.kind, source.environment) == ("gateway", "prod")
    assert ChainHead.objects.get(source=source).seq == 1


def test_tokens_are_stored_only_as_hashes():
    out = io.StringIO()
    call_command("create_source", "ci-gate", "--kind", "ci", stdout=out)
    token = out.getvalue().strip().splitlines()[-1]

    stored = Source.objects.get(name="ci-gate").tokens.get()

    assert token not in (stored.token_hash, stored.token_prefix)
    assert len(stored.token_hash) == 64


def test_create_source_refuses_a_taken_name(source):
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_source", "opa-prod", "--kind", "opa", stdout=io.StringIO())


def test_create_source_refuses_a_bad_name():
    with pytest.raises(CommandError, match="name"):
        call_command("create_source", "has spaces", "--kind", "opa", stdout=io.StringIO())


def test_create_source_refuses_an_unknown_kind():
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("create_source", "x", "--kind", "splunk", stdout=io.StringIO())


def test_create_checkpoint_and_export(source_client):
    post_events(source_client, [event(1)])
    out = io.StringIO()

    call_command("create_checkpoint", stdout=out)
    exported = io.StringIO()
    call_command("export_checkpoints", stdout=exported)

    number, digest = out.getvalue().split()[1:3]
    assert number == "1"
    assert digest in exported.getvalue()
