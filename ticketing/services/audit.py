"""The audit log (操作日志): every change an admin or supervisor makes, on record.

How to record a change — one call, in the same transaction as the change, before
the caller commits, so the change and its row are written together or not at all::

    before = audit.snapshot(rule, audit.RULE_FIELDS)        # None when creating
    ... change the object ...
    audit.record(staff_user(), "rule.update", "rule", rule.id, rule.name,
                 before, audit.snapshot(rule, audit.RULE_FIELDS), now())

- `actor`: the User who did it; None for a command run in a shell (pass
  `via="cli"` and, if known, `actor_label` such as the OS user).
- `action`: "<target type>.<verb>", e.g. "rule.create", "leave.remove",
  "apikey.revoke", "calendar.set", "place.update", "import.apply".
- `target_type`, `target_id`, `target_label`: what was changed — its kind, its key
  (an id or a code; stored as text) and a name a person recognises.
- `before` / `after`: JSON-able dicts of the fields that matter (None for a
  creation's before or a removal's after). Dates, times and enums are converted;
  secret fields (passwords, hashes, API keys) are never stored — only "changed".
- `now`: the time of the change (UTC); `via`: "web", "cli" or "api".

Rows are never updated or deleted by the app; the database refuses updates.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from ticketing.extensions import db
from ticketing.models import AuditEntry, User

VIA = ("web", "cli", "api")
# Fields whose values are never written to the log, whatever their name in a dict.
SECRET_FIELDS = frozenset({"password", "password_hash", "key", "key_hash", "secret", "token"})
CHANGED = "changed"
HIDDEN = "(hidden)"

RULE_FIELDS = ("name", "category_id", "scope_kind", "scope_id", "handler_kind", "team_id",
               "company_id", "tier_id", "priority", "active")
CATEGORY_FIELDS = ("keywords", "active", "public")
TIER_FIELDS = ("trigger_words",)
KEY_FIELDS = ("kind", "name", "prefix", "user_id", "revoked_at")
USER_FIELDS = ("username", "display_name", "phone", "role", "street_id", "community_id", "company_id",
               "team_id", "active", "on_call")


def jsonable(value: Any) -> Any:
    """`value` as JSON can hold it: times as ISO text, enums by value, containers as lists."""
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def snapshot(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    """The named attributes of `obj` as a JSON-able dict (secrets hidden by `record`)."""
    return {name: jsonable(getattr(obj, name)) for name in fields}


def without_secrets(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
                    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Both dicts with every secret field's value replaced: "changed" where it changed."""
    old = jsonable(dict(before)) if before is not None else None
    new = jsonable(dict(after)) if after is not None else None
    for name in SECRET_FIELDS:
        was = old.get(name) if old is not None else None
        if old is not None and name in old:
            old[name] = HIDDEN
        if new is not None and name in new:
            new[name] = CHANGED if (old is None or name not in old or new[name] != was) else HIDDEN
    return old, new


def shell_user() -> str:
    """Who runs a command, as the audit log names them: "shell:<OS user>"."""
    import getpass

    try:
        return f"shell:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name in some containers
        return "shell"


def label_of(actor: User | None) -> str:
    """How an account is named in the log: "Name (username)"."""
    return f"{actor.display_name} ({actor.username})" if actor is not None else ""


def record(actor: User | None, action: str, target_type: str, target_id: int | str | None,
           target_label: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
           now: datetime, via: str = "web", actor_label: str | None = None) -> AuditEntry:
    """Add one audit row to the session; the caller's commit writes it with the change."""
    if via not in VIA:
        raise ValueError(f"via must be one of {VIA}, not {via!r}")
    old, new = without_secrets(before, after)
    entry = AuditEntry(
        at=now, actor_id=actor.id if actor is not None else None,
        actor_label=(actor_label if actor_label is not None else label_of(actor))[:130],
        via=via, action=action[:40], target_type=target_type[:32],
        target_id=None if target_id is None else str(target_id)[:64],
        target_label=(target_label or "")[:200], before=old, after=new,
    )
    db.session.add(entry)
    return entry


def changes(entry: AuditEntry) -> list[tuple[str, Any, Any]]:
    """(field, before, after) for each field that differs, in the order the dicts give them."""
    old, new = entry.before or {}, entry.after or {}
    names = list(old) + [name for name in new if name not in old]
    return [(name, old.get(name), new.get(name)) for name in names if old.get(name) != new.get(name)]
