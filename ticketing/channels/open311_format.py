"""Open311 GeoReport v2 documents as XML and JSON, and the spec's W3C datetimes.

A document is plain data: dicts (ordered: the XML element order), lists, strings,
numbers, booleans and None. XML follows the spec's element names; JSON is its
"Spark convention" mapping: the root element is dropped, a list element becomes a
JSON array of its items, an empty element becomes null.

XML is built with ElementTree, so every text is escaped; characters XML 1.0 cannot
carry at all (most control characters) are dropped first.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, time, tzinfo
from typing import Any

XML_MIMETYPE = "text/xml"
JSON_MIMETYPE = "application/json"
FORMATS = ("xml", "json")
# The element each list element holds, by the list's own name.
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}
XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# A W3C datetime (a profile of ISO 8601): a year, a month, a date, or a date and time.
W3C = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def xml_text(value: Any) -> str:
    """The text of a scalar as the spec writes it: true/false, numbers, strings."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return NOT_XML_CHAR.sub("", str(value))


def _append(parent: ET.Element, tag: str, value: Any) -> None:
    element = ET.SubElement(parent, tag)
    _fill(element, tag, value)


def _fill(element: ET.Element, tag: str, value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _append(element, key, child)
    elif isinstance(value, list):
        item_tag = ITEM_TAGS[tag]
        for item in value:
            _append(element, item_tag, item)
    else:
        element.text = xml_text(value)


def to_xml(root: str, document: Any) -> str:
    """The document as an XML string under the element `root`, with the declaration."""
    element = ET.Element(root)
    _fill(element, root, document)
    return XML_DECLARATION + ET.tostring(element, encoding="unicode")


def _spark(value: Any) -> Any:
    if isinstance(value, str):
        return NOT_XML_CHAR.sub("", value) or None
    if isinstance(value, dict):
        return {key: _spark(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_spark(item) for item in value]
    return value


def to_json(document: Any) -> str:
    """The document as JSON text (UTF-8 characters kept as they are)."""
    return json.dumps(_spark(document), ensure_ascii=False, allow_nan=False)


def render(root: str, document: Any, fmt: str) -> tuple[str, str]:
    """(body, mimetype) of the document in `fmt` ("xml" or "json")."""
    if fmt == "json":
        return to_json(document), JSON_MIMETYPE
    return to_xml(root, document), XML_MIMETYPE


def w3c(value: datetime | None, tz: tzinfo) -> str | None:
    """2026-11-18T10:00:00+08:00: the time in the zone the site is shown in."""
    if value is None:
        return None
    return value.astimezone(tz).isoformat(timespec="seconds")


def parse_w3c(text: str, tz: tzinfo) -> datetime:
    """A W3C datetime as an aware datetime; `ValueError` when it is not one.

    The spec asks clients for a zone ("Z" or ±HH:MM); a time or date without one is
    read in the site's zone, and a bare year, month or date means its first instant.
    """
    found = W3C.fullmatch(text.strip())
    if found is None:
        raise ValueError(text)
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    day_part = date(int(year), int(month or 1), int(day or 1))
    micro = round(float(fraction) * 1_000_000) if fraction else 0
    clock = time(int(hour or 0), int(minute or 0), int(second or 0), min(micro, 999_999))
    result = datetime.combine(day_part, clock)
    if zone is None:
        return result.replace(tzinfo=tz)
    return datetime.fromisoformat(result.isoformat() + ("+00:00" if zone == "Z" else zone))
