"""`POST /api/v1/upstream/orders`: county centre orders (派单); see docs/upstream-api.md."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from ticketing import web
from ticketing.channels import upstream
from ticketing.extensions import csrf, db

bp = Blueprint("upstream_api", __name__)
csrf.exempt(bp)


def refused(exc: upstream.Refused) -> Any:
    return jsonify(exc.body()), exc.status


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Any:
    """Werkzeug's errors (405, a broken request) in the API's JSON shape."""
    db.session.rollback()
    return jsonify({"error": exc.description or exc.name}), exc.code or 500


@bp.errorhandler(Exception)
def unexpected(exc: Exception) -> Any:
    """A bug: 500 in JSON, nothing kept, never a traceback or an HTML page."""
    # Logged with its traceback for operators; the centre sees no internals.
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    return jsonify({"error": "internal error; nothing was saved"}), 500


def read_body() -> bytes:
    """The raw body, at most 64 KB; `Refused(413)` beyond that."""
    length = request.content_length
    if length is not None and length > upstream.MAX_BODY_BYTES:
        raise upstream.Refused(413, f"body larger than {upstream.MAX_BODY_BYTES} bytes")
    body = request.stream.read(upstream.MAX_BODY_BYTES + 1)
    if len(body) > upstream.MAX_BODY_BYTES:
        raise upstream.Refused(413, f"body larger than {upstream.MAX_BODY_BYTES} bytes")
    return body


@bp.post("/orders")
def orders() -> Any:
    """File an order: 201 with our ticket number, 200 when the order was filed before."""
    now = web.now()
    try:
        body = read_body()
        centre = upstream.authenticate(request.headers, body, now)
        data = upstream.parse_body(request.content_type, body)
        ticket, created, order_no = upstream.receive(
            centre, data, now, web.local_tz(), web.photo_store(), current_app.config["MAX_PHOTO_BYTES"],
        )
    except upstream.Refused as exc:
        return refused(exc)
    return jsonify({"ticket": ticket.number, "status": str(ticket.status), "order_no": order_no}), (
        201 if created else 200
    )
