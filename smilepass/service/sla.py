"""Service-level clocks: when a first response and a resolution are due, counted in the clinic's
business hours (Admin → Clinic settings and Admin → Holidays), paused while a ticket waits on the
user, and the breaches.

How the clocks run:
- At creation both targets start: response_due_at and resolution_due_at are the targets for the
  priority added as business time; next_due_at, the running deadline, is the first-response one.
- The first public staff reply meets the response target; the running deadline becomes the
  resolution one.
- "Waiting on user" pauses: next_due_at is emptied and sla_paused_at set. Leaving it moves every
  target not yet met later by the business time spent paused.
- Resolved stops the clocks (resolved_at, resolution_minutes, breach flag). Reopening treats the time
  spent resolved like a pause: the resolution clock goes on from what was left when it stopped (an
  overdue one stays overdue by the same amount), and resolution_minutes is recorded again at the
  next resolve. Closed is final.
- Minutes recorded are business minutes from creation, minus the business time spent waiting on the
  user or resolved (from the ticket's status changes).
- A breach is marked on the ticket as it happens: on the late reply or resolve, or by
  mark_breaches() from the periodic job once a running deadline passes. A breach stays marked.

Callers pass `now` so the rules are testable without sleeping; times are naive UTC as stored."""
import datetime as dt
from dataclasses import dataclass

from flask_babel import gettext

from .. import audit, settings
from ..db import database
from ..i18n import lazy_gettext
from ..models import Clinic, ClinicMember, Holiday, Priority, Status, StatusChange, Ticket, Tier, User, utcnow
from .calendar import Schedule, add_business_time, business_time_between

# Statuses whose time counts for neither target.
STOPPED = (Status.WAITING, Status.RESOLVED, Status.CLOSED)


@dataclass(frozen=True)
class Plan:
    """Everything the clocks need from the settings, read once per operation."""
    schedule: Schedule
    targets: dict  # Priority → (first response, resolution) as timedelta

    def response_target(self, priority: int) -> dt.timedelta:
        return self.targets[Priority(priority)][0]

    def resolution_target(self, priority: int) -> dt.timedelta:
        return self.targets[Priority(priority)][1]


def plan() -> Plan:
    """The clinic's schedule and targets: settings (one query) plus holidays (one query)."""
    values = settings.get_all()
    hours = values["business_hours"]
    schedule = Schedule(time_zone=values["time_zone"], opens=hours.opens, closes=hours.closes,
                        weekdays=values["business_days"].weekdays, holidays=Holiday.dates())
    targets = {
        priority: (dt.timedelta(hours=values[f"response_hours_{priority.name.lower()}"]),
                   dt.timedelta(hours=values[f"resolution_hours_{priority.name.lower()}"]))
        for priority in Priority
    }
    return Plan(schedule, targets)


def schedule() -> Schedule:
    return plan().schedule


def local_date(moment: dt.datetime) -> dt.date:
    """The clinic's calendar day of a stored (naive UTC) moment. Dates people type and read (deliveries,
    warranty days, holidays) are the clinic's: in Auckland 09:00 on New Year's Day is still 31 December in UTC."""
    return Schedule(time_zone=settings.get("time_zone")).local_date(moment)


def clinic_today(now: dt.datetime | None = None) -> dt.date:
    return local_date(now or utcnow())


# Creation ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DueTimes:
    response: dt.datetime
    resolution: dt.datetime


def due_times(priority: int, created_at: dt.datetime, current: Plan | None = None) -> DueTimes:
    current = current or plan()
    return DueTimes(add_business_time(created_at, current.response_target(priority), current.schedule),
                    add_business_time(created_at, current.resolution_target(priority), current.schedule))


def first_response_due(priority: int, created_at: dt.datetime, current: Plan | None = None) -> dt.datetime:
    """Bulk loaders (demo data) pass one Plan for all their tickets."""
    current = current or plan()
    return add_business_time(created_at, current.response_target(priority), current.schedule)


@dataclass(frozen=True)
class Service:
    """What the requester's clinic is entitled to when a ticket is filed."""
    tier: Tier
    account_manager: User | None  # Enterprise only: gets the ticket assigned
    clinic_name: str = ""


def service_for(requester: User) -> Service:
    clinic = (Clinic.select().join(ClinicMember).where(ClinicMember.user == requester.id).first())
    if clinic is None:
        return Service(Tier.STANDARD, None)
    manager = None
    if clinic.tier_enum == Tier.ENTERPRISE and clinic.account_manager_id is not None:
        candidate = User.get_or_none(User.id == clinic.account_manager_id)
        # A deactivated or non-staff manager would hold tickets nobody sees in the queue.
        if candidate is not None and candidate.is_active and candidate.is_staff:
            manager = candidate
    return Service(clinic.tier_enum, manager, clinic.name)


