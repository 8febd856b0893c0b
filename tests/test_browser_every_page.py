"""Every page on phones and tablets, in English and German, for each role that may see it.

One browser walks the pages at 360, 390 and 768 px wide and fails when the page scrolls sideways, when
something sticks out of the screen, or when a control is smaller than 44 × 44 px; axe-core (from
node_modules, pinned in package.json) must report no serious or critical violation. A screenshot of each
page and width lands in test-artifacts/walk/."""
import datetime as dt
import json
import re

import pytest

from smilepass.cases import shipments
from smilepass.models import (
    Case,
    Clinic,
    ClinicMember,
    ContactRequest,
    Label,
    Notification,
    Priority,
    Scan,
    Status,
    User,
    utcnow,
)
from smilepass.support import tickets

from .browser_support import (
    AXE_FILE,
    TIMEOUT_MS,
    artifact_path,
    axe_missing_reason,
    axe_violations,
    layout_problems,
    read_db,
    seed_tickets,
)
from .conftest import PASSWORD
from .parts import require

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

WIDTHS = (360, 390, 768)
AXE_WIDTH = 390
CLINICIAN = "dr.ada@clinic.test"
SUPPORT = "sam@smilepass.test"
ADMIN = "root@smilepass.test"
USERS = {"clinician": (CLINICIAN, "clinician", "Dr. Ada Lovelace-Oberhauser"),
         "support": (SUPPORT, "support", "Sam Support"),
         "admin": (ADMIN, "admin", "Alex Administrator")}


def seed_world() -> dict:
    """A small clinic's day: tickets in every state, one with a thread and two scans, a case with a
    shipment in transit and one delivered, a patient link, a label, a notification, a Contact us message."""
    ada, sam, root = (User.by_email(email) for email in (CLINICIAN, SUPPORT, ADMIN))
    sam.escalation_role = "supervisor"  # supervisors see Insights and the Contact inbox
    sam.save()
    clinic = Clinic.create(name="Lakeside Orthodontics")
    ClinicMember.create(user=ada.id, clinic=clinic.id)

    case = Case.create(case_number="C-2026-0417", patient_name="Maria Keller", patient_dob=dt.date(1991, 3, 4),
                       clinician=ada.id, treatment_plan="Full case, 24 steps")
    first = shipments.create_shipment(case, sam, "Aligners 1–12", dt.date.today())
    shipments.advance(first, sam, carrier="DHL", tracking_number="JD014600003812345678")
    shipments.advance(first, sam)
    second = shipments.create_shipment(case, sam, "Aligners 13–24", dt.date.today() + dt.timedelta(days=3))
    shipments.advance(second, sam, carrier="DHL", tracking_number="JD014600003899999999")
    _, token = shipments.create_link(second, sam)
    Label.create(owner=ada.id, name="Refinement", color="teal")

    titles = [("Aligner tray cracked at step 7 and the patient travels on Monday", Priority.URGENT,
               "Warranty & Replacement"),
              ("Shipping label missing from box", Priority.NORMAL, "Production & Shipping"),
              ("Invoice charged twice for refinement", Priority.HIGH, "Billing & Insurance")]
    cracked, label, invoice = (tickets.create_ticket(ada, title, f"Seeded: {title}.", priority, category)
                               for title, priority, category in titles)
    tickets.add_reply(cracked, sam, "Checked the production log: step 7 was printed on the old resin.", internal=True)
    tickets.add_reply(cracked, sam, "We are sending a replacement for step 7 today, tracking follows.")
    tickets.add_reply(cracked, ada, "Thank you, the patient will pick it up at the front desk.")
    tickets.change_status(label, sam, Status.RESOLVED)
    tickets.change_status(invoice, sam, Status.WAITING)
    report = {"before": {"triangles": 48210, "vertices": 24107, "boundary_loops": 5, "closed": False},
              "after": {"triangles": 48330, "vertices": 24167, "boundary_loops": 0, "closed": True},
              "holes_filled": 5, "fragments_removed": 1}
    Scan.create(ticket=cracked.id, uploader=ada.id, original_name="clinic7_patient42_lower_arch_2026-11-20.stl",
                stored_name="walk-done", size=2_411_884, sha256="0" * 64, file_format="stl", triangles=48210,
                state="done", verdict="repaired", report=json.dumps(report))
    Scan.create(ticket=cracked.id, uploader=ada.id, original_name="upper_arch.ply", stored_name="walk-busy",
                size=1_048_576, sha256="1" * 64, file_format="ply", triangles=40000, state="processing",
                stage="fill_holes", progress=0.4)
    Notification.create(user=ada.id, ticket=cracked.id, kind="ticket_replied",
                        text="Sam Support replied to SP-000001 Aligner tray cracked at step 7")
    ContactRequest.create(name="Dr. Bob Brooks", email="bob@clinic.test", topic="billing",
                          message="We were charged twice for case C-2026-0417. Please call the front desk.",
                          ip="127.0.0.1", created_at=utcnow())
    seed_tickets(ada, [(f"Older request number {n}", Priority.LOW, "Account & Access") for n in range(3)])
    return {"ticket": cracked.id, "case": case.id, "shipment": second.id, "clinic": clinic.id,
            "patient": f"/p/{token}"}


