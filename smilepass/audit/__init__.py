"""The audit trail: one row per sign-in, per change, and per view or download of patient data. A row
says who (actor), what (action), to which object (type and id), when and from which client address;
never the patient data itself. Rows are only ever added (models.AuditLog refuses changes, and so does
the database: migration 0009).

`detail` is short structured text for people reading the trail: ids (`case #12`), states, settings'
old and new values. Never names, birth dates, clinic patient ids, case numbers, ticket titles or
bodies, or file names. `record` guards the common slip cheaply: a detail that repeats one of the
object's own private columns is withheld (and logged), never stored."""
import datetime as dt
import logging
import re

from flask import has_request_context, request
from flask_babel import lazy_gettext
from flask_login import current_user

from ..models import AuditLog, utcnow

log = logging.getLogger(__name__)

DETAIL_MAX = 200
# Per model, the columns that hold patient data or text people write about patients: what a detail
# about such an object may not repeat. The guard reads them from the object in hand (no query).
PRIVATE_COLUMNS = {
    "Case": ("case_number", "patient_name", "patient_dob", "clinic_patient_id", "notes"),
    "Ticket": ("title", "description", "tried"),
    "Message": ("body",),
    "Attachment": ("original_name",),
    "Scan": ("original_name",),
    "Shipment": ("phases", "tracking_number"),
    "Escalation": ("reason",),
    "ContactRequest": ("message",),
    "RescanRequest": ("note",),
}
# Values this short match ordinary words ("Open -> In Progress" contains a title "In").
SHORTEST_PRIVATE_VALUE = 3
WITHHELD = "(withheld: the detail repeated the object's private text)"
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]+")


def record(action: str, obj=None, detail: str = "", actor=None) -> int:
    """Write one audit row (one INSERT) and return its id. actor defaults to the signed-in user; obj
    is the model instance acted on or seen (its type and id are stored, nothing else of it)."""
    if actor is None and has_request_context() and current_user and current_user.is_authenticated:
        actor = current_user._get_current_object()
    return AuditLog.insert(
        actor=actor.id if actor else None,
        actor_email=actor.email if actor else "",
        action=action,
        object_type=type(obj).__name__.lower() if obj is not None else "",
        object_id=str(obj.id) if obj is not None else "",
        detail=_safe_detail(detail, obj, action),
        ip=(request.remote_addr or "")[:64] if has_request_context() else "",
        created_at=utcnow(),
    ).execute()


def _safe_detail(detail: str, obj, action: str) -> str:
    detail = CONTROL_CHARACTERS.sub(" ", detail or "").strip()
    if len(detail) > DETAIL_MAX:
        detail = detail[:DETAIL_MAX - 1] + "…"
    if detail and obj is not None and _repeats_private_text(detail, obj):
        log.warning("audit detail of %s on %s %s withheld: it repeated the object's private text",
                    action, type(obj).__name__, getattr(obj, "id", ""))
        return WITHHELD
    return detail


def _repeats_private_text(detail: str, obj) -> bool:
    data = getattr(obj, "__data__", {})
    lowered = detail.casefold()
    for name in PRIVATE_COLUMNS.get(type(obj).__name__, ()):
        value = data.get(name)
        if isinstance(value, dt.date):
            value = value.isoformat()
        if (
            isinstance(value, str)
            and len(value.strip()) >= SHORTEST_PRIVATE_VALUE
            and value.strip().casefold() in lowered
        ):
            return True
    return False


def without(text: str, *identifiers: str) -> str:
    """text with each identifier (case number, patient name and each part of it...) cut out, for the
    rare detail that must keep words a person wrote (a delivered shipment's reason for reopening)."""
    for identifier in sorted({i.strip() for i in identifiers if i and len(i.strip()) >= SHORTEST_PRIVATE_VALUE},
                             key=len, reverse=True):
        text = re.sub(re.escape(identifier), "…", text, flags=re.IGNORECASE)
    return text


