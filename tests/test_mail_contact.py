"""Answers by email to Contact us messages (#16): a supervisor's answer goes out threaded under the message's
own root with a reply address whose token (a kind of its own) is made for that message and the sender's
address; the sender's answer to it, by `flask mail receive` or the IMAP poller, joins the message's thread in
the Contact inbox and reopens the message. Everything a ticket reply refuses is refused here too, without
answering anyone. The mails are .eml files in tests/mail/ (contact_reply_*.eml and the shared bad ones)."""
import datetime as dt
import email
import uuid
from email import policy
from pathlib import Path

import pytest

from smilepass.contact import urgent
from smilepass.mailin import receive
from smilepass.models import AuditLog, ContactReply, ContactRequest, InboundMail, OutboxMail, User
from smilepass.notifications import mailthread

from .case_helpers import ADA, in_db
from .conftest import Browser, run_worker

FIXTURES = Path(__file__).parent / "mail"
NOW = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)
SENDER = "billing@lovelace-ortho.test"  # nobody's account: Contact us is open to anyone
LEAD = "lead@smilepass.test"
ANSWER = "We refunded the second charge; it shows on your next statement."
OUTLOOK_TEXT = "Danke. Die zweite Abbuchung ist aber noch nicht zurückgebucht – bitte prüfen Sie das."


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def answered(app, make_user):
    return answered_message(app, make_user)


def answered_message(app, make_user) -> int:
    """A Contact us message, answered by a supervisor in the app and marked handled. Returns its id."""
    make_user(LEAD, "support", name="Lea Lead")
    in_db(lambda: User.update(escalation_role="supervisor").where(User.email == LEAD).execute())

    def make():
        contact = urgent.submit("Billing team", SENDER, "billing", "We were charged twice for case 1042.", None,
                                "127.0.0.1")
        urgent.answer(contact, User.by_email(LEAD), ANSWER, handled=True)
        return contact.id
    with app.app_context():
        return in_db(make)


def answer_mail(contact_id) -> OutboxMail:
    return in_db(lambda: ContactReply.get((ContactReply.contact == contact_id) & ~ContactReply.from_sender).mail)


def contact_eml(app, name, contact_id, sender=SENDER, token_for=SENDER, message_id=None) -> bytes:
    replacements = {
        "{REPLY_TO}": mailthread.contact_reply_address(app.config, contact_id, token_for),
        "{FROM}": sender,
        "{MESSAGE_ID}": message_id or f"<{uuid.uuid4().hex}@mail.lovelace-ortho.test>",
        "{ROOT}": mailthread.contact_thread_root(app.config, contact_id),
        "{IN_REPLY_TO}": answer_mail(contact_id).message_id,
        "{CONTACT}": str(contact_id),
    }
    raw = (FIXTURES / name).read_bytes()
    for placeholder, value in replacements.items():
        raw = raw.replace(placeholder.encode(), value.encode())
    return raw


def take(app, raw: bytes) -> receive.Outcome:
    with app.app_context():
        return in_db(lambda: receive.take(raw, app.config))


def from_sender(contact_id) -> list[ContactReply]:
    return in_db(lambda: list(ContactReply.select().where((ContactReply.contact == contact_id)
                                                         & ContactReply.from_sender).order_by(ContactReply.id)))


def contact(contact_id) -> ContactRequest:
    return in_db(lambda: ContactRequest.get_by_id(contact_id))


def audit_rows(action) -> list[AuditLog]:
    return in_db(lambda: list(AuditLog.select().where(AuditLog.action == action).order_by(AuditLog.id)))


def outbox_count() -> int:
    return in_db(lambda: OutboxMail.select().count())


def lead_browser(app) -> Browser:
    browser = Browser(app)
    browser.login(LEAD)
    return browser


@pytest.fixture
def mailing(app, smtp_sink, redis_conn):
    """SMTP on (a local sink) before the message is written, so its mails go to the worker."""
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_sink.port)
    return smtp_sink


