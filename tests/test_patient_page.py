"""The patient's status page: a private link per shipment, minimum necessary content, no caching,
no referrer, the same 404 for every bad token, revocation, 30 days after delivery, rate limit."""
import datetime as dt
import random
import re
import secrets

import pytest

from smilepass import create_app
from smilepass.auth.tokens import token_hash
from smilepass.cases import shipments
from smilepass.models import AuditLog, PatientLink, Shipment

from .case_helpers import ADA, SAM, in_db, make_case, make_shipment, reload, user
from .parts import part_missing

LINK = re.compile(r'value="http://localhost(/p/[A-Za-z0-9_-]{43})"')


def ip():
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


@pytest.fixture
def case(clinician, support):
    return make_case(number="AL-5531", patient_name="Jane Roe", dob=dt.date(1990, 4, 2),
                     notes="Sensitive clinical note", clinic_patient_id="CL-PAT-88")


@pytest.fixture
def shipment(case):
    return make_shipment(case, phases="Aligners 1–12")


def new_link(browser, shipment_id, htmx=False):
    response = browser.post(f"/cases/shipments/{shipment_id}/links", htmx=htmx)
    if not htmx:
        assert response.status_code == 303
        response = browser.get(response.headers["Location"])
    html = response.get_data(as_text=True)
    return LINK.search(html).group(1), html


def test_owner_makes_a_link_shown_once_with_a_qr_code(clinician, shipment):
    path, html = new_link(clinician, shipment.id)
    link = in_db(lambda: PatientLink.get())
    token = path.rsplit("/", 1)[1]
    assert link.token_hash == token_hash(token) and token not in link.token_hash
    assert f'src="/cases/links/{link.id}/qr.svg"' in html
    qr = clinician.get(f"/cases/links/{link.id}/qr.svg")
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml" and qr.data.lstrip().startswith(b"<svg")
    assert b'xmlns="http://www.w3.org/2000/svg"' in qr.data and b"<script" not in qr.data
    assert clinician.get(f"/cases/links/{link.id}/qr.svg").status_code == 404  # once
    # Shown once: the shipment page no longer carries the URL.
    assert token not in clinician.get(f"/cases/shipments/{shipment.id}").get_data(as_text=True)
    assert in_db(lambda: AuditLog.select().where(AuditLog.action == "patient_link_create").count()) == 1


def test_htmx_link_fragment(support, shipment):
    path, html = new_link(support, shipment.id, htmx=True)
    assert "<html" not in html and path.startswith("/p/")


def test_page_shows_only_the_minimum(clinician, support, shipment, app):
    path, _ = new_link(clinician, shipment.id)
    in_db(lambda: shipments.advance(reload(Shipment, shipment.id), user(SAM), carrier="UPS",
                                    tracking_number="1Z999AA10123456784"))
    response = clinician.client.get(path, environ_base={"REMOTE_ADDR": ip()})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert app.config["CLINIC_NAME"] in html
    for step in ("In Production", "In Transit", "Delivered"):
        assert step in html
    assert "UPS" in html and "1Z999AA10123456784" in html and "Expected delivery" in html
    for secret in ("Jane Roe", "Roe", "1990", "AL-5531", "Sensitive", "CL-PAT-88", "Aligners 1–12",
                   "Dr.Ada", ADA, "htmx", "<script", "csrf", "style="):
        assert secret not in html, secret


def test_anonymous_visitor_needs_no_login(app, shipment, clinician):
    path, _ = new_link(clinician, shipment.id)
    stranger = app.test_client()
    response = stranger.get(path, environ_base={"REMOTE_ADDR": ip()})
    assert response.status_code == 200 and "Your aligners" in response.get_data(as_text=True)


def test_carrier_date_shown_instead_of_window(clinician, shipment):
    path, _ = new_link(clinician, shipment.id)
    in_db(lambda: shipments.advance(reload(Shipment, shipment.id), user(SAM), carrier="DHL",
                                    tracking_number="JD014600", carrier_eta=dt.date(2026, 11, 27)))
    html = clinician.client.get(path, environ_base={"REMOTE_ADDR": ip()}).get_data(as_text=True)
    assert "27 Nov 2026" in html and "carrier&#39;s date" not in html and "between" not in html


def _same_404(response, reference):
    assert response.status_code == 404
    assert response.get_data() == reference.get_data()
    assert response.headers["Cache-Control"] == "no-store"


