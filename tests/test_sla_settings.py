"""Service-level settings on Admin → Clinic settings: time zone, business hours and days, targets per
priority; each checked beside its field, saved all or nothing, audited."""
import datetime as dt
import re

import pytest

from smilepass import settings
from smilepass.models import AuditLog
from smilepass.service import sla

from .case_helpers import ROOT, in_db

SLA_KEYS = ["time_zone", "business_hours", "business_days"] + [
    f"{kind}_hours_{name}" for name in ("urgent", "high", "normal", "low") for kind in ("response", "resolution")]


def current_form(html) -> dict:
    """The form as the page filled it in, to post back with a change."""
    values = dict(re.findall(r'<input[^>]*id="([a-z_]+)"[^>]*value="([^"]*)"', html))
    values["tooth_notation"] = "fdi"
    return values


def test_settings_page_lists_the_service_level_settings_with_their_defaults(admin):
    html = admin.get("/admin/settings").get_data(as_text=True)
    for key in SLA_KEYS:
        assert str(settings.DEFINITIONS[key].label) in html  # labels are lazy translations
    form = current_form(html)
    assert form["time_zone"] == "UTC"
    assert form["business_hours"] == "08:00-17:00"
    assert form["business_days"] == "Mon-Fri"
    assert [form[f"response_hours_{p}"] for p in ("urgent", "high", "normal", "low")] == ["4", "8", "24", "72"]
    assert [form[f"resolution_hours_{p}"] for p in ("urgent", "high", "normal", "low")] == ["24", "48", "120", "240"]
    assert "Default: 08:00-17:00." in html and "Default: Mon-Fri." in html


def test_admin_changes_the_schedule_and_the_clocks_use_it(admin):
    form = current_form(admin.get("/admin/settings").get_data(as_text=True))
    form.update(time_zone="Europe/Berlin", business_hours="09:30 - 18:00", business_days="mon, tue, thu",
                response_hours_urgent="2")
    response = admin.post("/admin/settings", form)
    assert response.status_code == 303
    plan = in_db(sla.plan)
    assert plan.schedule.time_zone == "Europe/Berlin"
    assert (plan.schedule.opens, plan.schedule.closes) == (dt.time(9, 30), dt.time(18, 0))
    assert plan.schedule.weekdays == frozenset({0, 1, 3})
    assert plan.response_target(3) == dt.timedelta(hours=2)
    details = in_db(lambda: [r.detail for r in AuditLog.select().where(AuditLog.action == "setting_change")
                             .order_by(AuditLog.id)])
    assert details == ["time_zone: UTC -> Europe/Berlin", "business_hours: 08:00-17:00 -> 09:30-18:00",
                       "business_days: Mon-Fri -> Mon, Tue, Thu", "response_hours_urgent: 4 -> 2"]
    html = admin.get("/admin/settings").get_data(as_text=True)
    assert current_form(html)["business_days"] == "Mon, Tue, Thu"
    assert in_db(lambda: AuditLog.select().where(AuditLog.actor_email == ROOT).count()) >= 4


@pytest.mark.parametrize("field, value, message", [
    ("time_zone", "Mars/Olympus_Mons", "Enter a time zone name such as Europe/Berlin or America/New_York."),
    ("time_zone", "", "Enter a time zone name such as Europe/Berlin or America/New_York."),
    ("business_hours", "17:00-08:00", "The closing time must be after the opening time."),
    ("business_hours", "09:00-09:00", "The closing time must be after the opening time."),
    ("business_hours", "9 to 5", "Give opening and closing time as HH:MM-HH:MM, e.g. 08:00-17:00."),
    ("business_hours", "25:00-26:00", "Give the opening time as HH:MM, e.g. 08:00."),
    ("business_days", "Mon-Funday", "Unknown day &#39;Funday&#39;: use Mon, Tue, Wed, Thu, Fri, Sat, Sun."),
    ("business_days", "Fri-Mon", "Write the range &#39;Fri-Mon&#39; from the earlier day to the later one."),
    ("business_days", " , ", "Name at least one business day, e.g. Mon-Fri."),
    ("response_hours_urgent", "0", "Enter a number from 1 to 2000."),
    ("resolution_hours_low", "soon", "Enter a whole number."),
])
def test_bad_service_level_setting_is_explained_beside_its_field(admin, field, value, message):
    form = current_form(admin.get("/admin/settings").get_data(as_text=True))
    response = admin.post("/admin/settings", {**form, field: value, "warranty_days": "100"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'<p class="field-error" id="{field}-error">{message}</p>' in html
    # Nothing was saved, not even the valid change beside it.
    assert in_db(lambda: settings.get("warranty_days")) == 90
    assert in_db(lambda: AuditLog.select().where(AuditLog.action == "setting_change").count()) == 0


def test_default_time_zone_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SMILEPASS_TIME_ZONE", "America/Chicago")
    assert settings._default_time_zone() == "America/Chicago"
    monkeypatch.delenv("SMILEPASS_TIME_ZONE")
    assert settings._default_time_zone() == "UTC"
    monkeypatch.setenv("SMILEPASS_TIME_ZONE", "Nowhere/Special")
    with pytest.raises(RuntimeError, match="SMILEPASS_TIME_ZONE"):
        settings._default_time_zone()


def test_stored_values_read_back_as_typed_values():
    hours = settings.DEFINITIONS["business_hours"].parse("8:00-16:30")
    assert str(hours) == "08:00-16:30" and settings.DEFINITIONS["business_hours"].parse(str(hours)) == hours
    days = settings.DEFINITIONS["business_days"].parse("Monday-Wednesday, Sat")
    assert str(days) == "Mon, Tue, Wed, Sat" and days.weekdays == frozenset({0, 1, 2, 5})
    assert str(settings.DEFINITIONS["business_days"].parse("tue-sat")) == "Tue-Sat"
