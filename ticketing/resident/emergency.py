"""Emergency guidance on the resident's pages (templates/resident/_emergency.html).

The rules are in services/emergency.py; this puts them in the resident templates'
context: the numbers of the start page, the guidance of a filed ticket, and for the
report form every guidance its categories and urgent words may call for, with those
that already apply (a re-shown form) open — the page's script opens the others as the
resident picks a category or types.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ticketing.models import Category, Ticket
from ticketing.resident.views import bp
from ticketing.services import emergency
from ticketing.services.catalog import CategoryGroup


@dataclass(frozen=True)
class FormGuidance:
    """What the report form's emergency block shows and its script needs."""

    blocks: list[emergency.Guidance]  # every guidance the form may show, each once
    open_keys: set[str]  # those that apply to the answers already given
    rules: dict[str, Any]  # the script's: category id → guidance key, urgent words → guidance key


def for_form(form: Any, groups: Iterable[CategoryGroup]) -> FormGuidance:
    """The report form's guidance for its categories and the urgent words."""
    lang = emergency.language()
    blocks: dict[str, emergency.Guidance] = {}
    by_category: dict[str, str] = {}
    chosen: Category | None = None
    for group in groups:
        for category in group.options:
            guidance = emergency.for_category(category, lang)
            if guidance is not None:
                blocks.setdefault(guidance.key, guidance)
                by_category[str(category.id)] = guidance.key
            if category.id == getattr(form.category_id, "data", None):
                chosen = category
    for guide in emergency.guides():
        guidance = emergency.from_guide(guide, lang)
        blocks.setdefault(guidance.key, guidance)
    applying = emergency.for_request(chosen, str(getattr(form.description, "data", "") or ""), lang)
    rules = {**emergency.client_rules(), "categories": by_category}
    return FormGuidance(list(blocks.values()), {g.key for g in applying}, rules)


@bp.context_processor
def emergency_helpers() -> dict[str, Callable[..., Any]]:
    """Helpers the resident templates call (nothing is computed unless a template asks)."""

    def for_ticket(ticket: Ticket) -> list[emergency.Guidance]:
        return emergency.for_ticket(ticket)

    return {
        "emergency_numbers": emergency.start_page_numbers,
        "emergency_for_ticket": for_ticket,
        "emergency_for_form": for_form,
    }
