"""The resident's pages (views.py) and the emergency guidance they show (emergency.py)."""

# Kept in a module of its own, it adds its template helpers to the blueprint of views.py.
from ticketing.resident import emergency  # noqa: F401
