"""Tickets, people, categories and places as the staff API's JSON.

The requester's name, phone, room, typed address and location, and the phone and ID
numbers inside the free texts (description, notes, result, rating comment), are masked
unless the caller asked to reveal them (and that reveal was logged). Times are UTC in
RFC 3339 ("2026-11-18T02:00:00Z").
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ticketing.api.contract import STAFF_ACTIONS, channels_for
from ticketing.models import (
    ApiKey,
    CallbackTask,
    Category,
    Community,
    Hotspot,
    PropertyCompany,
    Team,
    Ticket,
    TicketEvent,
    User,
)
from ticketing.services import privacy
from ticketing.services.lifecycle import Actor, allowed
from ticketing.services.timeline import event_summary, routing_event

Json = dict[str, Any]


def iso(moment: datetime | None) -> str | None:
    """A time as RFC 3339 in UTC, or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def person(user: User | None) -> Json | None:
    """A staff member as others see them."""
    if user is None:
        return None
    return {"id": user.id, "display_name": user.display_name, "role": user.role}


def named(row: Team | PropertyCompany | Any | None) -> Json | None:
    """Anything with an id and a name."""
    return None if row is None else {"id": row.id, "name": row.name}


def category_ref(category: Category) -> Json:
    """A category's code and names."""
    return {"id": category.id, "code": category.code, "name_zh": category.name_zh, "name_en": category.name_en}


def handler(ticket: Ticket) -> Json:
    """Who has the ticket: a person, a team's or company's queue, or nobody yet."""
    return {
        "kind": ticket.handler_kind,
        "assignee": person(ticket.assignee),
        "team": named(ticket.team),
        "company": named(ticket.company),
    }


def free_text(value: str, ticket: Ticket, revealed: bool) -> str:
    """A resident's or staff member's words: whole only when revealed."""
    return value if revealed else privacy.mask_text(value, ticket)


def ticket_summary(ticket: Ticket, now: datetime, revealed: bool = False) -> Json:
    """A ticket as a list shows it: no personal data, its text masked."""
    return {
        "number": ticket.number,
        "status": ticket.status,
        "version": ticket.version,
        "channel": ticket.channel,
        "category": category_ref(ticket.category),
        "community_id": ticket.community_id,
        "grid_id": ticket.grid_id,
        "description": free_text(ticket.description, ticket, revealed),
        "handler": handler(ticket),
        "deadline": iso(ticket.current_deadline),
        "overdue": ticket.is_overdue(now),
        "escalation_level": ticket.escalation_level,
        "supervised": ticket.supervised,
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
    }


def requester(ticket: Ticket, revealed: bool) -> Json:
    """The resident's details, masked unless revealed."""
    if revealed:
        return {"name": ticket.requester_name, "phone": ticket.requester_phone, "revealed": True}
    return {"name": privacy.mask_name(ticket.requester_name),
            "phone": privacy.mask_phone(ticket.requester_phone), "revealed": False}


def place(ticket: Ticket, revealed: bool) -> Json:
    """Where the ticket is; the household part and the reporter's location only when revealed."""
    cx = ticket.complex
    return {
        "community": named(ticket.community),
        "grid": named(ticket.grid),
        "complex": None if cx is None else {"id": cx.id, "name": cx.name, "managed": cx.is_managed},
        "building": named(ticket.building),
        "address_text": ticket.address_text if revealed else privacy.mask_address(ticket.address_text),
        "unit_room": ticket.unit_room if revealed else privacy.mask_room(ticket.unit_room),
        "lat": ticket.lat if revealed else None,
        "lon": ticket.lon if revealed else None,
    }


def event(row: TicketEvent, ticket: Ticket, revealed: bool) -> Json:
    """One line of the timeline, internal ones included (staff see them all)."""
    info = event_summary(row)
    actor = None
    if row.actor is not None:
        actor = person(row.actor)
    return {
        "id": row.id,
        "at": iso(row.at),
        "action": row.action,
        "actor_kind": row.actor_kind,
        "actor": actor,
        "from_status": row.from_status,
        "to_status": row.to_status,
        "note": free_text(row.note, ticket, revealed),
        "public": row.public,
        "to": str(info["to"]),
        "rule": str(info["rule"]),
        "merged_into": str(info["merged_into"]),
    }


def routing(ticket: Ticket, revealed: bool) -> Json | None:
    """Why the ticket's handler has it: the dispatch that chose them."""
    found = routing_event(ticket)
    if found is None:
        return None
    detail = found.detail or {}
    return {"rule": str(detail.get("rule", "")), "reason": str(detail.get("reason", "")),
            "at": iso(found.at), "by": person(found.actor),
            "note": free_text(found.note, ticket, revealed)}


