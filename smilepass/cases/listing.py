"""The case table: search, state and label filters, remembered sorting, pages."""
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlencode

import peewee as pw
from flask_babel import gettext
from markupsafe import Markup

from ..db import database, prepared
from ..i18n import PerLanguage, lazy_gettext
from ..models import SHIPMENT_STATE_LABELS, Case, CaseCount, CaseLabel, Label, ShipmentState, User, UserPreference

SORT_COLUMNS = {
    "number": Case.case_number,
    "patient": Case.patient_name,
    "plan": Case.treatment_plan,
    "state": Case.latest_state,
    "date": Case.created_at,
}
COLUMNS = [("number", lazy_gettext("Case")), ("patient", lazy_gettext("Patient")), ("plan", lazy_gettext("Plan")),
           ("state", lazy_gettext("Shipment")), ("date", lazy_gettext("Created"))]
DEFAULT_SORT = "-date"
DESCENDING_FIRST = {"date"}
SORT_PREFERENCE = "case_sort"
# Quick filters: the newest shipment's state, plus cases with no shipment yet.
STATE_FILTERS = ([(s.slug, s.value, SHIPMENT_STATE_LABELS[s.value]) for s in ShipmentState]
                 + [("none", "", lazy_gettext("No shipment"))])


def parse_sort(value):
    if not value:
        return None
    return value if value.lstrip("-") in SORT_COLUMNS and value.count("-") <= 1 and "-" not in value[1:] else None


def remembered_sort(user: User, requested: str | None) -> str:
    sort = parse_sort(requested)
    if sort:
        if sort != UserPreference.get_value(user, SORT_PREFERENCE):
            UserPreference.set_value(user, SORT_PREFERENCE, sort)
        return sort
    return parse_sort(UserPreference.get_value(user, SORT_PREFERENCE)) or DEFAULT_SORT


def escape_like(text: str) -> str:
    return text.replace("\\", "").replace("%", "")


@dataclass
class CaseTable:
    rows: list
    labels_by_case: dict
    sort: str
    state: str | None
    label: Label | None
    q: str
    page: int
    has_next: bool
    counts: dict
    base_url: str
    staff: bool

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def url(self, **changes) -> str:
        params = {"sort": self.sort, "state": self.state, "label": self.label.id if self.label else None,
                  "q": self.q or None, "page": None}
        params.update(changes)
        return self.base_url + "?" + urlencode({k: v for k, v in params.items() if v not in (None, "", 1)})

    @property
    def headers(self):
        key, down = self.sort.lstrip("-"), self.sort.startswith("-")
        out = []
        for col, label in COLUMNS:
            if col == key:
                nxt = col if down else "-" + col
                css = "descending" if down else "ascending"
            else:
                nxt = "-" + col if col in DESCENDING_FIRST else col
                css = ""
            out.append((str(label), self.url(sort=nxt), col == key, css))
        return out

    @property
    def filters(self):
        links = [(gettext("All"), self.url(state=None), self.state is None, "", self.total)]
        for slug, value, label in STATE_FILTERS:
            links.append(
                (str(label), self.url(state=slug), self.state == slug, "ship-" + slug, self.counts.get(value, 0))
            )
        return links


class Row(NamedTuple):
    id: int
    case_number: str
    patient_name: str
    treatment_plan: str
    state_cell: Markup  # our own text only: the state badge, chosen from a table built once
    created_date: str
    clinician: str


STATE_CELLS = PerLanguage(lambda: {
    **{s.value: Markup(f'<span class="ship ship-{s.slug}">{Markup.escape(s.label)}</span>') for s in ShipmentState},
    "": Markup('<span class="muted">—</span>')})


def _row(case_id, number, patient, plan, state, created_at, name="", email="", cells=None) -> Row:
    # SQLite hands back timestamps as ISO text, PostgreSQL as datetimes: both start with the date.
    created = created_at[:10] if isinstance(created_at, str) else created_at.strftime("%Y-%m-%d")
    cells = cells or STATE_CELLS.current()
    return Row(case_id, number, patient, plan, cells.get(state, cells[""]), created, name or email)


