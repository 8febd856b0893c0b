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
from flask_babel import gettext
from markupsafe import Markup, escape

from ..db import prepared
from ..i18n import PerLanguage, lazy_gettext
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
from ..web import format_when

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


def _shown():
    """The columns the queue table shows, with their joins (requester, clinic, assignee)."""
    requester, assignee = User.alias("requester"), User.alias("assignee")
    return (Ticket.select(Ticket.id, Ticket.title, Ticket.tier, Ticket.priority, Ticket.status, Ticket.next_due_at,
                          Ticket.sla_paused_at, Ticket.response_breached, Ticket.resolution_breached,
                          requester.name.alias("requester_name"), requester.email.alias("requester_email"),
                          Clinic.name.alias("clinic_name"), assignee.name.alias("assignee_name"),
                          assignee.email.alias("assignee_email"))
            .join(requester, on=(Ticket.requester == requester.id))
            .join_from(Ticket, ClinicMember, pw.JOIN.LEFT_OUTER, on=(ClinicMember.user == Ticket.requester))
            .join_from(ClinicMember, Clinic, pw.JOIN.LEFT_OUTER, on=(ClinicMember.clinic == Clinic.id))
            .join_from(Ticket, assignee, pw.JOIN.LEFT_OUTER, on=(Ticket.assignee == assignee.id)))


def queue_query(tab: str, user: User, now: dt.datetime):
    """The queue's order in SQL over every open ticket of the tab: what a search narrows, and the
    definition the indexed read (ordered_ids) is tested against."""
    breached_first = pw.Case(None, [(Ticket.response_breached | Ticket.resolution_breached
                                     | (Ticket.next_due_at < now), 0)], 1)
    undated_last = pw.Case(None, [(Ticket.next_due_at.is_null(), 1)], 0)
    return (_shown()
            .where(_tab_filter(tab, user) & Ticket.status.in_(OPEN_STATUSES))
            .order_by(Ticket.tier.desc(), breached_first, Ticket.priority.desc(), undated_last,
                      Ticket.next_due_at.asc(), Ticket.id.asc()))


# The table's badges and words, escaped once per language.
_TIER_CELLS = PerLanguage(lambda: {
    t: Markup(f'<span class="tier tier-{t.value}">{escape(t.label)}</span>') for t in Tier})
_PRIORITY_CELLS = PerLanguage(lambda: {
    p: Markup(f'<span class="priority priority-{p.name.lower()}">{escape(p.label)}</span>') for p in Priority})
_STATUS_CELLS = PerLanguage(lambda: {
    s: Markup(f'<span class="status status-{s.slug}">{escape(s.label)}</span>') for s in Status})
_WORDS = PerLanguage(lambda: {
    "select": str(escape(gettext("Select %(number)s"))),  # filled with a ticket number (digits)
    "breached": f'<span class="breach-mark">{escape(gettext("Breached"))}</span>',
    "paused": f'<span class="hint">{escape(gettext("Paused"))}</span>',
})

# The panel's fixed words (tab bar, bulk form, column heads), translated once per language: each
# `_()` in the template costs a call through Jinja's runtime, and these were a third of its time.
_PANEL_WORDS = PerLanguage(lambda: {
    "tabs": gettext("Queue tabs"), "assign_to": gettext("Assign selected to"),
    "nobody": gettext("Nobody (unassign)"), "assign": gettext("Assign"),
    "status_to": gettext("Set status of selected to"), "set_status": gettext("Set status"),
    "select": gettext("Select"), "ticket": gettext("Ticket"), "requester": gettext("Requester"),
    "tier": gettext("Tier"), "priority": gettext("Priority"), "status": gettext("Status"), "due": gettext("Due"),
    "assignee": gettext("Assignee"),
})