def ticket_detail(ticket: Ticket, user: User, now: datetime, duplicates: list[str],
                  revealed: bool = False) -> Json:
    """Everything about a ticket that the ticket page shows `user`."""
    actions = {t.name for t in allowed(Actor.staff(user), ticket)}
    return {
        **ticket_summary(ticket, now, revealed),
        "tier": {"code": ticket.tier.code, "name_zh": ticket.tier.name_zh, "name_en": ticket.tier.name_en},
        "place": place(ticket, revealed),
        "requester": requester(ticket, revealed),
        "routing": routing(ticket, revealed),
        "unrouted_reason": ticket.unrouted_reason,
        "accept_due_at": iso(ticket.accept_due_at),
        "resolve_due_at": iso(ticket.resolve_due_at),
        "dispatched_at": iso(ticket.dispatched_at),
        "accepted_at": iso(ticket.accepted_at),
        "held_at": iso(ticket.held_at),
        "hold_until": ticket.hold_until.isoformat() if ticket.held_at and ticket.hold_until else None,
        "hold_reason": free_text(ticket.hold_reason, ticket, revealed) if ticket.held_at else "",
        "resolved_at": iso(ticket.resolved_at),
        "closed_at": iso(ticket.closed_at),
        "result_note": free_text(ticket.result_note, ticket, revealed),
        "rating": ticket.rating,
        "rating_comment": free_text(ticket.rating_comment, ticket, revealed),
        "return_count": ticket.return_count,
        "reopen_count": ticket.reopen_count,
        "merged_into": ticket.merged_into.number if ticket.merged_into else None,
        "duplicates": duplicates,
        "actions": [name for name in STAFF_ACTIONS if name in actions],
        "can_reveal": privacy.may_reveal(user, ticket),
        "events": [event(row, ticket, revealed) for row in ticket.events],
    }


def me(user: User, key: ApiKey) -> Json:
    """The account a key acts as, and the key itself (never the secret)."""
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "street_id": user.street_id,
        "community_id": user.community_id,
        "grid_ids": [grid.id for grid in user.grids],
        "company_id": user.company_id,
        "team_id": user.team_id,
        "channels": channels_for(user),
        "key": {"id": key.id, "name": key.name, "prefix": key.prefix, "created_at": iso(key.created_at)},
    }


def category(row: Category) -> Json:
    """A category staff may file under, with its group and time-limit tier."""
    tier = row.effective_tier()
    return {**category_ref(row), "group": category_ref(row.group), "tier": tier.code if tier else None}


def places(communities: list[Community]) -> Json:
    """Communities → grids → complexes → buildings."""
    return {"communities": [
        {"id": c.id, "code": c.code, "name": c.name, "grids": [
            {"id": g.id, "code": g.code, "name": g.name, "complexes": [
                {"id": cx.id, "name": cx.name, "managed": cx.is_managed,
                 "buildings": [named(b) for b in cx.buildings]}
                for cx in g.complexes
            ]}
            for g in c.grids
        ]}
        for c in communities
    ]}


def callback_summary(task: CallbackTask, now: datetime) -> Json:
    """A 回访 task as the queue lists it, with its ticket's summary (no personal data)."""
    ticket = task.ticket
    return {
        "id": task.id,
        "reason": task.reason,
        "state": task.state,
        "version": task.version,
        "created_at": iso(task.created_at),
        "due_at": iso(task.due_at),
        "overdue": task.is_overdue(now),
        "attempts": task.attempts,
        "reached": task.reached,
        "solved": task.solved,
        "rating": task.rating,
        "rating_recorded": task.rating_recorded,
        "redone": task.redone,
        "finished_at": iso(task.finished_at),
        "ticket": ticket_summary(ticket, now),
    }


def callback_detail(task: CallbackTask, ticket_json: Json, people: dict[int, User], now: datetime,
                    revealed: bool = False) -> Json:
    """A task with its ticket whole (`ticket_json`, from `ticket_detail`) and every try;
    `people` are the callers the tries name, by id."""
    ticket = task.ticket
    tries = [{"at": iso(datetime.fromisoformat(entry["at"])), "by": person(people.get(entry.get("by", 0))),
              "reached": bool(entry.get("reached")), "note": free_text(entry.get("note", ""), ticket, revealed)}
             for entry in task.attempt_log or []]
    summary = callback_summary(task, now)
    summary.pop("ticket")
    return {**summary, "note": free_text(task.note, ticket, revealed), "finished_by": person(task.finished_by),
            "tries": tries, "ticket": ticket_json}


def hotspot(spot: Hotspot, numbers: list[str]) -> Json:
    """A recurring problem as stored by the nightly run; its wording is masked already."""
    return {
        "id": spot.id, "level": spot.level, "place_id": spot.place_id, "place_name": spot.place_name,
        "community_id": spot.community_id, "grid_id": spot.grid_id, "category": category_ref(spot.category),
        "count": spot.count, "previous_count": spot.previous_count, "trend": spot.trend, "is_new": spot.is_new,
        "score": spot.score, "unsatisfied": spot.unsatisfied, "reopened": spot.reopened, "merged": spot.merged,
        "first_at": iso(spot.first_at), "last_at": iso(spot.last_at), "weekly": list(spot.weekly),
        "handlers": [{"name": h.get("name", ""), "count": h.get("count", 0)} for h in spot.handlers],
        "wording": spot.wording, "tickets": numbers,
    }
