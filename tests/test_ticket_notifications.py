"""Ticket notifications: who is told about replies, status changes, assignments, escalations and
SLA warnings, in the app (always) and by mail (per choice), and what the mails never carry."""
import datetime as dt

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry

from smilepass.models import EscalationRole, Notification, OutboxMail, Status, Ticket, User, UserPreference
from smilepass.notifications import events
from smilepass.service import sla, warnings
from smilepass.support import notices

from .case_helpers import ADA, SAM, in_db, reload, user
from .conftest import free_port, run_worker

SECRET = "Patient Jane Roe told us privately"


def mails(to=None):
    query = OutboxMail.select().order_by(OutboxMail.id)
    if to:
        query = query.where(OutboxMail.to_addr == to)
    return in_db(lambda: list(query))


def notes(email, kind=None):
    query = Notification.select().where(Notification.user == user(email).id).order_by(Notification.id)
    if kind:
        query = query.where(Notification.kind == kind)
    return in_db(lambda: list(query))


def reply(browser, ticket_id, body, internal=False):
    browser.get(f"/support/tickets/{ticket_id}")
    data = {"body": body, **({"internal": "y"} if internal else {})}
    response = browser.post(f"/support/tickets/{ticket_id}/replies", data, content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)


def set_status(browser, ticket_id, status):
    browser.get(f"/support/tickets/{ticket_id}")
    response = browser.post(f"/support/tickets/{ticket_id}/status", {"status": str(status.value)})
    assert response.status_code == 303, response.get_data(as_text=True)


def turn_off(email, event_key):
    in_db(lambda: UserPreference.set_value(user(email), "notify:" + event_key, "off"))


def call(app, fn):
    """Model functions run in a request-less app context, like the worker and the CLI."""
    with app.app_context():
        return in_db(fn)


def test_registry_lists_ticket_events_per_role(clinician, support):
    assert [e.key for e in events.events_for(user(ADA))] == [
        "shipment_updates", "ticket_replies", "ticket_status", "rescan_requested"]
    assert [e.key for e in events.events_for(user(SAM))] == [
        "ticket_assigned", "ticket_escalated", "sla_warning"]
    html = support.get("/account/notifications").get_data(as_text=True)
    assert "A request is assigned to me" in html and "Support replies" not in html


def test_staff_reply_tells_the_clinician_and_quotes_it(app, clinician, support, new_ticket):
    ticket_id = new_ticket(clinician, title="Scan for Jane Roe rejected")
    reply(support, ticket_id, "Please export the scan again as binary STL.")
    [mail] = mails(ADA)
    number = in_db(lambda: Ticket.get_by_id(ticket_id).number)
    assert number in mail.subject
    assert "> Please export the scan again as binary STL." in mail.body
    assert app.config["BASE_URL"].rstrip("/") + f"/support/tickets/{ticket_id}" in mail.body
    assert "Jane" not in mail.subject + mail.body  # the title is free text and never mailed
    [note] = notes(ADA, "ticket_replies")
    assert note.ticket_id == ticket_id and note.read_at is None
    assert notes(SAM) == [] and mails(SAM) == []  # nothing to the actor


