"""Scan intake through the Support page: streamed upload, structural refusals, repair by a real RQ
worker on a real Redis, progress and results in the ticket, and the faults: Redis down at upload,
a work horse killed mid-job, a job timeout, a duplicate enqueue."""
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job

from smilepass.models import Scan, Ticket
from smilepass.queue import SCAN_QUEUE
from smilepass.scans.queueing import enqueue_repair
from smilepass.scans.repair import run_repair
from smilepass.storage import for_config

from .conftest import ROOT, free_port, query, run_worker, stop_worker, stored_keys, worker_env
from .parts import part_missing
from .scanfiles import arch_stl


def file_scan(browser, payload: bytes, name="clinic7_patient42_2026-11-20.stl", htmx=False, **fields):
    data = {"title": "Scan rejected by the lab", "description": "Holes on the lower molars.", **fields,
            "scan": (io.BytesIO(payload), name)}
    return browser.post("/support/tickets", data, htmx=htmx, content_type="multipart/form-data")


def the_scan():
    return query(lambda: Scan.get())


def scan_files(app):
    """Every file in the upload folder's scans folder (temp files too): what the local storage left on disk."""
    directory = Path(app.config["UPLOAD_DIR"]) / "scans"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def stored_scan_names(app):
    """The scan files in whichever storage the app has (a folder or a bucket)."""
    return [key.removeprefix("scans/") for key in stored_keys(app, "scans/")]


def test_scan_with_a_ticket_is_repaired_end_to_end(app, clinician, redis_conn, storage_settings):
    response = file_scan(clinician, arch_stl())
    assert response.status_code == 303
    scan = the_scan()
    assert scan.state == "queued" and scan.triangles > 20000 and scan.file_format == "stl-binary"
    assert scan.original_name == "clinic7_patient42_2026-11-20.stl"
    assert scan.stored_name.endswith(".stl") and "clinic7" not in scan.stored_name
    assert Queue(SCAN_QUEUE, connection=redis_conn).count == 1

    # While queued, the panel polls; once done, it answers 286 so htmx stops polling.
    panel = clinician.get(f"/support/scans/{scan.id}", htmx=True)
    assert panel.status_code == 200 and 'hx-trigger="every 1s"' in panel.get_data(as_text=True)
    result = run_worker(app)
    assert result.returncode == 0, result.stderr[-2000:]
    scan = the_scan()
    assert scan.state == "done", scan.error
    assert scan.verdict == "repaired" and scan.attempts == 1
    report = json.loads(scan.report)
    assert report["holes_filled"] >= 2 and report["after"]["non_manifold_edges"] == 0
    panel = clinician.get(f"/support/scans/{scan.id}", htmx=True)
    assert panel.status_code == 286
    html = panel.get_data(as_text=True)
    assert "<html" not in html and "every 1s" not in html and "Repaired" in html

    page = clinician.get(f"/support/tickets/{scan.ticket_id}").get_data(as_text=True)
    assert "What we found and fixed" in page and "Download repaired" in page
    for which in ("before", "after"):
        image = clinician.get(f"/support/scans/{scan.id}/preview/{which}")
        assert image.status_code == 200 and image.data.startswith(b"\x89PNG")
    original = clinician.get(f"/support/scans/{scan.id}/files/original")
    assert original.data == arch_stl()
    assert 'filename=clinic7_patient42_2026-11-20.stl' in original.headers["Content-Disposition"]
    repaired = clinician.get(f"/support/scans/{scan.id}/files/repaired")
    disposition = repaired.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and f"SP-{scan.ticket_id:06d}_" in disposition
    assert disposition.rstrip('"').endswith("_repaired.stl")
    assert repaired.headers["X-Content-Type-Options"] == "nosniff"
    assert repaired.headers["Cache-Control"] == "no-store"
    assert (len(repaired.data) - 84) % 50 == 0
    # Where the files are: in the bucket when one is configured, and then nothing in the upload folder.
    stored = {o.key for o in for_config(app.config).list()}
    names = {scan.stored_name, scan.repaired_name, scan.preview_before_name, scan.preview_after_name}
    assert {f"scans/{name}" for name in names} <= stored
    assert scan.repaired_name.startswith(scan.sha256[:32])  # outputs are named after the input's hash
    assert (scan_files(app) == []) == bool(storage_settings)


HTML_PAGE = b"<!doctype html><html><body>Sign in to your scanner portal</body></html>"


