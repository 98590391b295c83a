"""Administration: routing rules, catalogue, keys, calendar (admins) and duty rosters (admins and supervisors)."""

# Admin pages kept in modules of their own add their routes to the blueprint of views.py.
from ticketing.admin import (  # noqa: F401
    accounts,
    calendar,
    catalog,
    catalog_edit,
    emergency,
    keys,
    places,
    places_import,
    records,
    staff_import,
)
