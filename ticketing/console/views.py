"""Placeholder blueprint; filled in below."""
from flask import Blueprint, render_template_string

bp = Blueprint("console", __name__)


@bp.route("/")
def queue() -> str:
    return render_template_string('{% extends "base.html" %}{% block content %}console{% endblock %}')
