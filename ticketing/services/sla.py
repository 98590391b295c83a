"""Time limits: the one place deadlines are computed.

Clock tiers (urgent, utilities) run 24×7; working-day tiers (general, complex) run
on the working-day calendar. On hold pauses the resolve clock: on resume the
deadline moves by the time that would have counted while the ticket was held.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from ticketing.models import SlaTier, Status, Ticket
from ticketing.services.workdays import WorkCalendar

# Warn at 75 % of a limit, that is when a quarter of it is left.
WARN_WHEN_LEFT = 0.25


def add_limit(tier: SlaTier, start: datetime, minutes: int, calendar: WorkCalendar) -> datetime:
    """`minutes` of the tier's kind of time after `start`."""
    duration = timedelta(minutes=minutes)
    if tier.working_days:
        return calendar.add(start, duration)
    return start + duration


def accept_deadline(tier: SlaTier, dispatched_at: datetime, calendar: WorkCalendar) -> datetime:
    """When a dispatched ticket must be accepted by."""
    return add_limit(tier, dispatched_at, tier.accept_minutes, calendar)


def resolve_deadline(tier: SlaTier, accepted_at: datetime, calendar: WorkCalendar) -> datetime:
    """When an accepted ticket must be resolved by."""
    return add_limit(tier, accepted_at, tier.resolve_minutes, calendar)


def counted_pause(
    tier: SlaTier, held_at: datetime, resumed_at: datetime, calendar: WorkCalendar
) -> timedelta:
    """The part of a hold that the tier's clock would have counted."""
    if tier.working_days:
        return calendar.between(held_at, resumed_at)
    return max(resumed_at - held_at, timedelta())


def extend_for_pause(
    tier: SlaTier, deadline: datetime, pause: timedelta, calendar: WorkCalendar
) -> datetime:
    """Move a resolve deadline later by a counted pause."""
    if tier.working_days:
        return calendar.add(deadline, pause)
    return deadline + pause


def due_soon(ticket: Ticket, now: datetime, calendar: WorkCalendar) -> bool:
    """True when less than a quarter of the running limit is left (on hold the clock stops)."""
    deadline = ticket.current_deadline
    if ticket.status not in (Status.DISPATCHED, Status.ACCEPTED) or deadline is None or now > deadline:
        return False
    tier = ticket.tier
    minutes = tier.accept_minutes if ticket.status == Status.DISPATCHED else tier.resolve_minutes
    left = calendar.between(now, deadline) if tier.working_days else deadline - now
    return left <= timedelta(minutes=minutes) * WARN_WHEN_LEFT
