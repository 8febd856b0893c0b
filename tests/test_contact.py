"""The urgent Contact us form: open without signing in and when signed in, CSRF, rate limits per
client address and per sender address (Redis), mail to the supervisors (admins when there are
none), and the supervisors' Contact inbox."""
import pytest

from smilepass.models import AuditLog, ContactReply, ContactRequest, OutboxMail, User

from .conftest import Browser, query, run_worker

FORM = {"name": "Dr Ada Lovelace", "email": "ada@clinic.test", "topic": "billing",
        "message": "We were charged twice for case 1042.\nPlease refund one."}


@pytest.fixture
def clean_limits(redis_conn):
    """The limiter counts in Redis; each test starts from a flushed database (redis_conn)."""
    return redis_conn


def send(browser, **changes):
    browser.get("/contact")
    return browser.post("/contact", {**FORM, **changes})


def make_supervisor(make_user, email="lead@smilepass.test"):
    make_user(email, "support")
    query(lambda: User.update(escalation_role="supervisor").where(User.email == email).execute())


def test_anonymous_sender_reaches_the_supervisors(app, client, make_user, clean_limits):
    make_supervisor(make_user)
    make_supervisor(make_user, "lead2@smilepass.test")
    make_user("root@smilepass.test", "admin")
    make_user("sam@smilepass.test", "support")
    assert 'href="/contact"' in client.get("/auth/login").get_data(as_text=True)
    response = send(client)
    assert response.status_code == 303 and response.headers["Location"].endswith("/contact/sent")
    assert "your message is with the supervisors" in client.get("/contact/sent").get_data(as_text=True)
    contact = query(lambda: ContactRequest.get())
    assert (contact.name, contact.email, contact.topic, contact.user_id) == ("Dr Ada Lovelace", "ada@clinic.test",
                                                                             "billing", None)
    assert contact.ip == "127.0.0.1" and contact.handled_at is None
    mails = query(lambda: list(OutboxMail.select().order_by(OutboxMail.id)))
    assert [m.to_addr for m in mails] == ["lead@smilepass.test", "lead2@smilepass.test"]
    assert mails[0].subject == f"Urgent contact #{contact.id}: Billing-impacting issue"
    assert "charged twice for case 1042" in mails[0].body and "/contact/inbox" in mails[0].body
    assert query(lambda: AuditLog.get(AuditLog.action == "contact_request").detail) == \
        "Billing-impacting issue from ada@clinic.test"


def test_signed_in_sender_is_prefilled_and_linked(app, clinician, make_user, clean_limits):
    make_user("root@smilepass.test", "admin")  # no supervisor: admins receive it
    page = clinician.get("/contact").get_data(as_text=True)
    assert 'value="dr.ada@clinic.test"' in page
    assert send(clinician, email="dr.ada@clinic.test", topic="security").status_code == 303
    contact = query(lambda: ContactRequest.get())
    assert contact.user_id == query(lambda: User.get(User.email == "dr.ada@clinic.test").id)
    assert [m.to_addr for m in query(lambda: list(OutboxMail.select()))] == ["root@smilepass.test"]
    # Never the general queue: no ticket was filed.
    assert "We were charged twice" not in clinician.get("/support/").get_data(as_text=True)


def test_errors_show_beside_the_fields(app, client, clean_limits):
    response = send(client, name="", email="not-an-address", topic="gossip", message="")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="name-error">Tell us your name.' in page and 'id="email-error">Enter an email address.' in page
    assert 'id="topic-error">Not a valid choice.' in page and 'id="message-error">Say what happened.' in page
    assert query(lambda: ContactRequest.select().count()) == 0


def test_post_without_csrf_token_is_refused(app, client, clean_limits):
    response = client.post("/contact", FORM, csrf=False)
    assert response.status_code == 400
    assert query(lambda: ContactRequest.select().count()) == 0


def test_honeypot_is_thanked_and_dropped(app, client, make_user, clean_limits):
    make_supervisor(make_user)
    assert send(client, website="http://spam.example").status_code == 303
    assert query(lambda: ContactRequest.select().count()) == 0
    assert query(lambda: OutboxMail.select().count()) == 0


