"""Recurring problems (高频诉求). Stub until merge: helper "hot" owns this module and its
`for_scope`; governance tasks only read a cluster's snapshot through it."""
from __future__ import annotations

from datetime import date
from typing import Any

from ticketing.models import User


def for_scope(user: User | None, day: date, days: int = 30) -> list[Any]:  # stub until merge
    """The stored clusters `user` may see, most significant first (none in this stub)."""
    return []
