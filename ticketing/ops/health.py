"""Health checks for load balancers and process managers: no login, tiny JSON, no secrets.

`/healthz` says the process is up (it touches nothing); `/readyz` says whether it can
do work: the database answers `SELECT 1` and, when configured, Redis answers PING.
Its `warnings` list what works but needs an operator soon (a calendar year whose
make-up working days nobody confirmed); they never change the status.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ticketing import web
from ticketing.extensions import db
from ticketing.queues import redis_connection
from ticketing.services.calendar_admin import readiness_warnings

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

OK, DOWN, NOT_CONFIGURED = "ok", "unavailable", "not configured"


@bp.route("/healthz")
def healthz() -> Response:
    """The process is up and serving requests."""
    return jsonify(status=OK)


def database_status() -> str:
    """"ok" when the database answers a trivial query."""
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("readiness: database unavailable (%s)", type(exc).__name__)
        return DOWN
    return OK


def redis_status() -> str:
    """"ok" when Redis answers PING; "not configured" in the embedded mode."""
    connection = redis_connection()
    if connection is None:
        return NOT_CONFIGURED
    try:
        connection.ping()
    except RedisError as exc:
        log.warning("readiness: Redis unavailable (%s)", type(exc).__name__)
        return DOWN
    return OK


def warnings(database: str) -> list[str]:
    """What needs an operator soon; nothing to say about the data when the database is down."""
    if database != OK:
        return []
    try:
        return readiness_warnings(web.now(), web.local_tz())
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("readiness: warnings not checked (%s)", type(exc).__name__)
        return []


@bp.route("/readyz")
def readyz() -> tuple[Response, int]:
    """200 when every dependency answers, 503 naming the one that does not; with warnings."""
    checks = {"database": database_status(), "redis": redis_status()}
    ready = all(value in (OK, NOT_CONFIGURED) for value in checks.values())
    if not ready:
        current_app.logger.warning("not ready: %s", checks)
    return jsonify({**checks, "warnings": warnings(checks["database"])}), 200 if ready else 503
