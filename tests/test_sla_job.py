"""The SLA job against real Redis and a real RQ worker: enqueued exactly as `rq cron` enqueues it
(from workers/cron.py), it marks tickets whose running deadline passed and escalates each newly
breached one a single step, automatically; the next sweep leaves them alone."""
import datetime as dt

from rq.cron import CronScheduler
from rq.job import Job

from smilepass.models import AuditLog, Escalation, Notification, Ticket, User, utcnow

from .conftest import query, run_worker


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
    query(lambda: Ticket.update(next_due_at=utcnow() + dt.timedelta(days=2)).where(Ticket.id == on_time).execute())

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


def test_sweep_warns_about_deadlines_that_pass_soon(app, clinician, new_ticket, make_user, redis_conn):
    make_user("lead@smilepass.test", "support")
    query(lambda: User.update(escalation_role="supervisor").where(User.email == "lead@smilepass.test").execute())
    soon = new_ticket(clinician, title="Scan keeps failing")
    # A deadline a minute away is within the warning window whatever the business hours.
    query(lambda: Ticket.update(next_due_at=utcnow() + dt.timedelta(seconds=90)).where(Ticket.id == soon).execute())
    result = sweep_like_rq_cron(app, redis_conn)
    assert result["breached"] == 0 and result["escalated"] == 0
    warned = query(lambda: Notification.select().where(Notification.kind == "sla_warning").count())
    assert result["warned"] == warned


def test_a_breach_at_the_top_of_the_path_is_marked_but_not_escalated(app, clinician, new_ticket, redis_conn):
    ticket_id = new_ticket(clinician)
    query(lambda: Ticket.update(escalation_level=3).where(Ticket.id == ticket_id).execute())
    overdue(ticket_id)
    assert sweep_like_rq_cron(app, redis_conn) == {"breached": 1, "escalated": 0, "warned": 0}
    assert query(lambda: Ticket.get_by_id(ticket_id).response_breached)
    assert query(lambda: Escalation.select().count()) == 0
