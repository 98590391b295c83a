"""All models, split by domain and re-exported here for convenience."""
from ticketing.models.audit import AuditEntry
from ticketing.models.catalog import CalendarDay, CalendarYear, Category, ClassificationCorrection, SlaTier
from ticketing.models.channels import ApiKey, KeyKind, WechatFollower, WechatNonce
from ticketing.models.ledgers import HandlerDay, Ledger, LedgerLine
from ticketing.models.notifications import Notification
from ticketing.models.outbox import OutboxMessage, SchedulerRun
from ticketing.models.people import (
    HANDLER_ROLES,
    PropertyCompany,
    Role,
    Team,
    TeamKind,
    User,
    user_grids,
)
from ticketing.models.places import Building, Community, Complex, Grid, Street
from ticketing.models.routing import DutyShift, Leave, RoutingRule
from ticketing.models.tickets import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    STAFF_ENTRY_CHANNELS,
    Channel,
    FailedAttempt,
    HandlerKind,
    Photo,
    Rating,
    RevealLog,
    Status,
    Ticket,
    TicketCounter,
    TicketEvent,
)
from ticketing.models.types import UTCDateTime, utcnow

__all__ = [
    "AuditEntry", "ApiKey", "ClassificationCorrection", "KeyKind", "WechatFollower", "WechatNonce",
    "Building", "CalendarDay", "CalendarYear", "DutyShift", "Leave", "RoutingRule", "Category", "Channel", "Community", "Complex", "FailedAttempt",
    "FINAL_STATUSES", "Grid", "HandlerDay", "Ledger", "LedgerLine", "HANDLER_ROLES", "HandlerKind", "Notification", "OPEN_STATUSES",
    "OutboxMessage", "Photo", "SchedulerRun",
    "PropertyCompany", "Rating", "RevealLog", "Role", "STAFF_ENTRY_CHANNELS", "SlaTier",
    "Status", "Street", "Team", "TeamKind", "Ticket", "TicketCounter", "TicketEvent",
    "UTCDateTime", "User", "user_grids", "utcnow",
]