def _rows_query(p, sort: str, state_filtered: bool, staff: bool, searched: bool, labelled: bool):
    column = SORT_COLUMNS[sort.lstrip("-")]
    order = [column.desc(), Case.id.desc()] if sort.startswith("-") else [column.asc(), Case.id.asc()]
    query = Case.select(Case.id, Case.case_number, Case.patient_name, Case.treatment_plan, Case.latest_state,
                        Case.created_at)
    if staff:
        query = query.select_extend(User.name, User.email).join(User, on=(Case.clinician == User.id))
    else:
        query = query.where(Case.clinician == p.clinician)
    if searched:
        query = query.where((Case.case_number ** p.prefix) | (Case.patient_name ** p.contains))
    if labelled:
        query = query.where(Case.id.in_(CaseLabel.select(CaseLabel.case).where(CaseLabel.label == p.label)))
    if state_filtered:
        query = query.where(Case.latest_state == p.state)
    return query.order_by(*order).limit(p.limit).offset(p.offset)


def _counts_query(p, staff: bool, searched: bool, labelled: bool):
    if not (searched or labelled):
        # The maintained counts (see CaseCount): a few rows instead of every case.
        query = CaseCount.select(CaseCount.state, pw.fn.SUM(CaseCount.n)).group_by(CaseCount.state)
        return query if staff else query.where(CaseCount.clinician == p.clinician)
    query = Case.select(Case.latest_state, pw.fn.COUNT(Case.id)).group_by(Case.latest_state)
    if not staff:
        query = query.where(Case.clinician == p.clinician)
    if searched:
        query = query.where((Case.case_number ** p.prefix) | (Case.patient_name ** p.contains))
    if labelled:
        query = query.where(Case.id.in_(CaseLabel.select(CaseLabel.case).where(CaseLabel.label == p.label)))
    return query


def _labels_by_case(user: User, case_ids: list[int]) -> dict[int, list]:
    """The user's own labels on these cases, as (name, colour) per case id."""
    if not case_ids:
        return {}
    # Written as SQL: the IN list's length varies page to page, so a prepared query cannot hold it,
    # and building it through peewee each time costs more than running it.
    slots = ", ".join([database.param] * len(case_ids))
    rows = database.execute_sql(
        "SELECT cl.case_id, l.name, l.color FROM label l JOIN case_label cl ON cl.label_id = l.id "
        f"WHERE l.owner_id = {database.param} AND cl.case_id IN ({slots}) ORDER BY l.name",
        [user.id, *case_ids]).fetchall()
    found: dict[int, list] = {}
    for case_id, name, color in rows:
        found.setdefault(case_id, []).append((name, color))
    return found


def case_table(user: User, sort: str, state: str | None, label: Label | None, q: str, page: int,
               page_size: int, base_url: str) -> CaseTable:
    """One page of the case table. The SQL of each query shape is built once (db.prepared): the
    list is opened often and peewee's SQL generation would cost more than SQLite's work."""
    page = max(page, 1)
    q = (q or "").strip()[:80]
    term = escape_like(q)
    searched, labelled = bool(term), label is not None
    values = dict(clinician=user.id, prefix=term + "%", contains=f"%{term}%", label=label.id if label else 0)
    shape = (user.is_staff, searched, labelled)
    counts = {value: int(n) for value, n in
              prepared(("case-counts", shape), lambda p: _counts_query(p, *shape), raw_rows=True, **values)
              if n}
    state_value = {slug: value for slug, value, _ in STATE_FILTERS}.get(state)
    if state_value is None:
        state = None
    shape = (sort, state is not None, user.is_staff, searched, labelled)
    found = prepared(("case-rows", shape), lambda p: _rows_query(p, *shape), raw_rows=True, **values,
                     state=state_value or "", limit=page_size + 1, offset=(page - 1) * page_size)
    cells = STATE_CELLS.current()
    rows = [_row(*values, cells=cells) for values in found[:page_size]]
    labels_by_case = _labels_by_case(user, [r.id for r in rows])
    return CaseTable(rows, labels_by_case, sort, state, label, q, page, len(found) > page_size, counts, base_url,
                     user.is_staff)