@pytest.mark.parametrize("payload, name, message", [
    (HTML_PAGE, "upper.stl", "HTML"),
    (b"PK\x03\x04" + b"\x00" * 200, "upper.stl", "ZIP"),
    (arch_stl()[:-1000], "upper.stl", "truncated"),
    (b"solid empty\nendsolid empty\n", "upper.stl", "facet"),
    (b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
     b"element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n",
     "lower.ply", "refers to vertex 7"),
])
@pytest.mark.parametrize("htmx", [True, False])
def test_refused_scans_leave_nothing_and_keep_the_text(app, clinician, redis_conn, payload, name, message, htmx):
    response = file_scan(clinician, payload, name=name, htmx=htmx, title="Typed title stays")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message.lower() in html.lower()
    assert 'value="Typed title stays"' in html and "Holes on the lower molars." in html
    assert query(lambda: (Ticket.select().count(), Scan.select().count())) == (0, 0)
    assert scan_files(app) == []
    assert Queue(SCAN_QUEUE, connection=redis_conn).count == 0


def test_scan_in_a_reply(app, clinician, new_ticket, redis_conn):
    ticket_id = new_ticket(clinician)
    response = clinician.post(f"/support/tickets/{ticket_id}/replies",
                              {"body": "Here is the rescan.", "scan": (io.BytesIO(arch_stl()), "rescan.stl")},
                              htmx=True, content_type="multipart/form-data")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="scans" class="scans" aria-label="Scans" hx-swap-oob="true"' in html and "rescan.stl" in html
    scan = the_scan()
    assert scan.message_id is not None and scan.ticket_id == ticket_id


def test_a_scan_in_an_internal_note_is_staff_only(app, clinician, support, new_ticket, redis_conn):
    ticket_id = new_ticket(clinician)
    response = support.post(f"/support/tickets/{ticket_id}/replies",
                            {"body": "Lab's own re-export, not for the clinic.", "internal": "y",
                             "scan": (io.BytesIO(arch_stl()), "lab-internal.stl")},
                            content_type="multipart/form-data")
    assert response.status_code == 303
    scan = the_scan()
    assert "lab-internal.stl" in support.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "lab-internal.stl" not in clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    for path in (f"/support/scans/{scan.id}", f"/support/scans/{scan.id}/files/original",
                 f"/support/scans/{scan.id}/preview/before"):
        assert clinician.get(path).status_code == 404, path


def test_another_clinicians_scan_is_a_404(app, clinician, other_clinician, support, redis_conn):
    file_scan(clinician, arch_stl())
    scan = the_scan()
    for path in (f"/support/scans/{scan.id}", f"/support/scans/{scan.id}/files/original",
                 f"/support/scans/{scan.id}/preview/before"):
        assert other_clinician.get(path, htmx=True).status_code == 404
    assert (
        other_clinician.post(
            f"/support/scans/{scan.id}/rerun", {"hole_percent": "5", "debris_percent": "1"}
        ).status_code
        == 404
    )
    assert (
        clinician.post(f"/support/scans/{scan.id}/rerun", {"hole_percent": "5", "debris_percent": "1"}).status_code
        == 404
    )
    assert support.get(f"/support/scans/{scan.id}/files/original").status_code == 200


def test_staff_rerun_with_other_settings(app, clinician, support, redis_conn, storage_settings):
    file_scan(clinician, arch_stl())
    assert run_worker(app).returncode == 0
    scan = the_scan()
    first_outputs = [scan.repaired_name, scan.preview_after_name]
    response = support.post(f"/support/scans/{scan.id}/rerun", {"hole_percent": "0", "debris_percent": "1"}, htmx=True)
    assert response.status_code == 200
    scan = the_scan()
    assert scan.run == 2 and scan.state == "queued"
    assert json.loads(scan.options)["hole_max_edges_fraction"] == 0
    assert run_worker(app).returncode == 0
    scan = the_scan()
    assert scan.state == "done" and json.loads(scan.report)["holes_filled"] == 0
    # The first run's files are replaced, not left behind.
    assert not any(name in stored_scan_names(app) for name in first_outputs)
    assert stored_scan_names(app) == sorted({scan.stored_name, scan.repaired_name, scan.repaired_stl_name,
                                             scan.preview_before_name, scan.preview_after_name,
                                             scan.web_before_name, scan.web_after_name})


