"""The service-level job RQ runs every minute from `rq cron`."""
from ..jobs import app_context
from ..models import utcnow
from . import escalation, sla, warnings


def sla_sweep() -> dict:
    """Mark tickets whose running deadline passed, escalate each newly breached one a step, and warn about
    deadlines that pass soon. Marking is race-safe (only rows still unmarked), so overlapping sweeps
    escalate a ticket once."""
    with app_context():
        now = utcnow()
        breaches = sla.mark_breaches(now)
        escalated = escalation.escalate_breaches(breaches, now=now)
        warned = warnings.sla_warnings(now)
        return {"breached": len(breaches), "escalated": escalated, "warned": warned}
