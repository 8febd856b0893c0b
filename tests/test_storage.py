"""The file storage (smilepass/storage/): both backends against real parts (a folder, a real SeaweedFS),
multipart uploads, the storage going away (a 503 that keeps the form, a repair that fails with the reason,
nothing lost), orphans, the move of a folder into a bucket, and backups across backends."""
import hashlib
import io
import os
import time

import pytest
from PIL import Image

from smilepass import backup
from smilepass.models import Attachment, Scan, Ticket
from smilepass.storage import StorageUnavailable, for_config
from smilepass.storage.maintenance import remove_orphans
from smilepass.storage.s3 import PART_SIZE

from .conftest import free_port, query, run_worker
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
