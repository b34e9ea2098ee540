"""Reading an ingest request body into a list of raw events (pure, no database).

Every refusal is an IngestRejected with the HTTP status, a short machine reason (also the
label of the rejected-batches metric) and a sentence for the person reading the reply.
"""

import zlib
from dataclasses import dataclass, field

import msgspec
from isal import isal_zlib


@dataclass
class IngestRejected(Exception):
    status: int
    reason: str
    detail: str
    events: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        body: dict = {"error": self.reason, "detail": self.detail}
        if self.events:
            body["events"] = self.events
        return body


_GZIP_FLAGS_AT = 3
_GZIP_RESERVED_FLAGS = 0xE0


def decompress_limited(body: bytes, *, max_bytes: int) -> bytes:
    """Gunzip `body`, refusing as soon as the output passes `max_bytes` (gzip bombs).

    ISA-L's inflate (zlib's interface, twice its speed here): ingest gunzips every byte sent.
    """
    # RFC 1952 reserves the top three bits of the header's flags and says a reader must refuse
    # a stream that sets them: zlib does, ISA-L does not look.
    if len(body) > _GZIP_FLAGS_AT and body[_GZIP_FLAGS_AT] & _GZIP_RESERVED_FLAGS:
        raise IngestRejected(400, "bad_gzip", "gzip header sets reserved flags")
    decompressor = isal_zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = decompressor.decompress(body, max_bytes + 1)
        if len(data) > max_bytes or decompressor.unconsumed_tail:
            raise IngestRejected(413, "too_large", f"decompressed body exceeds {max_bytes} bytes")
        data += decompressor.flush()
    except isal_zlib.error as error:
        raise IngestRejected(400, "bad_gzip", f"body is not valid gzip: {error}") from None
    if not decompressor.eof:
        raise IngestRejected(400, "bad_gzip", "gzip body is truncated")
    if decompressor.unused_data:
        raise IngestRejected(400, "bad_gzip", "data after the end of the gzip stream")
    if len(data) > max_bytes:
        raise IngestRejected(413, "too_large", f"decompressed body exceeds {max_bytes} bytes")
    return data


def read_body(body: bytes, *, content_type: str, content_encoding: str, max_bytes: int) -> bytes:
    """The JSON text of an ingest request: media type checked, gunzipped, within `max_bytes`."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != "application/json":
        raise IngestRejected(415, "unsupported_media_type", "send Content-Type: application/json")
    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        body = decompress_limited(body, max_bytes=max_bytes)
    elif encoding not in ("", "identity"):
        raise IngestRejected(415, "unsupported_encoding", "Content-Encoding may be gzip or none")
    if len(body) > max_bytes:
        raise IngestRejected(413, "too_large", f"body exceeds {max_bytes} bytes")
    return body


def parse_events(document: bytes, *, max_events: int) -> list:
    """The raw events of a native ingest body: a JSON array, or {"events": [...]}."""
    try:
        # msgspec, like the fast path (audit.fastcheck): both read numbers the same way.
        parsed = msgspec.json.decode(document)
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise IngestRejected(400, "bad_json", f"body is not valid UTF-8 JSON: {error}") from None
    except RecursionError:
        raise IngestRejected(400, "bad_json", "body is nested too deeply") from None
    if isinstance(parsed, dict):
        extra = parsed.keys() - {"events"}
        if extra or not isinstance(parsed.get("events"), list):
            raise IngestRejected(
                400, "bad_shape", 'body must be a JSON array of events or {"events": [...]}'
            )
        parsed = parsed["events"]
    if not isinstance(parsed, list):
        raise IngestRejected(
            400, "bad_shape", 'body must be a JSON array of events or {"events": [...]}'
        )
    if len(parsed) > max_events:
        raise IngestRejected(
            413, "too_many_events", f"{len(parsed)} events; at most {max_events} a request"
        )
    return parsed
