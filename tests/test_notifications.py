"""Email notifications: the event registry, My Account → Email notifications, and the shipment mails
(who gets them, what they say and do not say, written with the change and handed to the worker only
after it commits)."""
import datetime as dt
import io
import re

import pytest
from rq import Queue

from smilepass.cases import shipments
from smilepass.cases.tracking_import import apply_import, parse_import
from smilepass.db import database
from smilepass.models import AuditLog, OutboxMail, Shipment, User, UserPreference
from smilepass.notifications import events, outbox

from .case_helpers import ADA, BOB, ROOT, SAM, in_db, make_case, reload, user
from .conftest import run_worker

PATIENT = {"patient_name": "Jane Roe", "dob": dt.date(1990, 4, 2)}


def mails(to=None):
    query = OutboxMail.select().order_by(OutboxMail.id)
    if to:
        query = query.where(OutboxMail.to_addr == to)
    return in_db(lambda: list(query))


def ship(support, case, phases="Aligners 1–12", target="2026-11-20") -> Shipment:
    support.get(f"/cases/{case.id}")
    response = support.post(f"/cases/{case.id}/shipments", {"phases": phases, "target_ship_date": target})
    assert response.status_code == 303, response.get_data(as_text=True)
    return in_db(lambda: Shipment.select().where(Shipment.case == case.id).order_by(Shipment.id.desc()).get())


def to_transit(support, shipment, carrier="UPS", tracking="1Z999AA10123456784", eta=""):
    response = support.post(f"/cases/shipments/{shipment.id}/advance",
                            {"to": "in_transit", "carrier": carrier, "tracking_number": tracking, "carrier_eta": eta})
    assert response.status_code == 303, response.get_data(as_text=True)


def assert_no_patient_data(mail):
    text = mail.subject + "\n" + mail.body
    for secret in ("Jane", "Roe", "1990-04-02", "1990"):
        assert secret not in text, secret


# Registry and preferences ------------------------------------------------------------------------

def test_shipment_updates_apply_to_clinicians_and_default_on(clinician, support, admin):
    ada, sam, root = user(ADA), user(SAM), user(ROOT)
    event = events.EVENTS["shipment_updates"]
    assert event.default is True and event.audience == events.CLINICIAN
    assert [e.key for e in events.events_for(ada)] == ["shipment_updates", "ticket_replies", "ticket_status",
                                                       "rescan_requested"]
    staff_events = ["ticket_assigned", "ticket_escalated", "sla_warning"]  # see test_ticket_notifications.py
    assert [e.key for e in events.events_for(sam)] == staff_events
    assert [e.key for e in events.events_for(root)] == staff_events
    assert in_db(lambda: events.wants(ada, "shipment_updates"))
    assert not in_db(lambda: events.wants(sam, "shipment_updates"))


def test_clinician_turns_shipment_mails_off_and_on(clinician):
    page = clinician.get("/account/notifications")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'href="/account/notifications"' in html  # the header link, next to Password
    assert "My patients&#39; shipments change state or get tracking" in html
    assert re.search(r'<input checked id="shipment_updates" name="shipment_updates" type="checkbox"', html)

    # Left on: this test is about shipments.
    ticket_events = {"ticket_replies": "y", "ticket_status": "y", "rescan_requested": "y"}
    off = clinician.post("/account/notifications", ticket_events)
    assert off.status_code == 303 and off.headers["Location"].endswith("/account/notifications")
    assert in_db(lambda: UserPreference.get_value(user(ADA), "notify:shipment_updates")) == "off"
    assert not in_db(lambda: events.wants(user(ADA), "shipment_updates"))
    html = clinician.get("/account/notifications").get_data(as_text=True)
    assert "Your email notifications are saved." in html
    assert not re.search(r'<input checked id="shipment_updates"', html)

    assert clinician.post("/account/notifications", {"shipment_updates": "y", **ticket_events}).status_code == 303
    assert in_db(lambda: events.wants(user(ADA), "shipment_updates"))
    rows = in_db(lambda: [(r.detail, r.actor_email, r.object_id) for r in AuditLog.select()
                          .where(AuditLog.action == "notification_preferences").order_by(AuditLog.id)])
    ada_id = str(user(ADA).id)
    assert rows == [("shipment_updates: on -> off", ADA, ada_id), ("shipment_updates: off -> on", ADA, ada_id)]

    # Saving the same choice again changes and records nothing.
    assert clinician.post("/account/notifications", {"shipment_updates": "y", **ticket_events}).status_code == 303
    assert "Nothing changed." in clinician.get("/account/notifications").get_data(as_text=True)
    assert in_db(lambda: AuditLog.select().where(AuditLog.action == "notification_preferences").count()) == 2


