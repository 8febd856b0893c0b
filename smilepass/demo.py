"""Realistic demo data: clinicians, support staff and a support history, fast enough for 100,000
tickets in well under a minute (bulk inserts in one transaction)."""
import datetime as dt
import json
import random
from collections import defaultdict
from contextlib import contextmanager

from .auth.security import hash_password
from .auth.users import create_user
from .db import database, is_postgres
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
REPLIES = ["Thanks, we are looking into it now.", "Could you send a screenshot of the error?",
           "This is fixed on our side; please try again.", "We have reshipped the trays with express delivery."]


def make_demo(ticket_count: int, clinician_count: int, password: str) -> str:
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
    batch, messages = [], []
    escalated, scanned = [], []  # (position, missed target) and positions, for _demo_escalations_and_scans
    service_levels = sla.plan()  # read once: settings and holidays do not change during the load
    with database.atomic(), _queue_counts_once():
        for n in range(ticket_count):
            category = rng.choice(CATEGORIES)
            priority = rng.choices(list(Priority), weights=[45, 30, 17, 8])[0]
            status = rng.choices(list(Status), weights=[20, 25, 15, 25, 15])[0]
            created = now - dt.timedelta(minutes=rng.randint(5, 60 * 24 * 365))
            batch.append({
                "requester": rng.choice(clinicians).id,
                "title": rng.choice(TITLES[category]),
                "description": rng.choice(DETAILS).format(what=rng.choice(WHAT)),
                "priority": priority.value,
                "category": category,
                "status": status.value,
                "created_at": created,
                "updated_at": created,
                "response_due_at": sla.first_response_due(priority, created, service_levels),
                "first_response_at": created + dt.timedelta(hours=2) if status != Status.OPEN else None,
                **_service_outcome(rng, priority, status, created, now, service_levels),
            })
            if batch[-1]["response_breached"] or n % 50 == 0:
                escalated.append((n, batch[-1]["response_breached"]))
            if n % 40 == 0:
                scanned.append(n)
            if status != Status.OPEN and n % 10 == 0:
                messages.append((n, rng.choice(REPLIES), created + dt.timedelta(hours=2)))
            if len(batch) >= 2000:
                Ticket.insert_many(batch).execute()
                batch.clear()
        if batch:
            Ticket.insert_many(batch).execute()
        # Ids are given in insertion order (from first_id up, possibly with gaps on PostgreSQL).
        new_ids = [row.id for row in Ticket.select(Ticket.id).where(Ticket.id >= first_id).order_by(Ticket.id)]
        rows = [{"ticket": new_ids[n], "author": staff.id, "body": body, "internal": False, "created_at": when}
                for n, body, when in messages]
        for start in range(0, len(rows), 2000):
            Message.insert_many(rows[start:start + 2000]).execute()
        _demo_escalations_and_scans(rng, [new_ids[n] for n, _ in escalated], [missed for _, missed in escalated],
                                    [new_ids[n] for n in scanned], staff)
        TicketCount.recount()
    return (f"demo: {ticket_count} tickets, {clinician_count} clinicians; sign in as clinician1@demo.smilepass.local, "
            f"support@demo.smilepass.local or admin@demo.smilepass.local with password {password!r}")


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
    and the counts are made once afterwards (later updates in the load keep them as usual)."""
    if not is_postgres():
        yield
        return
    database.execute_sql("ALTER TABLE ticket DISABLE TRIGGER queue_count_insert_delete")
    yield
    database.execute_sql("ALTER TABLE ticket ENABLE TRIGGER queue_count_insert_delete")
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
    return {"format": "stl", "before": before, "after": after, **fixed, "collapsed_edges": 0,
            "fragment_triangles_removed": fixed["fragments_removed"] * rng.randint(20, 400),
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
