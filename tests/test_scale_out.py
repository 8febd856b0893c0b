"""Past one server (docs/scale-out.md): two gunicorn web servers and two RQ workers, each with an instance
folder of its own and nothing shared but PostgreSQL, Redis and an S3 bucket (a real SeaweedFS). A scan
uploaded through web 1 is taken by worker 1, which is SIGKILLed mid-repair (after storing part of its
outputs); the job is started over and repaired by worker 2, leaving exactly one set of outputs; the files
are downloaded through web 2 with the right hash, with the session the person signed in with on web 1."""
import contextlib
import datetime as dt
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import urllib3
from rq import Queue, Worker

from smilepass.models import Scan
from smilepass.storage import for_config

from .conftest import PG_URL, ROOT, free_port, query, stop_worker, worker_env
from .scanfiles import arch_stl

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
# Bounded waits for readiness and for the repair (not timing assertions).
START_SECONDS = 60
REPAIR_SECONDS = 240


def host_env(app, folder: Path) -> dict:
    """One host's environment: its own instance and upload folders; database, Redis and bucket shared."""
    folder.mkdir()
    return {**worker_env(app), "SMILEPASS_INSTANCE": str(folder / "instance"),
            "SMILEPASS_UPLOAD_DIR": str(folder / "instance" / "uploads"), "PYTHONUNBUFFERED": "1"}


class Person:
    """A browser's cookie and CSRF token, carried from one web server to the other."""

    def __init__(self):
        self.http = urllib3.PoolManager(timeout=urllib3.Timeout(total=60), retries=False)
        self.cookie, self.token = "", ""

    def send(self, method, url, fields=None, multipart=False):
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if fields is not None and not multipart:
            response = self.http.request_encode_body(method, url, fields=fields, headers=headers,
                                                     encode_multipart=False, redirect=False)
        elif fields is not None:
            response = self.http.request(method, url, fields=fields, headers=headers, redirect=False)
        else:
            response = self.http.request(method, url, headers=headers, redirect=False)
        found = re.search(r"smilepass_session=([^;]+)", response.headers.get("Set-Cookie", ""))
        if found:
            self.cookie = f"smilepass_session={found.group(1)}"
        match = CSRF_META.search(response.data.decode(errors="replace"))
        if match:
            self.token = match.group(1)
        return response


def start_web(env, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), "--no-control-socket", "--workers", "1",
                                    "--bind", f"127.0.0.1:{port}", "app:app"], cwd=ROOT, env=env, stdout=out,
                                   stderr=out, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_SECONDS
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if urllib3.request("GET", url + "/healthz", timeout=5, retries=False).status == 200:
                return process, url
        except urllib3.exceptions.HTTPError:
            pass
        assert time.monotonic() < deadline, f"gunicorn did not start: {log.read_text()[-3000:]}"
        time.sleep(0.2)


def stop_web(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def stored_on_disk(folder: Path) -> list[str]:
    uploads = folder / "instance" / "uploads"
    return [str(p) for p in uploads.rglob("*") if p.is_file()] if uploads.exists() else []


def start_worker(module_args, env, log: Path) -> subprocess.Popen:
    # A session of its own: the worker and its scheduler process can be killed together, like a host going down.
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", *module_args], cwd=ROOT, env=env, stdout=out, stderr=out,
                                start_new_session=True)


def wait_for(condition, what: str, log: Path, seconds=REPAIR_SECONDS):
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, f"{what}: {log.read_text()[-3000:]}"
        time.sleep(0.2)
    return found


