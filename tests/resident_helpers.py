"""Filing through the resident web form in tests."""
from __future__ import annotations

import io
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from tests.conftest import csrf_token
from tests.factories import PHONE, World
from ticketing.extensions import db
from ticketing.models import Ticket


def ticket_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Ticket)) or 0


def form_data(world: World, **changes: Any) -> dict[str, Any]:
    """A valid report, as the browser posts it."""
    data: dict[str, Any] = {
        "category_id": str(world.category("repair.stair_light").id),
        "community_id": str(world.community_a.id),
        "complex_id": str(world.courtyard.id),
        "building_id": str(world.building_courtyard.id),
        "address_text": "",
        "unit_room": "2单元301",
        "description": "楼道灯不亮，晚上看不见台阶",
        "name": "张三丰",
        "phone": PHONE,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def post_report(client: FlaskClient, data: dict[str, Any], photos: list[tuple[bytes, str]] = ()) -> TestResponse:
    data = dict(data)
    data.setdefault("csrf_token", csrf_token(client, "/report"))
    if photos:
        data["photos"] = [(io.BytesIO(content), name) for content, name in photos]
    return client.post("/report", data=data, content_type="multipart/form-data")
