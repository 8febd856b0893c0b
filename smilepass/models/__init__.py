"""Every database model, one module per feature, all importable from here: `from smilepass.models import
Ticket`. Queries that views need live on the models as class methods, so views stay thin.

The schema itself is made only by migrations/ (tests compare both)."""
from .accounts import (
                       ESCALATION_ROLE_LABELS,
                       ROLE_LABELS,
                       TIER_LABELS,
                       Clinic,
                       ClinicMember,
                       EscalationRole,
                       LoginThrottle,
                       PasswordReset,
                       Role,
                       Tier,
                       User,
                       UserPreference,
                       UserSession,
                       normalize_email,
                       role_label,
)
from .audit import AuditLog, AuditLogIsAppendOnly
from .base import BaseModel, utcnow
from .cases import (
                       ARCHES,
                       COLOUR_LABELS,
                       PALETTE,
                       SHIPMENT_STATE_LABELS,
                       Case,
                       CaseCount,
                       CaseLabel,
                       Label,
                       PatientLink,
                       Shipment,
                       ShipmentCount,
                       ShipmentState,
                       arches_label,
                       colour_label,
)
from .clinic import Holiday, Setting
from .messaging import CONTACT_INBOX_READERS, ContactReply, ContactRequest, Notification, OutboxMail
from .scans import SCAN_STATE_LABELS, Scan, ScanState
from .tickets import (
                       CATEGORIES,
                       CATEGORY_LABELS,
                       DEFAULT_CATEGORY,
                       PRIORITY_LABELS,
                       RESOLUTIONS,
                       STATUS_LABELS,
                       Attachment,
                       CannedReply,
                       CaseDetails,
                       Draft,
                       Escalation,
                       Message,
                       Priority,
                       Status,
                       StatusChange,
                       Ticket,
                       TicketCount,
                       category_label,
                       ticket_number,
)

ALL_MODELS = [User, LoginThrottle, PasswordReset, UserPreference, UserSession, Clinic, ClinicMember, Case, Shipment, Label,
              CaseLabel, PatientLink, CaseCount, ShipmentCount, Ticket, TicketCount, CaseDetails, Message,
              StatusChange, Attachment, Scan, Escalation, CannedReply, Draft, OutboxMail, Notification,
              ContactRequest, ContactReply, Setting, Holiday, AuditLog]

__all__ = [
    "ALL_MODELS", "ARCHES", "CATEGORIES", "CATEGORY_LABELS", "COLOUR_LABELS", "CONTACT_INBOX_READERS", "ROLE_LABELS",
    "SCAN_STATE_LABELS", "DEFAULT_CATEGORY", "ESCALATION_ROLE_LABELS", "PALETTE", "PRIORITY_LABELS",
    "RESOLUTIONS", "SHIPMENT_STATE_LABELS", "STATUS_LABELS", "TIER_LABELS", "Attachment", "AuditLog",
    "AuditLogIsAppendOnly", "BaseModel", "CannedReply", "Case", "CaseCount", "CaseDetails", "CaseLabel", "Clinic",
    "ClinicMember", "ContactReply", "ContactRequest", "Draft", "Escalation", "EscalationRole", "Holiday", "Label",
    "LoginThrottle",
    "Message", "Notification", "OutboxMail", "PasswordReset", "PatientLink", "Priority", "Role", "Scan",
    "ScanState", "Setting", "Shipment", "ShipmentCount", "ShipmentState", "Status", "StatusChange", "Ticket",
    "TicketCount", "Tier", "User", "UserPreference", "UserSession", "arches_label", "category_label", "colour_label",
    "normalize_email", "role_label", "ticket_number", "utcnow",
]
