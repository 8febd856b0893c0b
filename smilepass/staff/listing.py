"""The staff queue: open tickets in the order they should be worked, per tab.

Order: the clinic's tier (Enterprise first), then breached before not (a breach recorded by the SLA
job, or a running deadline already past), then priority (Urgent first), then the running deadline
(soonest first; paused or none last). Each tab's filter is on (assignee or escalation_owner, status),
which the ticket indexes cover; the order is computed on the few open tickets that match."""
import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlencode

import peewee as pw

from ..i18n import lazy_gettext
from ..models import Clinic, ClinicMember, Priority, Status, Ticket, Tier, User, ticket_number, utcnow
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
    counts = {}
    for tab in TABS:
        query = Ticket.select().where(_tab_filter(tab.key, user) & Ticket.status.in_(OPEN_STATUSES))
        counts[tab.key] = (query if found is None else query.where(found)).count()
    return counts


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


def queue_page(user: User, tab: Tab, page: int, page_size: int, base_url: str,
               now: dt.datetime | None = None, q: str = "") -> QueuePage:
    now = now or utcnow()
    page = max(page, 1)
    query = queue_query(tab.key, user, now)
    search = search_query.parse(q)
    condition = search_query.ticket_filter(user, search) if search else None
    if condition is not None:
        query = query.where(condition)
    found = list(query.limit(page_size + 1).offset((page - 1) * page_size).dicts())
    rows = [Row(
        id=r["id"], number=ticket_number(r["id"]), title=r["title"],
        requester=r["requester_name"] or r["requester_email"], clinic=r["clinic_name"] or "",
        tier=Tier(r["tier"]), priority=Priority(r["priority"]), status=Status(r["status"]),
        due_at=r["next_due_at"], paused=r["sla_paused_at"] is not None,
        breached=is_breached(r["response_breached"], r["resolution_breached"], r["next_due_at"], now),
        assignee=r["assignee_name"] or r["assignee_email"] or "",
    ) for r in found[:page_size]]
    return QueuePage(tab, rows, tab_counts(user, condition), page, len(found) > page_size, base_url,
                     search.text if search else "")
