"""Practice Insights figures, each one SQL aggregate (no Flask here).

Every figure is computed by the database: counts, sums and the percentiles too (a running total,
a window function SQLite and PostgreSQL both have), so a chart reads a handful of rows however many
tickets there are. Times are UTC; a range is [start, end) with `end` the midnight after the last day.

Percentiles are nearest-rank: of n values sorted ascending, the p-th percentile is the value at
position ceil(p/100 · n). The median is the 50th percentile, so with an even count it is the lower
of the two middle values — always a time some ticket really took, and the same on both databases.
"""
import datetime as dt
from dataclasses import dataclass

import peewee as pw

from ..db import database, is_postgres
from ..models import (
    CATEGORIES,
    RESCAN_REASONS,
    CaseCount,
    Clinic,
    ClinicMember,
    Escalation,
    EscalationRole,
    RescanRequest,
    Role,
    Scan,
    ScanState,
    Shipment,
    ShipmentState,
    Status,
    Ticket,
    User,
)

UNRESOLVED = (Status.OPEN.value, Status.IN_PROGRESS.value, Status.WAITING.value)

# What the repair report (mesh/pipeline.py, Mesh.report) counts, in the order the page lists them.
# A scan "has" a defect when the repair found at least one of it.
DEFECT_KINDS = ["holes_filled", "holes_left_open", "fragments_removed", "duplicates_removed",
                "degenerate_removed", "non_manifold_removed", "flipped_triangles", "welded_vertices"]

SCAN_OUTCOMES = ["uploaded", "ready", "repaired", "check", "needs_rescan", "failed", "in_progress"]


@dataclass(frozen=True)
class Scope:
    """Whose numbers, over which days: the whole practice, one clinic's clinicians, or one clinician."""
    start: dt.datetime
    end: dt.datetime
    clinic_id: int | None = None
    clinician_id: int | None = None

    def people(self, column):
        """A condition on a column holding a user id (requester, uploader, clinician)."""
        if self.clinician_id is not None:
            return column == self.clinician_id
        if self.clinic_id is not None:
            return column.in_(ClinicMember.select(ClinicMember.user).where(ClinicMember.clinic == self.clinic_id))
        return pw.SQL("1 = 1")

    @property
    def narrowed(self) -> bool:
        return self.clinician_id is not None or self.clinic_id is not None

    def during(self, column):
        return (column >= self.start) & (column < self.end)

    def weeks(self) -> list[dt.date]:
        """Every Monday whose week overlaps the range, oldest first."""
        first = monday(self.start.date())
        last = monday((self.end - dt.timedelta(microseconds=1)).date())
        return [first + dt.timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]


def monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _week_of(column):
    """The Monday (UTC) of the week a timestamp falls in, as SQL."""
    if is_postgres():
        return pw.fn.date_trunc("week", column).cast("date")
    # SQLite: 'weekday 0' moves forward to Sunday (or stays there); six days back is that week's Monday.
    return pw.fn.date(column, "weekday 0", "-6 days")


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


@dataclass
class WeekCount:
    week: dt.date
    opened: int
    resolved: int


def tickets_per_week(scope: Scope) -> list[WeekCount]:
    """Tickets opened, and tickets resolved, in each week of the range. One statement of two scalar
    counts per week: each is a range count on an index, where grouping by a computed week would
    evaluate a date function on every ticket in the range (six times slower at a year of 100,000)."""
    weeks = scope.weeks()

    def count(column, week: dt.date):
        low = max(dt.datetime.combine(week, dt.time()), scope.start)
        high = min(dt.datetime.combine(week + dt.timedelta(weeks=1), dt.time()), scope.end)
        return (Ticket.select(pw.fn.COUNT(pw.SQL("*")))
                .where((column >= low) & (column < high) & scope.people(Ticket.requester)))

    counts = [count(column, week) for week in weeks for column in (Ticket.created_at, Ticket.resolved_at)]
    row = database.execute(pw.Select(columns=counts)).fetchone()
    return [WeekCount(week, int(row[2 * i]), int(row[2 * i + 1])) for i, week in enumerate(weeks)]


@dataclass
class TimeStats:
    """Business minutes for the tickets that reached a target (first reply, resolution) in range."""
    count: int
    median: int | None
    p90: int | None
    breached: int

    @property
    def on_time(self) -> int:
        return self.count - self.breached

    @property
    def compliance(self) -> float | None:
        """Share on time, 0..100; None when no ticket reached the target in range."""
        return None if self.count == 0 else 100.0 * self.on_time / self.count


