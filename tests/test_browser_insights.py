"""Practice Insights in a real browser: an admin opens it from the menu, changes the range (the charts
swap in place and the URL follows), downloads a CSV and checks its numbers. Screenshot in
test-artifacts/insights.png."""
import csv
import datetime as dt
import json
import re

import pytest

from smilepass.models import Case, Clinic, ClinicMember, Escalation, Priority, Scan, Shipment, Status, Ticket, utcnow

from .browser_support import TIMEOUT_MS, artifact_path, marker, read_db, set_marker, sign_in
from .conftest import PASSWORD
from .parts import import_part

sync_api = import_part("playwright.sync_api", "make setup installs the test extras")
expect = sync_api.expect
expect.set_options(timeout=TIMEOUT_MS)

pytestmark = pytest.mark.browser

ADMIN = "root@smilepass.test"
CATEGORIES = ["Scan & File Validation", "Case Submission", "Production & Shipping", "Billing & Insurance",
              "Warranty & Replacement"]


def seed(clinicians) -> dict:
    """Twelve weeks of a small practice's history, deterministic: a few tickets a day, most answered
    and resolved, some late, some escalated; scans and delivered shipments. Returns counts to check."""
    def build():
        now = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
        clinic = Clinic.create(name="Lakeside Orthodontics")
        for user in clinicians:
            ClinicMember.create(user=user.id, clinic=clinic.id)
        recent = 0
        for day in range(84):
            for k in range((day * 7) % 5 + 2):
                created = now - dt.timedelta(days=day, hours=k)
                resolved = day % 3 != 0 and k != 0
                answered = k != 0 or day % 2 == 0
                response = 20 + (day * 37 + k * 53) % 600 if answered else None
                resolution = (response or 0) + 200 + (day * 91 + k * 17) % 4000 if resolved else None
                ticket = Ticket.create(
                    requester=clinicians[(day + k) % len(clinicians)].id,
                    title="Seeded",
                    description="Seeded.",
                    priority=Priority.NORMAL.value,
                    category=CATEGORIES[(day + k) % len(CATEGORIES)],
                    status=(
                        Status.RESOLVED if resolved else [Status.OPEN, Status.IN_PROGRESS, Status.WAITING][k % 3]
                    ).value,
                    created_at=created,
                    updated_at=created,
                    first_response_at=created + dt.timedelta(hours=1) if answered else None,
                    response_minutes=response,
                    response_breached=bool(response and response > 480),
                    resolved_at=min(now, created + dt.timedelta(hours=30)) if resolved else None,
                    resolution_minutes=resolution,
                    resolution_breached=bool(resolution and resolution > 3600),
                )
                if day < 28:
                    recent += 1
                if response and response > 480:
                    Escalation.create(ticket=ticket.id, level=1, actor=None, reason="Missed", created_at=created)
                if k == 1 and day % 4 == 0:
                    report = {"holes_filled": day % 3, "duplicates_removed": day % 2, "welded_vertices": 1,
                              "holes_left_open": 1 if day % 12 == 0 else 0}
                    Scan.create(ticket=ticket.id, uploader=ticket.requester_id, original_name="arch.stl",
                                stored_name=f"seed-{ticket.id}", size=84, sha256="0" * 64, file_format="stl",
                                triangles=1000, state="done", report=json.dumps(report), created_at=created,
                                verdict="needs_rescan" if report["holes_left_open"] else "repaired")
        for i in range(24):
            produced = now - dt.timedelta(days=3 * i + 12)
            delivered = i % 3 != 2
            case = Case.create(case_number=f"LK-{i:03d}", patient_name="Pat Seed", patient_dob=dt.date(1990, 1, 1),
                               clinician=clinicians[i % len(clinicians)].id,
                               latest_state="delivered" if delivered else "in_transit")
            Shipment.create(case=case.id, phases="Aligners 1–12", state=case.latest_state,
                            target_ship_date=produced.date(), in_production_at=produced,
                            delivered_at=produced + dt.timedelta(days=8 + i % 5) if delivered else None)
        return {"recent_opened": recent}
    return read_db(build)


def test_admin_reads_practice_insights(make_user, new_page, tmp_path):
    make_user(ADMIN, "admin", name="Alex Admin")
    clinicians = [make_user(f"dr.{n}@clinic.test", name=f"Dr. {n.title()}") for n in ("ada", "bob", "cem")]
    facts = seed(clinicians)

    page = new_page()
    sign_in(page, ADMIN, PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Insights").click()
    page.wait_for_url(re.compile(r"/insights/$"))
    expect(page.get_by_role("heading", name="Practice Insights", level=1)).to_be_visible()
    charts = page.get_by_role("img")
    expect(charts.first).to_be_visible()
    expect(page.locator("#figure-tickets svg rect")).not_to_have_count(0)
    expect(page.locator(".chip.active")).to_have_text("12 weeks")
    page.screenshot(path=str(artifact_path("insights.png")), full_page=True, caret="initial")

    # A quick range swaps the results in place (no page load) and the URL follows.
    set_marker(page)
    page.get_by_role("navigation", name="Quick ranges").get_by_role("link", name="4 weeks").click()
    expect(page.locator(".chip.active")).to_have_text("4 weeks")
    page.wait_for_url(re.compile(r"from=\d{4}-\d\d-\d\d&to="))
    assert marker(page) == 1
    # A typed date: the form sends itself on change.
    today = utcnow().date()
    start = (today - dt.timedelta(days=27)).isoformat()
    page.get_by_label("From", exact=True).fill(start)
    expect(page.locator(".scope-line")).to_contain_text(f"{start} to {today.isoformat()}")
    assert marker(page) == 1

    # The CSV of the weekly chart carries the same range and adds up to what was seeded.
    with page.expect_download() as download_info:
        page.locator("#figure-tickets").get_by_role("link", name=re.compile("CSV")).click()
    download = download_info.value
    assert download.suggested_filename == f"insights-tickets-{start}-{today.isoformat()}.csv"
    path = tmp_path / "tickets.csv"
    download.save_as(path)
    rows = list(csv.reader(path.open(newline="")))
    assert rows[0] == ["Week starting", "Opened", "Resolved"]
    assert sum(int(r[1]) for r in rows[1:]) == facts["recent_opened"]
    assert marker(page) == 1
    page.screenshot(path=str(artifact_path("insights-4-weeks.png")), full_page=True, caret="initial")


def test_insights_work_without_javascript(make_user, new_page):
    make_user(ADMIN, "admin", name="Alex Admin")
    clinicians = [make_user("dr.ada@clinic.test", name="Dr. Ada")]
    seed(clinicians)
    page = new_page(javascript=False)
    sign_in(page, ADMIN, PASSWORD)
    page.goto("/insights/")
    page.get_by_label("Clinic", exact=True).select_option(label="Lakeside Orthodontics")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"clinic=\d+"))
    expect(page.locator(".scope-line")).to_contain_text("Clinic: Lakeside Orthodontics")
