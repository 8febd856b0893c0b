"""The case table: search, state and label filters, remembered sorting, pages."""
from dataclasses import dataclass
from urllib.parse import urlencode

import peewee as pw

from ..models import User
from .models import Case, CaseLabel, Label, ShipmentState, UserPreference

SORT_COLUMNS = {
    "number": Case.case_number,
    "patient": Case.patient_name,
    "plan": Case.treatment_plan,
    "state": Case.latest_state,
    "date": Case.created_at,
}
COLUMNS = [("number", "Case"), ("patient", "Patient"), ("plan", "Plan"), ("state", "Shipment"), ("date", "Created")]
DEFAULT_SORT = "-date"
DESCENDING_FIRST = {"date"}
SORT_PREFERENCE = "case_sort"
# Quick filters: the newest shipment's state, plus cases with no shipment yet.
STATE_FILTERS = [(s.slug, s.value, s.label) for s in ShipmentState] + [("none", "", "No shipment")]


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
            out.append((label, self.url(sort=nxt), col == key, css))
        return out

    @property
    def filters(self):
        links = [("All", self.url(state=None), self.state is None, "", self.total)]
        for slug, value, label in STATE_FILTERS:
            links.append((label, self.url(state=slug), self.state == slug, "ship-" + slug, self.counts.get(value, 0)))
        return links


def case_table(user: User, sort: str, state: str | None, label: Label | None, q: str, page: int,
               page_size: int, base_url: str) -> CaseTable:
    page = max(page, 1)
    base = Case.visible_to(user)
    q = (q or "").strip()[:80]
    if q:
        term = escape_like(q)
        base = base.where(Case.case_number.startswith(term) | (Case.patient_name ** f"%{term}%"))
    if label is not None:
        base = base.where(Case.id.in_(CaseLabel.select(CaseLabel.case).where(CaseLabel.label == label.id)))
    counts = {value: n for value, n in
              base.select(Case.latest_state, pw.fn.COUNT(Case.id)).group_by(Case.latest_state).tuples()}
    state_value = {slug: value for slug, value, _ in STATE_FILTERS}.get(state)
    if state_value is None:
        state = None
    query = base
    if state is not None:
        query = query.where(Case.latest_state == state_value)
    column = SORT_COLUMNS[sort.lstrip("-")]
    order = [column.desc(), Case.id.desc()] if sort.startswith("-") else [column.asc(), Case.id.asc()]
    query = query.select(Case.id, Case.case_number, Case.patient_name, Case.treatment_plan, Case.latest_state,
                         Case.created_at, User.name, User.email).join(User, on=(Case.clinician == User.id))
    rows = list(query.order_by(*order).limit(page_size + 1).offset((page - 1) * page_size).namedtuples())
    has_next = len(rows) > page_size
    rows = rows[:page_size]
    labels_by_case: dict[int, list] = {}
    if rows:
        attached = (Label.select(Label, CaseLabel.case.alias("case_id")).join(CaseLabel)
                    .where((Label.owner == user.id) & CaseLabel.case.in_([r.id for r in rows]))
                    .order_by(Label.name))
        for lab in attached.objects():
            labels_by_case.setdefault(lab.case_id, []).append(lab)
    return CaseTable(rows, labels_by_case, sort, state, label, q, page, has_next, counts, base_url, user.is_staff)
