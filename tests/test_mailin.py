"""Answers by email (#16): a mail to a ticket's tokened reply address becomes a reply in that ticket as
the user the token names, with the quoted mail and signature cut off, through the app's own reply path;
and everything else (forgeries, auto-replies, bounces, broken and oversized mail, duplicates, closed
tickets) is recorded and dropped without answering the sender. The mails are .eml files in tests/mail/
shaped like those of real mail programs."""
import base64
import datetime as dt
import hashlib
import io
import subprocess
import sys
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest
from PIL import Image

from smilepass import settings
from smilepass.mailin import receive
from smilepass.models import (
    DEFAULT_CATEGORY,
    Attachment,
    AuditLog,
    InboundMail,
    Message,
    OutboxMail,
    Priority,
    Scan,
    ScanState,
    Status,
    Ticket,
)
from smilepass.notifications import mailthread

from .case_helpers import ADA, BOB, SAM, in_db, user
from .case_helpers import ROOT as ROOT_ADMIN
from .conftest import ROOT, free_port, run_worker, worker_env
from .scanfiles import arch_stl
from .test_ticket_notifications import set_status

FIXTURES = Path(__file__).parent / "mail"
NOW = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def waiting_ticket(app, clinician, support, new_ticket):
    """Ada's request, on which support now waits for her answer."""
    ticket_id = new_ticket(clinician, title="Jane Roe's upper arch")
    set_status(support, ticket_id, Status.WAITING)
    return ticket_id


def eml(app, name, ticket_id, email=ADA, sender=None, message_id=None, token_user=None) -> bytes:
    token_owner = user(token_user or email)
    replacements = {
        "{REPLY_TO}": mailthread.reply_address(app.config, ticket_id, token_owner.id),
        "{FROM}": sender or email,
        "{MESSAGE_ID}": message_id or f"<{uuid.uuid4().hex}@mail.clinic.test>",
        "{ROOT}": mailthread.thread_root(app.config, ticket_id),
    }
    raw = (FIXTURES / name).read_bytes()
    for placeholder, value in replacements.items():
        raw = raw.replace(placeholder.encode(), value.encode())
    return raw


def take(app, raw: bytes, **kwargs) -> receive.Outcome:
    with app.app_context():
        return in_db(lambda: receive.take(raw, app.config, **kwargs))


def replies(ticket_id):
    return in_db(lambda: list(Message.select().where(Message.ticket == ticket_id).order_by(Message.id)))


def audit_actions(action):
    return in_db(lambda: list(AuditLog.select().where(AuditLog.action == action)))


def inbound():
    return in_db(lambda: list(InboundMail.select().order_by(InboundMail.id)))


CLIENTS = {
    "thunderbird_plain.eml": ("Thanks, I exported the upper arch again as binary STL.\nIt is 14 MB now.",
                              ["Please export", "Lovelace Orthodontics", "wrote:"]),
    "outlook_alternative.eml": ("Grüße, der Scan ist neu hochgeladen – bitte noch einmal prüfen.",
                                ["Please export", "Von:", "Gesendet"]),
    "gmail_alternative.eml": ("Done, the new file is uploaded. Can you check tooth 21?", ["Please export", "wrote"]),
    "german_quote.eml": ("Danke, die Schiene passt jetzt. Bitte schließen.\n\nViele Grüße\nAda",
                         ["iPhone", "schrieb", "Please check"]),
    "apple_html_inline_image.eml": ("Here is a screenshot of the error in the viewer.",
                                    ["<", "alert", "Please send", "wrote"]),
}


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_reply_from_a_mail_program_lands_in_the_ticket(app, waiting_ticket, name):
    expected, absent = CLIENTS[name]
    outcome = take(app, eml(app, name, waiting_ticket))
    assert (outcome.status, outcome.exit_code, outcome.ticket_id) == ("accepted", 0, waiting_ticket)
    [message] = replies(waiting_ticket)
    assert message.body == expected
    assert all(text not in message.body for text in absent)
    assert message.author_id == user(ADA).id and not message.internal
    # The same rules as a reply in the app: the clinician answered what support waited for.
    assert in_db(lambda: Ticket.get_by_id(waiting_ticket).status) == Status.IN_PROGRESS.value
    assert [a.object_id for a in audit_actions("ticket_reply")] == [str(waiting_ticket)]
    [by_mail] = audit_actions("ticket_reply_mail")
    assert by_mail.actor_email == ADA and by_mail.object_id == str(waiting_ticket)
    [row] = inbound()
    assert (row.status, row.ticket_id, row.user_id) == ("accepted", waiting_ticket, user(ADA).id)


