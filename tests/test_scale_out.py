"""Past one server (docs/scale-out.md): two gunicorn web servers and an RQ worker, each with an instance
folder of its own and nothing shared but PostgreSQL, Redis and an S3 bucket (a real SeaweedFS). A scan
uploaded through web 1 is repaired by the worker and downloaded through web 2 with the right hash, with the
session the person signed in with on web 1."""
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
        process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), "--workers", "1", "--bind",
                                    f"127.0.0.1:{port}", "app:app"], cwd=ROOT, env=env, stdout=out, stderr=out,
                                   start_new_session=True)
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


def test_upload_on_web_1_repair_on_a_worker_download_on_web_2(app, clinician, redis_conn, s3_settings, tmp_path):
    if not PG_URL:
        pytest.skip("PostgreSQL pass only: hosts of their own share a database server, not a SQLite file")
    app.config.update(s3_settings)
    hosts = {name: host_env(app, tmp_path / name) for name in ("web1", "web2", "worker")}
    started = []
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
        payload = arch_stl()
        sent = person.send("POST", url1 + "/support/tickets", {
            "title": "Lab rejected the upper arch", "description": "Holes on the lower molars.",
            "csrf_token": person.token, "scan": ("clinic7_patient42.stl", payload, "application/octet-stream")},
            multipart=True)
        assert sent.status == 303, sent.data[-2000:]
        scan = query(lambda: Scan.get())
        assert scan.sha256 == hashlib.sha256(payload).hexdigest()

        with open(tmp_path / "worker.log", "wb") as out:
            worker = subprocess.Popen([sys.executable, "-m", "workers.worker"], cwd=ROOT, env=hosts["worker"],
                                      stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + REPAIR_SECONDS
            while query(lambda: Scan.get_by_id(scan.id).state) not in ("done", "failed"):
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
                time.sleep(0.5)
        finally:
            stop_worker(worker)
        scan = query(lambda: Scan.get_by_id(scan.id))
        assert scan.state == "done", scan.error

        # Web 2 knows the session made on web 1 (sessions live in the database) and serves the files.
        original = person.send("GET", url2 + f"/support/scans/{scan.id}/files/original")
        assert original.status == 200 and hashlib.sha256(original.data).hexdigest() == scan.sha256
        assert original.headers["Cache-Control"] == "no-store"
        assert original.headers["Content-Disposition"].startswith("attachment;")
        repaired = person.send("GET", url2 + f"/support/scans/{scan.id}/files/repaired")
        bucket = for_config(app.config)
        assert repaired.status == 200 and repaired.data == bucket.read_bytes(f"scans/{scan.repaired_name}")
        preview = person.send("GET", url2 + f"/support/scans/{scan.id}/preview/after")
        assert preview.status == 200 and preview.data.startswith(b"\x89PNG")
        # Nothing was kept on any host's disk: the bucket holds every file.
        assert [path for name in hosts for path in stored_on_disk(tmp_path / name)] == []
    finally:
        for process in started:
            stop_web(process)
