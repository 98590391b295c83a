"""Placeholder blueprint; filled in below."""
from flask import Blueprint, render_template_string

bp = Blueprint("workbench", __name__)


@bp.route("/")
def index() -> str:
    return render_template_string('{% extends "base.html" %}{% block content %}workbench{% endblock %}')
