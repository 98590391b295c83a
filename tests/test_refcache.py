"""The per-process cache of reference rows (services/refcache.py): how a cached row
joins the request's session."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.factories import World
from ticketing.extensions import db
from ticketing.services import refcache


@pytest.fixture()
def merges(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every row merged into a session."""
    merged: list[object] = []
    real = Session.merge

    def counted(self: Session, instance: Any, **kwargs: Any) -> Any:
        merged.append(instance)
        return real(self, instance, **kwargs)

    monkeypatch.setattr(Session, "merge", counted)
    return merged


def test_a_category_read_by_code_then_by_id_is_merged_once(
    world: World, merges: list[object], statements: list[str],
) -> None:
    refcache.category(world.category("repair.stair_light").id)  # both cached
    refcache.category("repair.stair_light")
    db.session.remove()  # a request's session: empty
    merges.clear()
    by_code = refcache.category("repair.stair_light")
    assert by_code is not None and len(merges) == 1
    statements.clear()
    by_id = refcache.category(by_code.id)
    assert by_id is by_code and len(merges) == 1  # the session's own instance, as loaded
    assert by_id.parent is not None and by_id.parent.tier is not None and by_id.tier is None  # the group's tier
    assert statements == []


def test_after_a_commit_the_cached_row_is_merged_again_and_read_without_a_statement(
    world: World, merges: list[object], statements: list[str],
) -> None:
    db.session.remove()
    first = refcache.category("repair.stair_light")
    assert first is not None
    db.session.commit()  # expires what the session holds
    statements.clear()
    again = refcache.category("repair.stair_light")
    assert again is first and len(merges) == 2
    assert again.code == "repair.stair_light" and again.parent is not None and again.parent.tier is not None
    assert [s for s in statements if s.startswith("SELECT")] == []


def test_a_row_changed_in_the_session_is_not_taken_for_the_cached_one(
    world: World, merges: list[object],
) -> None:
    db.session.remove()
    category = refcache.category("repair.stair_light")
    assert category is not None
    category.name_en = "Changed here"
    refcache.category(category.id)
    assert len(merges) == 2  # as before: merged, the cached copy over the session's
