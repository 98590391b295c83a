"""`flask open311 create-key|keys|revoke-key`: the operator's commands for client apps' keys."""
from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from tests.factories import T0, World
from ticketing.extensions import db
from ticketing.models import ApiKey, KeyKind, utcnow
from ticketing.services import apikeys


def run(app: Flask, *args: str) -> object:
    return app.test_cli_runner().invoke(args=["open311", *args])


def test_create_key_prints_the_key_once_and_keeps_only_its_hash(ctx: Flask) -> None:
    result = run(ctx, "create-key", "Street app (Acme)")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("o311_") and "not shown again" in result.stderr
    row = db.session.scalars(select(ApiKey)).one()
    assert (row.kind, row.name, row.key_hash) == (KeyKind.OPEN311, "Street app (Acme)", apikeys.digest(key))
    assert key not in (row.prefix, row.name, row.key_hash)
    assert apikeys.verify(KeyKind.OPEN311, key, utcnow()) is not None


def test_create_key_refuses_an_empty_name(ctx: Flask) -> None:
    result = run(ctx, "create-key", "  ")
    assert result.exit_code == 1 and "name" in result.output
    assert db.session.scalars(select(ApiKey)).all() == []


def test_keys_lists_the_open311_keys_with_their_state(ctx: Flask, world: World) -> None:
    kept, _ = apikeys.issue(KeyKind.OPEN311, "Kept app", T0)
    gone, _ = apikeys.issue(KeyKind.OPEN311, "Gone app", T0)
    apikeys.revoke(gone, T0)
    apikeys.issue(KeyKind.STAFF, "Staff app", T0, user=world.gina)
    result = run(ctx, "keys")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["id", "name", "prefix", "created", "last", "used", "revoked"]
    assert "Kept app" in lines[1] and kept.prefix in lines[1] and "2026-11-18 10:00" in lines[1]
    assert "Gone app" in lines[2] and lines[2].count("2026-11-18 10:00") == 2
    assert "Staff app" not in result.output


def test_keys_says_when_there_are_none(ctx: Flask) -> None:
    assert "No Open311 keys yet" in run(ctx, "keys").output


def test_revoke_key_stops_the_key(ctx: Flask) -> None:
    row, key = apikeys.issue(KeyKind.OPEN311, "Old app", T0)
    result = run(ctx, "revoke-key", str(row.id))
    assert result.exit_code == 0 and "revoked" in result.output
    assert apikeys.verify(KeyKind.OPEN311, key, utcnow()) is None
    assert "already revoked" in run(ctx, "revoke-key", str(row.id)).output


def test_revoke_key_refuses_unknown_and_staff_keys(ctx: Flask, world: World) -> None:
    staff, _ = apikeys.issue(KeyKind.STAFF, "Staff app", T0, user=world.gina)
    for key_id in ("999", str(staff.id)):
        result = run(ctx, "revoke-key", key_id)
        assert result.exit_code == 1 and "no Open311 key" in result.output
    db.session.refresh(staff)
    assert staff.revoked_at is None