def test_preferences_need_csrf_and_sign_in(app, clinician):
    refused = clinician.post("/account/notifications", {}, csrf=False)
    assert refused.status_code == 400
    assert in_db(lambda: events.wants(user(ADA), "shipment_updates"))
    anonymous = app.test_client().get("/account/notifications")
    assert anonymous.status_code == 303 and "/auth/login" in anonymous.headers["Location"]


def test_staff_see_only_staff_events(support):
    html = support.get("/account/notifications").get_data(as_text=True)
    assert "shipments change state" not in html and "A request is assigned to me" in html
    assert support.post("/account/notifications", {"ticket_assigned": "y", "ticket_escalated": "y",
                                                   "sla_warning": "y"}).status_code == 303
    assert in_db(lambda: UserPreference.select().count()) == 0


# Shipment mails ----------------------------------------------------------------------------------

def test_each_step_mails_the_treating_clinician_without_patient_data(app, clinician, other_clinician, support):
    case = make_case(**PATIENT)
    shipment = ship(support, case)
    to_transit(support, shipment, eta="2026-11-26")
    assert support.post(f"/cases/shipments/{shipment.id}/advance", {"to": "delivered"}).status_code == 303

    sent = mails()
    assert [m.to_addr for m in sent] == [ADA, ADA, ADA]  # never Bob, never the support user
    assert [m.subject for m in sent] == ["Case C-1001: shipment In Production", "Case C-1001: shipment In Transit",
                                         "Case C-1001: shipment Delivered"]
    created, transit, delivered = (m.body for m in sent)
    base = app.config["BASE_URL"].rstrip("/")
    assert "A new shipment was created and is In Production." in created
    assert "Expected delivery: between 2026-11-23 and 2026-11-26 (estimate)" in created
    for line in ("Shipment update for case C-1001.", "The shipment is now In Transit.", "Phases: Aligners 1–12",
                 "State: In Transit", "Carrier: UPS", "Tracking number: 1Z999AA10123456784",
                 "Expected delivery: 2026-11-26 (carrier's date)", f"{base}/cases/{case.id}",
                 f"{base}/account/notifications"):
        assert line in transit, line
    assert f"Delivered: {reload(Shipment, shipment.id).delivered_at:%Y-%m-%d}" in delivered
    for mail in sent:
        assert_no_patient_data(mail)
        assert mail.sent_at is None  # no SMTP configured here: it waits in the outbox for an admin


def test_no_mail_when_the_clinician_turned_it_off(clinician, support):
    clinician.get("/account/notifications")
    assert clinician.post("/account/notifications", {}).status_code == 303
    shipment = ship(support, make_case(**PATIENT))
    to_transit(support, shipment)
    assert mails() == []


def test_no_mail_to_an_inactive_account(clinician, support):
    in_db(lambda: User.update(is_active=False).where(User.email == ADA).execute())
    shipment = ship(support, make_case(**PATIENT))
    to_transit(support, shipment)
    assert mails() == []


def test_no_mail_about_your_own_change(app, clinician):
    ada = user(ADA)
    with app.app_context():
        assert in_db(lambda: outbox.notify("shipment_updates", ada, lambda: ("s", "b"), actor=ada)) is None
        assert in_db(lambda: outbox.notify("shipment_updates", ada, lambda: ("s", "b"))) is not None


def test_reopen_mails_the_clinician(clinician, support, admin):
    shipment = ship(support, make_case(**PATIENT))
    to_transit(support, shipment)
    support.post(f"/cases/shipments/{shipment.id}/advance", {"to": "delivered"})
    admin.get(f"/cases/shipments/{shipment.id}")
    reason = "Carrier returned the parcel to Jane Roe's old address"
    assert admin.post(f"/cases/shipments/{shipment.id}/reopen", {"reason": reason}).status_code == 303
    last = mails()[-1]
    assert last.to_addr == ADA and last.subject == "Case C-1001: shipment In Transit"
    assert "An administrator took the shipment back from Delivered to In Transit." in last.body
    assert "old address" not in last.body  # the admin's free-text reason stays in the app
    assert_no_patient_data(last)