def test_revoked_link_is_404(clinician, shipment):
    path, _ = new_link(clinician, shipment.id)
    link = in_db(lambda: PatientLink.get())
    assert clinician.client.get(path, environ_base={"REMOTE_ADDR": ip()}).status_code == 200
    clinician.get(f"/cases/shipments/{shipment.id}")
    assert clinician.post(f"/cases/links/{link.id}/revoke").status_code == 303
    reference = clinician.client.get("/p/" + secrets.token_urlsafe(32), environ_base={"REMOTE_ADDR": ip()})
    _same_404(clinician.client.get(path, environ_base={"REMOTE_ADDR": ip()}), reference)
    assert reload(PatientLink, link.id).revoked_at is not None


@pytest.fixture
def delivery_day(time_machine):
    """Requested before the sign-in fixtures, so their sessions start at the same fixed moment."""
    time_machine.move_to(dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC), tick=False)
    return time_machine


def test_thirty_days_after_delivery_is_404(delivery_day, clinician, shipment):
    path, _ = new_link(clinician, shipment.id)
    sam = user(SAM)
    in_db(lambda: shipments.advance(reload(Shipment, shipment.id), sam, carrier="UPS", tracking_number="1Z"))
    in_db(lambda: shipments.advance(reload(Shipment, shipment.id), sam))
    assert clinician.client.get(path, environ_base={"REMOTE_ADDR": ip()}).status_code == 200
    # Delivered Wednesday 2 December 10:00 UTC: the link works until 1 January 10:00 UTC, not after.
    delivery_day.shift(dt.timedelta(days=29, hours=23, minutes=59, seconds=59))
    assert clinician.client.get(path, environ_base={"REMOTE_ADDR": ip()}).status_code == 200
    delivery_day.shift(dt.timedelta(seconds=1))
    reference = clinician.client.get("/p/nope", environ_base={"REMOTE_ADDR": ip()})
    _same_404(clinician.client.get(path, environ_base={"REMOTE_ADDR": ip()}), reference)


def test_a_thousand_random_tokens_are_all_404(app, clinician, shipment):
    new_link(clinician, shipment.id)
    app.config["PATIENT_PAGE_RATE_LIMIT"] = "100000 per minute"
    stranger = app.test_client()
    address = ip()
    reference = stranger.get("/p/x", environ_base={"REMOTE_ADDR": address})
    for _ in range(1000):
        response = stranger.get("/p/" + secrets.token_urlsafe(32), environ_base={"REMOTE_ADDR": address})
        assert response.status_code == 404 and response.get_data() == reference.get_data()


def test_other_clinicians_links_are_404(clinician, other_clinician, shipment):
    new_link(clinician, shipment.id)
    link = in_db(lambda: PatientLink.get())
    assert other_clinician.post(f"/cases/links/{link.id}/revoke").status_code == 404
    assert other_clinician.get(f"/cases/links/{link.id}/qr.svg").status_code == 404
    assert other_clinician.post(f"/cases/shipments/{shipment.id}/links").status_code == 404
    assert reload(PatientLink, link.id).revoked_at is None
    assert in_db(lambda: PatientLink.select().count()) == 1


@pytest.fixture
def live_redis(redis_url):
    from redis import Redis

    conn = Redis.from_url(redis_url)
    try:
        conn.ping()
    except Exception as exc:
        part_missing(f"Redis is not reachable at {redis_url}: {exc}")
    return conn


def test_rate_limited_per_address(app, clinician, shipment, live_redis):
    path, _ = new_link(clinician, shipment.id)
    app.config["PATIENT_PAGE_RATE_LIMIT"] = "5 per minute"
    stranger = app.test_client()
    address = ip()
    codes = [stranger.get(path, environ_base={"REMOTE_ADDR": address}).status_code for _ in range(7)]
    assert codes == [200] * 5 + [429, 429]
    limited = stranger.get(path, environ_base={"REMOTE_ADDR": address})
    assert "Try again in a minute" in limited.get_data(as_text=True) and b"htmx" not in limited.data
    # Another address is not affected; the counts live in Redis.
    assert stranger.get(path, environ_base={"REMOTE_ADDR": ip()}).status_code == 200
    assert any(address in key.decode() for key in live_redis.scan_iter("*smilepass-patient*"))


def test_fails_open_when_redis_is_down(tmp_path, database_url, clinician, shipment, caplog):
    path, _ = new_link(clinician, shipment.id)
    down = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "i2"), "SECRET_KEY": "k",
                       "DATABASE_URL": database_url, "REDIS_URL": "redis://127.0.0.1:1/0",
                       "UPLOAD_DIR": str(tmp_path / "u2")})
    response = down.test_client().get(path, environ_base={"REMOTE_ADDR": ip()})
    assert response.status_code == 200
    assert any(r.levelname in ("WARNING", "ERROR") and "flask-limiter" in r.name for r in caplog.records), \
        [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
