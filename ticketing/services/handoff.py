"""Passing a ticket on once it has a handler: the rules of 改派 and 转办.

- 改派 (reassign): a dispatcher or supervisor in scope gives a dispatched, accepted or
  held ticket to another handler, with a reason. It is a new dispatch (effects.py
  `reassign`): the new handler must accept again by a new accept-by.
- 转办 (transfer): the handler passes it to another handler or team that fits the
  ticket as a dispatch would (effects.py `_check_handler_fits`) and is on duty now
  (services/duty.py), with a reason. It counts like a return against the no-ping-pong
  rule: after `MAX_RETURNS` returns and transfers together, the dispatcher decides
  (services/routing.py), and nobody gets back a ticket they passed on.

Whoever returned a ticket, let its accept-by pass or transferred it is left out by
the router too (`excluded_people`).
"""
from __future__ import annotations

from datetime import datetime, tzinfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import Team, Ticket, TicketEvent, User
from ticketing.services import duty
from ticketing.services.errors import IllegalTransition, InvalidInput

# After this many returns (transfers count as returns) the dispatcher decides: no ping-pong.
MAX_RETURNS = 2
# The events that take a ticket from someone, and the detail key naming them.
PASSED_ON = {"return": "returned_by", "expire": "missed_by", "transfer": "transferred_by"}


def excluded_people(ticket: Ticket) -> set[int]:
    """Everyone who returned the ticket, let its accept-by pass, or transferred it on."""
    if ticket.dispatched_at is None:
        return set()  # never dispatched, so nobody has returned it or let it expire
    details = db.session.scalars(
        select(TicketEvent.detail).where(TicketEvent.ticket_id == ticket.id,
                                         TicketEvent.action.in_(list(PASSED_ON)))
    )
    people = set()
    for detail in details:
        for key in PASSED_ON.values():
            if (detail or {}).get(key) is not None:
                people.add(int(detail[key]))
    return people


def check_transfer(ticket: Ticket, assignee: User | None, team: Team | None, now: datetime, tz: tzinfo) -> None:
    """Raise unless the ticket may be transferred to `assignee` or `team` now.

    Whether the person or team serves the ticket's place is the dispatch's check
    (effects.py), made next; this adds what a transfer asks beyond it.
    """
    if ticket.return_count >= MAX_RETURNS:
        raise IllegalTransition(_l("This ticket has been passed on %(n)d times: return it to the dispatcher, "
                                   "who decides.", n=ticket.return_count))
    if assignee is not None:
        if assignee.id == ticket.assignee_id:
            raise InvalidInput(_l("That is already the ticket's handler."), field="handler")
        if assignee.id in excluded_people(ticket):
            raise InvalidInput(_l("That person already had this ticket and passed it on."), field="handler")
        if not duty.is_on_duty(assignee, now, tz):
            raise InvalidInput(_l("That person is not on duty now: choose someone who is."), field="handler")
    elif team is not None:
        if ticket.assignee_id is None and ticket.team_id == team.id:
            raise InvalidInput(_l("The ticket is already waiting in that team's queue."), field="handler")
        if not team.active or not any(member.active for member in team.members):
            raise InvalidInput(_l("That team has no active members."), field="handler")


def check_new_hand(ticket: Ticket, assignee: User | None, team: Team | None) -> None:
    """Raise when a reassignment would give the ticket to the hand that has it."""
    same_person = assignee is not None and assignee.id == ticket.assignee_id
    same_queue = team is not None and ticket.assignee_id is None and ticket.team_id == team.id
    if same_person or same_queue:
        raise InvalidInput(_l("That is already the ticket's handler."), field="handler")


def hand_of(ticket: Ticket) -> dict[str, object]:
    """Who has the ticket now, for the event's detail (the old handler is told from it)."""
    name = (ticket.assignee.display_name if ticket.assignee is not None
            else ticket.team.name if ticket.team is not None
            else ticket.company.name if ticket.company is not None else "")
    return {"from_assignee_id": ticket.assignee_id, "from_team_id": ticket.team_id,
            "from_company_id": ticket.company_id, "from": name}
