"""Placeholder blueprint; filled in below."""
from flask import Blueprint

bp = Blueprint("console", __name__)