def test_the_answer_goes_out_threaded_and_the_senders_reply_comes_back(app, mailing, answered):
    """The whole way round: the answer mailed by a real worker, its headers read back with `email`, the
    sender's reply to exactly those headers taken by `flask mail receive`, and shown to the supervisors."""
    mail = answer_mail(answered)
    result = run_worker(app)
    assert result.returncode == 0, result.stderr
    [sent] = [m for m in mailing.messages if m.rcpt_tos == [SENDER]]
    message = email.message_from_bytes(sent.content, policy=policy.default)
    root = mailthread.contact_thread_root(app.config, answered)
    assert message["Message-ID"] == mail.message_id and message["Message-ID"] != root
    assert message["In-Reply-To"] == root and message["References"] == root
    assert message["Subject"] == f"Your urgent message #{answered} to SmilePass"
    reply_to = message["Reply-To"]
    local, _, domain = reply_to.partition("@")
    assert local.startswith(f"support+c{answered}.") and domain == mailthread.mail_domain(app.config)
    assert mailthread.token_of(app.config, reply_to) == mailthread.contact_token("test-secret-key", answered, SENDER)
    body = message.get_content()
    assert ANSWER in body and "You can answer this mail" in body
    assert "charged twice" not in body  # the sender's own words are not sent back

    # The sender answers that mail (Outlook, German, quoting the answer), through the MTA pipe.
    raw = contact_eml(app, "contact_reply_outlook.eml", answered).replace(
        mailthread.contact_reply_address(app.config, answered, SENDER).encode(), reply_to.encode())
    cli = app.test_cli_runner().invoke(args=["mail", "receive"], input=raw)
    assert cli.exit_code == 0 and cli.output.strip() == "accepted: contact message", cli.output
    [reply] = from_sender(answered)
    assert reply.body == OUTLOOK_TEXT and reply.author_id is None and reply.mail_id is None
    # Handled before, open again now; audited; the supervisors are told by id and link, not by the text.
    assert contact(answered).handled_at is None and contact(answered).handled_by_id is None
    [by_mail] = audit_rows("contact_reply_mail")
    assert by_mail.object_type == "contactrequest" and by_mail.object_id == str(answered)
    assert [row.object_id for row in audit_rows("contact_reopened")] == [str(answered)]
    [row] = in_db(lambda: list(InboundMail.select()))
    assert (row.status, row.contact_id, row.ticket_id, row.sender) == ("accepted", answered, None, SENDER)
    assert row.authentication == "dkim=pass dmarc=pass spf=pass"
    [notice] = in_db(lambda: list(OutboxMail.select().where(OutboxMail.subject.contains("the sender answered"))))
    assert notice.to_addr == LEAD and f"/contact/inbox/{answered}" in notice.body
    assert "Abbuchung" not in notice.body

    lead = lead_browser(app)
    page = lead.get(f"/contact/inbox/{answered}").get_data(as_text=True)
    assert OUTLOOK_TEXT in page and "answered by email" in page and ANSWER in page
    assert page.index(ANSWER) < page.index(OUTLOOK_TEXT)  # one thread, oldest first
    assert "Von:" not in page and "Betreff" not in page  # the quoted answer was cut off
    assert f'href="/contact/inbox/{answered}"' in lead.get("/contact/inbox").get_data(as_text=True)  # open again


def test_reply_from_apple_mail_with_a_german_quote_header(app, answered):
    outcome = take(app, contact_eml(app, "contact_reply_apple.eml", answered))
    assert (outcome.status, outcome.exit_code) == ("accepted", 0)
    [reply] = from_sender(answered)
    assert reply.body == "Thank you, I see the refund now.\nCould you also send a corrected invoice?"


def test_a_second_reply_keeps_an_open_message_open(app, answered):
    take(app, contact_eml(app, "contact_reply_apple.eml", answered))
    take(app, contact_eml(app, "contact_reply_outlook.eml", answered))
    assert len(from_sender(answered)) == 2 and contact(answered).handled_at is None
    assert len(audit_rows("contact_reopened")) == 1 and len(audit_rows("contact_reply_mail")) == 2


def test_markup_in_a_reply_reaches_the_page_as_text(app, answered):
    raw = contact_eml(app, "contact_reply_apple.eml", answered).replace(
        b"Thank you, I see the refund now.", b"Thanks <img src=x onerror=alert(1)> <b>bold</b>")
    assert take(app, raw).status == "accepted"
    page = lead_browser(app).get(f"/contact/inbox/{answered}").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page


def test_attachments_are_not_taken_and_say_so(app, answered):
    raw = contact_eml(app, "pdf_attachment.eml", answered)
    assert take(app, raw).status == "accepted"
    [reply] = from_sender(answered)
    assert reply.body.startswith("The lab form is attached.")
    assert 'Attachment "lab-form.pdf" was not taken: files cannot be sent to a contact message.' in reply.body


def no_trace(contact_id, mails_before):
    """Nothing joined the thread, the message stays handled, nobody was mailed (no backscatter)."""
    assert from_sender(contact_id) == []
    assert contact(contact_id).handled_at is not None
    assert outbox_count() == mails_before


def other_message(app, contact_id) -> bytes:
    """The sender's genuine token for this message, pointed at another message: the HMAC no longer fits."""
    def make():
        return urgent.submit("Someone", "someone@elsewhere.test", "security", "Another message.", None, "").id
    with app.app_context():
        other = in_db(make)
    raw = contact_eml(app, "contact_reply_apple.eml", contact_id)
    return raw.replace(f"+c{contact_id}.".encode(), f"+c{other}.".encode())


