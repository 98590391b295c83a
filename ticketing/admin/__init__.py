"""Administration: routing rules, catalogue, keys, calendar (admins) and duty rosters (admins and supervisors)."""

# Admin pages kept in modules of their own add their routes to the blueprint of views.py.
from ticketing.admin import accounts, calendar, catalog, keys, records, staff_import  # noqa: F401
