"""The SLA job against real Redis and a real RQ worker: enqueued exactly as `rq cron` enqueues it
(from workers/cron.py), it marks tickets whose running deadline passed and escalates each newly
breached one a single step, automatically; the next sweep leaves them alone.

The clock is fixed (time-machine), in the worker process too (run_worker starts it at the test's "now"):
the warning window counts business time, so a deadline two calendar days away is within the hour on a
Friday afternoon. The clinic keeps the default calendar: UTC, 08:00–17:00, Monday to Friday."""
import datetime as dt

import pytest
from rq.cron import CronScheduler
from rq.job import Job

from smilepass.models import AuditLog, Escalation, Notification, Ticket, User, utcnow

from .conftest import query, run_worker

WEDNESDAY_10AM = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)  # an ordinary working morning
FRIDAY_4_10PM = dt.datetime(2026, 12, 4, 16, 10, tzinfo=dt.UTC)  # 50 business minutes before the weekend


@pytest.fixture(autouse=True)
def wednesday_morning(time_machine):
    time_machine.move_to(WEDNESDAY_10AM, tick=False)
    return time_machine


@pytest.fixture
def friday_afternoon(wednesday_morning):
    """Requested before the sign-in fixtures: a session idle for two days would have ended."""
    wednesday_morning.move_to(FRIDAY_4_10PM, tick=False)


def sweep_like_rq_cron(app, redis_conn) -> dict:
    """Load workers/cron.py into a cron scheduler, enqueue its sla-sweep entry the way the scheduler
    does when the interval comes round, and let a real worker run it."""
    scheduler = CronScheduler(connection=redis_conn)
    scheduler.load_config_from_file("workers.cron")
    cron_job = next(job for job in scheduler.get_jobs() if job.name == "sla-sweep")
    assert 60 <= cron_job.interval <= 300
    job = cron_job.enqueue(redis_conn)
    result = run_worker(app)
    assert result.returncode == 0, result.stderr
    job = Job.fetch(job.id, connection=redis_conn)
    assert job.get_status() == "finished", result.stderr
    return job.return_value()


def due_at(ticket_id, moment: dt.datetime):
    query(lambda: Ticket.update(next_due_at=moment).where(Ticket.id == ticket_id).execute())


def overdue(ticket_id, minutes=30, answered=False):
    now = utcnow()
    changes = {Ticket.next_due_at: now - dt.timedelta(minutes=minutes)}
    if answered:
        changes[Ticket.first_response_at] = now - dt.timedelta(hours=5)
    query(lambda: Ticket.update(changes).where(Ticket.id == ticket_id).execute())


def test_breached_tickets_escalate_once(app, clinician, new_ticket, make_user, redis_conn):
    make_user("lead@smilepass.test", "support")
    query(lambda: User.update(escalation_role="supervisor").where(User.email == "lead@smilepass.test").execute())
    late = new_ticket(clinician, title="Aligner cracked", priority="3")
    late_resolution = new_ticket(clinician, title="Refund pending")
    on_time = new_ticket(clinician, title="Question about IPR")
    overdue(late)
    overdue(late_resolution, answered=True)
    due_at(on_time, dt.datetime(2026, 12, 4, 10, 0))  # Friday morning: 18 business hours away

    assert sweep_like_rq_cron(app, redis_conn) == {"breached": 2, "escalated": 2, "warned": 0}
    tickets = {t.id: t for t in query(lambda: list(Ticket.select()))}
    assert tickets[late].response_breached and not tickets[late].resolution_breached
    assert tickets[late_resolution].resolution_breached
    levels = [tickets[t].escalation_level for t in (late, late_resolution, on_time)]
    assert levels == [1, 1, 0]
    lead = query(lambda: User.get(User.email == "lead@smilepass.test"))
    assert tickets[late].escalation_owner_id == lead.id
    steps = query(lambda: {s.ticket_id: s for s in Escalation.select()})
    assert steps[late].actor_id is None and steps[late].reason == "First response target missed"
    assert steps[late_resolution].reason == "Resolution target missed"
    audit = query(lambda: AuditLog.get((AuditLog.action == "ticket_escalated") & (AuditLog.object_id == str(late))))
    assert audit.actor_id is None and "First response target missed" in audit.detail
    told = query(lambda: list(Notification.select().where(Notification.kind == "ticket_escalated")))
    assert {n.ticket_id for n in told} == {late, late_resolution} and {n.user_id for n in told} == {lead.id}

    # The next sweep finds nothing newly breached: nobody goes up a second time.
    assert sweep_like_rq_cron(app, redis_conn) == {"breached": 0, "escalated": 0, "warned": 0}
    assert query(lambda: Escalation.select().count()) == 2
    assert query(lambda: Ticket.get_by_id(late).escalation_level) == 1


