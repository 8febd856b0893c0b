"""The staff queue read through its index (ticket.queue_rank and the kept tab counts, migration 0022;
staff/listing.py) gives exactly the order the product defines (listing.queue_query: tier, breached,
priority, running deadline, computed in SQL over every open ticket) and the counts of counting the
tickets: on a fixed clock, after service levels change (replies, pauses, resolves, reopening,
priority, tier, breach marks by the SLA job, assignment, a deleted assignee) and as the clock moves on
so that running deadlines pass without a breach mark yet."""
import datetime as dt
import random
import re

import peewee
import pytest

from smilepass import db
from smilepass.models import Priority, Status, Ticket, Tier, User
from smilepass.service import sla
from smilepass.staff import listing
from smilepass.support import tickets

from .conftest import query

START = dt.datetime(2026, 12, 2, 10, 0)  # a Wednesday morning, naive UTC as stored
TABS = [tab.key for tab in listing.TABS]


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(START.replace(tzinfo=dt.UTC), tick=False)
    return time_machine


def reference(tab: str, user: User, now: dt.datetime) -> list[int]:
    return [row["id"] for row in listing.queue_query(tab, user, now).dicts()]


def reference_counts(user: User) -> dict[str, int]:
    return {tab: Ticket.select().where(listing._tab_filter(tab, user) & Ticket.status.in_(listing.OPEN_STATUSES))
            .count() for tab in TABS}


def paged(tab: str, user: User, now: dt.datetime, page_size: int) -> tuple[list[int], dict[str, int]]:
    ids, page = [], 1
    while True:
        result = listing.queue_page(user, listing.TAB_KEYS[tab], page, page_size, "/queue/", now=now)
        assert len(result.rows) <= page_size
        ids += [row.id for row in result.rows]
        if not result.has_next:
            return ids, result.counts
        page += 1


def assert_same_order(app, staff: list[User], now: dt.datetime) -> int:
    """Every tab of every staff member, in pages of 7 and of 25; returns how many open tickets were late
    without a breach mark (the part the index cannot order by itself)."""
    def check():
        for user in staff:
            for tab in TABS:
                expected = reference(tab, user, now)
                for page_size in (7, 25):
                    ids, counts = paged(tab, user, now, page_size)
                    assert ids == expected, (user.email, tab, page_size)
                assert counts == reference_counts(user)
        return (Ticket.select().where(Ticket.status.in_(listing.OPEN_STATUSES) & (Ticket.next_due_at < now)
                                      & ~Ticket.response_breached & ~Ticket.resolution_breached).count())
    with app.app_context():
        return query(check)


def random_tickets(rng: random.Random, requester: User, staff: list[User], count: int) -> None:
    """Tickets with every combination the order looks at, several on the same deadline (ties by number)."""
    rows = []
    for n in range(count):
        due = rng.choice([None, START, START - dt.timedelta(minutes=rng.randint(1, 900)),
                          START + dt.timedelta(minutes=rng.randint(1, 900)),
                          START + dt.timedelta(hours=2), START - dt.timedelta(hours=1)])
        rows.append({
            "requester": requester.id, "title": f"random {n}", "description": "Seeded.",
            "priority": rng.choice(list(Priority)).value, "status": rng.choice(list(Status)).value,
            "tier": rng.choice(list(Tier)).value, "next_due_at": due,
            "sla_paused_at": START if due is None and rng.random() < 0.5 else None,
            "response_breached": rng.random() < 0.2, "resolution_breached": rng.random() < 0.1,
            "assignee": rng.choice([None, None, *[user.id for user in staff]]),
            "escalation_owner": rng.choice([None, None, None, *[user.id for user in staff]]),
        })
    Ticket.insert_many(rows).execute()


