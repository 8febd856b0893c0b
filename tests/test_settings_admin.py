"""Admin → Clinic settings: a field per setting, checked by the setting's own rules, saved all or
nothing, audited, admins only."""
import re

import pytest

from smilepass import settings
from smilepass.models import AuditLog, Setting

from .case_helpers import ROOT, in_db

VALID = {"tooth_notation": "universal", "warranty_days": "120"}


def subset(values):
    """The settings this file is about (the service-level ones are in test_sla_settings.py)."""
    return {key: values[key] for key in VALID}


def changes():
    return in_db(lambda: [(r.detail, r.actor_email) for r in AuditLog.select()
                          .where(AuditLog.action == "setting_change").order_by(AuditLog.id)])


@pytest.mark.parametrize("method", ["get", "post"])
def test_only_admins_see_the_settings(app, clinician, support, method):
    for browser in (clinician, support):
        response = getattr(browser, method)("/admin/settings", **({"data": VALID} if method == "post" else {}))
        assert response.status_code == 404
    anonymous = app.test_client().get("/admin/settings")
    assert anonymous.status_code in (302, 303) and "/auth/login" in anonymous.headers["Location"]
    assert in_db(lambda: Setting.select().count()) == 0
    assert 'href="/admin/settings"' not in clinician.get("/cases/").get_data(as_text=True)


def test_form_shows_every_setting_with_its_current_value(admin):
    page = admin.get("/admin/settings")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'href="/admin/settings"' in html and 'aria-current="page"' in html
    for definition in settings.DEFINITIONS.values():
        assert str(definition.label) in html  # labels may be lazy translations
    assert re.search(r'<option selected value="fdi">FDI \(two digits: 11–48\)</option>', html)
    assert '<option value="universal">Universal (1–32)</option>' in html
    assert re.search(r'<input[^>]*id="warranty_days"[^>]*value="90"', html)
    assert "Default: 90." in html and "Default: FDI (two digits: 11–48)." in html


def test_admin_saves_settings_and_each_change_is_audited(admin):
    admin.get("/admin/settings")
    response = admin.post("/admin/settings", VALID)
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/settings")
    assert subset(in_db(lambda: settings.get_all())) == {"tooth_notation": "universal", "warranty_days": 120}
    assert changes() == [("tooth_notation: fdi -> universal", ROOT), ("warranty_days: 90 -> 120", ROOT)]
    html = admin.get("/admin/settings").get_data(as_text=True)
    assert "Settings saved." in html and re.search(r'<option selected value="universal">', html)

    assert admin.post("/admin/settings", VALID).status_code == 303
    assert "Nothing changed." in admin.get("/admin/settings").get_data(as_text=True)
    assert len(changes()) == 2


@pytest.mark.parametrize("field, value, message", [
    ("warranty_days", "ninety", "Enter a whole number."),
    ("warranty_days", "0", "Enter a number from 1 to 3650."),
    ("warranty_days", "", "Enter a whole number."),
    ("tooth_notation", "palmer", "Choose one of: fdi, universal."),
])
def test_bad_value_is_explained_next_to_its_field_and_nothing_is_saved(admin, field, value, message):
    admin.get("/admin/settings")
    response = admin.post("/admin/settings", {**VALID, field: value})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'<p class="field-error" id="{field}-error">{message}</p>' in html
    assert 'aria-invalid="true"' in html
    # The other, valid field was not saved either.
    assert subset(in_db(lambda: settings.get_all())) == {"tooth_notation": "fdi", "warranty_days": 90}
    assert changes() == []


def test_settings_need_csrf(admin):
    admin.get("/admin/settings")
    assert admin.post("/admin/settings", VALID, csrf=False).status_code == 400
    assert in_db(lambda: Setting.select().count()) == 0