@dataclass
class QueuePage:
    tab: Tab
    rows: list[Row]
    counts: dict[str, int]
    page: int
    has_next: bool
    base_url: str
    q: str = ""  # the search typed (smilepass/search), kept in every link

    @property
    def words(self) -> dict[str, str]:
        return _PANEL_WORDS.current()

    def rows_html(self, detail_url: str) -> Markup:
        """The table's <tr>s as one piece of HTML (rendered cell by cell in the template, the rows were
        most of the view's time). User text (title, requester, clinic, assignee) is escaped here; the
        rest are our own snippets. detail_url ends where the ticket's id goes."""
        tiers, priorities, statuses, words = (_TIER_CELLS.current(), _PRIORITY_CELLS.current(),
                                              _STATUS_CELLS.current(), _WORDS.current())
        parts = []
        for r in self.rows:
            clinic = f'<span class="clinic">{escape(r.clinic)}</span>' if r.clinic else ""
            if r.due_at:
                due = f'<time datetime="{r.due_at.isoformat()}Z">{format_when(r.due_at)}</time>'
            else:
                due = words["paused"] if r.paused else '<span class="hint">—</span>'
            tr = '<tr class="breached">' if r.breached else "<tr>"
            select = words["select"] % {"number": r.number}
            parts.append(
                f'\n        {tr}\n'
                f'          <td><label class="select-cell"><input type="checkbox" name="ticket" value="{r.id}" '
                f'aria-label="{select}"></label></td>\n'
                f'          <td class="title-cell"><a href="{detail_url}{r.id}"><span class="number">{r.number}</span> '
                f'{escape(r.title)}</a></td>\n'
                f'          <td>{escape(r.requester)}{clinic}</td>\n'
                f'          <td>{tiers[r.tier]}</td>\n          <td>{priorities[r.priority]}</td>\n'
                f'          <td>{statuses[r.status]}</td>\n'
                f'          <td class="nowrap">\n            {words["breached"] if r.breached else ""}\n'
                f'            {due}\n          </td>\n'
                f'          <td>{escape(r.assignee) if r.assignee else "—"}</td>\n        </tr>')
        return Markup("".join(parts))

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
    return [_row(r["id"], r["title"], r["tier"], r["priority"], r["status"], r["next_due_at"], r["sla_paused_at"],
                 r["response_breached"], r["resolution_breached"], r["requester_name"], r["requester_email"],
                 r["clinic_name"], r["assignee_name"], r["assignee_email"], now) for r in query.dicts()]


# Stored values to their members, looked up 75 times a page (calling the Enum class costs several times more).
_TIERS = {member.value: member for member in Tier}
_PRIORITIES = {member.value: member for member in Priority}
_STATUSES = {member.value: member for member in Status}


def _row(ticket_id, title, tier, priority, status, due_at, paused_at, response_breached, resolution_breached,
         requester_name, requester_email, clinic_name, assignee_name, assignee_email, now) -> Row:
    if isinstance(due_at, str):  # SQLite's text, from a raw row
        due_at = dt.datetime.fromisoformat(due_at)
    return Row(
        id=ticket_id, number=ticket_number(ticket_id), title=title, requester=requester_name or requester_email,
        clinic=clinic_name or "", tier=_TIERS[tier], priority=_PRIORITIES[priority], status=_STATUSES[status],
        due_at=due_at, paused=paused_at is not None,
        breached=is_breached(response_breached, resolution_breached, due_at, now),
        assignee=assignee_name or assignee_email or "",
    )


def _rows_of(ids: list[int], slots: int, now: dt.datetime) -> list[Row]:
    """The table's rows of these tickets, in this order: one query of `slots` ids (the SQL is built once;
    unused slots ask for id 0, which no ticket has)."""
    if not ids:
        return []
    names = [f"id{n}" for n in range(max(slots, len(ids)))]
    values = dict.fromkeys(names, 0) | dict(zip(names, ids, strict=False))
    found = prepared(("queue-rows", len(names)), lambda p: _shown().where(
        Ticket.id.in_([getattr(p, name) for name in names])), raw_rows=True, **values)
    shown = {row.id: row for row in (_row(*values, now) for values in found)}
    return [shown[ticket_id] for ticket_id in ids if ticket_id in shown]


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
        rows = _rows_of(ids, page_size, now)
    return QueuePage(tab, rows[:page_size], tab_counts(user, condition), page, has_next, base_url,
                     search.text if search else "")