def test_authentication_results_are_recorded(app, waiting_ticket):
    take(app, eml(app, "thunderbird_plain.eml", waiting_ticket))
    [row] = inbound()
    assert row.authentication == "dkim=pass dmarc=pass spf=pass"
    assert audit_actions("ticket_reply_mail")[0].detail == "dkim=pass dmarc=pass spf=pass"


def test_inline_image_is_checked_reencoded_and_stored_under_a_random_name(app, waiting_ticket):
    raw = eml(app, "apple_html_inline_image.eml", waiting_ticket)
    take(app, raw)
    [message] = replies(waiting_ticket)
    [attachment] = in_db(lambda: list(Attachment.select().where(Attachment.message == message.id)))
    assert attachment.original_name == "shot.png" and attachment.content_type == "image/png"
    assert attachment.stored_name != "shot.png" and len(attachment.stored_name) == 32 + len(".png")
    stored = Path(app.config["UPLOAD_DIR"]) / attachment.stored_name
    assert stored.exists() and "static" not in stored.parts
    original = base64.b64decode(raw.split(b"Content-Id: <shot-1@apple>")[1].split(b"--Apple")[0])
    assert hashlib.sha256(original).hexdigest() != attachment.sha256  # re-encoded, not the bytes as sent
    assert [a.object_id for a in audit_actions("attachment_upload")] == [str(attachment.id)]


def test_other_attachments_are_refused_with_a_note_in_the_thread(app, waiting_ticket):
    take(app, eml(app, "pdf_attachment.eml", waiting_ticket))
    [message] = replies(waiting_ticket)
    assert message.body.startswith("The lab form is attached.")
    assert 'Attachment "lab-form.pdf" was not taken' in message.body
    assert in_db(lambda: Attachment.select().count()) == 0


def test_the_same_message_id_adds_one_reply(app, waiting_ticket):
    raw = eml(app, "gmail_alternative.eml", waiting_ticket, message_id="<same-1@mail.clinic.test>")
    assert take(app, raw).status == "accepted"
    second = take(app, raw)
    assert (second.status, second.exit_code) == ("duplicate", 0)
    assert len(replies(waiting_ticket)) == 1 and len(inbound()) == 1


def no_trace(ticket_id):
    """Nothing was added to the ticket, and nobody was mailed."""
    assert replies(ticket_id) == []
    assert in_db(lambda: OutboxMail.select().where(OutboxMail.automatic).count()) == 0


def test_sender_other_than_the_token_user_is_refused_and_audited(app, waiting_ticket, other_clinician):
    outcome = take(app, eml(app, "thunderbird_plain.eml", waiting_ticket, sender=BOB))
    assert (outcome.status, outcome.exit_code) == ("refused", 0)  # 0: no bounce to a forged sender
    assert "sender is not the user" in outcome.reason
    no_trace(waiting_ticket)
    [row] = audit_actions("mail_refused")
    assert row.detail == "sender is not the user the reply token names"
    assert inbound()[0].reason == "sender is not the user the reply token names"


def test_token_for_another_ticket_or_user_is_refused(app, waiting_ticket, other_clinician, new_ticket):
    bobs_ticket = new_ticket(other_clinician, title="Bob's own request")
    # Bob's genuine token, but for Ada's ticket: he may not see it.
    outcome = take(app, eml(app, "thunderbird_plain.eml", waiting_ticket, email=BOB))
    assert outcome.status == "refused" and outcome.reason == "the user may not see this ticket"
    # Ada's token for her ticket, rewritten to point at Bob's ticket: the HMAC no longer matches.
    raw = eml(app, "thunderbird_plain.eml", waiting_ticket)
    raw = raw.replace(f"+t{waiting_ticket}.".encode(), f"+t{bobs_ticket}.".encode())
    outcome = take(app, raw)
    assert outcome.status == "refused" and outcome.reason == "reply token not genuine"
    no_trace(waiting_ticket)
    assert replies(bobs_ticket) == []
    assert len(audit_actions("mail_refused")) == 2