def test_upload_on_web_1_worker_1_killed_mid_repair_worker_2_repairs_download_on_web_2(
        app, clinician, redis_conn, s3_settings, tmp_path):
    if not PG_URL:
        pytest.skip("PostgreSQL pass only: hosts of their own share a database server, not a SQLite file")
    app.config.update(s3_settings)
    bucket = for_config(app.config)
    hosts = {name: host_env(app, tmp_path / name) for name in ("web1", "web2", "worker1", "worker2")}
    started, held = [], None
    try:
        web1, url1 = start_web(hosts["web1"], tmp_path / "web1.log")
        started.append(web1)
        web2, url2 = start_web(hosts["web2"], tmp_path / "web2.log")
        started.append(web2)

        person = Person()
        person.send("GET", url1 + "/auth/login")
        signed_in = person.send("POST", url1 + "/auth/login", {"email": "dr.ada@clinic.test",
                                                               "password": "correct-horse-battery-staple",
                                                               "csrf_token": person.token})
        assert signed_in.status in (302, 303), signed_in.data[-2000:]
        person.send("GET", url1 + "/support/")
        payload = arch_stl(300, 700)
        sent = person.send("POST", url1 + "/support/tickets", {
            "title": "Lab rejected the upper arch", "description": "Holes on the lower molars.",
            "csrf_token": person.token, "scan": ("clinic7_patient42.stl", payload, "application/octet-stream")},
            multipart=True)
        assert sent.status == 303, sent.data[-2000:]
        scan = query(lambda: Scan.get())
        assert scan.sha256 == hashlib.sha256(payload).hexdigest()
        upload_key = f"scans/{scan.stored_name}"
        assert [o.key for o in bucket.list()] == [upload_key]

        # Worker 1 takes the job; its work horse stores the first output and holds still (tests/worker_held.py).
        held = f"test-held-{scan.id}-{os.getpid()}"
        worker1_log = tmp_path / "worker1.log"
        worker1 = start_worker(["tests.worker_held", held], hosts["worker1"], worker1_log)
        started.append(worker1)
        horse = int(wait_for(lambda: redis_conn.get(held), "worker 1 never reached the first output", worker1_log))
        assert query(lambda: Scan.get_by_id(scan.id).state) == "processing"
        assert len(list(bucket.list("scans/"))) == 2  # the upload and one output of the attempt about to die
        work1 = Path(hosts["worker1"]["SMILEPASS_INSTANCE"]) / "work"
        assert [p.name for p in work1.iterdir()]  # the horse's work folder: the fetched scan, the outputs

        # The host goes down hard: worker, its scheduler and the work horse (a process group of its own) are
        # SIGKILLed mid-repair; the worker first, so that it cannot see its horse die and hand the job back
        # itself: nobody is left on this host to do so.
        os.killpg(worker1.pid, signal.SIGKILL)
        worker1.wait()
        os.kill(horse, signal.SIGKILL)
        assert query(lambda: Scan.get_by_id(scan.id).state) == "processing"
        # Time passes: the dead worker's heartbeat goes stale, and the scan has had no news for a while.
        long_ago = dt.datetime(2020, 1, 1).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for dead in Worker.all(connection=redis_conn):
            redis_conn.hset(dead.key, "last_heartbeat", long_ago)
        query(lambda: Scan.update(updated_at=dt.datetime(2020, 1, 1)).where(Scan.id == scan.id).execute())

        # Worker 2, on a host of its own, runs the periodic sweep, which starts the job over; it repairs the scan.
        worker2_log = tmp_path / "worker2.log"
        worker2 = start_worker(["workers.worker"], hosts["worker2"], worker2_log)
        started.append(worker2)
        try:
            Queue("default", connection=redis_conn).enqueue("smilepass.scans.jobs.sweep_scans")
            wait_for(lambda: query(lambda: Scan.get_by_id(scan.id).state) in ("done", "failed"),
                     "worker 2 did not finish the repair", worker2_log)
        finally:
            stop_worker(worker2)
        scan = query(lambda: Scan.get_by_id(scan.id))
        assert scan.state == "done" and scan.attempts == 2, scan.error
        assert "repair_scan" in worker2_log.read_text()  # worker 2 did it

        # Exactly one set of outputs, under keys made of the input's hash: the retry overwrote what the killed
        # attempt had stored instead of adding a second set beside it.
        outputs = {scan.repaired_name, scan.repaired_stl_name, scan.preview_before_name, scan.preview_after_name,
                   scan.web_before_name, scan.web_after_name}
        assert all(name.startswith(scan.sha256[:32]) for name in outputs)
        assert [o.key for o in bucket.list()] == sorted([upload_key, *(f"scans/{name}" for name in outputs)])

        # Web 2 knows the session made on web 1 (sessions live in the database) and serves the files.
        original = person.send("GET", url2 + f"/support/scans/{scan.id}/files/original")
        assert original.status == 200 and hashlib.sha256(original.data).hexdigest() == scan.sha256
        assert original.headers["Cache-Control"] == "no-store"
        assert original.headers["Content-Disposition"].startswith("attachment;")
        repaired = person.send("GET", url2 + f"/support/scans/{scan.id}/files/repaired")
        assert repaired.status == 200 and repaired.data == bucket.read_bytes(f"scans/{scan.repaired_name}")
        preview = person.send("GET", url2 + f"/support/scans/{scan.id}/preview/after")
        assert preview.status == 200 and preview.data.startswith(b"\x89PNG")
        # Nothing was kept on any host's disk: the bucket holds every file.
        assert [path for name in hosts for path in stored_on_disk(tmp_path / name)] == []
        work2 = Path(hosts["worker2"]["SMILEPASS_INSTANCE"]) / "work"
        assert not work2.exists() or list(work2.iterdir()) == []
        # Worker 1's host comes back: its worker, starting, removes the work folder the killed horse left.
        restarted = start_worker(["workers.worker", "--burst"], hosts["worker1"], tmp_path / "worker1-again.log")
        started.append(restarted)
        assert restarted.wait(timeout=REPAIR_SECONDS) == 0, (tmp_path / "worker1-again.log").read_text()[-3000:]
        assert list(work1.iterdir()) == []
    finally:
        for process in started:  # web servers and workers alike: each leads a process group of its own
            stop_web(process)
        if held and redis_conn.get(held):  # a held work horse (a process group of its own) outlives its worker
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(redis_conn.get(held)), signal.SIGKILL)
