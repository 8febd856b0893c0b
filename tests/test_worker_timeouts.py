"""Timeouts are final and scans have workers of their own, with real RQ workers (and `make run`'s script):
a job past its timeout fails at once with the reason and is never retried, even when its work horse is
stuck where the timeout signal cannot reach it; a long repair never holds up mail, sweeps or SLA jobs."""
import os
import signal
import subprocess
import sys
import time

from rq import Queue, Retry, Worker
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

from smilepass.models import Scan, ScanState
from smilepass.queue import DEFAULT_QUEUE, ON_TIMEOUT, SCAN_QUEUE, TIMED_OUT
from smilepass.scans import repair

from .conftest import ROOT, free_port, query, worker_env
from .scanfiles import arch_stl
from .test_scans import file_scan, the_scan

DEADLINE = 180  # seconds: far beyond what these need; only there so that a hang fails the test


def burst(app, *queues: str) -> subprocess.CompletedProcess:
    """A real worker on these queues that works what is queued, then exits."""
    return subprocess.run([sys.executable, "-m", "workers.worker", *queues, "--burst"], cwd=ROOT,
                          env=worker_env(app), capture_output=True, text=True, timeout=DEADLINE)


def test_a_repair_stuck_past_its_timeout_is_killed_and_failed_with_the_reason_not_retried(app, clinician,
                                                                                          redis_conn):
    file_scan(clinician, arch_stl())
    scan = the_scan()
    # The repair job of this scan, but stuck as in a mesh library's C code (the 123 MB STL).
    scans = Queue(SCAN_QUEUE, connection=redis_conn)
    scans.empty()
    query(lambda: Scan.update(state=ScanState.PROCESSING.value, attempts=1).where(Scan.id == scan.id).execute())
    job = scans.enqueue("tests.worker_jobs.stuck_in_c", scan.id, scan.run, job_id=scan.job_id, job_timeout=2,
                        retry=Retry(max=2, interval=[0]), meta={ON_TIMEOUT: "smilepass.scans.jobs.repair_timed_out"})
    result = burst(app, SCAN_QUEUE)
    assert result.returncode == 0, result.stderr[-3000:]
    # Killed by our worker a few seconds after the timeout (rq alone waits a minute more, then retries).
    assert "killing its work horse" in result.stdout + result.stderr, result.stdout[-3000:]
    job = Job.fetch(job.id, connection=redis_conn)
    assert job.get_status() == JobStatus.FAILED and job.meta[TIMED_OUT] == 2
    assert scans.count == 0 and ScheduledJobRegistry(queue=scans).count == 0  # not retried
    # The scan says why, at once: the worker queued the scan's own timeout handling on `default`.
    assert Queue(DEFAULT_QUEUE, connection=redis_conn).count == 1
    assert burst(app, DEFAULT_QUEUE).returncode == 0
    failed = the_scan()
    assert failed.state == "failed"
    assert "took longer than 2 seconds and was stopped (attempt 1)" in failed.error
    assert "not retried" in failed.error
    page = clinician.get(f"/support/tickets/{failed.ticket_id}").get_data(as_text=True)
    assert "took longer than 2 seconds and was stopped (attempt 1)" in page


def scan_panel(browser, scan, language="en") -> str:
    return browser.get(f"/support/tickets/{scan.ticket_id}",
                       headers={"Accept-Language": language}).get_data(as_text=True)


def test_a_repair_past_the_configured_15_minutes_shows_the_minutes_and_the_attempt_and_is_not_retried(
        app, clinician, redis_conn, tmp_path):
    """The shipped limit is 15 minutes: the user reads "took longer than 15 minutes", on which attempt, and
    that it is not retried; the job runs once though the repair job keeps its retries for other failures."""
    assert app.config["SCAN_JOB_TIMEOUT"] == 15 * 60
    file_scan(clinician, arch_stl())
    scan = the_scan()
    scans = Queue(SCAN_QUEUE, connection=redis_conn)
    queued = Job.fetch(scan.job_id, connection=redis_conn)  # the repair job as the upload queued it
    assert queued.timeout == 15 * 60 and queued.retries_left == app.config["SCAN_RETRIES"] > 0
    scans.empty()
    query(lambda: Scan.update(state=ScanState.PROCESSING.value, attempts=1).where(Scan.id == scan.id).execute())
    # The same job, whose repair runs out of its 15 minutes (rq's alarm, raised at once here).
    marker = tmp_path / "runs"
    scans.enqueue("tests.worker_jobs.repair_out_of_time", str(marker), scan.id, scan.run, job_id=scan.job_id,
                  job_timeout=queued.timeout, retry=Retry(max=queued.retries_left, interval=[0]),
                  meta=queued.meta)
    result = burst(app, SCAN_QUEUE, DEFAULT_QUEUE)
    assert result.returncode == 0, result.stderr[-3000:]
    assert marker.read_text().count("run") == 1  # not retried
    assert scans.count == 0 and ScheduledJobRegistry(queue=scans).count == 0
    failed = the_scan()
    assert failed.state == "failed" and failed.attempts == 1
    page = scan_panel(clinician, failed)
    assert "The repair took longer than 15 minutes and was stopped (attempt 1)." in page
    assert "A timeout is not retried" in page
    assert "Retrying" not in page and "stopped unexpectedly" not in page
    german = scan_panel(clinician, failed, "de-DE,de;q=0.9")
    assert "Die Reparatur dauerte länger als 15 Minuten und wurde abgebrochen (Versuch 1)." in german


