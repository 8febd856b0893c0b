"""Admin → Holidays: list upcoming and past, add one or a year's list, delete; each change audited,
admins only. Business days skip holidays, so a new one moves a shipment's ETA window."""
import datetime as dt
import re

import pytest

from smilepass.models import AuditLog, Holiday, utcnow

from .case_helpers import ROOT, in_db, make_case, make_shipment


def holidays():
    return in_db(lambda: [(h.date, h.name) for h in Holiday.select().order_by(Holiday.date)])


def audited(action):
    return in_db(lambda: [(r.detail, r.actor_email) for r in AuditLog.select()
                          .where(AuditLog.action == action).order_by(AuditLog.id)])


def add(browser, date, name):
    browser.get("/admin/holidays")
    return browser.post("/admin/holidays", {"date": date, "name": name})


def test_only_admins_manage_holidays(app, clinician, support):
    in_db(lambda: Holiday.create(date=dt.date(2030, 1, 1), name="New Year"))
    hid = in_db(lambda: Holiday.get().id)
    for browser in (clinician, support):
        assert browser.get("/admin/holidays").status_code == 404
        assert browser.post("/admin/holidays", {"date": "2030-12-25", "name": "Christmas"}).status_code == 404
        assert browser.post("/admin/holidays/list", {"lines": "2030-12-26 Boxing Day"}).status_code == 404
        assert browser.post(f"/admin/holidays/{hid}/delete").status_code == 404
    anonymous = app.test_client().get("/admin/holidays")
    assert anonymous.status_code in (302, 303) and "/auth/login" in anonymous.headers["Location"]
    assert holidays() == [(dt.date(2030, 1, 1), "New Year")]


def test_add_lists_it_and_audits(admin):
    response = add(admin, "2030-12-25", "Christmas Day")
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/holidays")
    assert holidays() == [(dt.date(2030, 12, 25), "Christmas Day")]
    assert audited("holiday_add") == [("2030-12-25 Christmas Day", ROOT)]
    html = admin.get("/admin/holidays").get_data(as_text=True)
    assert "2030-12-25 (Christmas Day) is now a clinic holiday." in html
    assert "<td>Wednesday</td>" in html


def test_upcoming_and_past_are_listed_apart(admin):
    today = utcnow().date()
    for days, name in ((-400, "Long ago"), (-3, "Last week"), (0, "Today"), (30, "Next month"), (10, "Soon")):
        in_db(lambda: Holiday.create(date=today + dt.timedelta(days=days), name=name))
    html = admin.get("/admin/holidays").get_data(as_text=True)
    upcoming, past = html.split("<h2>Upcoming</h2>", 1)[1].split("<h2>Past</h2>", 1)
    names = lambda part: re.findall(r"<td>(Long ago|Last week|Today|Next month|Soon)</td>", part)  # noqa: E731
    assert names(upcoming) == ["Today", "Soon", "Next month"]
    assert names(past) == ["Last week", "Long ago"]


def test_duplicate_date_is_refused_with_a_clear_error(admin):
    assert add(admin, "2030-05-01", "Labour Day").status_code == 303
    response = add(admin, "2030-05-01", "May Day")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert '<p class="field-error" id="date-error">2030-05-01 is already a holiday (Labour Day).</p>' in html
    assert holidays() == [(dt.date(2030, 5, 1), "Labour Day")]


@pytest.mark.parametrize("date, name, field, message", [
    ("", "Christmas", "date", "Give the date (YYYY-MM-DD)."),
    ("25/12/2030", "Christmas", "date", "Give the date (YYYY-MM-DD)."),
    ("2030-12-25", "", "name", "Name the holiday."),
    ("2030-12-25", "x" * 81, "name", "Field cannot be longer than 80 characters."),
])
def test_add_errors_sit_next_to_the_field(admin, date, name, field, message):
    response = add(admin, date, name)
    assert response.status_code == 422
    assert f'<p class="field-error" id="{field}-error">{message}</p>' in response.get_data(as_text=True)
    assert holidays() == []


def test_delete_is_a_post_with_csrf_and_audited(admin):
    add(admin, "2030-12-25", "Christmas Day")
    hid = in_db(lambda: Holiday.get().id)
    admin.get("/admin/holidays")
    assert admin.post(f"/admin/holidays/{hid}/delete", csrf=False).status_code == 400
    assert admin.get(f"/admin/holidays/{hid}/delete").status_code == 405
    assert len(holidays()) == 1
    response = admin.post(f"/admin/holidays/{hid}/delete")
    assert response.status_code == 303 and holidays() == []
    assert audited("holiday_delete") == [("2030-12-25 Christmas Day", ROOT)]
    assert admin.post(f"/admin/holidays/{hid}/delete").status_code == 404


def test_adding_needs_csrf(admin):
    admin.get("/admin/holidays")
    assert admin.post("/admin/holidays", {"date": "2030-12-25", "name": "X"}, csrf=False).status_code == 400
    assert holidays() == []


def test_a_years_list_adds_new_dates_and_skips_known_ones(admin):
    add(admin, "2030-12-25", "Christmas Day")
    lines = "2030-01-01 New Year's Day\n\n2030-12-25, Christmas\n2030-12-26\tBoxing Day\n"
    response = admin.post("/admin/holidays/list", {"lines": lines})
    assert response.status_code == 303
    assert holidays() == [(dt.date(2030, 1, 1), "New Year's Day"), (dt.date(2030, 12, 25), "Christmas Day"),
                          (dt.date(2030, 12, 26), "Boxing Day")]
    html = admin.get("/admin/holidays").get_data(as_text=True)
    assert "Added 2 holidays. Already holidays, left as they were: 2030-12-25." in html
    assert len(audited("holiday_add")) == 3


def test_a_list_with_a_bad_line_adds_nothing(admin):
    admin.get("/admin/holidays")
    lines = "2030-01-01 New Year's Day\n01/05/2030 Labour Day\n2030-12-26\n2030-01-01 Again\n"
    response = admin.post("/admin/holidays/list", {"lines": lines})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for message in ("Line 2: start with the date as YYYY-MM-DD.", "Line 3: name the holiday after the date.",
                    "Line 4: 2030-01-01 appears twice."):
        assert message in html, message
    assert holidays() == []


def eta(browser, case):
    html = browser.get(f"/cases/{case.id}").get_data(as_text=True)
    return re.search(r'<dd class="eta">([^<]+)</dd>', html).group(1)


def test_a_new_holiday_moves_the_eta_window_on_the_case_page(clinician, support, admin):
    case = make_case()
    make_shipment(case, target=dt.date(2026, 11, 20))  # a Friday
    assert eta(clinician, case) == "2026-11-23 – 2026-11-26"
    assert add(admin, "2026-11-23", "Clinic closed").status_code == 303  # the Monday after
    assert eta(clinician, case) == "2026-11-24 – 2026-11-27"
    hid = in_db(lambda: Holiday.get().id)
    admin.get("/admin/holidays")
    assert admin.post(f"/admin/holidays/{hid}/delete").status_code == 303
    assert eta(clinician, case) == "2026-11-23 – 2026-11-26"
