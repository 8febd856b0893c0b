"""Outgoing mail about a ticket threads (#16): a stored Message-ID per mail, the ticket's thread root in
In-Reply-To and References, `[SP-000042]` subjects, a Reply-To address whose token cannot be guessed or
reused for another ticket or user, and Auto-Submitted so auto-responders stay quiet."""
import email
from email import policy

from smilepass.models import OutboxMail, Status, Ticket
from smilepass.notifications import mailthread

from .case_helpers import ADA, in_db, user
from .conftest import run_worker
from .test_ticket_notifications import mails, reply, set_status

CONFIG = {"SECRET_KEY": "test-secret-key", "MAIL_FROM": "SmilePass <support@clinic.example>",
          "MAIL_REPLY_ADDRESS": ""}


def test_token_round_trip_and_forgeries():
    token = mailthread.reply_token("k1", 42, 7)
    assert token.startswith("t42.u7.") and len(token.rsplit(".", 1)[1]) == 16  # 80 bits in base32
    assert mailthread.read_token("k1", token) == (42, 7)
    assert mailthread.read_token("k1", token.upper()) == (42, 7)  # mail systems may change the case
    mac = token.rsplit(".", 1)[1]
    assert mailthread.read_token("k1", f"t43.u7.{mac}") is None  # another ticket
    assert mailthread.read_token("k1", f"t42.u8.{mac}") is None  # another user
    assert mailthread.read_token("k2", token) is None  # another installation's key
    assert mailthread.read_token("k1", token[:-1] + ("a" if token[-1] != "a" else "b")) is None
    assert mailthread.read_token("k1", "t42.u7") is None and mailthread.read_token("k1", "") is None


def test_reply_address_and_its_token():
    address = mailthread.reply_address(CONFIG, 42, 7)
    assert address.startswith("support+t42.u7.") and address.endswith("@clinic.example")
    assert mailthread.token_of(CONFIG, f"Support <{address}>") == address.split("+")[1].split("@")[0]
    assert mailthread.token_of(CONFIG, "support@clinic.example") == ""
    assert mailthread.token_of(CONFIG, "support+x@elsewhere.example") is None
    assert mailthread.token_of(CONFIG, "sales+t1@clinic.example") is None
    assert mailthread.thread_root(CONFIG, 42) == "<smilepass-ticket-42@clinic.example>"
    assert mailthread.ticket_of_root(CONFIG, "<smilepass-ticket-42@clinic.example>") == 42
    assert mailthread.ticket_of_root(CONFIG, "<smilepass-ticket-42@evil.example>") is None


def test_notification_mail_is_stored_with_its_thread(app, clinician, support, new_ticket):
    ticket_id = new_ticket(clinician, title="Scan for Jane Roe rejected")
    number = in_db(lambda: Ticket.get_by_id(ticket_id).number)
    reply(support, ticket_id, "Please export the scan again.")
    [mail] = mails(ADA)
    assert mail.subject == f"[{number}] New reply from SmilePass support"
    assert mail.message_id.startswith("<smilepass.") and mail.message_id.endswith("@smilepass.local>")
    assert mail.in_reply_to == f"<smilepass-ticket-{ticket_id}@smilepass.local>"
    token = mail.reply_to.split("+", 1)[1].split("@")[0]
    assert mailthread.read_token(app.config["SECRET_KEY"], token) == (ticket_id, user(ADA).id)
    assert "Jane" not in mail.subject + mail.body
    assert "You can answer this mail" in mail.body


def test_sent_mails_parse_back_as_one_conversation(app, clinician, support, new_ticket, smtp_sink):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_sink.port)
    ticket_id = new_ticket(clinician)
    reply(support, ticket_id, "Please export the scan again.")
    set_status(support, ticket_id, Status.RESOLVED)
    other_ticket = new_ticket(clinician, title="Another one")
    reply(support, other_ticket, "Second request answered.")
    result = run_worker(app)
    assert result.returncode == 0, result.stderr
    parsed = [email.message_from_bytes(envelope.content, policy=policy.default) for envelope in smtp_sink.messages]
    assert len(parsed) == 3
    stored = {m.message_id: m for m in in_db(lambda: list(OutboxMail.select()))}
    by_root = {}
    for message in parsed:
        assert message["Message-ID"] in stored  # the stored id went out, so a retry sends the same one
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["In-Reply-To"] == message["References"]
        assert message["Reply-To"] == stored[message["Message-ID"]].reply_to
        by_root.setdefault(message["References"], []).append(message)
    first, second = by_root[f"<smilepass-ticket-{ticket_id}@smilepass.local>"], \
        by_root[f"<smilepass-ticket-{other_ticket}@smilepass.local>"]
    assert len(first) == 2 and len(second) == 1
    assert len({m["Message-ID"] for m in parsed}) == 3
    number = in_db(lambda: Ticket.get_by_id(ticket_id).number)
    assert all(m["Subject"].startswith(f"[{number}] ") for m in first)


def test_mail_about_no_ticket_has_no_reply_token(app, client, make_user):
    make_user(ADA)
    client.get("/auth/forgot")
    client.post("/auth/forgot", {"email": ADA})
    [mail] = mails(ADA)
    assert mail.message_id and mail.reply_to == "" and mail.in_reply_to == ""


def test_contact_token_is_for_one_message_and_one_sender_address():
    token = mailthread.contact_token("k1", 12, "Billing@Clinic.test")
    assert token.startswith("c12.") and len(token.rsplit(".", 1)[1]) == 16
    assert mailthread.contact_of_token(token) == 12 and mailthread.is_contact_token(token)
    assert mailthread.contact_token_matches("k1", token, 12, "billing@clinic.test")  # addresses compare lower case
    assert mailthread.contact_token_matches("k1", token.upper(), 12, "billing@clinic.test")
    mac = token.rsplit(".", 1)[1]
    assert not mailthread.contact_token_matches("k1", f"c13.{mac}", 13, "billing@clinic.test")  # another message
    assert not mailthread.contact_token_matches("k1", token, 12, "mallory@evil.test")  # another sender
    assert not mailthread.contact_token_matches("k2", token, 12, "billing@clinic.test")  # another installation
    # A ticket token's key is not a contact token's key: the same numbers give other MACs.
    assert mac != mailthread.reply_token("k1", 12, 0).rsplit(".", 1)[1]
    assert mailthread.read_token("k1", token) is None and mailthread.contact_of_token("t12.u7.aaaaaaaaaaaaaaaa") is None
    address = mailthread.contact_reply_address(CONFIG, 12, "billing@clinic.test")
    assert address == f"support+{mailthread.contact_token('test-secret-key', 12, 'billing@clinic.test')}@clinic.example"
    assert mailthread.contact_thread_root(CONFIG, 12) == "<smilepass-contact-12@clinic.example>"
