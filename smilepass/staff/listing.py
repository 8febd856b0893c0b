"""The staff queue: open tickets in the order they should be worked, per tab.

Order: the clinic's tier (Enterprise first), then breached before not (a breach recorded by the SLA
job, or a running deadline already past), then priority (Urgent first), then the running deadline
(soonest first; paused or none last), then the ticket number.

All of it but "a running deadline already past" is kept by the database in ticket.queue_rank (a
generated column, migration 0022: NULL once a ticket is no longer open), indexed after each tab's
filter together with next_due_at and id. A view reads one page through that index: the tickets in
their rank's place, merged with the few whose deadline has passed without a breach flag yet (the SLA
job marks them within a minute), which move up into their breached rank (rank - LATE_SHIFT); both
read at most one page (plus what is skipped) through the same index. Tab counts come from QueueCount,
kept by triggers. A search (smilepass/search) narrows the tickets by a condition of its own: then the
order is computed on what it found (queue_query, the same order in SQL)."""
import datetime as dt
import heapq
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlencode

import peewee as pw

from ..db import prepared
from ..i18n import lazy_gettext
from ..models import (
    Clinic,
    ClinicMember,
    Priority,
    QueueCount,
    Status,
    Ticket,
    Tier,
    User,
    ticket_number,
    utcnow,
)
from ..search import query as search_query

OPEN_STATUSES = [Status.OPEN.value, Status.IN_PROGRESS.value, Status.WAITING.value]


class Tab(NamedTuple):
    key: str
    label: str
    empty: str


TABS = [
    Tab("unassigned", lazy_gettext("Unassigned"), lazy_gettext("No open tickets wait for someone to take them.")),
    Tab("mine", lazy_gettext("Assigned to me"), lazy_gettext("No open tickets are assigned to you.")),
    Tab("escalated", lazy_gettext("Escalated to me"), lazy_gettext("No open tickets are escalated to you.")),
]
TAB_KEYS = {tab.key: tab for tab in TABS}
DEFAULT_TAB = "unassigned"


def parse_tab(value: str | None) -> Tab:
    return TAB_KEYS.get(value or "", TAB_KEYS[DEFAULT_TAB])


def _tab_filter(tab: str, user: User):
    if tab == "mine":
        return Ticket.assignee == user.id
    if tab == "escalated":
        return Ticket.escalation_owner == user.id
    return Ticket.assignee.is_null()


def tab_counts(user: User, found=None) -> dict[str, int]:
    """Open tickets per tab (of those a search found, when given its condition)."""
    if found is None:
        return kept_counts(user)
    counts = {}
    for tab in TABS:
        query = Ticket.select().where(_tab_filter(tab.key, user) & Ticket.status.in_(OPEN_STATUSES) & found)
        counts[tab.key] = query.count()
    return counts


# Which QueueCount row holds each tab's count (see migration 0022).
_COUNT_ROWS = {"unassigned": (QueueCount.ASSIGNEE, False), "mine": (QueueCount.ASSIGNEE, True),
               "escalated": (QueueCount.ESCALATION, True)}


def kept_counts(user: User) -> dict[str, int]:
    """The tab counts from the rows the triggers keep: one query of three rows."""
    def build(p):
        return (QueueCount.select(QueueCount.kind, QueueCount.owner_id, QueueCount.n)
                .where(((QueueCount.kind == QueueCount.ASSIGNEE) & QueueCount.owner_id.in_([QueueCount.UNASSIGNED,
                                                                                          p.user]))
                       | ((QueueCount.kind == QueueCount.ESCALATION) & (QueueCount.owner_id == p.user))))

    found = {(kind, owner): n for kind, owner, n in prepared("queue-counts", build, raw_rows=True, user=user.id)}
    return {tab: found.get((kind, user.id if own else QueueCount.UNASSIGNED), 0)
            for tab, (kind, own) in _COUNT_ROWS.items()}


class Row(NamedTuple):
    id: int
    number: str
    title: str
    requester: str
    clinic: str
    tier: Tier
    priority: Priority
    status: Status
    due_at: dt.datetime | None
    paused: bool
    breached: bool
    assignee: str


def is_breached(response_breached: bool, resolution_breached: bool, next_due_at, now: dt.datetime) -> bool:
    return bool(response_breached or resolution_breached or (next_due_at is not None and next_due_at < now))


def queue_query(tab: str, user: User, now: dt.datetime):
    requester, assignee = User.alias("requester"), User.alias("assignee")
    breached_first = pw.Case(None, [(Ticket.response_breached | Ticket.resolution_breached
                                     | (Ticket.next_due_at < now), 0)], 1)
    undated_last = pw.Case(None, [(Ticket.next_due_at.is_null(), 1)], 0)
    return (Ticket.select(Ticket.id, Ticket.title, Ticket.tier, Ticket.priority, Ticket.status, Ticket.next_due_at,
                          Ticket.sla_paused_at, Ticket.response_breached, Ticket.resolution_breached,
                          requester.name.alias("requester_name"), requester.email.alias("requester_email"),
                          Clinic.name.alias("clinic_name"), assignee.name.alias("assignee_name"),
                          assignee.email.alias("assignee_email"))
            .join(requester, on=(Ticket.requester == requester.id))
            .join_from(Ticket, ClinicMember, pw.JOIN.LEFT_OUTER, on=(ClinicMember.user == Ticket.requester))
            .join_from(ClinicMember, Clinic, pw.JOIN.LEFT_OUTER, on=(ClinicMember.clinic == Clinic.id))
            .join_from(Ticket, assignee, pw.JOIN.LEFT_OUTER, on=(Ticket.assignee == assignee.id))
            .where(_tab_filter(tab, user) & Ticket.status.in_(OPEN_STATUSES))
            .order_by(Ticket.tier.desc(), breached_first, Ticket.priority.desc(), undated_last,
                      Ticket.next_due_at.asc(), Ticket.id.asc()))


