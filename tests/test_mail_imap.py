"""The IMAP way in (#16): a real Dovecot (tests/dovecot.py) holds the support mailbox; mails are delivered
into it by IMAP APPEND, and the poller (the rq cron job, run by a real RQ worker) takes them as it would in
production: replies land in their ticket and move to Processed, refused mails move to Rejected, and a
temporary failure leaves the mail unseen in INBOX for the next poll."""
import contextlib
import imaplib
import socket
import subprocess
import sys
import threading

import pytest
from rq import Queue

from smilepass import db, jobs
from smilepass.mailin import imap
from smilepass.mailin import jobs as mailin_jobs
from smilepass.models import InboundMail, Message, Status

from . import dovecot
from .case_helpers import in_db
from .conftest import ROOT, free_port, worker_env
from .parts import part_missing
from .test_mail_contact import answered_message, contact_eml, from_sender
from .test_mailin import eml
from .test_ticket_notifications import set_status


def _start(**kwargs):
    missing = dovecot.available()
    if missing:
        part_missing(f"{missing} (`make test` installs Debian's dovecot-imapd)")
    try:
        return dovecot.start(**kwargs)
    except RuntimeError as exc:
        part_missing(f"Dovecot could not start: {str(exc)[:500]}")


@pytest.fixture
def imap_server():
    server = _start()
    yield server
    dovecot.stop(server)


