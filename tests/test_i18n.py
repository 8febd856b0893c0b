"""Language preference (My Account → Language) and the German catalogue: the switch changes the
whole UI, is kept per user and across sign-ins, "browser default" follows Accept-Language, stored
values stay English, and every marked string has a German translation."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from smilepass.models import AuditLog, Ticket, User

from .conftest import query
from .test_cases_helpers import make_case, make_shipment

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "smilepass" / "translations"
GERMAN_PO = TRANSLATIONS / "de" / "LC_MESSAGES" / "messages.po"
GERMAN_MO = GERMAN_PO.with_suffix(".mo")


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogue():
    """`make setup` compiles the catalogue; a bare pytest run gets it compiled here (the .mo is
    build output, not in git)."""
    if not GERMAN_MO.exists() or GERMAN_MO.stat().st_mtime < GERMAN_PO.stat().st_mtime:
        with GERMAN_PO.open("rb") as source:
            catalog = read_po(source, locale="de")
        with GERMAN_MO.open("wb") as target:
            write_mo(target, catalog)


def choose(browser, language):
    browser.get("/account/language")
    return browser.post("/account/language", {"language": language})


def html(response):
    return response.get_data(as_text=True)


def test_language_page_offers_the_languages_and_browser_default(clinician):
    page = html(clinician.get("/account/language"))
    assert '<html lang="en">' in page
    assert "Browser default" in page and "Deutsch" in page and "English" in page
    # The header links to it from the account area.
    assert 'href="/account/language"' in html(clinician.get("/support/"))


def test_switching_to_german_changes_the_support_page(clinician, new_ticket):
    new_ticket(clinician)
    response = choose(clinician, "de")
    assert response.status_code == 303
    # The confirmation is already in the new language.
    assert "Ihre Sprache ist gespeichert." in html(clinician.get(response.headers["Location"]))
    page = html(clinician.get("/support/"))
    assert '<html lang="de">' in page
    assert "Neue Anfrage stellen" in page and "Ihre Tickets" in page
    assert '<span class="status status-open">Offen</span>' in page  # the status cell of the table
    assert '<span class="priority priority-normal">Normal</span>' in page
    assert "Scan- &amp; Dateiprüfung" in page  # the category, stored in English, shown in German
    assert "Your tickets" not in page and "Open a new request" not in page
    # The htmx fragment of the table speaks German too.
    fragment = html(clinician.get("/support/?sort=status", htmx=True))
    assert "Ihre Tickets" in fragment and ">Offen</span>" in fragment
    # Stored values are unchanged.
    ticket = query(lambda: Ticket.select().get())
    assert ticket.category == "Scan & File Validation"
    assert query(lambda: User.get(User.email == "dr.ada@clinic.test").language) == "de"


def test_the_change_is_audited(clinician):
    choose(clinician, "de")
    row = query(lambda: AuditLog.get(AuditLog.action == "language_change"))
    assert row.actor_email == "dr.ada@clinic.test"


def test_form_errors_and_flash_messages_are_translated(clinician):
    choose(clinician, "de")
    response = clinician.post("/support/tickets", {"title": "", "description": "", "priority": "0",
                                                   "category": "Case Submission"},
                              content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Geben Sie der Anfrage einen Titel." in html(response)
    page = html(clinician.get("/account/notifications"))
    assert "E-Mail-Benachrichtigungen" in page and "Der Support antwortet auf meine Anfrage" in page


def test_the_choice_is_kept_across_sign_out_and_sign_in(clinician):
    choose(clinician, "de")
    clinician.logout()
    # Signed out, nothing says German: the sign-in page follows the browser (English here).
    assert "Sign in to SmilePass" in html(clinician.get("/auth/login"))
    clinician.login("dr.ada@clinic.test")
    assert "Ihre Tickets" in html(clinician.get("/support/"))


def test_the_preference_is_per_user(clinician, other_clinician):
    choose(clinician, "de")
    assert "Ihre Tickets" in html(clinician.get("/support/"))
    page = html(other_clinician.get("/support/"))
    assert "Your tickets" in page and '<html lang="en">' in page


def test_browser_default_follows_accept_language(clinician):
    choose(clinician, "de")
    assert choose(clinician, "").status_code == 303
    assert query(lambda: User.get(User.email == "dr.ada@clinic.test").language) == ""
    assert "Ihre Tickets" in html(clinician.get("/support/", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}))
    assert "Your tickets" in html(clinician.get("/support/", headers={"Accept-Language": "fr-FR,en;q=0.5"}))
    assert "Your tickets" in html(clinician.get("/support/"))  # no header: the source language


def test_a_chosen_language_wins_over_the_browser(clinician):
    choose(clinician, "en")
    page = html(clinician.get("/support/", headers={"Accept-Language": "de"}))
    assert "Your tickets" in page


def test_signed_out_pages_follow_the_browser(client):
    page = html(client.get("/auth/login", headers={"Accept-Language": "de"}))
    assert "Bei SmilePass anmelden" in page and '<html lang="de">' in page


def test_the_patient_page_follows_the_patients_browser(clinician, client):
    case = make_case(number="AL-7001", patient_name="Jane Roe")
    shipment = make_shipment(case, phases="Aligners 1–12")
    response = clinician.post(f"/cases/shipments/{shipment.id}/links")
    path = re.search(r'value="http://localhost(/p/[A-Za-z0-9_-]{43})"',
                     html(clinician.get(response.headers["Location"]))).group(1)
    page = html(client.get(path, headers={"Accept-Language": "de"}, environ_base={"REMOTE_ADDR": "10.9.8.7"}))
    assert '<html lang="de">' in page and "Ihre Aligner" in page and "In Produktion" in page
    assert "Voraussichtliche Zustellung zwischen" in page
    page = html(client.get(path, environ_base={"REMOTE_ADDR": "10.9.8.7"}))
    assert "Your aligners" in page and "Expected delivery between" in page


def test_the_form_needs_csrf(clinician):
    clinician.get("/account/language")
    response = clinician.post("/account/language", {"language": "de"}, csrf=False)
    assert response.status_code == 400
    assert query(lambda: User.get(User.email == "dr.ada@clinic.test").language) == ""


def test_an_unknown_language_is_refused(clinician):
    response = choose(clinician, "xx")
    assert response.status_code == 422
    assert "Not a valid choice" in html(response)
    assert query(lambda: User.get(User.email == "dr.ada@clinic.test").language) == ""


def test_the_page_needs_sign_in(client):
    response = client.get("/account/language")
    assert response.status_code in (302, 303)


def test_audit_details_and_notifications_stay_in_english(clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    choose(support, "de")
    support.get(f"/support/tickets/{ticket_id}")
    response = support.post(f"/support/tickets/{ticket_id}/status", {"status": "1"})
    assert response.status_code == 303
    row = query(lambda: AuditLog.get(AuditLog.action == "ticket_status"))
    assert row.detail == "Open -> In Progress"
    # The clinician's in-app notification is written in the source language.
    assert "is now In Progress" in html(clinician.get("/account/notifications/inbox"))


# The catalogue ----------------------------------------------------------------------------------

def _german():
    with GERMAN_PO.open("rb") as source:
        return read_po(source, locale="de")


def test_the_german_catalogue_is_complete():
    untranslated, fuzzy = [], []
    for message in _german():
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            untranslated.append(message.id)
        if message.fuzzy:
            fuzzy.append(message.id)
    assert untranslated == []
    assert fuzzy == []


def test_every_marked_string_is_in_the_catalogue(tmp_path):
    """Re-extract from the code and templates as `make translations` does: a string marked after the
    last catalogue update fails here until it is extracted and translated."""
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
                    "-k", "lazy_gettext", "-o", str(pot), "."],
                   cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as source:
        extracted = {message.id for message in read_po(source) if message.id}
    german = {message.id for message in _german() if message.id}
    missing = sorted(map(str, extracted - german))
    assert missing == [], "run `make translations` and translate:\n" + "\n".join(missing)


def test_placeholders_match_in_every_translation():
    """A translation that drops or renames a %(name)s would fail at render time."""
    for message in _german():
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(re.findall(r"%\((\w+)\)", ids[-1]))
        for string in strings:
            # A singular may leave %(num)d out ("eine Zeile"); every other name must be kept.
            assert set(re.findall(r"%\((\w+)\)", string)) | ({"num"} & wanted) >= wanted, message.id