def test_dmarc_failure_is_refused_as_forged(app, waiting_ticket):
    outcome = take(app, eml(app, "dmarc_fail.eml", waiting_ticket))
    assert outcome.status == "refused" and "DMARC" in outcome.reason
    no_trace(waiting_ticket)
    assert len(audit_actions("mail_refused")) == 1
    assert inbound()[0].authentication == "dkim=fail dmarc=fail spf=fail"


@pytest.mark.parametrize("name, reason", [
    ("out_of_office.eml", "Auto-Submitted: auto-replied"),
    ("bounce_dsn.eml", "empty Return-Path"),
])
def test_auto_replies_and_bounces_create_nothing_and_are_not_answered(app, waiting_ticket, name, reason):
    outcome = take(app, eml(app, name, waiting_ticket))
    assert (outcome.status, outcome.reason, outcome.exit_code) == ("ignored", reason, 0)
    no_trace(waiting_ticket)
    assert in_db(lambda: OutboxMail.select().count()) == 1  # only the status mail sent before


def huge_mail(app, ticket_id) -> bytes:
    head = eml(app, "thunderbird_plain.eml", ticket_id).split(b"\n\n", 1)[0]
    return head + b"\n\n" + b"x" * (30 * 1024 * 1024)


def many_parts(app, ticket_id) -> bytes:
    raw = eml(app, "pdf_attachment.eml", ticket_id)
    head, body = raw.split(b"\n\n", 1)
    part = b"--mixed-boundary\nContent-Type: text/plain\n\nhello\n"
    return head + b"\n\n" + part * 500 + b"--mixed-boundary--\n"


@pytest.mark.parametrize("make, reason", [
    (lambda app, t: eml(app, "broken_mime.eml", t), "malformed MIME structure"),
    (lambda app, t: eml(app, "unknown_charset.eml", t), "unknown charset 'x-klingon-8'"),
    (huge_mail, "mail too large"),
    (many_parts, "too many MIME parts: 501, at most 50"),
], ids=["broken-mime", "charset", "30-mb", "500-parts"])
def test_bad_mail_is_refused_cleanly_with_its_reason(app, waiting_ticket, make, reason):
    outcome = take(app, make(app, waiting_ticket))
    assert (outcome.status, outcome.exit_code) == ("refused", 0)
    assert outcome.reason.startswith(reason)
    [row] = inbound()
    assert row.status == "refused" and row.reason.startswith(reason) and row.sender == ADA
    no_trace(waiting_ticket)


def test_closed_ticket_answers_once_an_hour_at_most(app, waiting_ticket, support, clock):
    set_status(support, waiting_ticket, Status.RESOLVED)
    set_status(support, waiting_ticket, Status.CLOSED)
    for _ in range(3):
        outcome = take(app, eml(app, "gmail_alternative.eml", waiting_ticket))
        assert (outcome.status, outcome.exit_code) == ("closed", 0)
    answers = in_db(lambda: list(OutboxMail.select().where(OutboxMail.automatic)))
    assert len(answers) == 1
    number = in_db(lambda: Ticket.get_by_id(waiting_ticket).number)
    assert answers[0].to_addr == ADA and answers[0].subject == f"[{number}] This request is closed"
    assert answers[0].in_reply_to == mailthread.thread_root(app.config, waiting_ticket)
    clock.shift(dt.timedelta(minutes=61))
    take(app, eml(app, "gmail_alternative.eml", waiting_ticket))
    assert in_db(lambda: OutboxMail.select().where(OutboxMail.automatic).count()) == 2
    assert replies(waiting_ticket) == [] and len(inbound()) == 4


