"""Which tickets the public may read through Open311 (issue 13): the rule, in one place.

The keyless GET requests of Open311 show a ticket's text (masked) and its building.
A ticket is shown only when its category is public (`Category.public`, which admins
set on the categories page). Elderly help, disputes and anything about a person's
circumstances are private categories, so their tickets never show, whatever channel
they came through; a walk-in, phone or WeChat ticket shows only because its category
is public, and so does one filed through Open311. New categories start private.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement

from ticketing.models import Category, Ticket


def publicly_listed() -> ColumnElement[bool]:
    """The SQL condition a ticket must meet to be listed or read through keyless Open311."""
    # A condition rather than a Python test, so the list is filtered in the query:
    # its limit then fills with public tickets and counts say nothing of private ones.
    return Ticket.category.has(Category.public.is_(True))
