"""All models, split by domain and re-exported here for convenience."""
from ticketing.models.audit import AuditEntry
from ticketing.models.callbacks import CallbackReason, CallbackState, CallbackTask
from ticketing.models.catalog import (
    CalendarDay,
    CalendarYear,
    Category,
    ClassificationCorrection,
    EmergencyGuide,
    SlaTier,
)
from ticketing.models.channels import ApiKey, KeyKind, WechatFollower, WechatNonce
from ticketing.models.governance import GovernanceTask, GovernanceTaskTicket, TaskLevel, TaskStatus
from ticketing.models.hotspots import Hotspot, HotspotRun, HotspotTicket
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
from ticketing.models.rollups import CommunityDay, StreetDay
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
    "FINAL_STATUSES",
    "HANDLER_ROLES",
    "OPEN_STATUSES",
    "STAFF_ENTRY_CHANNELS",
    "ApiKey",
    "AuditEntry",
    "Building",
    "CalendarDay",
    "CalendarYear",
    "CallbackReason",
    "CallbackState",
    "CallbackTask",
    "Category",
    "Channel",
    "ClassificationCorrection",
    "Community",
    "CommunityDay",
    "Complex",
    "DutyShift",
    "EmergencyGuide",
    "FailedAttempt",
    "GovernanceTask",
    "GovernanceTaskTicket",
    "Grid",
    "HandlerDay",
    "HandlerKind",
    "Hotspot",
    "HotspotRun",
    "HotspotTicket",
    "KeyKind",
    "Leave",
    "Ledger",
    "LedgerLine",
    "Notification",
    "OutboxMessage",
    "Photo",
    "PropertyCompany",
    "Rating",
    "RevealLog",
    "Role",
    "RoutingRule",
    "SchedulerRun",
    "SlaTier",
    "Status",
    "Street",
    "StreetDay",
    "TaskLevel",
    "TaskStatus",
    "Team",
    "TeamKind",
    "Ticket",
    "TicketCounter",
    "TicketEvent",
    "UTCDateTime",
    "User",
    "WechatFollower",
    "WechatNonce",
    "user_grids",
    "utcnow",
]