def patient_identifiers(case) -> list[str]:
    """What names a case's patient: for `without`."""
    name = case.patient_name or ""
    return [case.case_number, case.clinic_patient_id, name, *name.split(),
            case.patient_dob.isoformat() if case.patient_dob else ""]


# What each action means, for the audit page's filter and table. Actions recorded by code that is not
# listed here still show and filter, under their own name.
ACTIONS = {
    # Sign-in and accounts
    "login": lazy_gettext("Signed in"),
    "login_failed": lazy_gettext("Sign-in failed"),
    "account_locked": lazy_gettext("Sign-in locked"),
    "logout": lazy_gettext("Signed out"),
    "password_reset_requested": lazy_gettext("Password reset requested"),
    "password_reset": lazy_gettext("Password reset"),
    "password_changed": lazy_gettext("Password changed"),
    "user_created": lazy_gettext("User created"),
    "user_activated": lazy_gettext("User activated"),
    "user_deactivated": lazy_gettext("User deactivated"),
    "session_ended": lazy_gettext("Session signed out"),
    "twofa_enrolled": lazy_gettext("Second factor added"),
    "twofa_removed": lazy_gettext("Second factor removed"),
    "twofa_passed": lazy_gettext("Second step of sign-in passed"),
    "twofa_failed": lazy_gettext("Second step of sign-in failed"),
    "twofa_locked": lazy_gettext("Second step of sign-in locked"),
    "twofa_recovery_codes": lazy_gettext("Recovery codes made"),
    "twofa_recovery_used": lazy_gettext("Recovery code used"),
    "twofa_browser_trusted": lazy_gettext("Browser trusted for the second step"),
    "twofa_reset": lazy_gettext("Second factors reset"),
    "sessions_ended": lazy_gettext("Signed out everywhere"),
    "escalation_role": lazy_gettext("Escalation role changed"),
    "notification_preferences": lazy_gettext("Email notification choices changed"),
    "language_change": lazy_gettext("Language changed"),
    "notification_read": lazy_gettext("Notification read"),
    "notifications_read": lazy_gettext("All notifications read"),
    # Tickets
    "ticket_created": lazy_gettext("Request filed"),
    "ticket_view": lazy_gettext("Request with patient data viewed"),
    "ticket_reply": lazy_gettext("Reply"),
    "ticket_reply_mail": lazy_gettext("Reply by email"),
    "ticket_created_mail": lazy_gettext("Request filed by email"),
    "mail_refused": lazy_gettext("Incoming mail refused"),
    "ticket_note": lazy_gettext("Internal note"),
    "ticket_status": lazy_gettext("Status changed"),
    "ticket_assign": lazy_gettext("Assigned"),
    "ticket_escalated": lazy_gettext("Escalated"),
    "sla_breach": lazy_gettext("Target missed"),
    "attachment_upload": lazy_gettext("Screenshot uploaded"),
    "attachment_download": lazy_gettext("Screenshot downloaded"),
    "attachment_thumbnail": lazy_gettext("Screenshot thumbnail viewed"),
    # Scans
    "scan_upload": lazy_gettext("Scan uploaded"),
    "scan_view": lazy_gettext("Scan report viewed"),
    "scan_preview": lazy_gettext("Scan preview viewed"),
    "scan_download": lazy_gettext("Scan downloaded"),
    "scan_rerun": lazy_gettext("Scan repair run again"),
    "rescan_request": lazy_gettext("Rescan requested"),
    "rescan_fulfilled": lazy_gettext("Rescan request answered by a new scan"),
    "rescan_reopened": lazy_gettext("Rescan request opened again (the new scan failed its repair)"),
    # Cases and shipments
    "case_create": lazy_gettext("Case created"),
    "case_update": lazy_gettext("Case changed"),
    "case_view": lazy_gettext("Case page viewed"),
    "case_label_attach": lazy_gettext("Label put on a case"),
    "case_label_detach": lazy_gettext("Label taken off a case"),
    "label_create": lazy_gettext("Label created"),
    "label_update": lazy_gettext("Label changed"),
    "label_delete": lazy_gettext("Label deleted"),
    "shipment_create": lazy_gettext("Shipment created"),
    "shipment_advance": lazy_gettext("Shipment moved on"),
    "shipment_eta": lazy_gettext("Carrier date set"),
    "shipment_reopen": lazy_gettext("Delivery undone"),
    "shipment_import": lazy_gettext("Tracking numbers imported"),
    "patient_link_create": lazy_gettext("Patient link created"),
    "patient_link_revoke": lazy_gettext("Patient link revoked"),
    "patient_page_view": lazy_gettext("Patient status page opened"),
    "patient_export": lazy_gettext("Patient data exported"),
    "patient_export_refused": lazy_gettext("Patient data export refused"),
    "patient_erased": lazy_gettext("Patient erased"),
    "patient_erase_refused": lazy_gettext("Patient erasure refused"),
    "erasure_ledger_failed": lazy_gettext("Erasure not written to the erasure ledger"),
    "scans_purged": lazy_gettext("Old scans purged"),
    # Clinic administration
    "clinic_created": lazy_gettext("Clinic created"),
    "clinic_updated": lazy_gettext("Clinic changed"),
    "clinic_member_added": lazy_gettext("Clinic member added"),
    "clinic_member_removed": lazy_gettext("Clinic member removed"),
    "setting_change": lazy_gettext("Setting changed"),
    "holiday_add": lazy_gettext("Holiday added"),
    "holiday_delete": lazy_gettext("Holiday deleted"),
    "canned_create": lazy_gettext("Canned reply created"),
    "canned_update": lazy_gettext("Canned reply changed"),
    "canned_delete": lazy_gettext("Canned reply deleted"),
    "contact_request": lazy_gettext("Urgent contact received"),
    "contact_handled": lazy_gettext("Urgent contact handled"),
    "contact_reply": lazy_gettext("Urgent contact answered"),
    "contact_reply_mail": lazy_gettext("Urgent contact: the sender answered by email"),
    "contact_reopened": lazy_gettext("Urgent contact reopened"),
    "audit_export": lazy_gettext("Audit log exported"),
    "backup_created": lazy_gettext("Backup taken"),
    "backup_restored": lazy_gettext("Backup restored"),
}

