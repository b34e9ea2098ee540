"""Reading an adapter request body: JSON or JSON lines, optionally gzip (pure, no database).

Refusals use the native ingest's reasons (audit.ingest), so clients and metrics see one set.
"""

import orjson

from audit.ingest import IngestRejected, decompress_limited

JSON_TYPES = ("application/json",)
JSON_LINES_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")


def decode_document(
    body: bytes,
    *,
    content_type: str,
    content_encoding: str,
    max_bytes: int,
    json_lines: bool = False,
) -> object:
    """The parsed body. With `json_lines`, newline-delimited JSON becomes a list."""
    media_type = content_type.split(";")[0].strip().lower()
    lines = json_lines and media_type in JSON_LINES_TYPES
    if media_type not in JSON_TYPES and not lines:
        accepted = "application/json" + (" or application/x-ndjson" if json_lines else "")
        raise IngestRejected(415, "unsupported_media_type", f"send Content-Type: {accepted}")
    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        body = decompress_limited(body, max_bytes=max_bytes)
    elif encoding not in ("", "identity"):
        raise IngestRejected(415, "unsupported_encoding", "Content-Encoding may be gzip or none")
    if len(body) > max_bytes:
        raise IngestRejected(413, "too_large", f"body exceeds {max_bytes} bytes")
    if lines:
        return [_parse(line, number) for number, line in _lines(body)]
    return _parse(body, None)


def _lines(body: bytes):
    for number, line in enumerate(body.split(b"\n"), start=1):
        if line.strip():
            yield number, line


def _parse(text: bytes, line: int | None) -> object:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        where = f"line {line} " if line else "body "
        raise IngestRejected(400, "bad_json", f"{where}is not valid UTF-8 JSON: {error}") from None


def as_records(document: object, *, wrapper: str | None = None) -> list:
    """A JSON array as it is, one object as a list of one (or its `wrapper` key's list)."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        if wrapper and isinstance(document.get(wrapper), list):
            return document[wrapper]
        return [document]
    raise IngestRejected(400, "bad_shape", "body must be a JSON object or an array of objects")
