"""The as-uploaded web copy's spawned child (webcopy.EarlyCopy) dies with a real RQ work horse that is
SIGKILLed (as a job past its hard timeout, or the OOM killer, would end it), instead of decimating on as
an orphan."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from redis import Redis
from rq import Queue

ROOT = Path(__file__).resolve().parents[1]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_for(condition, limit=300.0):
    """Polls (not a timed assertion: the limit only stops a test that would otherwise hang)."""
    end = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < end
        time.sleep(0.2)


def test_the_early_copy_child_dies_with_a_sigkilled_work_horse(redis_conn, redis_url, tmp_path):
    marker = tmp_path / "pids"
    Queue("early", connection=Redis.from_url(redis_url)).enqueue(
        "tests.worker_jobs.early_copy_then_hang", str(marker), job_timeout=900)
    worker = subprocess.Popen([sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", redis_url, "early"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = reader = None
    try:
        wait_for(lambda: marker.exists() and len(marker.read_text().split()) == 3)
        horse, child, fd = map(int, marker.read_text().split())
        assert horse != worker.pid and alive(child)
        # Once the child blocks writing the copy into the pipe (2.7 MB that nobody reads), the test opens
        # the pipe's read end as well: the horse's death then does not break the pipe, and the child stays
        # blocked, as one still decimating would go on. Only the parent-death signal can end it.
        wait_for(lambda: "pipe" in Path(f"/proc/{child}/wchan").read_text())
        reader = open(f"/proc/{horse}/fd/{fd}", "rb")  # noqa: SIM115 - closed in finally
        os.kill(horse, signal.SIGKILL)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        wait_for(lambda: not alive(child))
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if child is not None and alive(child):
            os.kill(child, signal.SIGKILL)
        if reader is not None:
            reader.close()