@pytest.fixture
def tls_imap_server(tmp_path):
    """Dovecot with STARTTLS and a certificate of a throwaway CA the poller is told to trust."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                           "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", str(key), "-out", str(cert)], capture_output=True)
    if made.returncode != 0:
        part_missing(f"openssl could not make a test certificate: {made.stderr[:200]!r}")
    key.chmod(0o644)
    server = _start(tls=(cert, key), ca_file=str(cert))
    yield server
    dovecot.stop(server)


def configure(app, server, security="plain"):
    app.config.update(IMAP_HOST="127.0.0.1", IMAP_PORT=server.port, IMAP_SECURITY=security,
                      IMAP_USER=server.user, IMAP_PASSWORD=server.password, IMAP_CA_FILE=server.ca_file)


def deliver(server, *mails: bytes) -> None:
    client = imaplib.IMAP4("127.0.0.1", server.port)
    client.login(server.user, server.password)
    for raw in mails:
        status, _ = client.append("INBOX", None, None, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        assert status == "OK"
    client.logout()


def folder_count(server, folder: str, criteria="ALL") -> int:
    client = imaplib.IMAP4("127.0.0.1", server.port)
    client.login(server.user, server.password)
    status, _ = client.select(folder, readonly=True)
    if status != "OK":
        client.logout()
        return 0
    _, data = client.search(None, criteria)
    client.logout()
    return len(data[0].split())


@pytest.fixture
def waiting_ticket(app, clinician, support, new_ticket):
    ticket_id = new_ticket(clinician, title="Jane Roe's upper arch")
    set_status(support, ticket_id, Status.WAITING)
    return ticket_id


def poll(app):
    with app.app_context():
        return in_db(lambda: imap.poll(app.config))


def replies(ticket_id):
    return in_db(lambda: [m.body for m in Message.select().where(Message.ticket == ticket_id)])


def test_poller_takes_replies_and_files_mails_away(app, waiting_ticket, imap_server):
    configure(app, imap_server)
    good = eml(app, "thunderbird_plain.eml", waiting_ticket)
    forged = eml(app, "thunderbird_plain.eml", waiting_ticket, sender="mallory@evil.example")
    auto = eml(app, "out_of_office.eml", waiting_ticket)
    deliver(imap_server, good, forged, auto)
    result = poll(app)
    assert (result.taken, result.rejected, result.left) == (2, 1, 0)
    assert sorted(result.statuses) == ["accepted", "ignored", "refused"]
    assert replies(waiting_ticket) == ["Thanks, I exported the upper arch again as binary STL.\nIt is 14 MB now."]
    assert folder_count(imap_server, "INBOX") == 0
    assert folder_count(imap_server, imap.PROCESSED) == 2 and folder_count(imap_server, imap.REJECTED) == 1
    # The same mail delivered again (a second copy in INBOX) adds nothing.
    deliver(imap_server, good)
    assert poll(app).statuses == ["duplicate"]
    assert len(replies(waiting_ticket)) == 1


def test_poller_takes_a_reply_to_a_contact_answer(app, make_user, imap_server):
    """The sender's answer to a supervisor's answer to a Contact us message comes in by IMAP as well; a
    forged one (another sender with the same token) goes to Rejected and joins nothing."""
    configure(app, imap_server)
    contact_id = answered_message(app, make_user)
    deliver(imap_server, contact_eml(app, "contact_reply_outlook.eml", contact_id),
            contact_eml(app, "contact_reply_apple.eml", contact_id, sender="mallory@evil.example"))
    result = poll(app)
    assert (result.taken, result.rejected, result.statuses) == (1, 1, ["accepted", "refused"])
    [reply] = from_sender(contact_id)
    assert reply.body.startswith("Danke. Die zweite Abbuchung")
    assert folder_count(imap_server, imap.PROCESSED) == 1 and folder_count(imap_server, imap.REJECTED) == 1


def test_temporary_failure_leaves_the_mail_unseen_in_inbox(app, waiting_ticket, imap_server):
    configure(app, imap_server)
    deliver(imap_server, eml(app, "gmail_alternative.eml", waiting_ticket))
    # The database goes away (a server that does not answer) while the mail server is fine.
    db.bind(f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    try:
        with app.app_context():
            result = imap.poll(app.config)
    finally:
        db.bind(app.config["DATABASE_URL"])
    assert (result.taken, result.rejected, result.left) == (0, 0, 1)
    assert folder_count(imap_server, "INBOX", "UNSEEN") == 1 and folder_count(imap_server, imap.PROCESSED) == 0
    # Back again: the next poll takes it.
    assert poll(app).statuses == ["accepted"]
    assert len(replies(waiting_ticket)) == 1 and folder_count(imap_server, "INBOX") == 0


def test_cron_job_polls_through_a_real_worker_over_starttls(app, waiting_ticket, tls_imap_server, redis_conn):
    configure(app, tls_imap_server, security="starttls")
    deliver(tls_imap_server, eml(app, "german_quote.eml", waiting_ticket))
    job = Queue("default", connection=redis_conn).enqueue("smilepass.mailin.jobs.poll_imap")
    env = {**worker_env(app), "SMILEPASS_IMAP_HOST": "127.0.0.1", "SMILEPASS_IMAP_PORT": str(tls_imap_server.port),
           "SMILEPASS_IMAP_SECURITY": "starttls", "SMILEPASS_IMAP_USER": tls_imap_server.user,
           "SMILEPASS_IMAP_PASSWORD": tls_imap_server.password, "SMILEPASS_IMAP_CA_FILE": tls_imap_server.ca_file}
    result = subprocess.run([sys.executable, "-m", "workers.worker", "--burst"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    job.refresh()
    assert job.return_value() == "taken 1, rejected 0, left 0", result.stdout
    assert replies(waiting_ticket) == ["Danke, die Schiene passt jetzt. Bitte schließen.\n\nViele Grüße\nAda"]
    assert folder_count(tls_imap_server, imap.PROCESSED) == 1
    assert in_db(lambda: InboundMail.get().authentication) == ""


def test_plain_imap_only_to_this_machine(app):
    app.config.update(IMAP_HOST="imap.clinic.example", IMAP_SECURITY="plain")
    with pytest.raises(imap.ImapSettingsError):
        imap._mailbox(app.config)


class GatedProxy:
    """A TCP relay in front of Dovecot that hands a connection on only once the test opens the gate: a
    poll connecting through it hangs like one on a sluggish mail server, holding the poll lock meanwhile."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connected, self.gate = threading.Event(), threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connected.set()
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client):
        self.gate.wait()
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._copy, args=(source, target), daemon=True).start()

    @staticmethod
    def _copy(source, target):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def close(self):
        self.gate.set()
        self.listener.close()


