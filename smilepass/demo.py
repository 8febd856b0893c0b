"""Realistic demo data: clinicians, support staff and a support history, fast enough for 100,000
tickets in well under a minute (bulk inserts in one transaction)."""
import datetime as dt
import io
import json
import random
from collections import defaultdict
from contextlib import contextmanager

import peewee

from .auth.security import hash_password
from .auth.users import create_user
from .db import SQLITE_ANALYSIS_LIMIT, database, is_postgres
from .models import (
    CATEGORIES,
    RESCAN_REASONS,
    Case,
    Escalation,
    Message,
    Priority,
    RescanRequest,
    Role,
    Scan,
    Shipment,
    ShipmentState,
    Status,
    Ticket,
    TicketCount,
    User,
    utcnow,
)
from .search import index as search_index
from .service import sla

FIRST = ["Anna", "Ben", "Chloe", "David", "Elif", "Farah", "George", "Hana", "Ivan", "Julia", "Kofi", "Lena",
         "Marco", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wen", "Yusuf"]
LAST = ["Adler", "Brooks", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Hoffmann", "Ivanova", "Jensen",
        "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quinn", "Rossi", "Schmidt", "Tanaka"]

TITLES = {
    "Case Submission": ["Case submission stuck at upload step", "Cannot attach records to new case",
                        "Prescription form rejects FDI tooth numbers", "Duplicate case created on submit"],
    "Scan & File Validation": ["Upper arch STL rejected as corrupted", "PLY scan shows holes on molars",
                               "Scan flagged for debris near gum line", "Lower arch file too large to upload"],
    "Treatment Plan Feedback": ["Request IPR changes on plan v2", "Attachments missing on UL3 in setup",
                                "Overcorrection needed for lower incisors", "Plan shows wrong midline"],
    "Production & Shipping": ["Aligners not shipped after approval", "Tracking number not updating",
                              "Package delivered to wrong clinic address", "Refinement trays delayed"],
    "Warranty & Replacement": ["Cracked aligner step 7, replacement", "Lost tray step 12, patient travelling",
                               "Aligner fit poor after delivery", "Replacement retainer request"],
    "Billing & Insurance": ["Invoice charged twice for refinement", "Insurance form needs treatment codes",
                            "Credit note missing for cancelled case", "VAT number wrong on invoice"],
    "Account & Access": ["Assistant cannot sign in", "Add second location to account",
                         "Two-factor device lost", "Change account owner email"],
    "Technical Issues & Bugs": ["3D viewer blank in Chrome", "Support page times out when sorting",
                                "Screenshot upload spins forever", "Notifications arrive twice"],
}
DETAILS = [
    "I was trying to {what}. It failed with an error and nothing was saved. Chrome 131 on Windows 11.",
    "While I tried to {what}, the page showed a spinner for minutes. Safari on an iPad at the chair.",
    "Tried to {what} twice this morning; second time it worked but the first record is missing. Edge, macOS.",
]
WHAT = ["upload the arch scans", "approve the treatment plan", "print the shipping label", "update billing details",
        "open the case timeline", "send the refinement request"]


def make_demo(ticket_count: int, clinician_count: int, password: str, reply_count: int | None = None) -> str:
    """reply_count: replies and internal notes in all, spread over the new tickets' threads (see
    default_replies when None)."""
    if reply_count is None:
        reply_count = default_replies(ticket_count)
    rng = random.Random(42)
    password_hash = hash_password(password)  # hashed once: every demo account shares it
    with database.atomic():
        staff = _ensure_user("support@demo.smilepass.local", "Sam Support", Role.SUPPORT, password_hash)
        _ensure_user("admin@demo.smilepass.local", "Alex Admin", Role.ADMIN, password_hash)
        clinicians = [
            _ensure_user(f"clinician{i}@demo.smilepass.local",
                         f"Dr. {rng.choice(FIRST)} {rng.choice(LAST)}", Role.CLINICIAN, password_hash)
            for i in range(1, clinician_count + 1)
        ]
    now = utcnow()
    first_id = (Ticket.select(Ticket.id).order_by(Ticket.id.desc()).scalar() or 0) + 1
    tickets = []
    escalated, scanned = [], []  # (position, missed target) and positions, for _demo_escalations_and_scans
    service_levels = sla.plan()  # read once: settings and holidays do not change during the load
    with database.atomic(), _queue_counts_once():
        for n in range(ticket_count):
            category = rng.choice(CATEGORIES)
            priority = rng.choices(list(Priority), weights=[45, 30, 17, 8])[0]
            status = rng.choices(list(Status), weights=[20, 25, 15, 25, 15])[0]
            created = now - dt.timedelta(minutes=rng.randint(5, 60 * 24 * 365))
            tickets.append({
                "requester": rng.choice(clinicians).id,
                "title": rng.choice(TITLES[category]),
                "description": rng.choice(DETAILS).format(what=rng.choice(WHAT)),
                "priority": priority.value,
                "category": category,
                "status": status.value,
                "created_at": created,
                "updated_at": created,
                "response_due_at": sla.first_response_due(priority, created, service_levels),
                # Never later than now: a ticket filed minutes ago was answered just now, not in the future.
                "first_response_at": min(created + dt.timedelta(hours=2), now) if status != Status.OPEN else None,
                **_service_outcome(rng, priority, status, created, now, service_levels),
            })
            if tickets[-1]["response_breached"] or n % 50 == 0:
                escalated.append((n, tickets[-1]["response_breached"]))
            if n % 40 == 0:
                scanned.append(n)
            if status != Status.OPEN and n % 10 == 0:
                rng.randrange(4)  # the draw of the one reply earlier demos gave: keeps the tickets as they were
        # The threads come from a generator of their own, after every ticket is drawn: the tickets are the
        # same whatever the number of replies.
        messages = _demo_threads(random.Random(f"threads-{ticket_count}"), tickets, reply_count, staff, now)
        # Inserted in the order they were filed, as a portal in use numbers them (the table's searches count
        # on ids following the date: support.listing._walked_page).
        filed = sorted(range(len(tickets)), key=lambda n: tickets[n]["created_at"])
        with _indexes_built_after(Ticket._meta.table_name, Message._meta.table_name):
            fields = list(tickets[0]) if tickets else []
            _insert(Ticket, fields, [[tickets[n][name] for name in fields] for n in filed])
            # Ids are given in insertion order (from first_id up, possibly with gaps on PostgreSQL).
            inserted = [i for (i,) in database.execute_sql(
                f"SELECT id FROM ticket WHERE id >= {int(first_id)} ORDER BY id").fetchall()]
            new_ids = [0] * len(tickets)  # by the position each ticket was drawn in
            for ticket_id, n in zip(inserted, filed, strict=True):
                new_ids[n] = ticket_id
            _insert(Message, ["ticket", "author", "body", "internal", "created_at"],
                    [(new_ids[n], *rest) for n, *rest in messages])
        _demo_escalations_and_scans(rng, [new_ids[n] for n, _ in escalated], [missed for _, missed in escalated],
                                    [new_ids[n] for n in scanned], staff)
        TicketCount.recount()
    return (f"demo: {ticket_count} tickets with {len(messages)} replies and internal notes, {clinician_count} "
            f"clinicians; sign in as clinician1@demo.smilepass.local, "
            f"support@demo.smilepass.local or admin@demo.smilepass.local with password {password!r}")


# Reply threads ------------------------------------------------------------------------------------------
# What support, the clinician and staff among themselves write in a thread, by category; {tooth}, {step},
# {n} and {hours} are filled in. Shared lines are added to every category's. The texts use the words
# people search for (scan, tray, invoice, upper arch, plan, ...), so the demo's replies are found too.
STAFF_REPLIES = {
    "Case Submission": ["The case is in our system now; the upload step failed on a timeout. Nothing else is needed.",
                        "Please resubmit the prescription with FDI numbers; tooth {tooth} was read as Universal.",
                        "We merged the duplicate case into the first one; the records of both are kept."],
    "Scan & File Validation": ["The upper arch scan was rejected for a hole near tooth {tooth}. Could you rescan it?",
                               "We repaired the scan: {n} small holes filled, no rescan needed.",
                               "The lower arch STL is over the size limit; please export it without colour."],
    "Treatment Plan Feedback": ["Plan v{n} now has the IPR changes you asked for; please review and approve.",
                                "The attachment on tooth {tooth} was restored in the new setup.",
                                "The wrong plan was shown in the viewer; the current plan is v{n}."],
    "Production & Shipping": ["The aligners shipped today; the tracking number is in the case timeline.",
                              "The carrier reports a delay of {n} days; we upgraded the shipment to express.",
                              "Refinement trays for steps {step} to {n} are in production."],
    "Warranty & Replacement": ["A replacement tray for step {step} is on its way at no charge.",
                               "Please send a photo of the cracked tray so we can log the warranty claim.",
                               "The replacement retainer ships within {n} business days."],
    "Billing & Insurance": ["The duplicate charge is refunded; the credit note is attached to the invoice.",
                            "The insurance form now lists the treatment codes for this case.",
                            "The VAT number on the invoice is corrected; a new invoice was sent."],
    "Account & Access": ["The assistant's login works again; the account was locked after three attempts.",
                         "The second location is added to your account.",
                         "Two-factor sign-in is reset; please enrol the new phone at the next login."],
    "Technical Issues & Bugs": ["The 3D viewer needs WebGL; it is switched off in this Chrome profile.",
                                "We fixed the upload that kept spinning; please try the screenshot again.",
                                "Notifications arrived twice because of a retry; that is fixed now."],
}
SHARED_STAFF_REPLIES = ["Thanks, we are looking into it now.", "Could you send a screenshot of the error?",
                        "This is fixed on our side; please try again.",
                        "We need a little more time; you will hear from us within {hours} hours.",
                        "Could you tell us the case number and the patient's date of birth?"]
CLINICIAN_REPLIES = ["Thanks, that worked.", "It still fails, same error as before.",
                     "Screenshot attached; the error shows after the upload reaches {n} %.",
                     "The patient is in the chair on Thursday; can this be done before then?",
                     "Any news on this? The patient asked again today.",
                     "Tooth {tooth} still looks wrong in the viewer.", "Rescanned the upper arch, please check.",
                     "The tray for step {step} cracked again.", "Yes, please go ahead with the plan.",
                     "Invoice received, thank you."]
INTERNAL_NOTES = ["Checked the logs: the upload hit the timeout at {n} MB.",
                  "Asked the lab; they confirm the scan was rejected for debris.",
                  "Second complaint from this clinic this month; keep an eye on it.",
                  "Billing confirmed the refund of the duplicate invoice.",
                  "Production says step {step} trays leave on Monday.",
                  "Escalate to the clinical liaison if the plan is not approved by Friday.",
                  "Known issue with the viewer in Chrome {n}; engineering has it."]
# Relative share of the replies a ticket gets, by status: open tickets have had no staff reply yet (only
# the clinician's follow-ups and staff's internal notes), finished ones the longest threads.
THREAD_WEIGHT = {Status.OPEN: 0.25, Status.IN_PROGRESS: 1.0, Status.WAITING: 1.0, Status.RESOLVED: 1.3,
                 Status.CLOSED: 1.3}
INTERNAL_SHARE = 0.15  # of a thread's messages, staff's notes to each other
FDI_TEETH = [quadrant * 10 + tooth for quadrant in range(1, 5) for tooth in range(1, 9)]
REPLIES_PER_TICKET = 1


def default_replies(ticket_count: int) -> int:
    """Without --replies: REPLIES_PER_TICKET a ticket."""
    return int(ticket_count * REPLIES_PER_TICKET)


def _demo_threads(rng, tickets: list[dict], reply_count: int, staff, now) -> list[tuple]:
    """reply_count messages over these (not yet inserted) tickets' threads, as (ticket position, author,
    body, internal, created_at), each thread in time order. Sets each ticket's first_response_at to its
    first public staff reply and updated_at to its last message, as replying in the app does."""
    messages = []
    for n, (row, count) in enumerate(zip(tickets, _reply_counts(rng, tickets, reply_count, now), strict=True)):
        if count:
            thread = _thread(rng, row, count, staff.id, now)
            messages.extend((n, *message) for message in thread)
    return messages


def _reply_counts(rng, tickets: list[dict], total: int, now) -> list[int]:
    """How many messages each ticket's thread gets, `total` in all: a share by status (THREAD_WEIGHT),
    less for a ticket younger than two days (a thread needs time), spread out (log-normal) so threads
    differ in length. Counted out along the running sum of the shares, so they add up to `total`."""
    weights = [THREAD_WEIGHT[Status(row["status"])] * rng.lognormvariate(0, 0.7)
               * min(1.0, (now - row["created_at"]).total_seconds() / (48 * 3600)) for row in tickets]
    whole = sum(weights)
    if not whole:  # no tickets, or none old enough for a thread
        return [0] * len(tickets)
    counts, given, running = [], 0, 0.0
    for weight in weights:
        running += weight
        upto = min(total, int(total * running / whole))
        counts.append(upto - given)
        given = upto
    if counts:
        counts[-1] += total - given  # rounding of the running sum
    return counts


def _thread(rng, row: dict, count: int, staff_id: int, now) -> list[tuple]:
    """One ticket's messages (author, body, internal, created_at): public replies taking turns between
    staff and the clinician, staff first (the first response) unless the ticket is still open (then the
    clinician's follow-ups only), and internal notes among them. All after the ticket was filed and before
    now, a finished ticket's before it was resolved."""
    status = Status(row["status"])
    category, requester = row["category"], row["requester"]
    start, end = row["created_at"], row["resolved_at"] or now
    kinds, staff_turn = [], status != Status.OPEN
    for position in range(count):
        if rng.random() < INTERNAL_SHARE and not (position == 0 and staff_turn):
            kinds.append("note")
        elif status == Status.OPEN:
            kinds.append("clinician")
        else:
            kinds.append("staff" if staff_turn else "clinician")
            staff_turn = not staff_turn
    span = (end - start).total_seconds()
    if status == Status.OPEN:
        first = start + dt.timedelta(seconds=span * rng.uniform(0.05, 0.5))
    else:
        # The first response at the time the ticket says; squeezed in when that is past the window.
        first = min(row["first_response_at"], start + dt.timedelta(seconds=span / 3))
        row["first_response_at"] = first
    # Gaps of a few hours (median 2.5 h, log-normal), squeezed into what is left of the window.
    offsets, elapsed = [], 0.0
    for _ in range(count - 1):
        elapsed += rng.lognormvariate(9.1, 1.0)
        offsets.append(elapsed)
    room = (end - first).total_seconds() * 0.98
    squeeze = min(1.0, room / elapsed) if elapsed else 1.0
    times = [first] + [first + dt.timedelta(seconds=offset * squeeze) for offset in offsets]
    row["updated_at"] = times[-1]
    staff_texts = STAFF_REPLIES[category] + SHARED_STAFF_REPLIES
    thread = []
    for kind, when in zip(kinds, times, strict=True):
        if kind == "staff":
            author, texts, internal = staff_id, staff_texts, False
        elif kind == "clinician":
            author, texts, internal = requester, CLINICIAN_REPLIES, False
        else:
            author, texts, internal = staff_id, INTERNAL_NOTES, True
        body = rng.choice(texts).format(tooth=rng.choice(FDI_TEETH), step=rng.randint(1, 30),
                                        n=rng.randint(2, 40), hours=rng.choice((4, 24, 48)))
        thread.append((author, body, internal, when))
    return thread


def _insert(model, fields: list[str], rows: list) -> None:
    """Rows of these fields' values (the other fields get their defaults), straight through the driver:
    peewee's insert_many builds an expression tree of every value, which took most of the demo's time
    (20,000 tickets: 16 s of 36)."""
    defaults = [(name, field.default) for name, field in model._meta.fields.items()
                if name not in fields and field.default is not None and not field.primary_key]
    names = [*fields, *(name for name, _ in defaults)]
    columns = ", ".join(model._meta.fields[name].column_name for name in names)
    if defaults:
        rows = [[*row, *(default() if callable(default) else default for _, default in defaults)] for row in rows]
    cursor = database.cursor()
    if is_postgres():
        # COPY: a million replies as INSERT … VALUES pages kept the server busy for minutes.
        data = io.StringIO("".join("\t".join(_copy_text(value) for value in row) + "\n" for row in rows))
        cursor.copy_expert(f'COPY "{model._meta.table_name}" ({columns}) FROM STDIN', data)
        return
    # As peewee stores them in SQLite: booleans as 0/1, times and dates as ISO text (str() of a datetime is
    # what sqlite3's adapter wrote). Only the columns that hold such values are converted.
    converted = [isinstance(model._meta.fields[name], (peewee.BooleanField, peewee.DateTimeField, peewee.DateField))
                 for name in names]
    if any(converted):
        rows = [[value if value is None or not convert else int(value) if isinstance(value, bool) else str(value)
                 for value, convert in zip(row, converted, strict=True)] for row in rows]
    cursor.executemany(f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES ({", ".join("?" * len(names))})',
                       rows)


def _copy_text(value) -> str:
    """A value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def rebuild_search_index() -> None:
    """The search index of everything, after the demo's bulk inserts. PostgreSQL: its GIN indexes are built
    once afterwards rather than kept up to date 500 tickets at a time."""
    with database.atomic(), _indexes_built_after(search_index.TICKET_TABLE, search_index.CASE_TABLE):
        # Statistics of the new rows first: without them (or with those of the empty tables `flask migrate`
        # left) the planner read each 500 tickets' replies by walking the whole message table in id order
        # (PostgreSQL: 30 ms a statement at 200,000 replies, not 1).
        if is_postgres():
            database.execute_sql("SET LOCAL maintenance_work_mem = '256MB'")  # for the index builds
            database.execute_sql("ANALYZE ticket, message")
        else:
            database.execute_sql(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
            database.execute_sql("ANALYZE ticket")
            database.execute_sql("ANALYZE message")
        search_index.rebuild()


@contextmanager
def _indexes_built_after(*tables):
    """The bulk insert runs without these tables' secondary indexes, which are built again afterwards (in
    the same transaction): a B-tree built from sorted rows instead of 24 indexes of the ticket table updated
    row by row (SQLite, 40,000 tickets in memory: 2.8 s -> 1.6 s). The indexes that back a constraint
    (primary keys, unique) stay. SQLite's search tables (FTS5) have none of these."""
    if is_postgres():
        found = database.execute_sql(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
            f"AND i.tablename IN ({', '.join(['%s'] * len(tables))}) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)",
            tables).fetchall()
    else:
        found = database.execute_sql(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({', '.join('?' * len(tables))})", tables).fetchall()
    for name, _ in found:
        database.execute_sql(f'DROP INDEX "{name}"')
    yield
    for _, definition in found:
        database.execute_sql(definition)


@contextmanager
def bulk_load():
    """SQLite: a page cache large enough for the whole load (up to 1 GB while it runs, then as before). With
    the usual 16 MB a million replies' search index, merged inside one transaction, spilled and re-read
    pages without end (200,000 tickets: over 4 minutes in the index alone)."""
    if is_postgres():
        yield
        return
    previous = database.execute_sql("PRAGMA cache_size").fetchone()[0]
    database.execute_sql("PRAGMA cache_size = -1000000")
    try:
        yield
    finally:
        database.execute_sql(f"PRAGMA cache_size = {int(previous)}")


# Open tickets per queue tab owner, as migration 0022's triggers keep them.
QUEUE_COUNTS = [
    "INSERT INTO queue_count (kind, owner_id, n) SELECT 0, COALESCE(assignee_id, 0), COUNT(*) FROM ticket "
    "WHERE status IN (0, 1, 2) GROUP BY COALESCE(assignee_id, 0)",
    "INSERT INTO queue_count (kind, owner_id, n) SELECT 1, COALESCE(escalation_owner_id, 0), COUNT(*) FROM ticket "
    "WHERE status IN (0, 1, 2) GROUP BY COALESCE(escalation_owner_id, 0)",
]


@contextmanager
def _queue_counts_once():
    """PostgreSQL: the queue_count trigger updates the same few rows once per inserted ticket, and inside
    one transaction each update leaves a row version the next one steps over: 10,000 demo tickets took
    9 s, 40,000 42 s, 200,000 had not finished after 8 minutes. The bulk insert runs without that trigger
    and the counts are made once afterwards (later updates in the load keep them as usual). SQLite: the
    same, as two upserts per ticket are a third of its insert (the trigger is dropped and made again from
    its stored definition, in the same transaction)."""
    if is_postgres():
        database.execute_sql("ALTER TABLE ticket DISABLE TRIGGER queue_count_insert_delete")
    else:
        (trigger,) = database.execute_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'queue_count_insert'").fetchone()
        database.execute_sql("DROP TRIGGER queue_count_insert")
    yield
    if is_postgres():
        database.execute_sql("ALTER TABLE ticket ENABLE TRIGGER queue_count_insert_delete")
    else:
        database.execute_sql(trigger)
    database.execute_sql("DELETE FROM queue_count")
    for statement in QUEUE_COUNTS:
        database.execute_sql(statement)


def _service_outcome(rng, priority, status, created, now, service_levels) -> dict:
    """First-response and resolution times for a demo ticket, so Practice Insights has something to
    show: most within target (a log-normal around a third of it), about one in eight late."""
    out = {"response_minutes": None, "response_breached": False, "resolved_at": None, "resolution_minutes": None,
           "resolution_breached": False}
    if status == Status.OPEN:
        return out
    response_target = service_levels.response_target(priority).total_seconds() / 60
    out["response_minutes"] = int(rng.lognormvariate(0, 0.9) * response_target * 0.35) + 1
    out["response_breached"] = out["response_minutes"] > response_target
    if status in (Status.RESOLVED, Status.CLOSED):
        resolution_target = service_levels.resolution_target(priority).total_seconds() / 60
        minutes = int(rng.lognormvariate(0, 0.8) * resolution_target * 0.4) + out["response_minutes"]
        out.update(resolution_minutes=minutes, resolution_breached=minutes > resolution_target,
                   resolved_at=min(now, created + dt.timedelta(minutes=minutes * 3)))
    return out


DEMO_DEFECTS = ["welded_vertices", "degenerate_removed", "duplicates_removed", "non_manifold_removed",
                "fragments_removed", "flipped_triangles", "holes_filled"]


def _demo_escalations_and_scans(rng, escalated_ids, missed, scanned_ids, staff) -> None:
    """Escalation steps (automatic for a missed target, else by staff) and repaired scans with their
    reports: rows only, the demo has no scan files."""

    tickets = {t.id: t for t in Ticket.select(Ticket.id, Ticket.requester, Ticket.created_at)
               .where(Ticket.id.in_(escalated_ids + scanned_ids))}
    steps = []
    for ticket_id, automatic in zip(escalated_ids, missed, strict=False):
        when = tickets[ticket_id].created_at + dt.timedelta(hours=rng.randint(4, 72))
        steps.append({"ticket": ticket_id, "level": 1, "actor": None if automatic else staff.id,
                      "reason": "Response target missed." if automatic else "Clinic asked for a supervisor.",
                      "created_at": when})
        if rng.random() < 0.15:
            steps.append({**steps[-1], "level": 2, "actor": staff.id, "reason": "Needs the clinical liaison.",
                          "created_at": when + dt.timedelta(hours=6)})
    scans = []
    for ticket_id in scanned_ids:
        ticket = tickets[ticket_id]
        fixed = {kind: (rng.randint(1, 40) if rng.random() < chance else 0)
                 for kind, chance in zip(DEMO_DEFECTS, [0.5, 0.35, 0.3, 0.2, 0.25, 0.1, 0.45], strict=True)}
        report = _demo_report(rng, fixed, holes_left_open=1 if rng.random() < 0.08 else 0)
        verdict = ("needs_rescan" if report["holes_left_open"] else
                   "repaired" if any(fixed.values()) else "ready")
        scans.append({"ticket": ticket_id, "uploader": ticket.requester_id, "original_name": "upper-arch.stl",
                      "stored_name": f"demo-scan-{ticket_id}", "size": 50_000_084, "sha256": "0" * 64,
                      "file_format": "stl", "triangles": 1_000_000, "state": "done", "stage": "done",
                      "progress": 1.0, "verdict": verdict, "report": json.dumps(report),
                      "created_at": ticket.created_at, "updated_at": ticket.created_at,
                      "finished_at": ticket.created_at + dt.timedelta(minutes=2)})
    for rows, model in ((steps, Escalation), (scans, Scan)):
        for start in range(0, len(rows), 1000):
            model.insert_many(rows[start:start + 1000]).execute()
    _demo_rescans([scan["ticket"] for scan in scans], staff)


def _demo_rescans(ticket_ids, staff) -> None:
    """Rescan requests for the new demo scans that need one (and a few others), most of them answered some
    hours later: rows only, like the scans (no thread reply, no answering scan), for Practice Insights.
    A generator of its own, so the rest of the demo stays as it was."""
    rng = random.Random(f"rescans-{len(ticket_ids)}")
    codes = list(RESCAN_REASONS)
    now = utcnow()
    rows = []
    for scan in Scan.select(Scan.id, Scan.ticket, Scan.uploader, Scan.created_at, Scan.verdict).where(
            Scan.ticket.in_(ticket_ids) & Scan.stored_name.startswith("demo-scan-")):
        if scan.verdict != "needs_rescan" and rng.random() > 0.08:
            continue
        chosen = {"occlusal_holes"} if scan.verdict == "needs_rescan" else set()
        chosen.update(rng.sample(codes, rng.randint(0 if chosen else 1, 2)))
        asked = scan.created_at + dt.timedelta(minutes=rng.randint(20, 1800))
        wait = rng.randint(30, 6000) if rng.random() < 0.8 else None
        if asked >= now:
            continue
        if wait is not None and asked + dt.timedelta(minutes=wait) >= now:
            wait = None
        rows.append({"scan": scan.id, "ticket": scan.ticket_id, "clinician": scan.uploader_id,
                     "reasons": ",".join(code for code in codes if code in chosen), "requested_by": staff.id,
                     "requested_at": asked, "wait_minutes": wait,
                     "fulfilled_at": asked + dt.timedelta(minutes=wait) if wait is not None else None})
    for start in range(0, len(rows), 1000):
        RescanRequest.insert_many(rows[start:start + 1000]).execute()


def _demo_report(rng, fixed: dict, holes_left_open: int) -> dict:
    """A repair report of the same shape as a real repair's (mesh/pipeline.py), with made-up numbers
    that agree with what was fixed: the scan panel shows demo scans exactly like real ones."""
    triangles = 1_000_000
    area = round(rng.uniform(2400, 3600), 1)
    bbox = [round(rng.uniform(50, 62), 1), round(rng.uniform(40, 52), 1), round(rng.uniform(18, 26), 1)]
    open_loops = fixed["holes_filled"] + holes_left_open
    before = {"vertices": triangles // 2 + 2 + fixed["welded_vertices"], "triangles": triangles,
              "boundary_loops": open_loops, "boundary_edges": open_loops * rng.randint(8, 40),
              "non_manifold_edges": fixed["non_manifold_removed"], "components": 1 + fixed["fragments_removed"],
              "duplicate_triangles": fixed["duplicates_removed"], "degenerate_triangles": fixed["degenerate_removed"],
              "inconsistent_edges": fixed["flipped_triangles"] * 3, "bbox_mm": bbox, "surface_area_mm2": area,
              "closed": open_loops == 0 and fixed["non_manifold_removed"] == 0}
    removed = fixed["duplicates_removed"] + fixed["degenerate_removed"] + fixed["non_manifold_removed"]
    added = fixed["holes_filled"] * rng.randint(10, 60)
    after = {**before, "vertices": triangles // 2 + 2, "triangles": triangles - removed + added,
             "boundary_loops": holes_left_open, "boundary_edges": holes_left_open * rng.randint(8, 40),
             "non_manifold_edges": 0, "components": 1, "duplicate_triangles": 0, "degenerate_triangles": 0,
             "inconsistent_edges": 0, "surface_area_mm2": round(area + added * 0.02, 1),
             "closed": holes_left_open == 0}
    return {"format": "stl", "before": before, "upload_counts": "surface", "after": after, **fixed,
            "collapsed_edges": 0, "fragment_triangles_removed": fixed["fragments_removed"] * rng.randint(20, 400),
            "inconsistent_edges_left": 0, "fill_triangles_added": added, "holes_left_open": holes_left_open,
            "open_hole_length_mm": round(holes_left_open * rng.uniform(4, 12), 1), "margin_loop_edges": 0,
            "margin_loop_mm": 0.0, "pieces": 1, "piece_areas_mm2": [area], "options": {},
            "stage_seconds": {"read": round(rng.uniform(0.8, 1.6), 2), "clean": round(rng.uniform(2, 5), 2),
                              "write": round(rng.uniform(0.5, 1.2), 2)}}


def _ensure_user(email, name, role, password_hash):
    return User.by_email(email) or create_user(email, "", role.value, name, password_hash=password_hash)


PLANS = ["Full case, 24 steps", "Full case, 18 steps", "Refinement 1", "Refinement 2", "Lite, 14 steps",
         "Retainers"]


def make_demo_cases(count: int) -> str:
    """Demo cases for the demo clinicians, each with a shipment in one of the three tracker states."""

    rng = random.Random(7)
    clinicians = list(
        User.select().where((User.role == Role.CLINICIAN.value) & User.email.endswith("@demo.smilepass.local"))
    )
    if not clinicians:
        return "demo cases: run demo first (no demo clinicians)"
    first_number = Case.select().count() + 1
    now = utcnow()
    states = [s.value for s in ShipmentState]
    with database.atomic():
        cases = []
        for n in range(count):
            created = now - dt.timedelta(days=rng.randint(1, 700))
            cases.append({"case_number": f"DEMO-{first_number + n:06d}", "clinician": rng.choice(clinicians).id,
                          "patient_name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                          "patient_dob": dt.date(1960, 1, 1) + dt.timedelta(days=rng.randint(0, 20000)),
                          "clinic_patient_id": f"P{rng.randint(10000, 99999)}", "treatment_plan": rng.choice(PLANS),
                          "arches": rng.choice(["upper", "lower", "both"]), "latest_state": rng.choice(states),
                          "created_at": created, "updated_at": created})
        for start in range(0, len(cases), 2000):
            Case.insert_many(cases[start:start + 2000]).execute()
        made = (Case.select(Case.id, Case.latest_state, Case.created_at)
                .where(Case.case_number.startswith("DEMO-")).order_by(Case.id.desc()).limit(count))
        shipments = []
        for case in made:
            shipped = case.created_at + dt.timedelta(days=14)
            row = {
                "case": case.id,
                "phases": "Aligners 1–12",
                "state": case.latest_state,
                "target_ship_date": shipped.date(),
                "in_production_at": case.created_at,
                "created_at": case.created_at,
            }
            if case.latest_state != ShipmentState.IN_PRODUCTION.value:
                row.update(in_transit_at=shipped, carrier=rng.choice(["DHL", "UPS", "FedEx"]),
                           tracking_number=f"1Z{rng.randint(10**9, 10**10 - 1)}")
            if case.latest_state == ShipmentState.DELIVERED.value:
                row["delivered_at"] = shipped + dt.timedelta(days=3)
            shipments.append(row)
        for start in range(0, len(shipments), 2000):
            Shipment.insert_many(shipments[start:start + 2000]).execute()
        linked = _link_demo_tickets(rng)
    return f"demo: {count} cases with one shipment each; {linked} tickets linked to their requester's cases"


def _link_demo_tickets(rng, every: int = 3) -> int:
    """Link every third unlinked ticket of a demo clinician to one of that clinician's demo cases, so
    the ticket table's case column (a join) is exercised. Rows are read straight from the cursor and
    written with one UPDATE … FROM (VALUES …) per 2,000 tickets: building that through peewee's
    expression tree would take longer than the update itself."""

    cases_by_clinician = defaultdict(list)
    demo_cases = Case.select(Case.id, Case.clinician).where(Case.case_number.startswith("DEMO-"))
    for case_id, clinician_id in database.execute(demo_cases).fetchall():
        cases_by_clinician[clinician_id].append(case_id)
    unlinked = Ticket.select(Ticket.id, Ticket.requester).where(Ticket.case.is_null()).order_by(Ticket.id)
    links = [(ticket_id, rng.choice(cases_by_clinician[requester]))
             for n, (ticket_id, requester) in enumerate(database.execute(unlinked).fetchall())
             if n % every == 0 and requester in cases_by_clinician]
    pair = f"({database.param}, {database.param})"
    for start in range(0, len(links), 2000):
        chunk = links[start:start + 2000]
        # VALUES columns are column1, column2 on both databases (SQLite cannot rename them).
        database.execute_sql(f"UPDATE ticket SET case_id = link.column2 FROM (VALUES {', '.join([pair] * len(chunk))})"
                             " AS link WHERE ticket.id = link.column1", [value for row in chunk for value in row])
    return len(links)
