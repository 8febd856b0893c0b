"""The file storage (smilepass/storage/): both backends against real parts (a folder, a real SeaweedFS),
multipart uploads, the storage going away (a 503 that keeps the form, a repair that fails with the reason,
nothing lost), orphans, the move of a folder into a bucket, and backups across backends."""
import hashlib
import io
import os
import subprocess
import sys
import time

import pytest
from PIL import Image

from smilepass import backup, create_app
from smilepass.models import Attachment, Scan, Ticket
from smilepass.storage import StorageSettingsError, StorageUnavailable, for_config, settings_problem
from smilepass.storage.maintenance import remove_orphans
from smilepass.storage.s3 import PART_SIZE
from smilepass.storage.workdirs import folder_prefix, host_name, remove_abandoned

from .conftest import ROOT, free_port, query, run_worker, worker_env
from .scanfiles import arch_stl
from .test_backup_restore import fresh_instance  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("pg_client_tools")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


def file_request(browser, htmx=False, image=True, scan=True, title="Lab rejected the upper arch"):
    data = {"title": title, "description": "Holes on the lower molars."}
    if image:
        data["image"] = (io.BytesIO(png()), "screen.png")
    if scan:
        data["scan"] = (io.BytesIO(arch_stl()), "clinic7_patient42.stl")
    return browser.post("/support/tickets", data, htmx=htmx, content_type="multipart/form-data")


def dead_s3() -> dict:
    """Settings of a bucket at an address where nothing listens (the storage is down)."""
    return {"STORAGE_URL": "s3://smilepass-files", "S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
            "S3_REGION": "us-east-1", "S3_ACCESS_KEY_ID": "x", "S3_SECRET_ACCESS_KEY": "y", "S3_ATTEMPTS": 1}


@pytest.fixture
def storage(app, storage_settings):
    app.config.update(storage_settings)
    return for_config(app.config)


# Both backends ------------------------------------------------------------------------------------------

def test_put_open_stat_list_delete(storage):
    assert storage.put_bytes("a1.png", b"screenshot") == 10
    assert storage.put_stream("scans/b2.stl", io.BytesIO(b"solid x\nendsolid x\n")) == 19
    assert storage.read_bytes("a1.png") == b"screenshot"
    assert storage.exists("scans/b2.stl") and storage.size("scans/b2.stl") == 19
    assert [o.key for o in storage.list()] == ["a1.png", "scans/b2.stl"]
    assert [o.key for o in storage.list("scans/")] == ["scans/b2.stl"]
    assert storage.delete("a1.png") is True and storage.delete("a1.png") is False
    assert storage.stat("a1.png") is None
    with pytest.raises(FileNotFoundError):
        storage.open("a1.png")
    for bad in ("../outside", "/etc/passwd", ".hidden", "scans/../x"):
        with pytest.raises(ValueError):
            storage.put_bytes(bad, b"x")
    storage.probe()  # the doctor's write, read, delete


def test_a_large_file_goes_up_in_parts_and_comes_back_whole(storage, tmp_path):
    payload = os.urandom(2 * PART_SIZE + 12345)
    parts = []
    if storage.kind == "s3":
        real = storage.client.upload_part
        storage.client.upload_part = lambda **kw: parts.append(kw["PartNumber"]) or real(**kw)
    assert storage.put_stream("scans/big.stl", io.BytesIO(payload)) == len(payload)
    if storage.kind == "s3":
        assert parts == [1, 2, 3]  # 8 MB parts, never the whole file in one request
    digest = storage.get_to("scans/big.stl", tmp_path / "back.stl")
    back = hashlib.sha256((tmp_path / "back.stl").read_bytes()).hexdigest()
    assert digest == hashlib.sha256(payload).hexdigest() == back


class BreaksAfter:
    """A stream that fails part way, like a client that hangs up during a large upload."""

    def __init__(self, size):
        self.left = size

    def read(self, n=-1):
        if self.left <= 0:
            raise OSError("the client went away")
        n = min(n if n and n > 0 else self.left, self.left)
        self.left -= n
        return b"\x01" * n


def test_a_broken_upload_leaves_no_half_object(storage, s3_server):
    with pytest.raises(OSError):
        storage.put_stream("scans/half.stl", BreaksAfter(2 * PART_SIZE + 10))
    assert storage.stat("scans/half.stl") is None and list(storage.list()) == []
    if storage.kind == "s3":  # the multipart upload was aborted, not left to hold its parts
        uploads = s3_server.client().list_multipart_uploads(Bucket=storage.bucket,
                                                            Prefix=storage.prefix).get("Uploads", [])
        assert uploads == []


