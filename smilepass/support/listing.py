"""The ticket table: sorting, status filter and pages, on indexed columns."""
from dataclasses import dataclass

from ..models import Status, Ticket, User

SORT_COLUMNS = {
    "priority": Ticket.priority,
    "date": Ticket.created_at,
    "title": Ticket.title,
    "category": Ticket.category,
    "status": Ticket.status,
}
DEFAULT_SORT = "-date"


def parse_sort(value: str | None) -> str | None:
    if not value:
        return None
    key = value.lstrip("-")
    return value if key in SORT_COLUMNS and value.count("-") <= 1 else None


def parse_status(value: str | None) -> Status | None:
    for status in Status:
        if status.slug == value:
            return status
    return None


@dataclass
class TablePage:
    tickets: list
    sort: str
    status: Status | None
    page: int
    has_next: bool
    counts: dict
    total: int

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
        return "-" + key if key in ("date", "priority") else key


def ticket_page(user: User, sort: str, status: Status | None, page: int, page_size: int) -> TablePage:
    key = sort.lstrip("-")
    column = SORT_COLUMNS[key]
    order = [column.desc(), Ticket.id.desc()] if sort.startswith("-") else [column.asc(), Ticket.id.asc()]
    # Only the columns the table shows: descriptions can be long and are not listed.
    columns = [Ticket.id, Ticket.requester, Ticket.title, Ticket.priority, Ticket.category, Ticket.status,
               Ticket.created_at]
    query = Ticket.visible_to(user).select(*columns)
    if user.is_staff:
        query = query.select_extend(User.id, User.name, User.email).join(User, on=(Ticket.requester == User.id))
    if status is not None:
        query = query.where(Ticket.status == status.value)
    page = max(page, 1)
    rows = list(query.order_by(*order).limit(page_size + 1).offset((page - 1) * page_size))
    counts = Ticket.status_counts(user)
    return TablePage(
        tickets=rows[:page_size],
        sort=sort,
        status=status,
        page=page,
        has_next=len(rows) > page_size,
        counts=counts,
        total=sum(counts.values()),
    )
