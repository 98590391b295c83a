"""What the staff ticket page shows beyond the ticket's own columns."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import Category, Photo, Ticket, User
from ticketing.services import classify, scope
from ticketing.services.lifecycle import Actor, Transition, allowed
from ticketing.staff.forms import FORMS, ActionForm

# Actions that take no input are one big button; the others open a small form.
QUICK_ACTIONS = frozenset({"accept", "resume"})


@dataclass
class Panel:
    """One action the viewer may take now, with its form."""

    transition: Transition
    form: ActionForm

    @property
    def name(self) -> str:
        return self.transition.name

    @property
    def quick(self) -> bool:
        return self.name in QUICK_ACTIONS


def panels(ticket: Ticket, actor: Actor, failed: tuple[str, ActionForm] | None = None) -> list[Panel]:
    """A panel per transition `actor` may do now; a form that just failed keeps its input."""
    result = []
    for transition in allowed(actor, ticket):
        form_class = FORMS.get(transition.name)
        if form_class is None:
            continue
        if failed is not None and failed[0] == transition.name:
            form = failed[1]
        else:
            form = form_class(formdata=None)
        form.prepare(ticket)
        result.append(Panel(transition, form))
    return result


def merged_here(ticket: Ticket, user: User) -> list[Ticket]:
    """Duplicates merged into this ticket that the user may see."""
    return list(db.session.scalars(
        select(Ticket)
        .where(Ticket.merged_into_id == ticket.id, scope.ticket_scope(user))
        .order_by(Ticket.id)
    ))


def photos_by_kind(ticket: Ticket) -> dict[str, list[Photo]]:
    """The resident's report photos and the handler's result photos."""
    grouped: dict[str, list[Photo]] = {"report": [], "result": []}
    for photo in ticket.photos:
        grouped.setdefault(photo.kind, []).append(photo)
    return grouped


@dataclass(frozen=True)
class Classification:
    """What intake's classifier guessed for the ticket, for the dispatcher to check."""

    guess: Category | None
    confidence: float | None
    differs: bool  # the category now is not the guess
    low: bool  # no guess, or too unsure to trust
    terms: tuple[str, ...]  # the words behind the guess
    urgent_words: tuple[str, ...]  # the words that raised the tier at intake


def category_doubtful(ticket: Ticket) -> bool:
    """True when the category deserves a second look: the guess differs or was unsure."""
    if ticket.guess_confidence is None:
        return False
    return ticket.guess_category_id != ticket.category_id or ticket.guess_confidence < classify.LOW_CONFIDENCE


def classification(ticket: Ticket) -> Classification:
    """The guess shown beside the category, with the words it rests on."""
    submitted = next((e for e in ticket.events if e.action == "submit"), None)
    urgent = tuple((submitted.detail or {}).get("urgent", ())) if submitted is not None else ()
    terms: tuple[str, ...] = ()
    if ticket.guess_category_id is not None:
        again = classify.classify(ticket.description)
        if again.category is not None and again.category.id == ticket.guess_category_id:
            terms = again.terms
    confidence = ticket.guess_confidence
    return Classification(
        guess=ticket.guess_category,
        confidence=confidence,
        differs=ticket.guess_category_id is not None and ticket.guess_category_id != ticket.category_id,
        low=confidence is None or confidence < classify.LOW_CONFIDENCE,
        terms=terms,
        urgent_words=urgent,
    )
