"""The escalation path: request → support supervisor → clinical liaison → operations manager.

Staff move a ticket one step up with a reason; the SLA job (jobs.sla_sweep) does the same, with no
actor, for every ticket whose deadline has just passed. Each step is an Escalation row (who, when,
why), an audit row, and a notification to the new owner.

Who owns a step: at level 1 an Enterprise clinic's account manager (they handle their clinic's
escalations), otherwise an active staff member holding the step's role; among several, the one
with the fewest open escalated tickets. A step nobody holds is skipped (the ticket goes to the next
step that has a holder) rather than left with no one; when no later step has a holder either, the
ticket is escalated one step unowned and every admin is told, since only an admin can give out the
missing role."""
import datetime as dt
import logging
from dataclasses import dataclass

import peewee as pw
from flask_babel import gettext

from .. import audit
from ..db import database
from ..i18n import lazy_gettext, source_language
from ..live import events as live
from ..models import (
    ESCALATION_ROLE_LABELS,
    Clinic,
    ClinicMember,
    Escalation,
    EscalationRole,
    Role,
    Status,
    Ticket,
    Tier,
    User,
    utcnow,
)
from ..support.notices import ticket_escalated

log = logging.getLogger(__name__)

TOP_LEVEL = len(EscalationRole)
CLOSED_STATES = (Status.RESOLVED.value, Status.CLOSED.value)
REASON_MAX = 2000
STAFF_ROLES = (Role.SUPPORT.value, Role.ADMIN.value)
# What the SLA job writes as the reason for an automatic step.
BREACH_REASONS = {
    "response": "First response target missed",
    "resolution": "Resolution target missed",
}


class EscalationRefused(Exception):
    pass


# Who owns a step ----------------------------------------------------------------------------------

def account_manager_for(ticket: Ticket) -> User | None:
    """The account manager of the requester's clinic if it is an Enterprise clinic and the manager
    is an active staff member."""
    clinic = (Clinic.select().join(ClinicMember)
              .where(ClinicMember.user == ticket.requester_id).first())
    if clinic is None or clinic.tier != Tier.ENTERPRISE.value or clinic.account_manager_id is None:
        return None
    manager = User.get_or_none(User.id == clinic.account_manager_id)
    if manager is None or not manager.is_active or manager.role not in STAFF_ROLES:
        return None
    return manager


def holders(role: EscalationRole) -> list[User]:
    """Active staff holding this role, the least loaded first (open escalated tickets they own),
    then by id so that ties always pick the same person."""
    open_owned = (Ticket.select(Ticket.escalation_owner, pw.fn.COUNT(Ticket.id).alias("n"))
                  .where(Ticket.escalation_owner.is_null(False) & Ticket.status.not_in(CLOSED_STATES))
                  .group_by(Ticket.escalation_owner).alias("owned"))
    load = pw.fn.COALESCE(open_owned.c.n, 0)
    return list(User.select(User, load.alias("open_escalations"))
                .join(open_owned, pw.JOIN.LEFT_OUTER, on=(open_owned.c.escalation_owner_id == User.id))
                .where((User.escalation_role == role.value) & User.is_active & User.role.in_(STAFF_ROLES))
                .order_by(load, User.id))


def owner_for(ticket: Ticket, level: int) -> User | None:
    """Who owns the ticket at this step of the path, or None when nobody holds the step."""
    role = EscalationRole.for_level(level)
    if role is None:
        raise ValueError(f"no escalation level {level}")
    if level == 1:
        manager = account_manager_for(ticket)
        if manager is not None:
            return manager
    found = holders(role)
    return found[0] if found else None


# Escalating ---------------------------------------------------------------------------------------

def refusal(ticket: Ticket, actor: User | None = None) -> str | None:
    """Why this ticket cannot go up a step now (None: it can). The ticket page uses it to decide
    whether to offer the form at all."""
    if actor is not None and not actor.is_staff:
        return gettext("Only support staff can escalate a request.")
    if ticket.status in CLOSED_STATES:
        return gettext("This request is %(status)s; reopen it before escalating.", status=ticket.status_enum.label)
    if ticket.escalation_level >= TOP_LEVEL:
        return gettext("This request is already with the %(step)s, the last step of the escalation path.",
                       step=EscalationRole.for_level(TOP_LEVEL).label.lower())
    return None


def _next_owned_step(ticket: Ticket) -> tuple[int, User | None, list[int]]:
    """The next step that has an owner, with the steps skipped on the way for want of one; with no
    owner anywhere above, the very next step, unowned."""
    skipped = []
    for level in range(ticket.escalation_level + 1, TOP_LEVEL + 1):
        owner = owner_for(ticket, level)
        if owner is not None:
            return level, owner, skipped
        skipped.append(level)
    return ticket.escalation_level + 1, None, []