def pages_for(role: str, world: dict) -> list[tuple[str, str]]:
    """(name, path) of every page the role may see; each must answer 200."""
    if role == "anonymous":
        return [("sign-in", "/auth/login"), ("forgot", "/auth/forgot"), ("contact", "/contact"),
                ("patient", world["patient"])]
    signed_in = [
        ("support", "/support/"),
        ("search", "/search?q=cracked"),
        ("ticket", f"/support/tickets/{world['ticket']}"),
        ("cases", "/cases/"),
        ("case", f"/cases/{world['case']}"),
        ("labels", "/cases/labels"),
        ("shipments", "/shipments/"),
        ("insights", "/insights/"),
        ("inbox", "/account/notifications/inbox"),
        ("notifications", "/account/notifications"),
        ("language", "/account/language"),
        ("password", "/auth/password"),
        ("security", "/account/security"),
        ("two-factor-app", "/account/two-factor/app"),
        ("security-keys", "/account/two-factor/keys"),
        ("contact", "/contact"),
        ("case-export", f"/cases/{world['case']}/export"),
    ]
    staff = [
        ("queue", "/queue/"),
        ("canned", "/queue/canned"),
        ("case-new", "/cases/new"),
        ("case-edit", f"/cases/{world['case']}/edit"),
        ("shipment", f"/cases/shipments/{world['shipment']}"),
        ("shipments-import", "/shipments/import"),
        ("contact-inbox", "/contact/inbox"),
    ]
    admin = [
        ("users", "/admin/users"),
        ("outbox", "/admin/outbox"),
        ("audit", "/admin/audit"),
        ("settings", "/admin/settings"),
        ("holidays", "/admin/holidays"),
        ("clinics", "/admin/clinics"),
        ("clinic", f"/admin/clinics/{world['clinic']}"),
        ("system", "/admin/system"),
        ("case-erase", f"/cases/{world['case']}/erase"),
    ]
    if role == "clinician":
        return signed_in
    if role == "support":
        return [page for page in signed_in if page[0] != "case-export"] + staff
    return signed_in + staff + admin


def walk(page, role: str, language: str, pages, screenshots: bool) -> list[str]:
    """Open each page once, then look at it at every width; returns what went wrong."""
    problems = []
    for name, path in pages:
        page.set_viewport_size({"width": WIDTHS[-1], "height": 1024})
        response = page.goto(path)
        if response is None or response.status != 200:
            problems.append(f"{language} {role} {name}: {path} answered {response and response.status}")
            continue
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 844 if width < 700 else 1024})
            where = f"{language} {role} {name} at {width} px"
            problems += [f"{where}: {problem}" for problem in layout_problems(page)]
            if width == AXE_WIDTH:
                problems += [f"{where}: axe {violation}" for violation in axe_violations(page)]
            if screenshots or width == WIDTHS[0]:
                page.screenshot(path=artifact_path(f"walk/{language}-{role}-{name}-{width}.png"), full_page=True,
                                caret="initial", animations="disabled")
        menu = page.locator(".menu > summary")
        if name == pages[0][0] and menu.count():
            # The open menu (the same header on every page) must fit the narrowest phone too.
            page.set_viewport_size({"width": WIDTHS[0], "height": 844})
            menu.click()
            where = f"{language} {role} open menu at {WIDTHS[0]} px"
            problems += [f"{where}: {problem}" for problem in layout_problems(page)]
            page.screenshot(path=artifact_path(f"walk/{language}-{role}-menu-open-{WIDTHS[0]}.png"),
                            animations="disabled")
            menu.click()
    return problems


def sign_in_by_field_ids(page, email: str) -> None:
    """The sign-in form in any language."""
    page.goto("/auth/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/support/"))


@pytest.fixture
def world(make_user):
    for email, role, name in USERS.values():
        make_user(email, role, name=name)
    return read_db(seed_world)


@pytest.mark.parametrize("role", ["anonymous", "clinician", "support", "admin"])
def test_every_page_fits_phones_and_passes_axe(app, world, new_page, role):
    # Every browser here is 127.0.0.1; the patient page's per-address limit is not what this checks.
    app.config["PATIENT_PAGE_RATE_LIMIT"] = "1000 per minute"
    require(axe_missing_reason())
    pages = pages_for(role, world)
    problems = []
    for language, locale in (("en", "en-US"), ("de", "de-DE")):
        page = new_page(locale=locale)
        page.context.add_init_script(path=str(AXE_FILE))
        page.set_default_timeout(TIMEOUT_MS)
        if role != "anonymous":
            sign_in_by_field_ids(page, USERS[role][0])
        problems += walk(page, role, language, pages, screenshots=language == "en")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