def test_internal_note_tells_the_clinician_nothing(app, clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    reply(support, ticket_id, SECRET, internal=True)
    assert mails() == [] and notes(ADA) == []
    reply(support, ticket_id, "We are on it.")
    assert all(SECRET not in m.body for m in mails())
    assert all(SECRET not in n.text for n in notes(ADA))
    assert len(mails(ADA)) == 1


def test_clinician_reply_mails_nobody(app, clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    reply(clinician, ticket_id, "More details: it fails at 80%.")
    assert mails() == []
    assert notes(ADA) == []


def test_reply_mail_follows_the_choice_but_in_app_always(app, clinician, support, new_ticket):
    turn_off(ADA, "ticket_replies")
    ticket_id = new_ticket(clinician)
    reply(support, ticket_id, "Looked at it.")
    assert mails(ADA) == []
    assert len(notes(ADA, "ticket_replies")) == 1


def test_status_change_tells_the_requester(app, clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    set_status(support, ticket_id, Status.RESOLVED)
    [mail] = mails(ADA)
    assert "Resolved" in mail.subject and "from Open to Resolved" in mail.body
    assert [n.kind for n in notes(ADA)] == ["ticket_status"]
    # The clinician reopening their own ticket tells nobody (they are the actor; staff are not subscribed).
    set_status(clinician, ticket_id, Status.IN_PROGRESS)
    assert len(mails()) == 1 and len(notes(ADA)) == 1


def test_status_mail_off_keeps_the_in_app_notification(app, clinician, support, new_ticket):
    turn_off(ADA, "ticket_status")
    ticket_id = new_ticket(clinician)
    set_status(support, ticket_id, Status.WAITING)
    assert mails() == [] and len(notes(ADA, "ticket_status")) == 1


def test_assignment_tells_the_assignee_not_the_actor(app, clinician, support, make_user, new_ticket):
    ticket_id = new_ticket(clinician, title="Jane Roe's aligners")
    make_user("kim@smilepass.test", "support")
    kim, sam = user("kim@smilepass.test"), user(SAM)
    ticket = reload(Ticket, ticket_id)
    assert call(app, lambda: notices.ticket_assigned(ticket, kim, sam)) is True
    [mail] = mails("kim@smilepass.test")
    assert ticket.number in mail.subject and "Jane" not in mail.subject + mail.body
    assert f"/support/tickets/{ticket_id}" in mail.body and "by Sam" in mail.body
    assert len(notes("kim@smilepass.test", "ticket_assigned")) == 1
    # Taking a ticket yourself: no notification, no mail.
    assert call(app, lambda: notices.ticket_assigned(ticket, sam, sam)) is False
    assert notes(SAM) == [] and mails(SAM) == []


def test_assignment_mail_off(app, clinician, support, new_ticket):
    turn_off(SAM, "ticket_assigned")
    ticket = reload(Ticket, new_ticket(clinician))
    call(app, lambda: notices.ticket_assigned(ticket, user(SAM), None))
    assert mails() == [] and len(notes(SAM, "ticket_assigned")) == 1


def test_escalation_tells_the_owner_with_the_reason_in_app_only(app, clinician, support, make_user, new_ticket):
    make_user("lee@smilepass.test", "support")
    in_db(lambda: User.update(escalation_role=EscalationRole.SUPERVISOR.value)
          .where(User.email == "lee@smilepass.test").execute())
    ticket = reload(Ticket, new_ticket(clinician))
    ticket.escalation_level = 1
    lee, sam = user("lee@smilepass.test"), user(SAM)
    call(app, lambda: notices.ticket_escalated(ticket, lee, sam, "Clinic threatens to cancel"))
    [note] = notes("lee@smilepass.test", "ticket_escalated")
    assert "Support supervisor" in note.text and "Clinic threatens to cancel" in note.text
    [mail] = mails("lee@smilepass.test")
    assert ticket.number in mail.subject and "threatens" not in mail.body
    # No named owner: everyone holding the level's role; an automatic escalation has no actor.
    call(app, lambda: notices.ticket_escalated(ticket, None, None, "Response deadline passed"))
    assert len(notes("lee@smilepass.test", "ticket_escalated")) == 2
    assert "automatically" in notes("lee@smilepass.test")[-1].text
    assert notes(SAM) == []


def test_escalation_to_yourself_tells_nobody(app, clinician, support, new_ticket):
    ticket = reload(Ticket, new_ticket(clinician))
    ticket.escalation_level = 1
    sam = user(SAM)
    assert call(app, lambda: notices.ticket_escalated(ticket, sam, sam, "mine")) is False
    assert notes(SAM) == [] and mails() == []


def test_notifications_from_a_rolled_back_change_vanish(app, clinician, support, new_ticket):
    from smilepass.db import database

    ticket = reload(Ticket, new_ticket(clinician))

    def assign_then_fail():
        with database.atomic():
            notices.ticket_assigned(ticket, user(SAM), None)
            raise RuntimeError("the assignment failed")
    with pytest.raises(RuntimeError):
        call(app, assign_then_fail)
    assert notes(SAM) == [] and mails() == []


# SLA warnings ----------------------------------------------------------------------------------

def due_soon_stub(monkeypatch, tickets_due):
    monkeypatch.setattr(sla, "due_soon", lambda now, within: [reload(Ticket, t) for t in tickets_due],
                        raising=False)


@pytest.fixture
def fixed_clock(time_machine):
    """Requested before the sign-in fixtures, so their sessions start at the same fixed moment."""
    time_machine.move_to(dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC), tick=False)
    return time_machine


def test_sla_warning_once_per_deadline(fixed_clock, app, clinician, support, make_user, new_ticket, monkeypatch):
    make_user("lee@smilepass.test", "support")
    in_db(lambda: User.update(escalation_role=EscalationRole.SUPERVISOR.value)
          .where(User.email == "lee@smilepass.test").execute())
    ticket_id = new_ticket(clinician)
    now = dt.datetime(2026, 12, 2, 10, 0)
    in_db(lambda: Ticket.update(next_due_at=now + dt.timedelta(minutes=30)).where(Ticket.id == ticket_id).execute())
    due_soon_stub(monkeypatch, [ticket_id])
    # Unassigned: every supervisor hears about it.
    assert call(app, lambda: warnings.sla_warnings(now)) == 1
    [note] = notes("lee@smilepass.test", "sla_warning")
    assert "first response" in note.text
    assert len(mails("lee@smilepass.test")) == 1
    # The periodic job runs again: the same deadline is not warned about twice.
    assert call(app, lambda: warnings.sla_warnings(now + dt.timedelta(minutes=5))) == 0
    assert len(notes("lee@smilepass.test", "sla_warning")) == 1
    # The first reply sets a new (resolution) deadline; it is warned about again, to the assignee.
    in_db(lambda: Ticket.update(assignee=user(SAM).id).where(Ticket.id == ticket_id).execute())
    fixed_clock.shift(dt.timedelta(minutes=1))
    reply(support, ticket_id, "Looking into it.")
    fixed_clock.shift(dt.timedelta(minutes=1))
    later = dt.datetime(2026, 12, 2, 10, 2)
    assert call(app, lambda: warnings.sla_warnings(later)) == 1
    [warning] = notes(SAM, "sla_warning")
    assert "resolution" in warning.text
    assert len(notes("lee@smilepass.test", "sla_warning")) == 1


def test_sla_warning_window_comes_from_the_settings(app, clinician, new_ticket):
    with app.app_context():
        assert in_db(warnings.sla_warning_window) == dt.timedelta(minutes=60)
        assert isinstance(in_db(lambda: warnings.sla_warnings()), int)


# Delivery --------------------------------------------------------------------------------------

def test_reply_mail_is_delivered_by_the_worker(app, clinician, support, new_ticket, redis_conn, smtp_sink):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_sink.port)
    ticket_id = new_ticket(clinician)
    reply(support, ticket_id, SECRET, internal=True)
    reply(support, ticket_id, "Fixed on our side, please retry.")
    # Handed to the worker only after the reply's transaction committed.
    assert Queue("default", connection=redis_conn).count == 1
    result = run_worker(app)
    assert result.returncode == 0, result.stderr
    [envelope] = smtp_sink.messages
    assert envelope.rcpt_tos == [ADA]
    assert b"Fixed on our side, please retry." in envelope.content and b"privately" not in envelope.content


def test_failed_send_is_shown_to_admins_and_retried(app, clinician, support, admin, new_ticket, redis_conn, smtp_sink):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port())  # nothing listens here yet
    ticket_id = new_ticket(clinician)
    reply(support, ticket_id, "Please retry the upload.")
    assert run_worker(app).returncode == 0
    [mail] = mails(ADA)
    assert mail.sent_at is None and mail.attempts == 1 and "ConnectionRefused" in mail.last_error
    assert ScheduledJobRegistry("default", connection=redis_conn).get_job_ids() == [f"mail-{mail.id}"]
    outbox = admin.get("/admin/outbox").get_data(as_text=True)
    assert "failed 1×" in outbox and mail.subject in outbox

    # The SMTP server is back; the periodic sweep hands the mail over again and it is sent.
    app.config.update(SMTP_PORT=smtp_sink.port)
    redis_conn.flushdb()  # the scheduled retry would wait for minutes; the sweep is what we test
    Queue("default", connection=redis_conn).enqueue("smilepass.notifications.jobs.sweep_outbox")
    assert run_worker(app).returncode == 0
    assert len(smtp_sink.messages) == 1 and smtp_sink.messages[0].rcpt_tos == [ADA]
    mail = reload(OutboxMail, mail.id)
    assert mail.sent_at is not None and mail.attempts == 2 and mail.last_error == ""


def test_enterprise_request_tells_its_account_manager(app, clinician, support, new_ticket):
    from smilepass.models import Clinic, ClinicMember, Tier

    def enterprise():
        clinic = Clinic.create(name="Bright Smiles", tier=Tier.ENTERPRISE.value, account_manager=user(SAM).id)
        ClinicMember.create(user=user(ADA).id, clinic=clinic.id)
    in_db(enterprise)
    ticket_id = new_ticket(clinician, title="Jane Roe's refinement")
    [note] = notes(SAM, "ticket_assigned")
    assert note.ticket_id == ticket_id and note.text.startswith(f"SP-{ticket_id:06d} was assigned to you:")
    [mail] = mails(SAM)
    assert "is assigned to you" in mail.subject and "Jane" not in mail.subject + mail.body
