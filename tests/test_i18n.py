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

from .case_helpers import make_case, make_shipment
from .conftest import query
from .test_insights import RANGE, csv_rows, practice  # noqa: F401 (practice is a fixture)
from .test_scans import HTML_PAGE, file_scan

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


# Practice Insights, scan refusals and error pages in German ---------------------------------------

def test_insights_speak_german(practice, admin):  # noqa: F811 (practice is the imported fixture)
    choose(admin, "de")
    page = html(admin.get("/insights/", query_string=RANGE))
    backlog = page.split('id="figure-backlog-category"', 1)[1].split("</section>", 1)[0]
    # Categories are stored in English and shown in the reader's language.
    assert "Abrechnung &amp; Versicherung" in backlog and "Technische Probleme &amp; Fehler" in backlog
    assert "Billing" not in backlog and "Technical Issues" not in backlog
    # Week labels under the columns name the month in German.
    assert ">02 März</text>" in page and ">09 März</text>" in page and "Mar</text>" not in page
    assert "innerhalb der 90 Prozent dieser Tickets" in page
    assert "8 Tage" in page  # the average production-to-delivery time (6 and 10 days)
    # The CSV follows the reader's language in its headers and labels; numbers and ISO dates stay.
    rows = csv_rows(admin.get("/insights/backlog-category.csv", query_string=RANGE))
    assert rows[0] == ["Kategorie", "Tickets"]
    assert ["Abrechnung & Versicherung", "2"] in rows
    rows = csv_rows(admin.get("/insights/delivery.csv", query_string=RANGE))
    assert rows[1:] == [["2026-03-02", "1", "6.0"], ["2026-03-09", "1", "10.0"]]


def test_day_counts_use_the_plural_rules(app):
    from flask_babel import force_locale

    from smilepass.insights.figures import day_count
    with app.test_request_context():
        assert [day_count(v) for v in (1, 1.0, 2, 1.5)] == ["1 day", "1 day", "2 days", "1.5 days"]
        with force_locale("de"):
            assert [day_count(v) for v in (1, 1.0, 2, 1.5)] == ["1 Tag", "1 Tag", "2 Tage", "1,5 Tage"]


@pytest.mark.parametrize("payload, name, german", [
    (HTML_PAGE, "upper.stl", "Diese Datei ist eine HTML-Seite (vielleicht wurde eine Fehlerseite statt des "
                             "Downloads gespeichert), kein STL- oder PLY-Scan."),
    (b"PK\x03\x04" + b"\x00" * 200, "upper.stl", "Diese Datei ist ein ZIP-Archiv, kein STL- oder PLY-Scan."),
    (b"solid empty\nendsolid empty\n", "upper.stl", "Die ASCII-STL-Datei enthält keine Facetten (keine Dreiecke)."),
    (b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
     b"element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n",
     "lower.ply", "Fläche 0 verweist auf Eckpunkt 7, die Datei hat aber nur 3 Eckpunkte (betroffene Flächen: 1)"),
])
def test_scan_refusals_are_shown_in_german(clinician, payload, name, german):
    choose(clinician, "de")
    response = file_scan(clinician, payload, name=name, title="Titel bleibt")
    assert response.status_code == 422
    page = html(response)
    assert german in page and 'value="Titel bleibt"' in page
    assert "not an STL or PLY scan" not in page and "refers to vertex" not in page


def test_mesh_refusals_stay_english_outside_the_web(tmp_path):
    """The mesh package (and its command line) is Flask-free and writes English; numbers keep their
    English thousands separators there and get the reader's in the web layer."""
    from smilepass.mesh import MeshRejected, inspect_file
    path = tmp_path / "scan.stl"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)
    with pytest.raises(MeshRejected) as refused:
        inspect_file(path)
    assert str(refused.value) == "This file is a PNG image, not an STL or PLY scan."
    assert str(MeshRejected("The PLY file declares %(vertices)s vertices; SmilePass accepts at most %(limit)s.",
                            vertices=12_000_000, limit=10_000_000)) == \
        "The PLY file declares 12,000,000 vertices; SmilePass accepts at most 10,000,000."