# Status changes and replies ----------------------------------------------------------------------

def _minutes(span: dt.timedelta) -> int:
    return max(0, int(span.total_seconds() // 60))


def stopped_time(ticket: Ticket, until: dt.datetime, schedule_: Schedule) -> dt.timedelta:
    """Business time the ticket spent waiting on the user or resolved, up to `until`, from its
    status changes (the change that is being made is already among them)."""
    total = dt.timedelta(0)
    stopped_since = None
    changes = (StatusChange.select(StatusChange.from_status, StatusChange.to_status, StatusChange.created_at)
               .where(StatusChange.ticket == ticket.id)
               .order_by(StatusChange.created_at, StatusChange.id).tuples())
    for from_status, to_status, at in changes:
        at = min(at, until)
        if from_status in STOPPED and stopped_since is not None:
            total += business_time_between(stopped_since, at, schedule_)
            stopped_since = None
        if to_status in STOPPED and stopped_since is None:
            stopped_since = at
    if stopped_since is not None:
        total += business_time_between(stopped_since, until, schedule_)
    return total


def _clock_minutes(ticket: Ticket, now: dt.datetime, schedule_: Schedule) -> int:
    return _minutes(business_time_between(ticket.created_at, now, schedule_) - stopped_time(ticket, now, schedule_))


def _running_due(ticket: Ticket) -> dt.datetime | None:
    return ticket.response_due_at if ticket.first_response_at is None else ticket.resolution_due_at


def _shift_unmet(ticket: Ticket, pause: dt.timedelta, schedule_: Schedule) -> None:
    if pause <= dt.timedelta(0):
        return
    if ticket.first_response_at is None and ticket.response_due_at is not None:
        ticket.response_due_at = add_business_time(ticket.response_due_at, pause, schedule_)
    if ticket.resolution_due_at is not None:
        ticket.resolution_due_at = add_business_time(ticket.resolution_due_at, pause, schedule_)


def first_response(ticket: Ticket, now: dt.datetime) -> None:
    """The first public staff reply (first_response_at already set): record and judge it. The caller saves."""
    schedule_ = schedule()
    ticket.response_minutes = _clock_minutes(ticket, now, schedule_)
    if ticket.response_due_at is not None and now > ticket.response_due_at:
        ticket.response_breached = True
    if ticket.sla_paused_at is None and ticket.status_enum not in STOPPED:
        ticket.next_due_at = ticket.resolution_due_at


def status_changed(ticket: Ticket, from_status: Status, to_status: Status, now: dt.datetime) -> None:
    """Pause, resume, resolve, reopen or stop the clocks for a move (its StatusChange row already
    written with created_at = now). The caller saves."""
    if to_status == Status.CLOSED:
        ticket.next_due_at = None  # from Resolved: the clocks stopped already
        ticket.sla_paused_at = None
        return
    schedule_ = schedule()
    if from_status == Status.WAITING and ticket.sla_paused_at is not None:
        _shift_unmet(ticket, business_time_between(ticket.sla_paused_at, now, schedule_), schedule_)
        ticket.sla_paused_at = None
    if from_status == Status.RESOLVED and ticket.resolved_at is not None:
        # Reopened: the time spent resolved counts like a pause (see the module's docstring).
        _shift_unmet(ticket, business_time_between(ticket.resolved_at, now, schedule_), schedule_)
        ticket.resolved_at = None
        ticket.resolution_minutes = None
    if to_status == Status.WAITING:
        ticket.sla_paused_at = now
        ticket.next_due_at = None
    elif to_status == Status.RESOLVED:
        ticket.resolved_at = now
        ticket.resolution_minutes = _clock_minutes(ticket, now, schedule_)
        if ticket.resolution_due_at is not None and now > ticket.resolution_due_at:
            ticket.resolution_breached = True
        if ticket.first_response_at is None and ticket.response_due_at is not None and now > ticket.response_due_at:
            ticket.response_breached = True  # resolved without a reply, after the reply was due
        ticket.next_due_at = None
    else:
        ticket.next_due_at = _running_due(ticket)


# Breaches and warnings (the periodic job) --------------------------------------------------------

RESPONSE, RESOLUTION = "response", "resolution"


def mark_breaches(now: dt.datetime) -> list[tuple[Ticket, str]]:
    """Mark the tickets whose running deadline passed before `now`, and return the newly marked ones
    with which target they missed. Each kind is one UPDATE that only touches rows still unmarked, so
    two jobs running at once never both report a ticket."""
    passed = Ticket.next_due_at.is_null(False) & (Ticket.next_due_at < now)
    kinds = (
        (RESPONSE, Ticket.response_breached, passed & Ticket.first_response_at.is_null()),
        (RESOLUTION, Ticket.resolution_breached,
         passed & Ticket.first_response_at.is_null(False) & Ticket.resolved_at.is_null()),
    )
    marked = []
    with database.atomic():
        for kind, flag, condition in kinds:
            query = Ticket.update({flag: True}).where(condition & (flag == False)).returning(Ticket.id)  # noqa: E712
            ids = [row.id for row in query.execute()]
            for ticket in Ticket.select().where(Ticket.id.in_(ids)).order_by(Ticket.id) if ids else []:
                audit.record("sla_breach", ticket, detail=f"{kind} target missed", actor=None)
                marked.append((ticket, kind))
    return marked


def due_soon(now: dt.datetime, within: dt.timedelta, current: Schedule | None = None) -> list[Ticket]:
    """Running tickets whose deadline is still ahead but at most `within` of business time away.
    Business time grows with the clock only while open, so the deadline is before the moment
    `within` business time from now exactly when the business time left is at most `within`."""
    schedule_ = current or schedule()
    horizon = add_business_time(now, within, schedule_)
    return list(Ticket.select().where(Ticket.next_due_at > now, Ticket.next_due_at <= horizon)
                .order_by(Ticket.next_due_at, Ticket.id))


# Display ------------------------------------------------------------------------------------------

TARGET_LABELS = {RESPONSE: lazy_gettext("First response"), RESOLUTION: lazy_gettext("Resolution")}


def format_span(span: dt.timedelta) -> str:
    """A business-time span for people: "2 h 15 min", "40 min", "less than a minute"."""
    minutes = _minutes(abs(span))
    if minutes == 0:
        return gettext("less than a minute")
    hours, minutes = divmod(minutes, 60)
    parts = (([gettext("%(hours)s h", hours=hours)] if hours else [])
             + ([gettext("%(minutes)s min", minutes=minutes)] if minutes else []))
    return " ".join(parts)


@dataclass(frozen=True)
class Clock:
    """What a ticket page shows about its service level."""
    state: str  # "response" / "resolution" (running), "paused", "met" (resolved), "stopped" (closed)
    target: str  # which target is running or paused: RESPONSE / RESOLUTION; "" when none
    due_at: dt.datetime | None  # naive UTC
    due_local: dt.datetime | None  # the same moment in the clinic's time zone
    remaining: dt.timedelta | None  # business time left; negative when overdue
    response_breached: bool
    resolution_breached: bool
    response_minutes: int | None
    resolution_minutes: int | None

    @property
    def target_label(self) -> str:
        return str(TARGET_LABELS.get(self.target, ""))

    @property
    def overdue(self) -> bool:
        return self.remaining is not None and self.remaining < dt.timedelta(0)

    @property
    def remaining_text(self) -> str:
        if self.remaining is None:
            return ""
        if self.overdue:
            return gettext("Overdue by %(time)s", time=format_span(self.remaining))
        return gettext("%(time)s of business time left", time=format_span(self.remaining))

    @property
    def late_text(self) -> str:
        """How late an overdue target is, without the words around it."""
        return format_span(self.remaining) if self.overdue else ""

    @property
    def response_text(self) -> str:
        return format_span(dt.timedelta(minutes=self.response_minutes)) if self.response_minutes is not None else ""

    @property
    def resolution_text(self) -> str:
        return format_span(dt.timedelta(minutes=self.resolution_minutes)) if self.resolution_minutes is not None else ""


def _signed_business_time(start: dt.datetime, end: dt.datetime, schedule_: Schedule) -> dt.timedelta:
    if end >= start:
        return business_time_between(start, end, schedule_)
    return -business_time_between(end, start, schedule_)


def clock(ticket: Ticket, now: dt.datetime, current: Schedule | None = None) -> Clock:
    schedule_ = current or schedule()
    status = ticket.status_enum
    target = RESPONSE if ticket.first_response_at is None else RESOLUTION
    due = _running_due(ticket)
    if status == Status.CLOSED:
        state, target, due = "stopped", "", None
    elif status == Status.RESOLVED:
        state, target, due = "met", "", None
    elif ticket.sla_paused_at is not None:
        state = "paused"
    else:
        state = target
    remaining = None
    if due is not None:
        # While paused the clock shows what was left when it stopped.
        remaining = _signed_business_time(ticket.sla_paused_at if state == "paused" else now, due, schedule_)
    due_local = due.replace(tzinfo=dt.UTC).astimezone(schedule_.zone) if due is not None else None
    return Clock(state, target, due, due_local, remaining, ticket.response_breached, ticket.resolution_breached,
                 ticket.response_minutes, ticket.resolution_minutes)