@dataclass
class QueuePage:
    tab: Tab
    rows: list[Row]
    counts: dict[str, int]
    page: int
    has_next: bool
    base_url: str
    q: str = ""  # the search typed (smilepass/search), kept in every link

    def url(self, tab: str | None = None, page: int = 1) -> str:
        params = {"tab": tab or self.tab.key}
        if page > 1:
            params["page"] = page
        if self.q:
            params["q"] = self.q
        return f"{self.base_url}?{urlencode(params)}"


# ticket.queue_rank (migration 0022): ((2 - tier) * 8 + (0 if breach flagged else 4) + (3 - priority)) * 2
# + (1 if undated else 0). The dated, unflagged ranks are those a passed deadline moves up, by LATE_SHIFT.
LATE_SHIFT = 8
LATE_RANKS = [rank for rank in range(48) if rank % 2 == 0 and (rank // 2) % 8 >= 4]
QUEUE_RANK = pw.SQL('"t1"."queue_rank"')


def _late_condition(now):
    return QUEUE_RANK.in_(LATE_RANKS) & (Ticket.next_due_at < now)


def _ranked(tab: str, owner, condition):
    """Ids and order keys of the open tickets of a tab, in index order; `owner`: the tab user's id."""
    owned = Ticket.assignee.is_null() if tab == "unassigned" else (
        (Ticket.assignee if tab == "mine" else Ticket.escalation_owner) == owner)
    return (Ticket.select(QUEUE_RANK, Ticket.next_due_at, Ticket.id)
            .where(owned & condition)
            .order_by(QUEUE_RANK, Ticket.next_due_at, Ticket.id))


def ordered_ids(tab: str, user: User, now: dt.datetime, count: int) -> list[int]:
    """The first `count` open tickets of a tab in queue order, through the queue index: those in their
    rank's place, merged with the late ones (moved up into their breached rank)."""
    def placed(p):
        in_place = QUEUE_RANK.is_null(False) & ~_late_condition(p.now)
        return _ranked(tab, p.owner, in_place).limit(p.count)

    def late(p):
        return _ranked(tab, p.owner, _late_condition(p.now)).limit(p.count)

    values = {"owner": user.id, "now": now, "count": count}
    first = prepared(("queue-placed", tab), placed, raw_rows=True, **values)
    moved = [(rank - LATE_SHIFT, due, ticket_id)
             for rank, due, ticket_id in prepared(("queue-late", tab), late, raw_rows=True, **values)]
    # Within one rank all deadlines are set or all empty (the rank says which), so keys compare.
    return [ticket_id for _, _, ticket_id in heapq.merge(first, moved)][:count]


def _rows(query, now: dt.datetime) -> list[Row]:
    return [Row(
        id=r["id"], number=ticket_number(r["id"]), title=r["title"],
        requester=r["requester_name"] or r["requester_email"], clinic=r["clinic_name"] or "",
        tier=Tier(r["tier"]), priority=Priority(r["priority"]), status=Status(r["status"]),
        due_at=r["next_due_at"], paused=r["sla_paused_at"] is not None,
        breached=is_breached(r["response_breached"], r["resolution_breached"], r["next_due_at"], now),
        assignee=r["assignee_name"] or r["assignee_email"] or "",
    ) for r in query.dicts()]


def queue_page(user: User, tab: Tab, page: int, page_size: int, base_url: str,
               now: dt.datetime | None = None, q: str = "") -> QueuePage:
    now = now or utcnow()
    page = max(page, 1)
    search = search_query.parse(q)
    condition = search_query.ticket_filter(user, search) if search else None
    if condition is not None:
        query = queue_query(tab.key, user, now).where(condition)
        rows = _rows(query.limit(page_size + 1).offset((page - 1) * page_size), now)
        has_next = len(rows) > page_size
    else:
        ids = ordered_ids(tab.key, user, now, page * page_size + 1)
        has_next = len(ids) > page * page_size
        ids = ids[(page - 1) * page_size:page * page_size]
        # The page's tickets with what the table shows (the same columns and joins as queue_query).
        shown = {row.id: row for row in _rows(queue_query(tab.key, user, now).where(Ticket.id.in_(ids)).order_by(),
                                              now)} if ids else {}
        rows = [shown[ticket_id] for ticket_id in ids if ticket_id in shown]
    return QueuePage(tab, rows[:page_size], tab_counts(user, condition), page, has_next, base_url,
                     search.text if search else "")
