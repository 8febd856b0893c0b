"""Start one RQ worker on the SmilePass queues: `python -m workers.worker [queue ...]`.

`make run` starts one for `default` (mail, sweeps, SLA) and separate ones for `scans`, so that a long
repair never holds up the rest (see docs/workers.md).

A job that runs past its timeout fails at once and is never retried (a second try would only time out
again, and hold a worker as long again): a job that notices (JobTimeoutException in the work horse) is
marked final here; a work horse stuck inside C code, which cannot notice, is killed a few seconds
after its timeout and its job failed for good, and the job's ON_TIMEOUT function is enqueued so that
its object (a scan) shows the reason.

Heavy libraries are imported inside job functions, never here, so the forked work horse starts
clean."""
import os
import sys

from redis import Redis
from rq import Queue, Worker
from rq.timeouts import JobTimeoutException
from rq.utils import now

from smilepass import config
from smilepass.queue import DEFAULT_QUEUE, ON_TIMEOUT, QUEUES, TIMED_OUT, warn_if_evicting
from smilepass.storage import settings_problem
from smilepass.storage.workdirs import remove_abandoned
from smilepass.webapp import default_instance_path  # loads the app's modules once: forked work horses start with them

# How often the worker looks at its work horse (rq's default is 30 s), and how long past its timeout
# a horse may take to stop by itself before the worker kills it (rq itself waits a minute more).
MONITOR_SECONDS = 5
STUCK_GRACE_SECONDS = 10


def seconds_over_timeout(job) -> float | None:
    """How far past its timeout the job has run (negative: not yet); None without a timeout."""
    if job.timeout in (None, -1) or job.started_at is None:
        return None
    return (now() - job.started_at).total_seconds() - job.timeout


def timeouts_are_final(job, exc_type, exc_value, traceback) -> bool:
    """rq exception handler (runs in the work horse, before rq decides on a retry)."""
    if exc_type is not None and issubclass(exc_type, JobTimeoutException):
        job.retries_left = 0
    return True  # on to rq's own handling


class SmilePassWorker(Worker):
    settings: dict = {}  # the app's settings (config.load), read once at start

    def maintain_heartbeats(self, job, execution):
        super().maintain_heartbeats(job, execution)
        over = seconds_over_timeout(job)
        if over is not None and over > STUCK_GRACE_SECONDS:
            # Its SIGALRM handler never ran: the horse is stuck in C code (a mesh library, say).
            self.log.warning("job %s ran %.0f s past its %s s timeout: killing its work horse", job.id, over,
                             job.timeout)
            self.kill_horse()

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage):
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        # The horse's work folder (a scan half downloaded or repaired) goes now, not when the worker restarts.
        remove_abandoned(self.settings)
        over = seconds_over_timeout(job)
        if over is None or over < 0:
            return  # died of something else (out of memory, killed by hand): rq retries as usual
        job.retries_left = 0  # read by handle_job_failure, which rq calls next
        job.meta[TIMED_OUT] = job.timeout
        job.save_meta()
        follow_up = job.meta.get(ON_TIMEOUT)
        if follow_up:
            Queue(DEFAULT_QUEUE, connection=self.connection).enqueue(follow_up, *job.args, job.timeout,
                                                                      at_front=True)


def main(argv: list[str]) -> int:
    settings = config.load(default_instance_path())
    # Storage settings that cannot work stop the worker at once with the reason (not every job after it).
    problem = settings_problem(settings)
    if problem:
        print(f"SmilePass worker not started: {problem}", file=sys.stderr)
        return 2
    # Work folders that killed uploads and repairs on this host left (each host sweeps its own disk).
    remove_abandoned(settings)
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    connection = Redis.from_url(url)
    warn_if_evicting(connection)
    burst = "--burst" in argv
    queues = [arg for arg in argv if not arg.startswith("--")] or list(QUEUES)  # mail and sweeps first
    worker = SmilePassWorker(queues, connection=connection, exception_handlers=[timeouts_are_final],
                             job_monitoring_interval=MONITOR_SECONDS)
    worker.settings = settings
    worker.work(burst=burst, with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
