"""Placeholder blueprint; filled in below."""
from flask import Blueprint

bp = Blueprint("workbench", __name__)