FORGERIES = {
    "other-sender": (lambda app, c: contact_eml(app, "contact_reply_apple.eml", c, sender="mallory@evil.test"),
                     "sender is not the address the contact message came from"),
    "token-for-other-address": (lambda app, c: contact_eml(app, "contact_reply_apple.eml", c,
                                                           sender="mallory@evil.test", token_for="mallory@evil.test"),
                                "contact reply token not genuine"),
    "token-of-other-message": (other_message, "contact reply token not genuine"),
    "ticket-style-token": (lambda app, c: contact_eml(app, "contact_reply_apple.eml", c).replace(
        f"+c{c}.".encode(), f"+t{c}.u1.".encode()), "reply token not genuine"),
    "dmarc-fail": (lambda app, c: contact_eml(app, "dmarc_fail.eml", c), "receiving server found DMARC failed"),
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_or_misdirected_replies_are_refused_audited_and_unanswered(app, answered, name):
    make, reason = FORGERIES[name]
    raw = make(app, answered)
    mails_before = outbox_count()
    outcome = take(app, raw)
    assert (outcome.status, outcome.reason, outcome.exit_code) == ("refused", reason, 0)
    no_trace(answered, mails_before)
    [row] = audit_rows("mail_refused")
    assert row.detail == reason
    [inbound] = in_db(lambda: list(InboundMail.select()))
    assert inbound.status == "refused" and inbound.reason == reason


@pytest.mark.parametrize("name, reason", [
    ("out_of_office.eml", "Auto-Submitted: auto-replied"),
    ("bounce_dsn.eml", "empty Return-Path"),
])
def test_auto_replies_and_bounces_join_nothing(app, answered, name, reason):
    mails_before = outbox_count()
    outcome = take(app, contact_eml(app, name, answered))
    assert (outcome.status, outcome.reason) == ("ignored", reason)
    no_trace(answered, mails_before)


def huge(app, contact_id) -> bytes:
    head = contact_eml(app, "contact_reply_apple.eml", contact_id).split(b"\n\n", 1)[0]
    return head + b"\n\n" + b"x" * (30 * 1024 * 1024)


def many_parts(app, contact_id) -> bytes:
    head = contact_eml(app, "pdf_attachment.eml", contact_id).split(b"\n\n", 1)[0]
    return head + b"\n\n" + b"--mixed-boundary\nContent-Type: text/plain\n\nhi\n" * 500 + b"--mixed-boundary--\n"


@pytest.mark.parametrize("make, reason", [
    (huge, "mail too large"),
    (many_parts, "too many MIME parts"),
    (lambda app, c: contact_eml(app, "broken_mime.eml", c), "malformed MIME structure"),
    (lambda app, c: contact_eml(app, "unknown_charset.eml", c), "unknown charset"),
], ids=["30-mb", "500-parts", "broken-mime", "charset"])
def test_bad_mail_is_refused_cleanly(app, answered, make, reason):
    mails_before = outbox_count()
    outcome = take(app, make(app, answered))
    assert outcome.status == "refused" and outcome.reason.startswith(reason)
    no_trace(answered, mails_before)


def test_the_same_message_id_joins_once(app, answered):
    raw = contact_eml(app, "contact_reply_apple.eml", answered, message_id="<same-contact-1@mail.test>")
    assert take(app, raw).status == "accepted"
    assert take(app, raw).status == "duplicate"
    assert len(from_sender(answered)) == 1


def test_a_reply_with_nothing_new_is_refused(app, answered):
    raw = contact_eml(app, "contact_reply_apple.eml", answered).replace(
        b"Thank you, I see the refund now.\nCould you also send a corrected invoice?\n", b"")
    mails_before = outbox_count()
    outcome = take(app, raw)
    assert (outcome.status, outcome.reason) == ("refused", "no new text")
    no_trace(answered, mails_before)


def test_a_signed_in_sender_gets_the_answer_in_their_language(app, clinician, make_user):
    """Sent while signed in by a clinician who reads German: the answer mail is German; the token and the
    threading are the same."""
    make_user(LEAD, "support", name="Lea Lead")
    in_db(lambda: User.update(language="de").where(User.email == ADA).execute())

    def make():
        ada = User.by_email(ADA)
        contact = urgent.submit("Dr Ada", ADA, "billing", "Doppelt abgebucht.", ada, "127.0.0.1")
        return urgent.answer(contact, User.by_email(LEAD), ANSWER, handled=False).mail
    with app.app_context():
        mail = in_db(make)
    contact_id = in_db(lambda: ContactRequest.get().id)
    assert mail.subject == f"Ihre dringende Nachricht #{contact_id} an SmilePass"
    assert f"an die SmilePass-Support-Leitung geschickt haben (#{contact_id}, Problem mit Auswirkung auf die " \
        "Abrechnung):" in mail.body
    assert "Lea Lead, SmilePass-Support" in mail.body and ANSWER in mail.body
    assert "Sie können auf diese E-Mail antworten" in mail.body
    assert mail.reply_to == mailthread.contact_reply_address(app.config, contact_id, ADA)