def test_a_slow_poll_is_not_overlapped_by_the_next(app, waiting_ticket, imap_server, redis_conn, monkeypatch):
    """The cron job runs every minute; a poll still busy then makes the next one stand aside (a Redis lock
    with a timeout), so the same unseen mail is never fetched by two workers at once."""
    proxy = GatedProxy(imap_server.port)
    configure(app, imap_server)
    app.config["IMAP_PORT"] = proxy.port
    deliver(imap_server, eml(app, "thunderbird_plain.eml", waiting_ticket))
    # First poll: a real worker running the cron job, stuck at the mail server's door.
    job = Queue("default", connection=redis_conn).enqueue("smilepass.mailin.jobs.poll_imap")
    env = {**worker_env(app), "SMILEPASS_IMAP_HOST": "127.0.0.1", "SMILEPASS_IMAP_PORT": str(proxy.port),
           "SMILEPASS_IMAP_SECURITY": "plain", "SMILEPASS_IMAP_USER": imap_server.user,
           "SMILEPASS_IMAP_PASSWORD": imap_server.password}
    worker = subprocess.Popen([sys.executable, "-m", "workers.worker", "--burst"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proxy.connected.wait(120), "the worker's poll never reached the mail server"
        lock_ttl = redis_conn.pttl(mailin_jobs.POLL_LOCK)
        assert 0 < lock_ttl <= mailin_jobs.POLL_LOCK_TIMEOUT * 1000  # a dead worker's lock runs out
        # Second poll, the next minute's, in this process while the first still waits: it stands aside
        # without touching the mailbox.
        monkeypatch.setattr(jobs, "app", lambda: app)
        assert mailin_jobs.poll_imap() == mailin_jobs.ALREADY_POLLING
        assert folder_count(imap_server, "INBOX", "UNSEEN") == 1
    finally:
        proxy.gate.set()
        output, _ = worker.communicate(timeout=120)
    proxy.close()
    assert worker.returncode == 0, output
    job.refresh()
    assert job.return_value() == "taken 1, rejected 0, left 0", output
    assert len(replies(waiting_ticket)) == 1
    # The first poll gave the lock back: the one after it polls again (and finds nothing new).
    assert redis_conn.exists(mailin_jobs.POLL_LOCK) == 0
    app.config["IMAP_PORT"] = imap_server.port
    assert mailin_jobs.poll_imap() == "taken 0, rejected 0, left 0"


def test_no_poll_without_redis_for_the_lock(app, monkeypatch):
    """Without Redis no poll can tell whether another runs: it leaves the mailbox alone (its mail waits for
    the next minute) instead of risking two at once."""
    app.config.update(IMAP_HOST="127.0.0.1", IMAP_PORT=free_port(), IMAP_SECURITY="plain",
                      REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setattr(jobs, "app", lambda: app)
    assert mailin_jobs.poll_imap() == "Redis unavailable: ConnectionError"


def test_a_mail_over_the_size_limit_is_rejected_from_its_header(app, waiting_ticket, imap_server):
    """The server's RFC822.SIZE decides: only the header of a too large mail is fetched, and it goes to
    Rejected with its reason recorded; the small one beside it is taken."""
    configure(app, imap_server)
    app.config["MAIL_IN_MAX_BYTES"] = 4000
    small = eml(app, "thunderbird_plain.eml", waiting_ticket)
    head, _ = eml(app, "thunderbird_plain.eml", waiting_ticket).split(b"\n\n", 1)
    large = head + b"\n\n" + b"Thanks, here is a long story.\n" * 400
    deliver(imap_server, large, small)
    result = poll(app)
    assert (result.taken, result.rejected, result.statuses) == (1, 1, ["refused", "accepted"])
    refused = in_db(lambda: InboundMail.get(InboundMail.status == "refused"))
    assert refused.reason == "mail too large: more than 4000 bytes" and refused.sender == "dr.ada@clinic.test"
    assert len(replies(waiting_ticket)) == 1
    assert folder_count(imap_server, imap.REJECTED) == 1 and folder_count(imap_server, imap.PROCESSED) == 1
