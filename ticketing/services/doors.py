"""Who may file through which staff door, and which actions staff take by hand.

The web pages and the staff API enforce the same rules, so they are declared here
once rather than in one blueprint and imported by another.
"""
from __future__ import annotations

from ticketing.models import Role

# The service-hall/phone entry page (console) and its API channels.
ENTRY_ROLES: tuple[Role, ...] = (Role.DISPATCHER, Role.ADMIN)
# WeChat-group quick entry (收单).
GROUPCHAT_ROLES: tuple[Role, ...] = (Role.DISPATCHER, Role.GRID_WORKER)
# Grid patrol (巡查).
PATROL_ROLES: tuple[Role, ...] = (Role.GRID_WORKER,)

# The transitions staff take on the ticket page (and through the API), each with its
# form in staff/forms.py `FORMS`; the others are the resident's or the system's.
BY_HAND_ACTIONS: frozenset[str] = frozenset({
    "dispatch", "reject", "merge", "accept", "return", "hold", "resume", "resolve",
    "note", "escalate", "deescalate", "extend", "recategorize", "reassign", "transfer",
})
