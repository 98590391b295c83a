"""Reading Open311 answers in tests: the endpoints' root, the clock, XML and JSON helpers."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

from werkzeug.test import TestResponse

from tests.factories import T0, World, make_ticket
from ticketing.extensions import db
from ticketing.models import Category, Ticket
from ticketing.services.photos import PhotoStore

URL = "/open311/v2"
NOW = T0 + timedelta(hours=1)
REQUEST_FIELDS = ["service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                  "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                  "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"]
W3C_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$")


def with_attributes(code: str = "repair.stair_light", fields: list[dict[str, Any]] | None = None) -> Category:
    """Give a category extra fields (the spec's attributes); commits."""
    category = db.session.query(Category).filter_by(code=code).one()
    category.extra_fields = ATTRIBUTES if fields is None else fields
    db.session.commit()
    return category


def xml_of(response: TestResponse) -> ET.Element:
    """The response's XML root, after checking the headers and the declaration."""
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert response.data.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(response.data)


def json_of(response: TestResponse) -> Any:
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    return json.loads(response.data)


def tags(element: ET.Element) -> list[str]:
    return [child.tag for child in element]


def errors_of(response: TestResponse, fmt: str) -> list[tuple[int, str]]:
    """The (code, description) pairs of an error document, checking its shape."""
    if fmt == "xml":
        root = xml_of(response)
        assert root.tag == "errors" and all(tags(e) == ["code", "description"] for e in root)
        return [(int(e.findtext("code") or 0), e.findtext("description") or "") for e in root]
    data = json_of(response)
    assert all(list(e) == ["code", "description"] for e in data)
    return [(e["code"], e["description"]) for e in data]


def ticket_of(world: World, store: PhotoStore, **fields: Any) -> Ticket:
    """A resident's web ticket in 槐树院1号楼, room 2单元301, filed at T0."""
    return make_ticket(world, store, **fields)
ATTRIBUTES = [
    {"code": "side", "datatype": "singlevaluelist", "required": True, "description": "Which side?", "order": 2,
     "values": [{"key": "n", "name": "North"}, {"key": "s", "name": "South"}]},
    {"code": "floor", "datatype": "number", "required": False, "description": "Floor", "order": 1,
     "datatype_description": "a whole number"},
    {"code": "parts", "datatype": "multivaluelist", "required": False, "description": "Broken parts", "order": 3,
     "values": [{"key": "bulb", "name": "Bulb"}, {"key": "switch", "name": "Switch"}]},
    {"code": "seen", "datatype": "datetime", "required": False, "description": "Since when", "order": 4},
]