# The storage down ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("htmx", [False, True])
def test_storage_down_at_upload_is_a_503_that_keeps_the_form(app, clinician, htmx):
    app.config.update(dead_s3())
    response = file_request(clinician, htmx=htmx, title="Typed title stays")
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "The file storage cannot be reached" in html
    assert 'value="Typed title stays"' in html and "Holes on the lower molars." in html
    assert query(lambda: (Ticket.select().count(), Attachment.select().count(), Scan.select().count())) == (0, 0, 0)


def test_storage_down_at_download_is_a_503_not_a_500(app, clinician, redis_conn):
    assert file_request(clinician, scan=False).status_code == 303
    attachment = query(lambda: Attachment.get())
    app.config.update(dead_s3())
    response = clinician.get(f"/support/attachments/{attachment.id}")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "The file storage cannot be reached" in response.get_data(as_text=True)


def test_storage_down_during_a_repair_retries_then_fails_with_the_reason(app, clinician, redis_conn, s3_settings):
    app.config.update(s3_settings, SCAN_RETRIES=1, SCAN_RETRY_INTERVALS=[0])
    assert file_request(clinician, image=False).status_code == 303
    scan = query(lambda: Scan.get())
    app.config.update(S3_ENDPOINT_URL=dead_s3()["S3_ENDPOINT_URL"])  # the worker finds the storage gone
    result = run_worker(app)
    assert result.returncode == 0, result.stderr[-2000:]
    scan = query(lambda: Scan.get())
    assert scan.state == "failed" and scan.attempts == 2
    assert "StorageUnavailable" in scan.error and "reading scans/" in scan.error
    app.config.update(s3_settings)
    assert for_config(app.config).exists(f"scans/{scan.stored_name}")  # nothing lost: the upload is still there


# Orphans, migration, backups ----------------------------------------------------------------------------------

def test_orphans_go_referenced_and_young_files_stay(app, clinician, storage, redis_conn):
    assert file_request(clinician, scan=False).status_code == 303
    attachment = query(lambda: Attachment.get())
    storage.put_bytes("0123456789abcdef0123456789abcdef.png", b"an upload whose row never committed")
    storage.put_bytes("pending-deletes/abc.json", b"[]")
    with app.app_context():
        assert query(lambda: remove_orphans(storage)) == []  # young: its upload may still be committing
        later = time.time() + 2 * 3600
        assert query(lambda: remove_orphans(storage, now=later, dry_run=True)) == [
            "0123456789abcdef0123456789abcdef.png"]
        assert query(lambda: remove_orphans(storage, now=later)) == ["0123456789abcdef0123456789abcdef.png"]
    assert {o.key for o in storage.list()} == {attachment.stored_name, attachment.thumb_name,
                                                "pending-deletes/abc.json"}


def test_migrate_to_s3_copies_and_verifies_every_file(app, clinician, redis_conn, s3_settings):
    assert file_request(clinician).status_code == 303
    local = {o.key: for_config(app.config).read_bytes(o.key) for o in for_config(app.config).list()}
    assert len(local) == 3  # screenshot, thumbnail, scan
    refused = app.test_cli_runner().invoke(args=["storage", "migrate-to-s3"])
    assert refused.exit_code != 0 and "names no bucket" in refused.output
    app.config.update(s3_settings)
    done = app.test_cli_runner().invoke(args=["storage", "migrate-to-s3"])
    assert done.exit_code == 0, done.output
    assert "copied 3 files" in done.output
    bucket = for_config(app.config)
    assert {key: bucket.read_bytes(key) for key in local} == local
    again = app.test_cli_runner().invoke(args=["storage", "migrate-to-s3"])
    assert "copied 0 files" in again.output and "3 were already there" in again.output
    attachment = query(lambda: Attachment.get())
    assert clinician.get(f"/support/attachments/{attachment.id}").data == local[attachment.stored_name]


