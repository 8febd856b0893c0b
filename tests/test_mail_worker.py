"""Mail through the outbox, sent by a real RQ worker over a real Redis to a local SMTP sink."""
import sys

from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from smilepass.models import OutboxMail

from .conftest import free_port, query, run_worker


def ask_for_reset(client, email):
    client.get("/auth/forgot")
    assert client.post("/auth/forgot", {"email": email}).status_code == 303


def test_reset_mail_is_sent_by_the_worker(app, client, make_user, redis_conn, smtp_sink):
    sink = smtp_sink
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port)
    make_user("dr.ada@clinic.test")
    ask_for_reset(client, "dr.ada@clinic.test")
    assert Queue("default", connection=redis_conn).count == 1
    result = run_worker(app)
    assert result.returncode == 0, result.stderr
    assert len(sink.messages) == 1
    envelope = sink.messages[0]
    assert envelope.rcpt_tos == ["dr.ada@clinic.test"]
    assert b"/auth/reset/" in envelope.content
    mail = query(lambda: OutboxMail.get())
    assert mail.sent_at is not None and mail.attempts == 1


def test_failed_send_stays_in_outbox_and_is_retried(app, client, admin, make_user, redis_conn):
    closed_port = free_port()  # nothing listens here
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port)
    make_user("dr.ada@clinic.test")
    ask_for_reset(client, "dr.ada@clinic.test")
    result = run_worker(app)
    assert result.returncode == 0, result.stderr
    mail = query(lambda: OutboxMail.get())
    assert mail.sent_at is None and mail.attempts == 1 and "ConnectionRefused" in mail.last_error
    # RQ has the job scheduled for a retry, not dropped.
    scheduled = ScheduledJobRegistry("default", connection=redis_conn)
    assert scheduled.get_job_ids() == [f"mail-{mail.id}"]
    assert FailedJobRegistry("default", connection=redis_conn).count == 0
    outbox = admin.get("/admin/outbox").get_data(as_text=True)
    assert "failed 1×" in outbox and "ConnectionRefusedError" in outbox


def test_redis_down_keeps_the_mail_in_the_outbox(app, client, admin, make_user):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=25, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    make_user("dr.ada@clinic.test")
    ask_for_reset(client, "dr.ada@clinic.test")
    mail = query(lambda: OutboxMail.get())
    assert mail.sent_at is None and "/auth/reset/" in mail.body
    assert "Reset your SmilePass password" in admin.get("/admin/outbox").get_data(as_text=True)


def test_without_smtp_admins_read_reset_links_in_the_outbox(app, client, admin, make_user, redis_conn):
    make_user("dr.ada@clinic.test")
    ask_for_reset(client, "dr.ada@clinic.test")
    assert Queue("default", connection=redis_conn).count == 0
    page = admin.get("/admin/outbox").get_data(as_text=True)
    assert "No SMTP server is configured" in page and "/auth/reset/" in page


def test_sweep_sends_mail_written_while_redis_was_down(app, client, make_user, redis_conn, smtp_sink):
    sink = smtp_sink
    working_redis = app.config["REDIS_URL"]
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    make_user("dr.ada@clinic.test")
    ask_for_reset(client, "dr.ada@clinic.test")
    assert query(lambda: OutboxMail.get().sent_at) is None
    # Redis is back: the periodic sweep (rq cron enqueues it) hands the mail to the worker.
    app.config["REDIS_URL"] = working_redis
    Queue("default", connection=redis_conn).enqueue("smilepass.notifications.jobs.sweep_outbox")
    assert run_worker(app).returncode == 0
    assert len(sink.messages) == 1
    assert query(lambda: OutboxMail.get().sent_at) is not None
    # A second sweep finds nothing left to send.
    Queue("default", connection=redis_conn).enqueue("smilepass.notifications.jobs.sweep_outbox")
    assert run_worker(app).returncode == 0
    assert len(sink.messages) == 1


def test_sweep_does_not_enqueue_twice(app, client, make_user, redis_conn):
    from smilepass.notifications.outbox import enqueue_send
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port())
    make_user("dr.ada@clinic.test")
    ask_for_reset(client, "dr.ada@clinic.test")  # enqueues mail-1
    with app.app_context():
        assert enqueue_send(1) is False
    assert Queue("default", connection=redis_conn).count == 1


def test_cron_config_registers_the_sweep():
    import importlib

    from rq import cron
    cron._job_data_registry.clear()
    sys.modules.pop("workers.cron", None)
    importlib.import_module("workers.cron")
    names = [job["name"] for job in cron._job_data_registry]
    # Other features add their own periodic jobs after these.
    assert names[:4] == ["sweep-outbox", "sweep-scans", "refresh-statistics", "sla-sweep"]
    cron._job_data_registry.clear()