def test_sweep_warns_about_deadlines_that_pass_soon(app, clinician, new_ticket, make_user, redis_conn,
                                                   wednesday_morning):
    make_user("lead@smilepass.test", "support")
    query(lambda: User.update(escalation_role="supervisor").where(User.email == "lead@smilepass.test").execute())
    soon = new_ticket(clinician, title="Scan keeps failing")
    later = new_ticket(clinician, title="Attachment too large")
    due_at(soon, dt.datetime(2026, 12, 2, 10, 50))  # 50 minutes away: inside the 60-minute window
    due_at(later, dt.datetime(2026, 12, 2, 11, 30))  # 90 minutes away: not yet
    assert sweep_like_rq_cron(app, redis_conn) == {"breached": 0, "escalated": 0, "warned": 1}
    lead = query(lambda: User.get(User.email == "lead@smilepass.test"))
    warnings = query(lambda: list(Notification.select().where(Notification.kind == "sla_warning")))
    assert [(n.ticket_id, n.user_id) for n in warnings] == [(soon, lead.id)]
    assert "first response deadline (2026-12-02 10:50 UTC) passes soon" in warnings[0].text

    # A minute later the next sweep does not warn again about the same deadline.
    wednesday_morning.shift(dt.timedelta(minutes=1))
    assert sweep_like_rq_cron(app, redis_conn)["warned"] == 0
    assert query(lambda: Notification.select().where(Notification.kind == "sla_warning").count()) == 1


def test_on_friday_afternoon_the_warning_window_reaches_into_monday(friday_afternoon, app, clinician, new_ticket,
                                                                     make_user, redis_conn):
    """The instant `make test` once failed at: 16:10 on a Friday leaves 50 business minutes this week,
    so the 60-minute window ends at 08:10 on Monday, whatever the calendar distance."""
    make_user("lead@smilepass.test", "support")
    query(lambda: User.update(escalation_role="supervisor").where(User.email == "lead@smilepass.test").execute())
    monday_early = new_ticket(clinician, title="Tray 3 missing")
    monday_later = new_ticket(clinician, title="Invoice question")
    due_at(monday_early, dt.datetime(2026, 12, 7, 8, 10))  # 50 + 10 business minutes away
    due_at(monday_later, dt.datetime(2026, 12, 7, 8, 11))  # one business minute too far
    assert sweep_like_rq_cron(app, redis_conn) == {"breached": 0, "escalated": 0, "warned": 1}
    warned = query(lambda: [n.ticket_id for n in Notification.select().where(Notification.kind == "sla_warning")])
    assert warned == [monday_early]


def test_a_breach_at_the_top_of_the_path_is_marked_but_not_escalated(app, clinician, new_ticket, redis_conn):
    ticket_id = new_ticket(clinician)
    query(lambda: Ticket.update(escalation_level=3).where(Ticket.id == ticket_id).execute())
    overdue(ticket_id)
    assert sweep_like_rq_cron(app, redis_conn) == {"breached": 1, "escalated": 0, "warned": 0}
    assert query(lambda: Ticket.get_by_id(ticket_id).response_breached)
    assert query(lambda: Escalation.select().count()) == 0