def test_sixth_message_in_an_hour_is_refused(app, client, make_user, clean_limits):
    make_supervisor(make_user)
    # Sent back with errors does not count: it mailed nobody.
    assert send(client, message="").status_code == 422
    for n in range(5):
        assert send(client, email=f"sender{n}@clinic.test").status_code == 303
    response = send(client, email="sender9@clinic.test")
    page = response.get_data(as_text=True)
    assert response.status_code == 429 and "Too many messages for now" in page and "was not sent" in page
    assert query(lambda: ContactRequest.select().count()) == 5
    assert client.get("/contact").status_code == 200  # reading the form is not limited


def test_one_sender_address_is_limited_from_any_client(app, make_user, clean_limits):
    app.config["CONTACT_RATE_LIMIT"] = "2 per hour"
    make_supervisor(make_user)
    for n in range(2):
        other_client = Browser(app)
        other_client.get("/contact")
        response = other_client.post("/contact", FORM, environ_base={"REMOTE_ADDR": f"10.0.0.{n + 1}"})
        assert response.status_code == 303
    third = Browser(app)
    third.get("/contact")
    assert third.post("/contact", FORM, environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 429
    assert third.post("/contact", {**FORM, "email": "someone@else.test"},
                      environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 303


def test_inbox_is_for_supervisors_and_admins(app, client, clinician, support, admin, make_user, browser_for,
                                             clean_limits):
    send(client)
    for browser in (clinician, support):
        assert browser.get("/contact/inbox").status_code == 404
        assert browser.post("/contact/inbox/1/handled").status_code == 404
    assert client.get("/contact/inbox").status_code == 303  # sign in first
    lead = browser_for("lead@smilepass.test", "support")
    query(lambda: User.update(escalation_role="supervisor").where(User.email == "lead@smilepass.test").execute())
    page = lead.get("/contact/inbox").get_data(as_text=True)
    assert "charged twice for case 1042" in page and "1 open" in page and "Contact inbox</a>" in page
    assert "Contact inbox</a>" not in support.get("/support/").get_data(as_text=True)
    assert admin.get("/contact/inbox").status_code == 200


def test_mark_handled_is_audited_and_leaves_the_open_list(app, client, make_user, browser_for, clean_limits):
    send(client)
    send(client, email="ben@clinic.test", topic="escalation", message="Nobody answers SP-000012.")
    lead = browser_for("lead@smilepass.test", "support")
    query(lambda: User.update(escalation_role="supervisor").where(User.email == "lead@smilepass.test").execute())
    first, second = query(lambda: [c.id for c in ContactRequest.select().order_by(ContactRequest.id)])
    lead.get("/contact/inbox")
    assert lead.post(f"/contact/inbox/{first}/handled").status_code == 303
    fragment = lead.post(f"/contact/inbox/{second}/handled", htmx=True).get_data(as_text=True)
    assert fragment.startswith(f'<tr id="contact-{second}" class="handled">') and "Handled by Lead" in fragment
    assert "Nothing open" in lead.get("/contact/inbox").get_data(as_text=True)
    assert "Nobody answers SP-000012." in lead.get("/contact/inbox?show=all").get_data(as_text=True)
    handled = query(lambda: list(AuditLog.select().where(AuditLog.action == "contact_handled")))
    assert [a.object_id for a in handled] == [str(first), str(second)]
    # A second click changes nothing and writes no second audit row.
    lead.post(f"/contact/inbox/{first}/handled")
    assert query(lambda: AuditLog.select().where(AuditLog.action == "contact_handled").count()) == 2
    assert lead.post("/contact/inbox/999/handled").status_code == 404


# Answering in the app ------------------------------------------------------------------------------

ANSWER = "We refunded the second charge; it shows on your next statement."


def test_contact_us_is_reachable_when_signed_in(clinician):
    assert 'href="/contact"' in clinician.get("/support/").get_data(as_text=True)


def test_a_supervisor_answers_in_the_app_and_the_worker_mails_it(app, client, make_user, redis_conn, smtp_sink):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_sink.port)
    make_user("lead@smilepass.test", "support", name="Lea Lead")
    query(lambda: User.update(escalation_role="supervisor").where(User.email == "lead@smilepass.test").execute())
    send(client)
    contact = query(lambda: ContactRequest.get())
    # The supervisors' mail leads to the message, where it is answered.
    notice = query(lambda: OutboxMail.get(OutboxMail.to_addr == "lead@smilepass.test"))
    assert f"/contact/inbox/{contact.id}" in notice.body
    assert run_worker(app).returncode == 0  # the supervisors' mail goes first
    smtp_sink.messages.clear()

    lead = Browser(app)
    lead.login("lead@smilepass.test")
    inbox = lead.get("/contact/inbox").get_data(as_text=True)
    assert f'href="/contact/inbox/{contact.id}"' in inbox
    page = lead.get(f"/contact/inbox/{contact.id}").get_data(as_text=True)
    assert "charged twice for case 1042" in page and "No answer yet." in page
    assert lead.post(f"/contact/inbox/{contact.id}/answers", {"body": "  ", "handled": "y"}).status_code == 422
    response = lead.post(f"/contact/inbox/{contact.id}/answers", {"body": ANSWER, "handled": "y"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/contact/inbox/{contact.id}#answers")

    # Kept with the message, marked handled, audited; the mail waits for the worker.
    reply = query(lambda: ContactReply.get())
    assert (reply.contact_id, reply.body) == (contact.id, ANSWER)
    assert query(lambda: ContactRequest.get().handled_at) is not None
    audit = query(lambda: AuditLog.get(AuditLog.action == "contact_reply"))
    assert audit.actor_email == "lead@smilepass.test" and audit.object_id == str(contact.id)
    assert ANSWER not in audit.detail
    page = lead.get(f"/contact/inbox/{contact.id}").get_data(as_text=True)
    assert ANSWER in page and "waiting in the outbox" in page and "Handled by Lea Lead" in page
    assert "1 answer" in lead.get("/contact/inbox?show=all").get_data(as_text=True)

    result = run_worker(app)
    assert result.returncode == 0, result.stderr
    assert [envelope.rcpt_tos for envelope in smtp_sink.messages] == [["ada@clinic.test"]]
    mailed = smtp_sink.messages[0].content.decode()
    assert ANSWER in mailed and "Lea Lead, SmilePass support" in mailed
    assert f"Subject: Your urgent message #{contact.id} to SmilePass" in mailed
    assert "charged twice" not in mailed  # the sender's own words are not sent back
    assert query(lambda: OutboxMail.get_by_id(reply.mail_id).sent_at) is not None
    assert "mailed " in lead.get(f"/contact/inbox/{contact.id}").get_data(as_text=True)


def test_answers_are_for_supervisors_and_admins_and_need_csrf(app, client, clinician, support, admin, make_user,
                                                              clean_limits):
    send(client)
    contact = query(lambda: ContactRequest.get())
    for browser in (clinician, support):
        assert browser.get(f"/contact/inbox/{contact.id}").status_code == 404
        assert browser.post(f"/contact/inbox/{contact.id}/answers", {"body": ANSWER}).status_code == 404
    assert admin.get("/contact/inbox/999999").status_code == 404
    assert admin.post(f"/contact/inbox/{contact.id}/answers", {"body": ANSWER}, csrf=False).status_code == 400
    assert query(lambda: ContactReply.select().count()) == 0
    # An admin may answer; leaving "Mark handled" unticked keeps the message open.
    admin.get(f"/contact/inbox/{contact.id}")
    assert admin.post(f"/contact/inbox/{contact.id}/answers", {"body": ANSWER}).status_code == 303
    assert query(lambda: ContactRequest.get().handled_at) is None
    assert query(lambda: OutboxMail.select().where(OutboxMail.to_addr == "ada@clinic.test").count()) == 1
