"""Job functions the worker tests enqueue (no tests here). The real RQ worker processes import them as
`tests.worker_jobs.<name>`: they run from the repository root."""
import signal
import time
from pathlib import Path


def stuck_in_c(*args) -> None:
    """Like a repair busy inside a mesh library's C code: rq's timeout signal (SIGALRM) cannot reach
    Python code, so the job never notices its timeout. Takes the repair job's arguments."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(600)


def counted_sleep(marker: str, seconds: float) -> str:
    """Notes each run in the marker file, then sleeps (in Python: a timeout interrupts it)."""
    with open(marker, "a") as fh:
        fh.write("run\n")
    time.sleep(seconds)
    return "slept"


def note(marker: str) -> str:
    Path(marker).write_text("done")
    return "done"


def repair_out_of_time(marker: str, scan_id: int, run: int) -> str:
    """The real repair job (smilepass.scans.jobs.repair_scan) when its repair runs past the job's timeout:
    the repair raises rq's JobTimeoutException at once, as rq's alarm would after the configured minutes,
    so a test sees what a 15-minute timeout leaves without waiting 15 minutes. Notes each run in marker."""
    from rq.timeouts import JobTimeoutException

    from smilepass.scans import jobs, repair

    with open(marker, "a") as fh:
        fh.write("run\n")

    def runs_out_of_time(*args, **kwargs):
        raise JobTimeoutException("Task exceeded maximum timeout value")

    repair.run_repair = runs_out_of_time  # this work horse only: it exits after the job
    return jobs.repair_scan(scan_id, run)


def repair_slower_than_its_timeout(scan_id: int, run: int) -> str:
    """The real repair job (smilepass.scans.jobs.repair_scan) whose repair first sleeps in Python far past
    any test's timeout, so rq's own alarm in the work horse stops it mid-repair however fast this machine
    repairs the scan (a 720k-triangle arch once took longer than 1 s; now it may not)."""
    from smilepass.scans import jobs, repair

    real = repair.run_repair

    def slow(*args, **kwargs):
        time.sleep(120)
        return real(*args, **kwargs)

    repair.run_repair = slow  # this work horse only: it exits after the job
    return jobs.repair_scan(scan_id, run)
