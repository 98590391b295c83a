"""The dispatch console: the queue, requests entered for residents, the 督办 list, the 回访 queue."""

# Console pages kept in modules of their own add their routes to the blueprint of views.py.
from ticketing.console import callbacks  # noqa: F401