def test_a_backup_of_a_bucket_restores_into_a_folder_and_into_a_bucket(app, clinician, redis_conn, s3_server,
                                                                      s3_settings, fresh_instance, tmp_path):  # noqa: F811
    app.config.update(s3_settings)
    assert file_request(clinician).status_code == 303
    stored = {o.key: for_config(app.config).read_bytes(o.key) for o in for_config(app.config).list()}
    report = backup.create_backup(app.config["DATABASE_URL"], for_config(app.config), tmp_path / "b.tar.gz")
    assert {f["path"] for f in report.manifest["files"]} == set(stored) and not report.manifest["missing_files"]

    url, folder = fresh_instance("into-folder")
    backup.restore_backup(report.path, url, folder)
    assert {key: (folder / key).read_bytes() for key in stored} == stored

    url, _ = fresh_instance("into-bucket")
    target = for_config({**app.config, **s3_server.settings(s3_server.bucket, "restored")})
    restored = backup.restore_backup(report.path, url, target)
    assert restored.files_restored == len(stored)
    assert {key: target.read_bytes(key) for key in stored} == stored
    with pytest.raises(backup.BackupError, match="already holds files"):
        backup.restore_backup(report.path, fresh_instance("again")[0], target)


def test_the_doctor_says_when_the_bucket_cannot_be_used(app):
    app.config.update(dead_s3())
    with pytest.raises(StorageUnavailable):
        for_config(app.config).probe()
    done = app.test_cli_runner().invoke(args=["doctor"])
    line = next(line for line in done.output.splitlines() if "File storage" in line)
    assert line.startswith("FAIL") and "s3://smilepass-files" in line


# Settings that cannot work: said at start, never a 500 at the first upload ------------------------------------

MALFORMED = [
    ({"STORAGE_URL": "smilepass-files/clinic-a"}, "must be empty (the upload folder) or s3://bucket"),
    ({"STORAGE_URL": "https://s3.example.net/smilepass-files"}, "must be empty (the upload folder) or s3://bucket"),
    ({"STORAGE_URL": "s3:/smilepass-files"}, "names the bucket ''"),
    ({"STORAGE_URL": "s3://Smilepass_Files"}, "names the bucket 'Smilepass_Files'"),
    ({"STORAGE_URL": "s3://ab"}, "3 to 63 lowercase letters"),
    ({"STORAGE_URL": "s3://AKIA123:secret@smilepass-files"}, "keys go in SMILEPASS_S3_ACCESS_KEY_ID"),
    ({"STORAGE_URL": "s3://smilepass-files/a/../b"}, "unusable prefix"),
    ({"STORAGE_URL": "s3://smilepass-files", "S3_ENDPOINT_URL": "minio.internal:9000"},
     "SMILEPASS_S3_ENDPOINT must be empty (AWS) or the server's address"),
    ({"STORAGE_URL": "s3://smilepass-files", "S3_ATTEMPTS": "three"}, "S3_ATTEMPTS must be a whole number"),
]


@pytest.mark.parametrize("settings, message", MALFORMED)
def test_malformed_storage_settings_are_named(settings, message):
    assert message in settings_problem(settings)
    with pytest.raises(StorageSettingsError, match="SMILEPASS_|S3_ATTEMPTS"):
        for_config({"UPLOAD_DIR": "/nonexistent", **settings})


@pytest.mark.parametrize("settings", [{}, {"STORAGE_URL": "s3://smilepass-files"},
                                      {"STORAGE_URL": "s3://smilepass.files/clinic-a/2026",
                                       "S3_ENDPOINT_URL": "http://10.0.0.5:9000", "S3_ATTEMPTS": 2}])
def test_good_storage_settings_pass(settings):
    assert settings_problem(settings) is None


def test_the_app_does_not_start_with_a_malformed_storage_url(tmp_path, database_url):
    with pytest.raises(StorageSettingsError, match="names the bucket 'Smilepass_Files'"):
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "k",
                    "DATABASE_URL": database_url, "UPLOAD_DIR": str(tmp_path / "uploads"),
                    "STORAGE_URL": "s3://Smilepass_Files"})


def bad_url_env(app) -> dict:
    return {**worker_env(app), "SMILEPASS_STORAGE_URL": "s3://Smilepass_Files"}


