"""Periodic jobs, run by `rq cron workers.cron` (make run starts it beside the worker)."""
from rq import cron

from smilepass.jobs import refresh_statistics
from smilepass.mailin.jobs import POLL_JOB_TIMEOUT, poll_imap
from smilepass.notifications.jobs import sweep_outbox
from smilepass.scans.jobs import sweep_scans
from smilepass.service.jobs import sla_sweep
from smilepass.stewardship.jobs import scan_retention

cron.register(sweep_outbox, "default", interval=300, name="sweep-outbox")
cron.register(sweep_scans, "default", interval=60, name="sweep-scans")
cron.register(refresh_statistics, "default", interval=3600, name="refresh-statistics")
cron.register(sla_sweep, "default", interval=60, name="sla-sweep")
cron.register(scan_retention, "default", interval=3600, name="scan-retention")
cron.register(poll_imap, "default", interval=60, job_timeout=POLL_JOB_TIMEOUT, name="poll-imap")