def test_mail_to_another_address_is_an_unknown_recipient(app, waiting_ticket):
    raw = eml(app, "gmail_alternative.eml", waiting_ticket)
    address = mailthread.reply_address(app.config, waiting_ticket, user(ADA).id)
    raw = raw.replace(address.encode(), b"sales@elsewhere.example")
    outcome = take(app, raw)
    assert (outcome.status, outcome.exit_code) == ("refused", 67)
    # The envelope recipient the MTA passes wins over the headers.
    outcome = take(app, eml(app, "gmail_alternative.eml", waiting_ticket), envelope_recipient=address)
    assert outcome.status == "accepted"


def test_cli_reads_stdin_and_exits_with_sysexits(app, waiting_ticket):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["mail", "receive"], input=eml(app, "thunderbird_plain.eml", waiting_ticket))
    assert result.exit_code == 0 and result.output.strip() == "accepted"
    raw = eml(app, "thunderbird_plain.eml", waiting_ticket).replace(b"To: SmilePass <", b"To: <x")
    raw = raw.replace(b"Delivered-To: support+", b"Delivered-To: nobody+")
    result = runner.invoke(args=["mail", "receive"], input=raw)
    assert result.exit_code == 67, result.output
    assert len(replies(waiting_ticket)) == 1


def test_database_down_is_a_temporary_failure_and_nothing_is_lost(app, waiting_ticket):
    """A real `flask mail receive` process, as an MTA runs it, while the database cannot be reached: exit
    75 (the MTA keeps the mail and retries); once the database is back the same mail is taken."""
    raw = eml(app, "thunderbird_plain.eml", waiting_ticket)
    command = [sys.executable, "-m", "flask", "--app", "app", "mail", "receive"]
    down = {**worker_env(app), "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/none"}
    result = subprocess.run(command, input=raw, cwd=ROOT, env=down, capture_output=True, timeout=120)
    assert result.returncode == 75, result.stderr
    assert b"temporary failure" in result.stderr
    assert replies(waiting_ticket) == [] and inbound() == []
    result = subprocess.run(command, input=raw, cwd=ROOT, env=worker_env(app), capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(replies(waiting_ticket)) == 1


def test_new_request_by_mail_is_off_by_default(app, clinician):
    outcome = take(app, eml(app, "new_request.eml", 1))
    assert (outcome.status, outcome.reason) == ("refused", "sent to the support mailbox without a reply token")
    assert in_db(lambda: Ticket.select().count()) == 0 and audit_actions("mail_refused") == []


def turn_on_new_requests(make_user):
    make_user(ROOT_ADMIN, "admin")
    in_db(lambda: settings.set_value("mail_new_requests", "on", user(ROOT_ADMIN)))


def test_new_request_by_mail_from_a_clinician_is_filed_and_confirmed(app, clinician, make_user):
    turn_on_new_requests(make_user)
    outcome = take(app, eml(app, "new_request.eml", 1))
    assert (outcome.status, outcome.exit_code) == ("accepted", 0)
    ticket = in_db(lambda: Ticket.get_by_id(outcome.ticket_id))
    assert ticket.requester_id == user(ADA).id and ticket.title == "Aligner tray cracked after two days"
    assert ticket.priority == Priority.LOW.value and ticket.category == DEFAULT_CATEGORY
    assert ticket.description == ("The upper tray of stage 4 cracked at tooth 21 after two days of wear.\n"
                                  "Can you send a replacement?")
    [created] = audit_actions("ticket_created_mail")
    assert created.actor_email == ADA and created.object_id == str(ticket.id)
    [confirmation] = in_db(lambda: list(OutboxMail.select().where(OutboxMail.to_addr == ADA)))
    assert confirmation.subject == f"[{ticket.number}] Request received"
    assert f"{ticket.response_due_at:%Y-%m-%d %H:%M} UTC" in confirmation.body
    assert "Aligner" not in confirmation.subject + confirmation.body  # the title stays out of mails
    # Answering the confirmation adds a reply to the new request.
    assert confirmation.reply_to == mailthread.reply_address(app.config, ticket.id, user(ADA).id)
    assert take(app, eml(app, "gmail_alternative.eml", ticket.id)).status == "accepted"
    assert [m.body for m in replies(ticket.id)] == ["Done, the new file is uploaded. Can you check tooth 21?"]


def test_new_request_by_mail_from_anyone_else_is_refused_unanswered(app, clinician, support, make_user):
    turn_on_new_requests(make_user)
    for sender in ("stranger@elsewhere.example", SAM):
        outcome = take(app, eml(app, "new_request.eml", 1, sender=sender))
        assert outcome.status == "refused" and "no clinician's" in outcome.reason
    assert in_db(lambda: Ticket.select().count()) == 0
    assert in_db(lambda: OutboxMail.select().count()) == 0
    assert len(audit_actions("mail_refused")) == 2


def mail_with_files(app, ticket_id, files, text="The new scan is attached.") -> bytes:
    """A reply as Thunderbird sends one with attachments (multipart/mixed), built with `email`."""
    message = EmailMessage()
    message["From"] = f"Dr Ada <{ADA}>"
    message["To"] = mailthread.reply_address(app.config, ticket_id, user(ADA).id)
    message["Subject"] = "Re: [SP-000001] New reply from SmilePass support"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@mail.clinic.test>"
    message["In-Reply-To"] = mailthread.thread_root(app.config, ticket_id)
    message.set_content(text)
    for name, data, maintype, subtype in files:
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


def test_scan_sent_by_mail_goes_through_the_scan_checks_and_repair(app, waiting_ticket, redis_conn):
    raw = mail_with_files(app, waiting_ticket, [("upper_arch.stl", arch_stl(20, 60), "model", "stl")])
    assert take(app, raw).status == "accepted"
    [message] = replies(waiting_ticket)
    [scan] = in_db(lambda: list(Scan.select().where(Scan.message == message.id)))
    assert scan.original_name == "upper_arch.stl" and scan.stored_name != "upper_arch.stl"
    assert scan.state == ScanState.QUEUED.value and scan.triangles > 0
    assert [row.object_id for row in audit_actions("scan_upload")] == [str(scan.id)]
    # A real worker repairs it as it would an upload in the app.
    result = run_worker(app)
    assert result.returncode == 0, result.stderr
    assert in_db(lambda: Scan.get_by_id(scan.id).state) == ScanState.DONE.value


def test_files_failing_the_app_checks_or_limits_are_refused_with_a_note(app, waiting_ticket):
    app.config["MAX_IMAGE_BYTES"] = 1000
    big_image = io.BytesIO()
    Image.effect_noise((200, 200), 80).convert("RGB").save(big_image, "PNG")
    raw = mail_with_files(app, waiting_ticket, [
        ("not_a_scan.stl", b"solid nothing here\nendsolid\n", "model", "stl"),
        ("screen.png", big_image.getvalue(), "image", "png"),
    ])
    assert take(app, raw).status == "accepted"
    [message] = replies(waiting_ticket)
    assert message.body.startswith("The new scan is attached.")
    assert 'Attachment "not_a_scan.stl" was not taken: ' in message.body
    assert 'Attachment "screen.png" was not taken: ' in message.body
    assert in_db(lambda: Scan.select().count()) == 0 and in_db(lambda: Attachment.select().count()) == 0


@pytest.mark.parametrize("header, reason", [
    ("Precedence: bulk", "Precedence: bulk"),
    ("X-Autoreply: yes", "X-Autoreply header"),
    ("List-Id: <news.clinic.test>", "List-Id header"),
], ids=["precedence-bulk", "x-autoreply", "list"])
def test_other_automatic_mail_creates_nothing(app, waiting_ticket, header, reason):
    raw = eml(app, "thunderbird_plain.eml", waiting_ticket).replace(b"MIME-Version: 1.0",
                                                                   header.encode() + b"\nMIME-Version: 1.0")
    outcome = take(app, raw)
    assert (outcome.status, outcome.reason) == ("ignored", reason)
    no_trace(waiting_ticket)


def test_delivery_report_from_a_mail_daemon_creates_nothing(app, waiting_ticket):
    """A DSN (multipart/report) with a Return-Path that is not empty, from MAILER-DAEMON."""
    raw = eml(app, "bounce_dsn.eml", waiting_ticket).replace(b"Return-Path: <>", b"Return-Path: <x@mx.test>")
    outcome = take(app, raw)
    assert (outcome.status, outcome.reason) == ("ignored", "delivery or read report")
    no_trace(waiting_ticket)