def test_a_web_server_and_a_worker_refuse_to_start_and_say_why(app, redis_conn, tmp_path):
    worker = subprocess.run([sys.executable, "-m", "workers.worker", "--burst"], cwd=ROOT, env=bad_url_env(app),
                            capture_output=True, text=True, timeout=120)
    assert worker.returncode == 2
    assert "SmilePass worker not started: SMILEPASS_STORAGE_URL names the bucket 'Smilepass_Files'" in worker.stderr
    web = subprocess.run([str(ROOT / ".venv" / "bin" / "gunicorn"), "--no-control-socket", "--workers", "1", "--bind",
                          f"127.0.0.1:{free_port()}", "app:app"], cwd=ROOT, env=bad_url_env(app),
                         capture_output=True, text=True, timeout=120)
    assert web.returncode != 0  # gunicorn: "Worker failed to boot", and the reason above it
    assert "StorageSettingsError: SMILEPASS_STORAGE_URL names the bucket 'Smilepass_Files'" in web.stderr


def test_the_doctor_names_a_malformed_storage_url(app, redis_conn):
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "flask"), "--app", "app", "doctor"], cwd=ROOT,
                          env=bad_url_env(app), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    line = next(line for line in done.stdout.splitlines() if "File storage" in line)
    assert line.startswith("FAIL") and "names the bucket 'Smilepass_Files'" in line


def test_settings_broken_after_start_give_a_503_that_keeps_the_form(app, clinician):
    app.config.update(STORAGE_URL="s3://Smilepass_Files")  # e.g. `flask run`, which starts to let doctor speak
    response = file_request(clinician, title="Typed title stays")
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "The file storage cannot be reached" in html and 'value="Typed title stays"' in html
    assert query(lambda: (Ticket.select().count(), Attachment.select().count(), Scan.select().count())) == (0, 0, 0)


# Work folders killed processes leave on a host -------------------------------------------------------------

def test_work_folders_of_dead_processes_go_live_and_young_ones_stay(app, tmp_path):
    work = tmp_path / "work"
    app.config.update(STORAGE_WORK_DIR=str(work))
    ended = subprocess.Popen(["true"])
    ended.wait()
    alive = subprocess.Popen(["sleep", "600"])
    host = host_name()
    try:
        names = {
            "dead": f"smilepass-{host}-{ended.pid}-abcd1234",
            "alive": f"smilepass-{host}-{alive.pid}-abcd1234",
            "mine": f"{folder_prefix()}abcd1234",
            "other host, young": f"smilepass-{host}x-{ended.pid}-abcd1234",
            "other host, old": f"smilepass-{host}x-{alive.pid}-efgh5678",
            "old style, old": "smilepass-qrst9876",
        }
        for name in names.values():
            (work / name).mkdir(parents=True)
            (work / name / "scan.stl").write_bytes(b"half a scan")
        two_hours_ago = time.time() - 7200
        for which in ("other host, old", "old style, old"):
            os.utime(work / names[which], (two_hours_ago, two_hours_ago))
        assert remove_abandoned(app.config) == 3
        assert sorted(p.name for p in work.iterdir()) == sorted(
            names[which] for which in ("alive", "mine", "other host, young"))
    finally:
        alive.kill()
        alive.wait()


def test_a_worker_starting_removes_what_a_killed_one_left(app, redis_conn, tmp_path):
    app.config.update(STORAGE_WORK_DIR=str(tmp_path / "work"))
    ended = subprocess.Popen(["true"])
    ended.wait()
    left = tmp_path / "work" / f"smilepass-{host_name()}-{ended.pid}-abcd1234"
    left.mkdir(parents=True)
    (left / "input.stl").write_bytes(b"half a scan")
    env = {**worker_env(app), "SMILEPASS_STORAGE_WORK_DIR": str(tmp_path / "work")}
    result = subprocess.run([sys.executable, "-m", "workers.worker", "--burst"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not left.exists()


def test_a_web_server_starting_removes_what_killed_uploads_left(tmp_path, database_url):
    ended = subprocess.Popen(["true"])
    ended.wait()
    name = f"smilepass-{host_name()}-{ended.pid}-abcd1234"
    left = [tmp_path / "uploads" / ".work" / name, tmp_path / "work" / name]  # the folder's and a bucket's
    for folder in left:
        folder.mkdir(parents=True)
        (folder / "upload.part").write_bytes(b"half an upload")
    create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "k",
                "DATABASE_URL": database_url, "UPLOAD_DIR": str(tmp_path / "uploads"),
                "STORAGE_WORK_DIR": str(tmp_path / "work")})
    assert [folder for folder in left if folder.exists()] == []
