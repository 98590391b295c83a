"""Placeholder blueprint; filled in below."""
from flask import Blueprint, render_template_string

from ticketing.web import roles_required, ticket_in_scope_or_404

bp = Blueprint("staff", __name__)


@bp.route("/<number>")
@roles_required("admin", "supervisor", "dispatcher", "grid_worker", "property_staff", "volunteer")
def detail(number: str) -> str:
    ticket = ticket_in_scope_or_404(number)
    return render_template_string('{% extends "base.html" %}{% block content %}{{ t.number }}{% endblock %}', t=ticket)
