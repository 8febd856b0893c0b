"""The ticket table: sorting, status filter and pages, on indexed columns.

This is the busiest screen, so rows come back as plain tuples and each cell's text is prepared here
once, rather than through model objects and template calls per cell."""
import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from types import SimpleNamespace
from typing import NamedTuple
from urllib.parse import quote_plus

import peewee as pw
from flask_babel import format_decimal
from markupsafe import Markup, escape

from ..db import is_postgres, prepared, prepared_write
from ..i18n import PerLanguage, lazy_gettext
from ..models import CATEGORY_LABELS, Case, Priority, Status, Ticket, User, ticket_number
from ..search import query as search_query

SORT_COLUMNS = {
    "priority": Ticket.priority,
    "date": Ticket.created_at,
    "title": Ticket.title,
    "category": Ticket.category,
    "status": Ticket.status,
}
DEFAULT_SORT = "-date"
# Newest and most urgent first is what people want on a first click of these columns.
DESCENDING_FIRST = {"date", "priority"}


def parse_sort(value: str | None) -> str | None:
    if not value:
        return None
    key = value.lstrip("-")
    return value if key in SORT_COLUMNS and value.count("-") <= 1 else None


def remember_sort(user: User, sort: str) -> None:
    """Store the sort a header click asked for as the user's choice. Every click changes it, so its UPDATE
    is built once (db.prepared_write): building it with peewee cost twice as much as running it."""
    prepared_write("remember-sort", lambda p: User.update(ticket_sort=p.sort).where(User.id == p.user),
                   sort=sort, user=user.id)
    user.ticket_sort = sort


def parse_status(value: str | None) -> Status | None:
    for status in Status:
        if status.slug == value:
            return status
    return None


class Link(NamedTuple):
    label: str
    url: str
    active: bool
    css: str = ""
    count: int | str | None = 0  # None: not counted (a search's status filters when capped)
    key: str = ""  # the column's sort key, for headers


COLUMNS = [("priority", lazy_gettext("Priority")), ("date", lazy_gettext("Date")), ("title", lazy_gettext("Title")),
           ("category", lazy_gettext("Category")), ("status", lazy_gettext("Status"))]


class Row(NamedTuple):
    """One table row as the query gives it: rows_html writes it out (ids, codes and the time are ours;
    title, category, case number and requester are user text, escaped there)."""
    id: int
    title: str
    category: str
    priority: int
    status: int
    created_at: object  # a datetime, or SQLite's text of one
    case_id: int | None  # None unless the viewer may open the case page
    case_number: str | None  # None when the ticket is about no case
    requester: str = ""


_PRIORITY_CELLS = PerLanguage(
    lambda: {
        p.value: Markup(f'<span class="priority priority-{p.name.lower()}">{Markup.escape(p.label)}</span>')
        for p in Priority
    }
)
_STATUS_CELLS = PerLanguage(lambda: {
    s.value: Markup(f'<span class="status status-{s.slug}">{Markup.escape(s.label)}</span>') for s in Status})


# Category names shown in the table, escaped once per language (a category no longer offered shows as stored).
# The cap of a search's counts as this language writes it ("1,000" / "1.000"); babel's formatting per request
# cost more than the rest of the filters.
_CAPPED_TOTAL = PerLanguage(dict)
_CATEGORY_CELLS = PerLanguage(lambda: {category: escape(str(label)) for category, label in CATEGORY_LABELS.items()})


def _created_html(created_at) -> str:
    if isinstance(created_at, str):  # SQLite hands back the text peewee stored: str(datetime), naive UTC
        if len(created_at) in (19, 26) and created_at[10] == " ":
            # "2026-12-04 09:30:00[.123456]": the cell's parts are slices of it, no parse needed.
            return (f'<time datetime="{created_at[:10]}T{created_at[11:]}Z">{created_at[:10]}'
                    f'<span class="time">{created_at[11:16]}</span></time>')
        created_at = dt.datetime.fromisoformat(created_at)
    # Digits and separators only: nothing here comes from a user.
    return (f'<time datetime="{created_at.isoformat()}Z">{created_at:%Y-%m-%d}'
            f'<span class="time">{created_at:%H:%M}</span></time>')