def test_stored_scan_failures_and_web_refusals_are_translated_when_shown(app):
    from flask_babel import force_locale

    from smilepass.mesh import MeshRejected
    from smilepass.scans.text import rejection_text, stored_reason
    refused = MeshRejected("The PLY file declares %(vertices)s vertices; SmilePass accepts at most %(limit)s.",
                           vertices=12_000_000, limit=10_000_000)
    with app.test_request_context(), force_locale("de"):
        assert rejection_text(refused) == \
            "Die PLY-Datei deklariert 12.000.000 Eckpunkte; SmilePass nimmt höchstens 10.000.000 an."
        # What the worker stored in English: fixed sentences are translated, others shown as stored.
        assert stored_reason("The STL file is truncated.") == "Die STL-Datei ist unvollständig."
        assert stored_reason("The repair job was lost (the worker or Redis restarted). Staff can run the repair "
                             "again.").startswith("Der Reparaturauftrag ist verloren gegangen")
        assert stored_reason("The repair failed: boom") == "The repair failed: boom"
        assert stored_reason("") == ""


def test_verdict_reasons_are_shown_in_german(app, tmp_path):
    """The repair keeps its reason as templates and numbers in the report; the scan panel rebuilds it
    in the reader's language (the stored English sentence stays for scans repaired before)."""
    import numpy as np
    from flask_babel import force_locale

    from smilepass.mesh import RepairOptions, repair
    from smilepass.mesh import synthetic as syn
    from smilepass.scans.text import verdict_reason_text

    from .meshgen import write_binary_stl
    V, F = syn.arch(24_000, seed=3)
    Vd, Fd = syn.add_debris(V, F, np.random.default_rng(3), count=4)
    result = repair(write_binary_stl(tmp_path / "debris.stl", Vd, Fd), tmp_path, "out", options=RepairOptions(),
                    preview=False)
    assert result.verdict == "repaired"
    assert result.verdict_reason == "Removed 4 debris fragments."  # English where it is stored
    V2 = np.concatenate([V, V + np.array([80.0, 0, 0], np.float32)])
    two = repair(write_binary_stl(tmp_path / "two.stl", V2, np.concatenate([F, F + len(V)])), tmp_path, "two",
                 options=RepairOptions(), preview=False)
    with app.test_request_context():
        assert verdict_reason_text(result.verdict_reason, result.report) == result.verdict_reason
        with force_locale("de"):
            german = verdict_reason_text(result.verdict_reason, result.report)
            assert german == "4 lose Fragmente entfernt."
            assert verdict_reason_text(two.verdict_reason, two.report) == (
                "Der Scan besteht aus 2 großen getrennten Teilen; ein Kieferscan sollte eine zusammenhängende "
                "Oberfläche sein.")
            assert verdict_reason_text("Stored before.", {"format": "stl-binary"}) == "Stored before."


def test_error_pages_speak_the_readers_language(clinician):
    response = clinician.post("/healthz")
    assert response.status_code == 405
    assert "This address cannot be used that way." in html(response)
    choose(clinician, "de")
    response = clinician.post("/healthz")
    assert response.status_code == 405
    page = html(response)
    assert "Diese Adresse lässt sich so nicht verwenden." in page and '<html lang="de">' in page
    assert "not allowed" not in page.lower()
    # An error the app describes itself keeps its own (translated) text.
    response = clinician.get("/insights/tickets.csv", query_string={"from": "nope"})
    assert response.status_code == 400 and "Geben Sie ein Datum" in html(response)


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
                    "-k", "lazy_gettext", "-k", "MeshRejected", "-k", "Phrase", "-k", "Sentence", "-o", str(pot), "."],
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
