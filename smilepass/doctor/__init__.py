"""Is this server ready to run? `flask --app app doctor` and Admin → System run the same checks, each a
small function returning one Check (OK, WARN or FAIL with a short reason):

  record.py    the Check record and its statuses
  storage.py   database (reachable, migrated), file storage (probe object), disk space, the last backup
  queueing.py  Redis (reachable, noeviction), a live worker per queue, a live `rq cron`
  outside.py   mail (SMTP answers), the links in mails (SMILEPASS_BASE_URL), the scan pipeline (a small scan repaired
               in a subprocess)
  runner.py    the list of checks, run in order
  views.py     Admin → System

Nothing here reads or shows patient data."""
from .record import Check, Status
from .runner import CHECKS, run_checks

__all__ = ["CHECKS", "Check", "Status", "run_checks"]