def _created_cell(created_at) -> Markup:
    """The date cell's content (time element) for a datetime or SQLite's text of one."""
    return Markup(_created_html(created_at))


@dataclass
class TablePage:
    tickets: list[Row]
    sort: str
    status: Status | None
    page: int
    has_next: bool
    counts: dict
    total: int
    base_url: str
    q: str = ""  # the search typed (see smilepass/search), kept in every link of the table
    capped: bool = False  # a search found more than total tickets, not counted per status

    def rows_html(self, detail_url: str, case_url: str, staff: bool) -> Markup:
        """The table's <tr>s as one piece of HTML: rendered cell by cell in the template, the 25 rows
        were most of the partial's time (about 14 escapes and lookups per row). User text (title,
        category, case number, requester) is escaped here; the rest are our own snippets (see Row).
        detail_url and case_url end where the ticket's and the case's id go."""
        categories = _CATEGORY_CELLS.current()
        priorities, statuses = _PRIORITY_CELLS.current(), _STATUS_CELLS.current()
        parts = []
        append = parts.append
        for ticket_id, title, category, priority, status, created_at, case_id, case_number, requester in self.tickets:
            number = escape(case_number or "")
            case = f'<a href="{case_url}{case_id}">{number}</a>' if case_id else number
            category_html = categories.get(category)
            append(
                f'\n      <tr>\n        <td>{priorities[priority]}</td>\n'
                f'        <td class="nowrap">{_created_html(created_at)}</td>\n'
                f'        <td class="title-cell"><a href="{detail_url}{ticket_id}"><span class="number">'
                f'{ticket_number(ticket_id)}</span> {escape(title)}</a></td>\n'
                f"        <td>{category_html if category_html is not None else escape(category)}</td>\n"
                f'        <td>{statuses[status]}</td>\n        <td class="case-cell">{case}</td>\n'
                f"        {f'<td>{escape(requester)}</td>' if staff else ''}\n      </tr>\n      ")
        return Markup("".join(parts))

    @property
    def total_text(self) -> str:
        """The total as the filters show it; when capped, the cap in this language's digits."""
        if not self.capped:
            return str(self.total)
        texts = _CAPPED_TOTAL.current()
        text = texts.get(self.total)
        if text is None:
            text = texts[self.total] = format_decimal(self.total)
        return text

    @property
    def sort_key(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    def sort_link(self, key: str) -> str:
        """The sort a header click asks for: the same column again reverses it."""
        if self.sort_key == key:
            return key if self.descending else "-" + key
        return "-" + key if key in DESCENDING_FIRST else key

    @cached_property
    def headers(self) -> list[Link]:
        """One link per column header; css says the active column's direction."""
        key, down = self.sort_key, self.descending
        return [Link(label, self.url(sort=self.sort_link(col)), col == key,
                     ("descending" if down else "ascending") if col == key else "", 0, col) for col, label in COLUMNS]

    @cached_property
    def filters(self) -> list[Link]:
        """The quick filters with their counts, "All" first."""
        if self.capped:
            # More found than counted: "1,000+" in all, and no count per status.
            links = [Link(str(lazy_gettext("All")), self.url(status=None), self.status is None, "",
                          self.total_text + "+")]
            return links + [Link(s.label, self.url(status=s), self.status == s, "status-" + s.slug, None)
                            for s in Status]
        links = [Link(str(lazy_gettext("All")), self.url(status=None), self.status is None, "", self.total)]
        links += [Link(s.label, self.url(status=s), self.status == s, "status-" + s.slug, self.counts.get(s.value, 0))
                  for s in Status]
        return links

    def url(self, sort: str | None = None, status: Status | None | bool = False, page: int = 1) -> str:
        """This table's URL with some parameters changed (status=False keeps the current filter)."""
        # Written out rather than urlencode()d: a dozen links a table. Sort keys and status slugs are
        # plain ASCII words; only the search is quoted (as urlencode would).
        status = self.status if status is False else status
        url = f"{self.base_url}?sort={sort or self.sort}"
        if status is not None:
            url += "&status=" + status.slug
        if page > 1:
            url += f"&page={page}"
        if self.q:
            url += "&q=" + self._quoted_q
        return url

    @cached_property
    def _quoted_q(self) -> str:
        return quote_plus(self.q)


def _order(sort: str) -> list:
    column = SORT_COLUMNS[sort.lstrip("-")]
    return [column.desc(), Ticket.id.desc()] if sort.startswith("-") else [column.asc(), Ticket.id.asc()]


def _table_query(p, sort: str, filtered: bool, staff: bool):
    order = _order(sort)
    # Only the columns the table shows: descriptions can be long and are not listed. The case handle
    # comes from a primary-key lookup per listed row, so the sort index still drives the query.
    query = (Ticket.select(Ticket.id, Ticket.title, Ticket.category, Ticket.priority, Ticket.status,
                           Ticket.created_at, Ticket.case, Case.case_number)
             .join(Case, pw.JOIN.LEFT_OUTER, on=(Ticket.case == Case.id)))
    if staff:
        query = query.select_extend(User.name, User.email).join_from(Ticket, User, on=(Ticket.requester == User.id))
    else:
        # A clinician's ticket may name a case since given to another clinician: number, no link.
        query = query.select_extend(Case.clinician).where(Ticket.requester == p.requester)
    if filtered:
        query = query.where(Ticket.status == p.status)
    return query.order_by(*order).limit(p.limit).offset(p.offset)


# A common word's page for staff on SQLite, walked (see _walked_page): first as many ids in the table's order
# as the matches wanted take at the index's spacing of the newest matches, twice over (WALK_FIRST when it is
# not known), then as many as those still wanted take at the rate met so far and half as many again (at
# least WALK_LEAST, at most twice the last stretch), up to WALK_MAX in all; a stretch of ids spread over more
# than WALK_SPREAD times its length is not walked (a sort that does not follow the ids, e.g. by title).
WALK_FIRST, WALK_LEAST, WALK_MAX, WALK_SPREAD = 256, 32, 8192, 16


def _first_stretch(wanted: int, spacing: float) -> int:
    """How many ids the walk takes first: "tray" (one ticket in nine, 26 wanted) took 256 and then 240 more
    ids when the first stretch was always 256; at its spacing, 460 at once. Twice: the newest tickets have
    fewer replies and match less often than the newest thousand matches' spacing says (6 % of the last 350
    ids against 11 % of the last 9,000)."""
    if not spacing:
        return WALK_FIRST
    return min(WALK_MAX, max(WALK_LEAST, int(wanted * spacing * 2)))


def _walked_page(values: dict, shape: tuple, matches: str, params: list, spacing: float) -> list[int] | None:
    """The ids of a page of the tickets a common word finds (staff, SQLite), or None when walking does not
    pay. The subquery (search.query.many) makes SQLite collect every match before it walks the sort's index
    (11,520 for "tray" at 100,000 tickets: 1.2 ms a page, "scan" 2.6 ms). Tickets are filed in id order,
    so walking the sort's index gives ids in short stretches: the index's matches within each stretch
    (search.query.found_between) are read instead, until the page is full: 0.2 ms. Sorts within a column
    of a few values (priority, status, category) follow the ids within each value and walk too."""
    wanted = values["offset"] + values["limit"]
    hits, walked, size = [], 0, _first_stretch(wanted, spacing)
    while walked < WALK_MAX:
        batch = [i for (i,) in prepared(("ticket-walk", shape), lambda p: _walk_query(p, *shape), raw_rows=True,
                                        **{**values, "limit": size, "offset": walked})]
        if batch and max(batch) - min(batch) > WALK_SPREAD * len(batch):
            return None
        if batch:
            # Less those already taken: a ticket filed between two statements shifts the walk by one.
            found = search_query.found_between(matches, params, min(batch), max(batch)).difference(hits)
            hits += [i for i in batch if i in found]
        if len(hits) >= wanted or len(batch) < size:
            return hits[values["offset"]:wanted]
        walked += size
        # Not twice the last stretch: "tray" (one ticket in nine) still wanted 4 matches after 256 ids, and
        # 512 more were 0.12 ms of SQL and as many ids into Python, where about 60 would do.
        rate = (wanted - len(hits)) * walked * 3 // (2 * len(hits)) if hits else size * 2
        size = min(size * 2, max(WALK_LEAST, rate))
    return None


def _walk_query(p, sort: str, filtered: bool, staff: bool):
    """The ids in the table's order (staff: every ticket, or one status), from the sort's index alone."""
    query = Ticket.select(Ticket.id)
    if filtered:
        query = query.where(Ticket.status == p.status)
    return query.order_by(*_order(sort)).limit(p.limit).offset(p.offset)


def ticket_page(user: User, sort: str, status: Status | None, page: int, page_size: int, base_url: str,
                q: str = "") -> TablePage:
    """One page of the table; with a search (q), only the tickets it finds, in the same sort, and the
    filter counts are those of the tickets found."""
    page = max(page, 1)
    shape = (sort, status is not None, user.is_staff)
    values = dict(requester=user.id, status=status.value if status else 0, limit=page_size + 1,
                  offset=(page - 1) * page_size)
    search = search_query.parse(q)
    capped = False
    if search:
        searched = search_query.table_search(user, search)
        if searched.subquery:
            # A common word: the same statement for every such search of this kind (db.prepared; building
            # it with peewee cost about as much as running it).
            matches, params = searched.subquery
            walked = (_walked_page(values, shape, matches, params, searched.spacing)
                      if user.is_staff and not is_postgres() else None)
            if walked is not None:
                found = prepared(("ticket-table-ids", shape, False),
                                 lambda p: _table_query(p, *shape).where(search_query.among(p.ids)),
                                 raw_rows=True, ids=search_query.ids_value(walked), **{**values, "offset": 0})
            else:
                named = {f"match{n}": value for n, value in enumerate(params)}  # a clinician's has their term too
                found = prepared(("ticket-table-search", shape, matches),
                                 lambda p: _table_query(p, *shape).where(
                                     search_query.many(matches, [getattr(p, name) for name in named])),
                                 raw_rows=True, **named, **values)
        elif searched.ids is not None:
            # Few matches: their ids as one value, the same statement for every such search of this kind.
            walk = search_query.walks(user, searched.size)
            found = prepared(("ticket-table-ids", shape, walk),
                             lambda p: _table_query(p, *shape).where(search_query.among(p.ids, walk)),
                             raw_rows=True, ids=searched.ids, **values)
        else:
            query = _table_query(SimpleNamespace(**values), *shape).where(searched.found)
            found = list(query.tuples())
        # A common word: not counted per status (see search.query.table_search); "1,000+" in all.
        capped = searched.counts is None
        counts = {} if capped else searched.counts
    else:
        found = prepared(("ticket-table", shape), lambda p: _table_query(p, *shape), raw_rows=True, **values)
        counts = Ticket.status_counts(user)
    # Rows as the query gives them (rows_html writes them out): the requester's name or email for staff;
    # a case link only for the case's own clinician.
    if user.is_staff:
        rows = [Row(*values[:8], values[8] or values[9]) for values in found[:page_size]]
    else:
        rows = [Row(*values[:6], values[6] if values[8] == user.id else None, values[7])
                for values in found[:page_size]]
    return TablePage(
        tickets=rows,
        sort=sort,
        status=status,
        page=page,
        has_next=len(found) > page_size,
        counts=counts,
        total=searched.more_than if capped else sum(counts.values()),
        base_url=base_url,
        q=search.text if search else "",
        capped=capped,
    )
