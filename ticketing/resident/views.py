"""Placeholder blueprint; filled in below."""
from flask import Blueprint

bp = Blueprint("resident", __name__)


@bp.route("/")
def index() -> str:
    return "minhu"
