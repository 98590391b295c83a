"""Placeholder blueprint; filled in below."""
from flask import Blueprint

bp = Blueprint("staff", __name__)