def test_indexed_queue_order_equals_the_defined_order(app, clock, make_user):
    rng = random.Random(15)
    with app.app_context():
        requester = make_user("dr.ada@clinic.test")
        sam, kim = make_user("sam@smilepass.test", "support"), make_user("kim@smilepass.test", "support")
        gone = make_user("lee@smilepass.test", "support")
        staff = [sam, kim, gone]
        with app.test_request_context():
            created = query(lambda: [tickets.create_ticket(requester, f"filed {n}", "Filed.",
                                                           rng.choice(list(Priority)).value, "Case Submission")
                                     for n in range(30)])
        query(lambda: random_tickets(rng, requester, staff, 240))

    assert_same_order(app, staff, START)

    # Service levels change through the product's own paths, an hour later.
    clock.move_to((START + dt.timedelta(hours=1)).replace(tzinfo=dt.UTC), tick=False)
    now = START + dt.timedelta(hours=1)

    def change_levels():
        for n, ticket in enumerate(created):
            ticket = Ticket.get_by_id(ticket.id)
            if n % 5 == 0:
                tickets.add_reply(ticket, sam, "Looking at it.")  # first response: the resolution clock runs
            elif n % 5 == 1:
                tickets.change_status(ticket, sam, Status.WAITING)  # paused: no running deadline
            elif n % 5 == 2:
                tickets.change_status(ticket, sam, Status.RESOLVED)  # out of the queue
            elif n % 5 == 3:
                Ticket.update(priority=Priority.URGENT.value, tier=Tier.ENTERPRISE.value,
                              assignee=kim.id).where(Ticket.id == ticket.id).execute()
        for n, ticket in enumerate(created):
            ticket = Ticket.get_by_id(ticket.id)
            if n % 10 == 1:
                tickets.change_status(ticket, sam, Status.IN_PROGRESS)  # resumed: the deadline moves later
            elif n % 10 == 2:
                tickets.change_status(ticket, sam, Status.IN_PROGRESS)  # reopened
    with app.test_request_context():
        query(change_levels)
    assert_same_order(app, staff, now)

    # The clock moves on: running deadlines pass with no breach mark yet, then the SLA job marks them.
    later = START + dt.timedelta(hours=6)
    clock.move_to(later.replace(tzinfo=dt.UTC), tick=False)
    assert assert_same_order(app, staff, later) > 10
    with app.app_context():
        assert query(lambda: sla.mark_breaches(later))
    assert assert_same_order(app, staff, later) == 0

    # A deleted staff member's tickets go back to Unassigned (the foreign key empties assignee).
    def delete_gone():
        Ticket.update(escalation_owner=None).where(Ticket.escalation_owner == gone.id).execute()
        User.delete().where(User.id == gone.id).execute()
    query(delete_gone)
    assert_same_order(app, [sam, kim], later)
    # And tickets deleted (erasure) leave the queue and its counts.
    query(lambda: Ticket.delete().where(Ticket.title.startswith("random 1")).execute())
    assert_same_order(app, [sam, kim], later)


def test_queue_view_pages_follow_the_defined_order(app, clock, make_user, browser_for):
    rng = random.Random(3)
    support = browser_for("sam@smilepass.test", "support")
    with app.app_context():
        requester = make_user("dr.ada@clinic.test")
        sam = query(lambda: User.get(User.email == "sam@smilepass.test"))
        query(lambda: random_tickets(rng, requester, [sam], 120))
        expected = query(lambda: reference("unassigned", sam, START))
    page_size = app.config["PAGE_SIZE"]
    seen = []
    for page in range(1, len(expected) // page_size + 2):
        html = support.get(f"/queue/?tab=unassigned&page={page}", htmx=page > 1).get_data(as_text=True)
        body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
        seen += list(dict.fromkeys(int(n) for n in re.findall(r"SP-(\d{6})", body)))
    assert seen == expected and len(expected) > page_size


def query_plan(sql: str, params) -> str:
    """The plan of one statement on the pass's database, as text. On PostgreSQL sorts and scans other
    than an index walk are priced out, so a sort in the plan means no index can give the order (not
    that a small table, or the statistics a test before left, make sorting cheaper)."""
    if isinstance(db.database.obj, peewee.PostgresqlDatabase):
        with db.database.atomic():
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                db.database.execute_sql(f"SET LOCAL {setting} = off")
            rows = db.database.execute_sql("EXPLAIN " + sql, params).fetchall()
        return "\n".join(row[0] for row in rows)
    return "\n".join(row[-1] for row in db.database.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_reads_its_page_in_index_order(app, clock, make_user, tab):
    """A page of any tab walks an index in queue order and stops: no sort of every open ticket. The
    Unassigned tab needs its own partial index (migration 0024): under `assignee_id IS NULL`
    PostgreSQL takes no order from ticket_queue_assignee and sorted all open tickets for each page.
    (The late tickets' statement may sort: they are the few whose deadline passed within the minute
    before the SLA job marks them.)"""
    staff = make_user("queue-plan@example.com", role="support")
    in_place = listing.QUEUE_RANK.is_null(False) & ~listing._late_condition(START)
    with app.app_context():
        sql, params = listing._ranked(tab, staff.id, in_place).limit(26).sql()
        plan = query_plan(sql, params)
    assert "sort" not in plan.lower() and "temp b-tree" not in plan.lower(), plan
    assert "ticket_queue_" in plan, plan
