"""What the tracking page shows after filing: adding to an open request, withdrawing it,
and following the ticket it was merged into (templates/resident/_after.html, _merged.html)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ticketing.models import Photo, Status, Ticket
from ticketing.resident.forms import AddInfoForm, RateForm, ReopenForm, WithdrawForm
from ticketing.services import lifecycle, merged


def after_filing(ticket: Ticket, now: datetime, forms: dict[str, Any]) -> dict[str, Any]:
    """The template values of those sections; `forms` are posted ones to show again."""
    main = merged.main_view(ticket)
    return {
        "add_form": forms.get("add_form") or AddInfoForm(formdata=None),
        "withdraw_form": forms.get("withdraw_form") or WithdrawForm(formdata=None),
        "may_add": ticket.is_open,
        "may_withdraw": ticket.status in lifecycle.TRANSITIONS["withdraw"].sources,
        "main": main,
        "main_result_photos": [p for p in main.ticket.photos if p.kind == "result"] if main else [],
        "merged_rate_form": forms.get("merged_rate_form") or RateForm(formdata=None),
        "merged_redo_form": forms.get("merged_redo_form") or ReopenForm(formdata=None),
        "merged_may_rate": main is not None and merged.can_rate(ticket),
        "merged_redo_until": merged.redo_until(ticket, now) if main is not None else None,
    }


def visible_from_merged(ticket: Ticket, photo: Photo) -> bool:
    """True for a result photo of the ticket `ticket` was merged into: its resident sees
    the work done (never the main requester's own photos)."""
    return photo.kind == "result" and ticket.status == Status.MERGED and merged.main_of(ticket).id == photo.ticket_id
