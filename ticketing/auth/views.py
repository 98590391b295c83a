"""Placeholder blueprint; filled in below."""
from flask import Blueprint

bp = Blueprint("auth", __name__)