def test_a_repair_killed_past_the_configured_15_minutes_shows_the_minutes_and_the_attempt(app, clinician):
    """A work horse stuck in C code is killed by the worker, which then fails the scan (repair_timed_out)
    with the job's timeout: the user reads the same sentence, the attempt it was on, no retry."""
    file_scan(clinician, arch_stl())
    scan = the_scan()
    query(lambda: Scan.update(state=ScanState.PROCESSING.value, attempts=2).where(Scan.id == scan.id).execute())
    assert query(lambda: repair.fail_timed_out(scan.id, scan.run, app.config["SCAN_JOB_TIMEOUT"]))
    failed = the_scan()
    assert failed.state == "failed"
    page = scan_panel(clinician, failed)
    assert "The repair took longer than 15 minutes and was stopped (attempt 2)." in page
    assert "A timeout is not retried" in page and "Retrying" not in page


def test_a_job_that_times_out_is_not_retried(app, redis_conn, tmp_path):
    marker = tmp_path / "runs"
    job = Queue(DEFAULT_QUEUE, connection=redis_conn).enqueue(
        "tests.worker_jobs.counted_sleep", str(marker), 30, job_timeout=1, retry=Retry(max=3))
    result = burst(app, DEFAULT_QUEUE)
    assert result.returncode == 0, result.stderr[-3000:]
    assert Job.fetch(job.id, connection=redis_conn).get_status() == JobStatus.FAILED
    assert "JobTimeoutException" in Job.fetch(job.id, connection=redis_conn).latest_result().exc_string
    assert marker.read_text().count("run") == 1  # ran once: a timeout is final


def test_other_failures_are_still_retried(app, redis_conn, tmp_path):
    """Only timeouts are final: a job that fails otherwise keeps its retries."""
    marker = tmp_path / "runs"
    queue = Queue(DEFAULT_QUEUE, connection=redis_conn)
    # A number that cannot be slept: the job raises (TypeError) after noting its run.
    job = queue.enqueue("tests.worker_jobs.counted_sleep", str(marker), "not a number", retry=Retry(max=2))
    assert burst(app, DEFAULT_QUEUE).returncode == 0
    assert Job.fetch(job.id, connection=redis_conn).get_status() == JobStatus.FAILED
    assert marker.read_text().count("run") == 3


def worker_queues(connection) -> list[list[str]]:
    return sorted(worker.queue_names() for worker in Worker.all(connection=connection))


def test_make_run_gives_scans_workers_of_their_own(app, redis_conn, tmp_path):
    env = {**worker_env(app), "PORT": str(free_port()), "WEB_WORKERS": "1", "SCAN_WORKERS": "2"}
    run = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + DEADLINE
        while len(Worker.all(connection=redis_conn)) < 3:
            assert run.poll() is None, run.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.2)
        assert worker_queues(redis_conn) == [[DEFAULT_QUEUE], [SCAN_QUEUE], [SCAN_QUEUE]]
        # Both scan workers busy with long repairs: mail, sweeps and SLA jobs still run at once.
        scans = Queue(SCAN_QUEUE, connection=redis_conn)
        long_repairs = [scans.enqueue("tests.worker_jobs.counted_sleep", str(tmp_path / f"repair{n}"), 120,
                                      job_timeout=300) for n in range(2)]
        while not all(Job.fetch(j.id, connection=redis_conn).get_status() == JobStatus.STARTED for j in long_repairs):
            assert time.monotonic() < deadline, "the scan workers did not take the repairs"
            time.sleep(0.2)
        marker = tmp_path / "mail"
        Queue(DEFAULT_QUEUE, connection=redis_conn).enqueue("tests.worker_jobs.note", str(marker))
        while not marker.exists():
            assert time.monotonic() < deadline, "the default job waited behind the repairs"
            time.sleep(0.2)
        assert all(Job.fetch(j.id, connection=redis_conn).get_status() == JobStatus.STARTED for j in long_repairs)
    finally:
        os.killpg(run.pid, signal.SIGTERM)  # run.sh stops what it started
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()

