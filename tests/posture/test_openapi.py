from django.core.management import call_command


def test_the_openapi_document_is_valid_and_complete(tmp_path, db):
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    text = target.read_text()
    for path in ("/api/v1/events:", "/api/v1/ledger/verify:", "/api/v1/ledger/public-key:"):
        assert path in text
    assert "sourceToken" in text
