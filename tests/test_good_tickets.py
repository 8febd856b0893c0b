"""Good tickets: the optional "What have you tried?", nudges for what is missing (never blocking),
the browser and device from the User-Agent, and the staff-only request quality line."""
import io

import pytest
from PIL import Image

from smilepass.models import Ticket
from smilepass.support.request_quality import Quality, client_summary

from .case_helpers import in_db

CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Safari/537.36")
GOOD_DESCRIPTION = "The upload stops at 80% and then shows a red error banner."


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (20, 120, 140)).save(out, "PNG")
    return out.getvalue()


def file(browser, user_agent=CHROME_WINDOWS, htmx=False, screenshot=False, **fields):
    data = {"title": "Upload fails", "description": GOOD_DESCRIPTION, "priority": "1",
            "category": "Scan & File Validation", **fields}
    if screenshot:
        data["image"] = (io.BytesIO(png()), "shot.png")
    browser.get("/support/")
    return browser.post("/support/tickets", data, htmx=htmx, content_type="multipart/form-data",
                        headers={"User-Agent": user_agent})


def created_id(response) -> int:
    assert response.status_code == 303, response.get_data(as_text=True)
    return int(response.headers["Location"].rsplit("created=", 1)[1])


@pytest.mark.parametrize("agent, summary", [
    (CHROME_WINDOWS, "Chrome 131 on Windows"),
    (CHROME_WINDOWS + " Edg/131.0.2903.86", "Edge 131 on Windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.6 Safari/605.1.15", "Safari 17 on macOS"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.6 Mobile/15E148 Safari/604.1", "Safari 17 on iPhone"),
    ("Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0 "
     "Mobile/15E148 Safari/604.1", "Chrome 131 on iPad"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox 133 on Linux"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 "
     "Chrome/122.0.0.0 Mobile Safari/537.36", "Samsung Internet 26 on Android"),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36", "Chrome 131 on ChromeOS"),
    ("curl/8.5.0", ""),
    ("", ""),
    (None, ""),
])
def test_client_summary(agent, summary):
    assert client_summary(agent) == summary


def test_quality_summary_wording():
    assert Quality(True, True, True, False).summary() == "3 of 4 — no screenshot"
    assert Quality(True, True, True, True).summary() == "4 of 4"
    assert Quality(False, True, False, True).nudges() == ["what you tried", "your browser and device"]


def test_tried_and_client_are_recorded(clinician):
    ticket_id = created_id(file(clinician, tried="Exported the scan again."))
    ticket = in_db(lambda: Ticket.get_by_id(ticket_id))
    assert ticket.tried == "Exported the scan again." and ticket.client == "Chrome 131 on Windows"


def test_complete_request_gets_no_nudge(clinician):
    ticket_id = created_id(file(clinician, tried="Another browser.", screenshot=True))
    html = clinician.get(f"/support/?created={ticket_id}").get_data(as_text=True)
    assert "received." in html and "We could answer faster" not in html


def test_missing_parts_are_named_but_the_request_is_filed(clinician):
    response = file(clinician, user_agent="curl/8.5.0", description="Broken.")
    ticket_id = created_id(response)
    assert in_db(lambda: Ticket.select().count()) == 1
    html = clinician.get(response.headers["Location"]).get_data(as_text=True)
    assert ("We could answer faster with what you tried, what happened, your browser and device, and "
            "a screenshot.") in html
    assert f'href="/support/tickets/{ticket_id}#reply"' in html


def test_htmx_confirmation_nudges_too(clinician):
    response = file(clinician, htmx=True, tried="Restarted.")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "received." in html
    assert "We could answer faster with a screenshot." in html


def test_tried_too_long_is_an_error_beside_the_field(clinician):
    response = file(clinician, tried="x" * 501)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="tried-error"' in html
    assert in_db(lambda: Ticket.select().count()) == 0


def test_form_has_the_tried_field(clinician):
    html = clinician.get("/support/").get_data(as_text=True)
    assert '<textarea id="tried" name="tried"' in html and "What have you tried?" in html


def test_quality_line_is_for_staff_only(clinician, support):
    ticket_id = created_id(file(clinician, tried="Cleared the cache."))
    staff_page = support.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "Request quality: 3 of 4 — no screenshot" in staff_page
    assert "Cleared the cache." in staff_page and "Sent from Chrome 131 on Windows" in staff_page
    own_page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "Request quality" not in own_page and "Cleared the cache." in own_page


def test_screenshot_counts_for_quality(clinician, support):
    ticket_id = created_id(file(clinician, screenshot=True, tried="Nothing yet, sorry."))
    assert "Request quality: 4 of 4" in support.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