def test_carrier_date_from_a_worker_or_cli_has_an_absolute_link(app, clinician, support):
    """No request here (as in a worker or a CLI command): the link comes from BASE_URL."""
    shipment = ship(support, make_case(**PATIENT))
    app.config["BASE_URL"] = "https://clinic.example/"
    with app.app_context():
        in_db(lambda: shipments.set_carrier_eta(reload(Shipment, shipment.id), user(SAM), dt.date(2026, 11, 27)))
    last = mails()[-1]
    assert "The carrier's delivery date changed." in last.body
    assert "Expected delivery: 2026-11-27 (carrier's date)" in last.body
    assert f"https://clinic.example/cases/{shipment.case_id}\n" in last.body


def upload(browser, text):
    browser.get("/shipments/import")
    return browser.post("/shipments/import", {"file": (io.BytesIO(text.encode()), "tracking.csv")},
                        content_type="multipart/form-data")


def test_import_of_three_rows_sends_three_mails(clinician, other_clinician, support):
    cases = [make_case(number="IM-1", **PATIENT), make_case(number="IM-2", **PATIENT),
             make_case(BOB, number="IM-3", patient_name="Bo Vik", dob=dt.date(1985, 1, 1))]
    for case in cases:
        ship(support, case)
    before = len(mails())
    csv = ("case number,carrier,tracking number,shipped date\n"
           "IM-1,UPS,1Z1,2026-01-05\nIM-2,DHL,JD2,2026-01-05\nIM-3,UPS,1Z3,2026-01-06\n")
    response = upload(support, csv)
    assert response.status_code == 200 and "Imported 3 rows." in response.get_data(as_text=True)
    new = mails()[before:]
    assert sorted((m.to_addr, m.subject) for m in new) == [
        (ADA, "Case IM-1: shipment In Transit"), (ADA, "Case IM-2: shipment In Transit"),
        (BOB, "Case IM-3: shipment In Transit")]
    assert "Tracking number: JD2" in next(m.body for m in new if "IM-2" in m.subject)


def test_an_import_that_rolls_back_leaves_no_mail(app, clinician, support):
    first, second = ship(support, make_case(number="IM-1")), ship(support, make_case(number="IM-2"))
    before = len(mails())
    with app.app_context():
        results = in_db(lambda: parse_import(b"IM-1,UPS,1Z1,2026-01-05\nIM-2,DHL,JD2,2026-01-05\n"))
        # The second row's shipment moves on between the check and the import: the whole import
        # is refused, and the first row's mail goes with it.
        in_db(lambda: shipments.advance(reload(Shipment, second.id), user(SAM), carrier="DHL", tracking_number="X"))
        with pytest.raises(shipments.ShipmentRefused, match="Line 2"):
            in_db(lambda: apply_import(results, user(SAM)))
    assert reload(Shipment, first.id).state == "in_production"
    assert [m.subject for m in mails()[before:]] == ["Case IM-2: shipment In Transit"]  # the move in between


# Handing mail to the worker ----------------------------------------------------------------------

def test_jobs_are_queued_only_after_the_transaction_commits(app, clinician, support, redis_conn):
    app.config["SMTP_HOST"] = "127.0.0.1"
    shipment = ship(support, make_case(**PATIENT))
    queue = Queue("default", connection=redis_conn)
    assert queue.count == 1  # the "created" mail
    with app.app_context(), database.connection_context():
        with database.atomic():
            shipments.set_carrier_eta(reload(Shipment, shipment.id), user(SAM), dt.date(2026, 11, 27))
            assert queue.count == 1  # written, but not handed over while the transaction is open
        assert outbox.hand_over() == 1
    assert queue.count == 2
    assert sorted(job.id for job in queue.jobs) == sorted(f"mail-{m.id}" for m in mails())


def test_worker_delivers_the_import_mails(app, clinician, support, redis_conn, smtp_sink):
    for number in ("IM-1", "IM-2", "IM-3"):
        ship(support, make_case(number=number, **PATIENT))
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_sink.port)
    upload(support, "IM-1,UPS,1Z1,2026-01-05\nIM-2,UPS,1Z2,2026-01-05\nIM-3,UPS,1Z3,2026-01-05\n")
    assert Queue("default", connection=redis_conn).count == 3
    result = run_worker(app)
    assert result.returncode == 0, result.stderr
    assert len(smtp_sink.messages) == 3 and {tuple(m.rcpt_tos) for m in smtp_sink.messages} == {(ADA,)}
    assert all(b"Jane" not in m.content and b"In Transit" in m.content for m in smtp_sink.messages)
    transit = [m for m in mails() if "In Transit" in m.subject]
    assert len(transit) == 3 and all(m.sent_at is not None for m in transit)