def test_a_repeated_repair_writes_the_same_files_not_a_second_set(app, clinician, redis_conn, storage_settings):
    file_scan(clinician, arch_stl())
    assert run_worker(app).returncode == 0
    first = the_scan()
    files = stored_scan_names(app)
    assert len(files) == 6  # the upload; repaired (an STL: its own STL copy); two previews; two web copies
    # As a worker killed after storing the outputs but before the row said "done" leaves it.
    query(lambda: Scan.update(state="processing").where(Scan.id == first.id).execute())
    with app.app_context():
        assert query(lambda: run_repair(first.id, first.run, app.config)) == "repaired"
    again = the_scan()
    assert again.repaired_name == first.repaired_name and again.preview_after_name == first.preview_after_name
    assert stored_scan_names(app) == files  # the same keys, written again: exactly one set


def test_duplicate_enqueue_does_the_work_once(app, clinician, redis_conn):
    file_scan(clinician, arch_stl())
    scan = the_scan()
    with app.app_context():
        enqueue_repair(scan, app.config)
        enqueue_repair(scan, app.config)
    assert Queue(SCAN_QUEUE, connection=redis_conn).count == 1
    assert run_worker(app).returncode == 0
    assert the_scan().attempts == 1
    # A job that arrives after the work is done does nothing.
    Queue(SCAN_QUEUE, connection=redis_conn).enqueue("smilepass.scans.jobs.repair_scan", scan.id, scan.run)
    assert run_worker(app).returncode == 0
    assert the_scan().attempts == 1


def start_redis(port, directory):
    if not shutil.which("redis-server"):
        part_missing("redis-server is not installed (make test installs it)")
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(directory)], stdout=subprocess.DEVNULL)
    for _ in range(100):
        try:
            if Redis(port=port).ping():
                return process
        except Exception:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def test_redis_down_at_upload_then_back(app, clinician, tmp_path):
    port = free_port()
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    redis = start_redis(port, tmp_path)
    redis.terminate()
    redis.wait()
    # Redis is down: the ticket and the scan are saved; the scan waits for a worker.
    assert file_scan(clinician, arch_stl()).status_code == 303
    scan = the_scan()
    assert scan.state == "waiting"
    page = clinician.get(f"/support/tickets/{scan.ticket_id}").get_data(as_text=True)
    assert "Waiting for a worker" in page
    # Redis is back: the periodic sweep hands the scan to a worker.
    redis = start_redis(port, tmp_path)
    try:
        Queue("default", connection=Redis(port=port)).enqueue("smilepass.scans.jobs.sweep_scans")
        result = run_worker(app)
        assert result.returncode == 0, result.stderr[-2000:]
        assert the_scan().state == "done"
    finally:
        redis.terminate()
        redis.wait()


def test_job_timeout_fails_with_a_reason_and_is_not_retried(app, clinician, redis_conn):
    app.config["SCAN_JOB_TIMEOUT"] = 1
    file_scan(clinician, arch_stl())
    # The job the upload queued (its timeout, retries and timeout handling as the app set them), with a
    # repair that cannot finish within the second: the outcome must not depend on this machine's speed.
    job = Job.fetch(the_scan().job_id, connection=redis_conn)
    assert job.timeout == 1 and job.func_name == "smilepass.scans.jobs.repair_scan" and len(job.args) == 2
    job.func_name = "tests.worker_jobs.repair_slower_than_its_timeout"  # (the arguments read first: kept)
    job.save()
    result = run_worker(app)
    assert result.returncode == 0, result.stderr[-2000:]
    scan = the_scan()
    assert scan.state == "failed" and "took longer than 1 seconds" in scan.error, result.stderr[-3000:]
    # Not retried. On a busy machine the timeout may strike while the work horse is still starting,
    # before the repair counts its attempt: the scan must fail with the reason all the same.
    assert scan.attempts <= 1
    assert Queue(SCAN_QUEUE, connection=redis_conn).count == 0
    assert not [name for name in scan_files(app) if name != scan.stored_name]


def horse_of(worker_pid):
    """The work horse: the worker's youngest child (it forks one per job; its scheduler is older)."""
    children = Path(f"/proc/{worker_pid}/task/{worker_pid}/children").read_text().split()
    started = {int(pid): int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
               for pid in children if Path(f"/proc/{pid}/stat").exists()}
    return max(started, key=started.get) if started else None