def _time_stats(minutes, breached, reached_at, scope: Scope, who=None) -> TimeStats:
    """Count, nearest-rank median and 90th percentile, and how many were late, in one statement.
    The tickets are first grouped by their time (a few thousand distinct values at most), then a
    running total over the groups finds the first time whose running count reaches ⌈p·n/100⌉ — the
    same answer as numbering every ticket, at half the cost, and the same on both databases.
    `who`: the column whose person the scope narrows to (the ticket's requester unless given); a
    `breached` of None counts nothing as late (rescans have no target)."""
    who = who if who is not None else Ticket.requester
    late = pw.fn.SUM(pw.Case(None, [(breached, 1)], 0) if breached is not None else pw.Value(0))
    grouped = (minutes.model.select(minutes.alias("v"), pw.fn.COUNT(pw.SQL("*")).alias("c"), late.alias("late"))
               .where(scope.during(reached_at) & minutes.is_null(False) & scope.people(who))
               .group_by(minutes).alias("grouped"))
    g = grouped.c
    running = pw.Select([grouped], [g.v, g.late, pw.fn.SUM(g.c).over(order_by=[g.v]).alias("running"),
                                    pw.fn.SUM(g.c).over().alias("n")]).alias("running_totals")
    r = running.c

    def at_percentile(p: int):
        # running >= p·n/100 holds exactly when running >= ⌈p·n/100⌉, running being a whole number.
        return pw.fn.MIN(pw.Case(None, [(r.running * 100 >= r.n * p, r.v)]))

    query = pw.Select([running], [pw.fn.MAX(r.n), at_percentile(50), at_percentile(90), pw.fn.SUM(r.late)])
    count, median, p90, late_n = database.execute(query).fetchone()
    return TimeStats(int(count or 0), median, p90, int(late_n or 0))


def first_response_times(scope: Scope) -> TimeStats:
    """Tickets that got their first staff reply in range."""
    return _time_stats(Ticket.response_minutes, Ticket.response_breached, Ticket.first_response_at, scope)


def resolution_times(scope: Scope) -> TimeStats:
    """Tickets resolved in range (and not reopened since)."""
    return _time_stats(Ticket.resolution_minutes, Ticket.resolution_breached, Ticket.resolved_at, scope)


def backlog(scope: Scope) -> dict[tuple[int, str], int]:
    """Unresolved tickets now, per (status, category): one query for both backlog figures. The
    date range does not apply: a backlog is today's."""
    query = (Ticket.select(Ticket.status, Ticket.category, pw.fn.COUNT(pw.SQL("*")))
             .where(Ticket.status.in_(UNRESOLVED) & scope.people(Ticket.requester))
             .group_by(Ticket.status, Ticket.category))
    return {(status, category): int(n) for status, category, n in database.execute(query).fetchall()}


def backlog_by_status(backlog_counts: dict[tuple[int, str], int]) -> dict[int, int]:
    totals = dict.fromkeys(UNRESOLVED, 0)
    for (status, _category), n in backlog_counts.items():
        totals[status] += n
    return totals


def backlog_by_category(backlog_counts: dict[tuple[int, str], int]) -> list[tuple[str, int]]:
    """Largest first; ties in the categories' own order."""
    totals: dict[str, int] = {}
    for (_status, category), n in backlog_counts.items():
        totals[category] = totals.get(category, 0) + n
    order = {name: i for i, name in enumerate(CATEGORIES)}
    return sorted(totals.items(), key=lambda item: (-item[1], order.get(item[0], len(order)), item[0]))


@dataclass
class EscalationCount:
    level: int
    by_staff: int
    automatic: int  # by the SLA job (no actor): a missed target

    @property
    def total(self) -> int:
        return self.by_staff + self.automatic


def escalations(scope: Scope) -> list[EscalationCount]:
    """Escalation steps taken in range, per level of the path, by staff or automatically."""
    automatic = pw.Case(None, [(Escalation.actor.is_null(), 1)], 0)
    query = (Escalation.select(Escalation.level, pw.fn.COUNT(pw.SQL("*")), pw.fn.SUM(automatic))
             .where(scope.during(Escalation.created_at)).group_by(Escalation.level))
    if scope.narrowed:  # whose tickets: only then is the join worth its cost
        query = query.join(Ticket, on=(Escalation.ticket == Ticket.id)).where(scope.people(Ticket.requester))
    found = {level: (int(n), int(auto or 0)) for level, n, auto in database.execute(query).fetchall()}
    counts = []
    for role in EscalationRole:
        total, automatic_n = found.get(role.level, (0, 0))
        counts.append(EscalationCount(role.level, total - automatic_n, automatic_n))
    return counts