def escalate(ticket: Ticket, actor: User | None, reason: str, now: dt.datetime | None = None) -> Escalation:
    """Move the ticket one step up the path (actor None: the SLA job). Raises EscalationRefused with
    a message for people."""
    reason = (reason or "").strip()
    problem = refusal(ticket, actor)
    if problem is None and not reason:
        problem = "Say why the request needs escalating."
    if problem is None and len(reason) > REASON_MAX:
        problem = f"Keep the reason to {REASON_MAX} characters."
    if problem:
        raise EscalationRefused(problem)
    now = now or utcnow()
    level, owner, skipped = _next_owned_step(ticket)
    from_level = ticket.escalation_level
    with database.atomic():
        # Compare-and-set: of two escalations racing from the same step (a click and the SLA job),
        # only one moves the ticket.
        moved = (Ticket.update(escalation_level=level, escalation_owner=owner.id if owner else None, updated_at=now)
                 .where((Ticket.id == ticket.id) & (Ticket.escalation_level == from_level)
                        & Ticket.status.not_in(CLOSED_STATES))
                 .execute())
        if not moved:
            raise EscalationRefused(
                gettext("Someone else escalated or closed this request meanwhile. Reload the page.")
            )
        step = Escalation.create(ticket=ticket.id, level=level, owner=owner.id if owner else None,
                                 actor=actor.id if actor else None, reason=reason, created_at=now)
        ticket.escalation_level, ticket.escalation_owner, ticket.updated_at = level, owner, now
        with source_language():  # the audit trail is written in one language
            detail = f"level {from_level} -> {level} ({EscalationRole.for_level(level).label}), owner "
            detail += owner.email if owner else "none"
            if skipped:
                detail += "; skipped for want of a holder: " + ", ".join(
                    EscalationRole.for_level(n).label for n in skipped)
        # A person's reason is free text that may name the patient: it stays on the step, which the
        # row points to. The SLA job's reason is its own wording ("First response target missed").
        detail += f"; reason: {reason}" if actor is None else f"; reason on step #{step.id}"
        audit.record("ticket_escalated", ticket, detail=detail, actor=actor)
        live.changed(ticket.id, live.ESCALATION)
    live.send()  # committed (the SLA job has no request that would send it later)
    _tell(ticket, owner, actor, reason)
    return step


def _tell(ticket: Ticket, owner: User | None, actor: User | None, reason: str) -> None:
    """After the step commits: the new owner, or with none, every active admin (the people who can
    give the missing role out)."""
    if owner is not None:
        ticket_escalated(ticket, owner, actor, reason)
        return
    admins = User.select().where((User.role == Role.ADMIN.value) & User.is_active).order_by(User.id)
    for admin in admins:
        ticket_escalated(ticket, admin, actor, f"Nobody holds this step; assign the role. {reason}")


# The ticket page ---------------------------------------------------------------------------------

@dataclass
class Step:
    level: int
    label: str
    owner: str  # display name, "" when nobody owned the step
    actor: str  # display name, "" when the SLA job escalated
    reason: str
    created_at: dt.datetime


def history(ticket: Ticket) -> list[Step]:
    """Every step of the ticket, oldest first. Reasons are staff-only: templates show them to staff."""
    Owner, Actor = User.alias(), User.alias()
    rows = (Escalation.select(Escalation, Owner, Actor)
            .join(Owner, pw.JOIN.LEFT_OUTER, on=(Escalation.owner == Owner.id), attr="owner_user")
            .switch(Escalation)
            .join(Actor, pw.JOIN.LEFT_OUTER, on=(Escalation.actor == Actor.id), attr="actor_user")
            .where(Escalation.ticket == ticket.id).order_by(Escalation.created_at, Escalation.id))
    steps = []
    for row in rows:
        role = EscalationRole.for_level(row.level)
        steps.append(
            Step(
                row.level,
                role.label if role else gettext("Level %(level)s", level=row.level),
                _name(row.owner_user),
                _name(row.actor_user),
                row.reason,
                row.created_at,
            )
        )
    return steps


def _name(user: User | None) -> str:
    return user.display_name if user is not None and user.id is not None else ""


# The SLA job --------------------------------------------------------------------------------------

def escalate_breaches(breaches: list[tuple[Ticket, str]], now: dt.datetime | None = None) -> int:
    """One automatic step for each newly breached ticket (from sla.mark_breaches). A ticket already
    at the top, or resolved meanwhile, is left as it is. Returns how many were escalated."""
    escalated = 0
    for ticket, kind in breaches:
        try:
            escalate(ticket, None, BREACH_REASONS[kind], now=now)
        except EscalationRefused as exc:
            log.info("%s not escalated after a %s breach: %s", ticket.number, kind, exc)
        else:
            escalated += 1
    return escalated


# Roles (Admin → Users) ----------------------------------------------------------------------------

ROLE_CHOICES = [("", lazy_gettext("None"))] + [
    (role.value, ESCALATION_ROLE_LABELS[role.value]) for role in EscalationRole
]


def set_role(user: User, value: str, actor: User) -> bool:
    """Give a staff member a step of the path ("" for none); audited. Returns whether it changed."""
    if value and value not in {role.value for role in EscalationRole}:
        raise EscalationRefused(gettext("Choose a step of the escalation path."))
    if value and user.role not in STAFF_ROLES:
        raise EscalationRefused(gettext("Only support staff and admins can hold an escalation role."))
    if value == user.escalation_role:
        return False
    before = user.escalation_role or "none"
    with database.atomic():
        User.update(escalation_role=value).where(User.id == user.id).execute()
        user.escalation_role = value
        audit.record("escalation_role", user, detail=f"{before} -> {value or 'none'}", actor=actor)
    return True