def test_worker_killed_mid_job_retries_then_finishes(app, clinician, redis_conn):
    app.config["SCAN_RETRY_INTERVALS"] = [0]
    file_scan(clinician, arch_stl(300, 700))
    scan_id = the_scan().id
    worker = subprocess.Popen([sys.executable, "-m", "workers.worker"], cwd=ROOT, env=worker_env(app),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while query(lambda: Scan.get_by_id(scan_id).state) != "processing":
            assert time.monotonic() < deadline, "the worker never started the job"
            time.sleep(0.02)
        horse = None
        while horse is None and time.monotonic() < deadline:
            horse = horse_of(worker.pid)
        os.kill(horse, signal.SIGKILL)
        while query(lambda: Scan.get_by_id(scan_id).state) != "done":
            assert time.monotonic() < deadline + 60, query(lambda: Scan.get_by_id(scan_id).error)
            time.sleep(0.1)
    finally:
        stop_worker(worker)
    scan = query(lambda: Scan.get_by_id(scan_id))
    assert scan.attempts == 2 and scan.verdict == "repaired"
    # The killed attempt left no partial files behind under a final name.
    leftovers = [n for n in scan_files(app) if n not in (scan.stored_name, scan.repaired_name, scan.repaired_stl_name,
                                                          scan.preview_before_name, scan.preview_after_name,
                                                          scan.web_before_name, scan.web_after_name)]
    assert all(n.endswith((".tmp", ".part")) for n in leftovers), leftovers


def test_whole_worker_killed_mid_job_is_picked_up_by_the_sweep(app, clinician, redis_conn):
    import datetime as dt

    from rq import Worker
    file_scan(clinician, arch_stl(300, 700))
    scan_id = the_scan().id
    worker = subprocess.Popen([sys.executable, "-m", "workers.worker"], cwd=ROOT, env=worker_env(app),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while query(lambda: Scan.get_by_id(scan_id).state) != "processing":
        assert time.monotonic() < deadline, "the worker never started the job"
        time.sleep(0.02)
    # Worker and horse die together (power loss, OOM killer): nobody is left to retry the job.
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    worker.kill()
    worker.wait()
    for pid in children:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    # Time passes: the worker's heartbeat goes stale and the scan has had no news for a while.
    long_ago = dt.datetime(2020, 1, 1).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for dead in Worker.all(connection=redis_conn):
        redis_conn.hset(dead.key, "last_heartbeat", long_ago)
    query(lambda: Scan.update(updated_at=dt.datetime(2020, 1, 1)).where(Scan.id == scan_id).execute())
    Queue("default", connection=redis_conn).enqueue("smilepass.scans.jobs.sweep_scans")
    result = run_worker(app)
    assert result.returncode == 0, result.stderr[-2000:]
    scan = query(lambda: Scan.get_by_id(scan_id))
    assert scan.state == "done" and scan.attempts == 2


def test_sweep_settles_a_lost_job_with_a_reason(app, clinician, redis_conn):
    import datetime as dt
    file_scan(clinician, arch_stl())
    scan_id = the_scan().id
    # The queue lost the job (Redis restarted without persistence, say) while the row says queued.
    redis_conn.flushdb()
    query(lambda: Scan.update(updated_at=dt.datetime(2020, 1, 1)).where(Scan.id == scan_id).execute())
    with app.app_context():
        from smilepass.scans.sweep import sweep
        query(lambda: sweep(app.config))
    scan = query(lambda: Scan.get_by_id(scan_id))
    assert scan.state == "failed" and "lost" in scan.error
    page = clinician.get(f"/support/tickets/{scan.ticket_id}").get_data(as_text=True)
    assert "lost" in page and "every 1s" not in page


def test_oversized_scan_is_refused_while_streaming(app, clinician, redis_conn):
    app.config["MAX_SCAN_BYTES"] = 512 * 1024
    response = file_scan(clinician, arch_stl(), htmx=True, title="Big one")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "The scan is larger than 0 MB." not in html  # the limit reads as a size a person understands
    assert "larger than" in html and 'value="Big one"' in html
    assert scan_files(app) == [] and query(lambda: Scan.select().count()) == 0


def test_sweep_removes_stale_temp_files_only(app, redis_conn):
    from smilepass.scans.sweep import sweep
    directory = Path(app.config["UPLOAD_DIR"]) / "scans"
    directory.mkdir(parents=True, exist_ok=True)
    old_tmp, old_part = directory / ".abc.repaired.stl.1234.tmp", directory / "deadbeef.part"
    fresh_tmp, kept = directory / ".new.repaired.stl.5678.tmp", directory / "0123abcd.stl"
    for path in (old_tmp, old_part, fresh_tmp, kept):
        path.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    for path in (old_tmp, old_part, kept):
        os.utime(path, (two_hours_ago, two_hours_ago))
    with app.app_context():
        counts = query(lambda: sweep(app.config))
    assert counts["temp_files_removed"] == 2
    assert sorted(p.name for p in directory.iterdir()) == sorted([fresh_tmp.name, kept.name])