def scan_outcomes(scope: Scope) -> dict[str, int]:
    """Scans uploaded in range and where their latest repair run ended."""
    query = (Scan.select(Scan.state, Scan.verdict, pw.fn.COUNT(pw.SQL("*")))
             .where(scope.during(Scan.created_at) & scope.people(Scan.uploader))
             .group_by(Scan.state, Scan.verdict))
    out = dict.fromkeys(SCAN_OUTCOMES, 0)
    for state, verdict, n in database.execute(query).fetchall():
        out["uploaded"] += n
        if state == ScanState.DONE.value and verdict in ("ready", "repaired", "check", "needs_rescan"):
            out[verdict] += n
        elif state == ScanState.FAILED.value:
            out["failed"] += n
        else:
            out["in_progress"] += n
    return out


def scan_defects(scope: Scope) -> list[tuple[str, int]]:
    """Among repaired or judged scans uploaded in range: how many had each kind of defect, most
    common first (ties in DEFECT_KINDS order). On PostgreSQL each report (JSON text) is parsed once,
    into jsonb, by the inner query; OFFSET 0 keeps the planner from inlining that cast into every
    use of it (plain json would parse the text again for every key)."""
    postgres = is_postgres()
    report = pw.Cast(Scan.report, "jsonb") if postgres else Scan.report
    checked = (Scan.select(report.alias("r"))
               .where(scope.during(Scan.created_at) & scope.people(Scan.uploader)
                      & (Scan.state == ScanState.DONE.value) & (Scan.report != ""))
               .offset(0).alias("checked"))

    def found(kind: str):
        # The keys are this module's constants, never user input.
        if postgres:
            number = pw.Cast(pw.NodeList((checked.c.r, pw.SQL(f"->> '{kind}'"))), "numeric")
        else:
            number = pw.fn.json_extract(checked.c.r, f"$.{kind}")
        return pw.fn.SUM(pw.Case(None, [(pw.fn.COALESCE(number, 0) > 0, 1)], 0))

    counts = database.execute(pw.Select([checked], [found(kind) for kind in DEFECT_KINDS])).fetchone()
    totals = [(kind, int(n or 0)) for kind, n in zip(DEFECT_KINDS, counts, strict=True)]
    return sorted(totals, key=lambda item: (-item[1], DEFECT_KINDS.index(item[0])))


CASE_STATES = [s.value for s in ShipmentState] + [""]  # "": no shipment yet


def cases_by_state(scope: Scope) -> dict[str, int]:
    """Cases now, by their newest shipment's tracker state (the date range does not apply). Read
    from the per-clinician counts the database keeps (migration 0006)."""
    query = (CaseCount.select(CaseCount.state, pw.fn.SUM(CaseCount.n))
             .where(scope.people(CaseCount.clinician)).group_by(CaseCount.state))
    found = {state: int(n or 0) for state, n in database.execute(query).fetchall()}
    return {state: found.get(state, 0) for state in CASE_STATES}


@dataclass
class DeliveryWeek:
    week: dt.date
    shipments: int
    average_days: float | None


@dataclass
class DeliveryTime:
    shipments: int
    average_days: float | None
    weeks: list[DeliveryWeek]


def production_to_delivery(scope: Scope) -> DeliveryTime:
    """Shipments delivered in range: how many, and the average days from In Production to Delivered,
    overall and per week of delivery."""
    if is_postgres():
        days = (
            pw.fn.EXTRACT(pw.NodeList((pw.SQL("EPOCH FROM"), Shipment.delivered_at - Shipment.in_production_at)))
            / 86400.0
        )
    else:
        days = pw.fn.julianday(Shipment.delivered_at) - pw.fn.julianday(Shipment.in_production_at)
    week = _week_of(Shipment.delivered_at)
    query = (Shipment.select(week, pw.fn.COUNT(pw.SQL("*")), pw.fn.SUM(days))
             .where(scope.during(Shipment.delivered_at) & scope.people(Shipment.clinician)).group_by(week))
    found = {_as_date(w): (int(n), float(total)) for w, n, total in database.execute(query).fetchall()}
    shipments = sum(n for n, _ in found.values())
    total_days = sum(total for _, total in found.values())
    weeks = [DeliveryWeek(w, found.get(w, (0, 0.0))[0],
                          round(found[w][1] / found[w][0], 1) if w in found else None) for w in scope.weeks()]
    return DeliveryTime(shipments, round(total_days / shipments, 1) if shipments else None, weeks)


