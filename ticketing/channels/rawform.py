"""Form fields as sent, byte for byte, so that what Werkzeug decodes leniently is refused.

Werkzeug keeps invalid UTF-8 of a url-encoded field as its percent-escapes (`%FF%FE`
arrives as the text "%FF%FE"), replaces it with U+FFFD in a multipart field, and
passes a NUL on like any other character (which intake then drops, or PostgreSQL
refuses). Looking at the decoded text cannot tell a sent "%FF" or U+FFFD from a
broken byte, so a channel that stores what it is sent reads the raw bytes here and
refuses such a field by name (the rule is services/texts.py's).
"""
from __future__ import annotations

from urllib.parse import unquote_to_bytes

from werkzeug.formparser import MultiPartParser
from werkzeug.sansio.multipart import Data, Epilogue, Field, MultipartDecoder, NeedData

from ticketing.services import texts

MAX_NAME = 64


def urlencoded_fields(raw: bytes) -> list[tuple[bytes, bytes, str]]:
    """(name, value, charset) of each field of a query string or url-encoded body."""
    fields = []
    for part in raw.split(b"&"):
        if part:
            name, _, value = part.partition(b"=")
            fields.append((unquote_to_bytes(name.replace(b"+", b" ")),
                           unquote_to_bytes(value.replace(b"+", b" ")), "utf-8"))
    return fields


def multipart_fields(raw: bytes, boundary: str) -> list[tuple[bytes, bytes, str]]:
    """(name, value, charset) of each text field of a multipart body; files are not text.

    The charset is the one Werkzeug decodes the field with. A body Werkzeug cannot
    parse gives it no fields at all, and none here either.
    """
    decoder = MultipartDecoder(boundary.encode("latin-1", "replace"))
    decoder.receive_data(raw)
    decoder.receive_data(None)
    charset_of = MultiPartParser().get_part_charset
    fields: list[tuple[bytes, bytes, str]] = []
    field: Field | None = None
    chunks: list[bytes] = []
    try:
        event = decoder.next_event()
        while not isinstance(event, (Epilogue, NeedData)):
            if isinstance(event, Field):
                field, chunks = event, []
            elif isinstance(event, Data) and field is not None:
                chunks.append(event.data)
                if not event.more_data:
                    fields.append((field.name.encode(), b"".join(chunks),
                                   charset_of(field.headers)))
                    field = None
            elif not isinstance(event, Data):
                field = None  # a file: its bytes are not text
            event = decoder.next_event()
    except ValueError:
        return []
    return fields


def label(name: bytes) -> str:
    """A field's name as an error message may show it."""
    text = name.decode("utf-8", "replace")[:MAX_NAME]
    return text if text.isprintable() else repr(text)


def problems(query: bytes, body: bytes = b"", mimetype: str = "", boundary: str | None = None) -> list[str]:
    """What is wrong with the text of each field of the query string and the body, as
    "<field> is not valid UTF-8" or "<field> contains a NUL byte"; empty when all is well."""
    fields = urlencoded_fields(query)
    if mimetype == "application/x-www-form-urlencoded":
        fields += urlencoded_fields(body)
    elif mimetype == "multipart/form-data" and boundary:
        fields += multipart_fields(body, boundary)
    found: list[str] = []
    for name, value, charset in fields:
        name_problem = texts.bytes_problem(name)
        if name_problem is not None:
            found.append(f"a field name {name_problem}")
            continue
        problem = texts.bytes_problem(value, charset)
        if problem is not None:
            found.append(f"{label(name)} {problem}")
    return list(dict.fromkeys(found))