# Object types as record() names them (the model's class name, lower case).
OBJECT_TYPES = {
    "user": lazy_gettext("User"),
    "ticket": lazy_gettext("Request"),
    "attachment": lazy_gettext("Screenshot"),
    "scan": lazy_gettext("Scan"),
    "case": lazy_gettext("Case"),
    "label": lazy_gettext("Label"),
    "shipment": lazy_gettext("Shipment"),
    "patientlink": lazy_gettext("Patient link"),
    "clinic": lazy_gettext("Clinic"),
    "holiday": lazy_gettext("Holiday"),
    "cannedreply": lazy_gettext("Canned reply"),
    "contactrequest": lazy_gettext("Urgent contact"),
    "notification": lazy_gettext("Notification"),
    "rescanrequest": lazy_gettext("Rescan request"),
}


def action_choices() -> list[tuple[str, str]]:
    """(action, label) for every listed action and every other one the trail holds."""
    recorded = [a for a in AuditLog.distinct_values(AuditLog.action) if a not in ACTIONS]
    return [(key, str(label)) for key, label in ACTIONS.items()] + [(a, a) for a in recorded]


def object_type_choices() -> list[tuple[str, str]]:
    recorded = [t for t in AuditLog.distinct_values(AuditLog.object_type) if t and t not in OBJECT_TYPES]
    return [(key, str(label)) for key, label in OBJECT_TYPES.items()] + [(t, t) for t in recorded]


def action_label(action: str) -> str:
    return str(ACTIONS.get(action, action))