# Rescan requests (issue 18) -------------------------------------------------------------------------

@dataclass
class RescanRate:
    """Scans a clinician (or a clinic's clinicians) uploaded in range, and rescans asked of them in range."""
    name: str
    uploaded: int
    requested: int

    @property
    def rate(self) -> float | None:
        """Requests per 100 scans uploaded; None with no scans (a request about an older scan still counts)."""
        return None if self.uploaded == 0 else 100.0 * self.requested / self.uploaded


def _per_clinician(scope: Scope) -> dict[int, list[int]]:
    """{clinician id: [scans uploaded, rescans requested]} in range: two grouped counts, on the scan
    uploader and on the request's clinician (the ticket's requester when asked)."""
    clinicians = User.select(User.id).where(User.role == Role.CLINICIAN.value)
    uploads = (Scan.select(Scan.uploader, pw.fn.COUNT(pw.SQL("*")))
               .where(scope.during(Scan.created_at) & scope.people(Scan.uploader) & Scan.uploader.in_(clinicians))
               .group_by(Scan.uploader))
    requests = (RescanRequest.select(RescanRequest.clinician, pw.fn.COUNT(pw.SQL("*")))
                .where(scope.during(RescanRequest.requested_at) & scope.people(RescanRequest.clinician))
                .group_by(RescanRequest.clinician))
    found: dict[int, list[int]] = {}
    for position, query in enumerate((uploads, requests)):
        for user_id, n in database.execute(query).fetchall():
            found.setdefault(user_id, [0, 0])[position] += int(n)
    return found


def rescan_rates(scope: Scope, by_clinic: bool) -> list[RescanRate]:
    """Rescan rate per clinician, or per clinic (clinicians without a clinic under ""), highest rate
    first, then by name; only those with scans or requests in range."""
    found = _per_clinician(scope)
    if not found:
        return []
    if by_clinic:
        clinic_of = dict(ClinicMember.select(ClinicMember.user, Clinic.name).join(Clinic)
                         .where(ClinicMember.user.in_(list(found))).tuples())
        totals: dict[str, list[int]] = {}
        for user_id, (uploaded, requested) in found.items():
            counts = totals.setdefault(clinic_of.get(user_id, ""), [0, 0])
            counts[0] += uploaded
            counts[1] += requested
        rates = [RescanRate(name, uploaded, requested) for name, (uploaded, requested) in totals.items()]
    else:
        names = {user.id: user.display_name for user in User.select().where(User.id.in_(list(found)))}
        rates = [RescanRate(names.get(user_id, ""), uploaded, requested)
                 for user_id, (uploaded, requested) in found.items()]
    return sorted(rates, key=lambda r: (-(r.rate if r.rate is not None else -1), r.name))


def rescan_reasons(scope: Scope) -> list[tuple[str, int]]:
    """How many requests in range named each reason, most common first (ties in RESCAN_REASONS order).
    The database counts each stored combination of codes (at most 2⁷ of them); the codes are split here."""
    query = (RescanRequest.select(RescanRequest.reasons, pw.fn.COUNT(pw.SQL("*")))
             .where(scope.during(RescanRequest.requested_at) & scope.people(RescanRequest.clinician))
             .group_by(RescanRequest.reasons))
    totals = dict.fromkeys(RESCAN_REASONS, 0)
    for reasons, n in database.execute(query).fetchall():
        for code in set(reasons.split(",")):
            if code in totals:
                totals[code] += int(n)
    order = list(RESCAN_REASONS)
    return sorted(totals.items(), key=lambda item: (-item[1], order.index(item[0])))


def rescan_wait(scope: Scope) -> TimeStats:
    """Requests answered by a new scan in range: the nearest-rank median (and 90th percentile) of the
    whole minutes from the request to the new scan."""
    return _time_stats(RescanRequest.wait_minutes, None, RescanRequest.fulfilled_at, scope,
                       who=RescanRequest.clinician)
