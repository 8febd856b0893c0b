"""Backup and restore (issue #6). The drill: a real instance with users, tickets, screenshots and scans
keeps taking writes while it is backed up; the archive is restored into a fresh instance, whose row
counts must equal the manifest's and whose every file must hash to what the manifest (and, for
originals, the Attachment and Scan rows) recorded. Then the refusals: a damaged or altered archive,
a target that already holds data, a backup of the other database kind or of a newer SmilePass; an
older backup is upgraded by the migrations; and the same through `flask --app app backup/restore`."""
import datetime as dt
import hashlib
import io
import json
import os
import secrets
import sqlite3
import stat
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import time_machine
from PIL import Image

from smilepass import backup, config, db
from smilepass.mesh.synthetic import arch
from smilepass.storage import for_config

from .conftest import PG_URL, ROOT, Browser, run_worker, worker_env
from .meshgen import binary_stl_bytes, write_binary_ply

pytestmark = pytest.mark.usefixtures("pg_client_tools")


def png_bytes(seed: int) -> bytes:
    """A real screenshot-sized PNG whose pixels (and so hash) differ per seed."""
    pixels = np.random.default_rng(seed).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "PNG")
    return out.getvalue()


def stl_bytes(seed: int) -> bytes:
    V, F = arch(3000, seed=seed)
    return binary_stl_bytes(V[F].reshape(-1, 3).astype(np.float32))


def ply_bytes(tmp_path: Path, seed: int) -> bytes:
    V, F = arch(2000, seed=seed)
    return write_binary_ply(tmp_path / f"arch-{seed}.ply", V, F).read_bytes()


def file_request(browser, title, image=None, scan=None):
    data = {"title": title, "description": "Trying to upload the lower arch; the portal spins. Chrome on macOS.",
            "priority": "2", "category": "Scan & File Validation"}
    if image:
        data["image"] = (io.BytesIO(image[1]), image[0])
    if scan:
        data["scan"] = (io.BytesIO(scan[1]), scan[0])
    response = browser.post("/support/tickets", data, content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)[-2000:]
    return int(response.headers["Location"].rsplit("created=", 1)[1])


def reply(browser, ticket_id, body):
    response = browser.post(f"/support/tickets/{ticket_id}/replies", {"body": body},
                            content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)[-2000:]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_cursor(url):
    """A plain DB-API connection to a database that is not the one the app's proxy points at."""
    if url.startswith("sqlite"):
        return sqlite3.connect(backup.sqlite_path(url))
    import psycopg2

    return psycopg2.connect(url)


def counts_and_originals(url):
    conn = open_cursor(url)
    try:
        cursor = conn.cursor()
        kind = backup.database_kind(url)
        counts = backup.row_counts(cursor, kind)
        cursor.execute("SELECT stored_name, sha256 FROM attachment")
        originals = [("", name, digest) for name, digest in cursor.fetchall()]
        cursor.execute("SELECT stored_name, sha256 FROM scan")
        originals += [("scans", name, digest) for name, digest in cursor.fetchall()]
        cursor.execute("SELECT state FROM scan ORDER BY id")
        states = [row[0] for row in cursor.fetchall()]
        return counts, originals, states
    finally:
        conn.close()


@pytest.fixture
def fresh_instance(tmp_path):
    """Where a restore goes: a new folder, and on PostgreSQL a new database, dropped afterwards."""
    made = []

    def make(name="restored"):
        folder = tmp_path / name
        folder.mkdir()
        if not PG_URL:
            return f"sqlite:///{folder / 'smilepass.db'}", folder / "uploads"
        import psycopg2

        db_name = f"smilepass_restore_{os.getpid()}_{secrets.token_hex(4)}"
        admin = psycopg2.connect(PG_URL)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {db_name}")
        admin.close()
        made.append(db_name)
        return PG_URL.rsplit("/", 1)[0] + "/" + db_name, folder / "uploads"

    yield make
    if made:
        import psycopg2

        admin = psycopg2.connect(PG_URL)
        admin.autocommit = True
        with admin.cursor() as cur:
            for db_name in made:
                cur.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
        admin.close()


class Writer(threading.Thread):
    """Keeps filing requests (every third with a screenshot) and replies over HTTP until stopped."""

    def __init__(self, app, email):
        super().__init__(daemon=True)
        self.browser = Browser(app)
        self.browser.login(email)
        self.stop = threading.Event()
        self.progress = threading.Condition()
        self.writes = 0
        self.errors = []

    def run(self):
        ticket_id = None
        try:
            while not self.stop.is_set():
                n = self.writes
                if ticket_id is None or n % 3 == 0:
                    image = (f"live-{n}.png", png_bytes(1000 + n)) if n % 2 == 0 else None
                    ticket_id = file_request(self.browser, f"Written during the backup #{n}", image=image)
                else:
                    reply(self.browser, ticket_id, f"Follow-up #{n} while the backup runs.")
                with self.progress:
                    self.writes += 1
                    self.progress.notify_all()
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.errors.append(repr(exc))
            with self.progress:
                self.progress.notify_all()

    def wait_for(self, writes):
        with self.progress:
            self.progress.wait_for(lambda: self.writes >= writes or self.errors or not self.is_alive())
        assert not self.errors, self.errors


def fill_instance(app, browser_for, tmp_path):
    """Users, tickets with screenshots and replies, scans (one repaired by a real worker, one left
    queued) through the real forms."""
    clinician = browser_for("dr.ada@clinic.test")
    support = browser_for("sam@smilepass.test", "support")
    first = file_request(clinician, "Lower arch rejected", image=("shot.png", png_bytes(1)),
                         scan=("clinic7_patient42_2026-11-20.stl", stl_bytes(1)))
    reply(support, first, "Could you send the upper arch too?")
    file_request(clinician, "Portal logout loop", image=("loop.png", png_bytes(2)))
    assert run_worker(app).returncode == 0  # the first scan gets its repaired files and previews
    file_request(clinician, "Upper arch for the same case", scan=("upper.ply", ply_bytes(tmp_path, 2)))


def test_drill_backup_during_writes_then_restore_into_a_fresh_instance(app, browser_for, redis_conn,
                                                                      fresh_instance, tmp_path):
    fill_instance(app, browser_for, tmp_path)
    browser_for("dr.bob@clinic.test")
    before = counts_and_originals(app.config["DATABASE_URL"])[0]
    writer = Writer(app, "dr.bob@clinic.test")
    writer.start()
    try:
        writer.wait_for(3)
        archive = tmp_path / "backups" / "drill.tar.gz"
        report = backup.create_backup(app.config["DATABASE_URL"], app.config["UPLOAD_DIR"], archive)
        written_at_backup = writer.writes
        writer.wait_for(written_at_backup + 3)  # writes went on after the snapshot, too
    finally:
        writer.stop.set()
        writer.join(timeout=60)
    assert not writer.errors, writer.errors
    manifest = report.manifest
    assert not manifest["missing_files"] and not manifest["hash_mismatches"]
    assert manifest["database"]["kind"] == backup.database_kind(app.config["DATABASE_URL"])
    assert manifest["migrations"] == [m.name for m in db.migration_status() if m.applied]
    # The snapshot is a moment during the writes: after the first three, before the last three.
    after = counts_and_originals(app.config["DATABASE_URL"])[0]

    def written(counts):
        return counts["ticket"] + counts["message"]

    assert written(before) + 3 <= written(manifest["row_counts"]) <= written(after) - 3
    scans_dir_files = [f for f in manifest["files"] if f["path"].startswith("scans/")]
    assert len(scans_dir_files) >= 2 + 3  # two originals, the first one's repaired STL and two previews

    url, upload_dir = fresh_instance()
    restored = backup.restore_backup(archive, url, upload_dir)
    assert restored.files_restored == len(manifest["files"]) and restored.migrations_applied == []

    counts, originals, states = counts_and_originals(url)
    assert counts == manifest["row_counts"]
    for entry in manifest["files"]:
        assert sha256_of(upload_dir / entry["path"]) == entry["sha256"], entry["path"]
        assert (upload_dir / entry["path"]).stat().st_size == entry["size"]
    assert len(originals) >= 3
    for folder, name, digest in originals:
        assert sha256_of(upload_dir / folder / name) == digest
    # Every file a restored row names is there (thumbnails, repair outputs, previews included).
    conn = open_cursor(url)
    try:
        named = backup.referenced_files(conn.cursor(), backup.database_kind(url))
    finally:
        conn.close()
    assert named and all((upload_dir / path).is_file() for path in named)
    # The repaired scan stays done; the one the queue held when the backup ran waits for a worker.
    assert states == ["done", "waiting"] and restored.scans_requeued == 1
    if not PG_URL:
        with sqlite3.connect(backup.sqlite_path(url)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.fixture
def small_backup(app, browser_for, tmp_path):
    clinician = browser_for("dr.ada@clinic.test")
    file_request(clinician, "Aligner cracked at step 4", image=("crack.png", png_bytes(7)))
    archive = tmp_path / "small.tar"
    backup.create_backup(app.config["DATABASE_URL"], app.config["UPLOAD_DIR"], archive)
    return archive


def test_lost_and_damaged_files_are_reported_and_unnamed_files_kept(app, browser_for, fresh_instance, tmp_path):
    clinician = browser_for("dr.ada@clinic.test")
    file_request(clinician, "Two screenshots of the error", image=("one.png", png_bytes(21)))
    file_request(clinician, "And the second one", image=("two.png", png_bytes(22)))
    upload_dir = Path(app.config["UPLOAD_DIR"])
    _, originals, _ = counts_and_originals(app.config["DATABASE_URL"])
    lost, damaged = (upload_dir / name for _, name, _ in originals)
    lost.unlink()  # as if deleted between the snapshot and the copy
    damaged.write_bytes(damaged.read_bytes() + b"bit rot")
    (upload_dir / "cases").mkdir()
    (upload_dir / "cases" / "photo-from-a-newer-feature.jpg").write_bytes(b"\xff\xd8 not named by any row")
    (upload_dir / "scans" / "abc.stl.part").parent.mkdir(exist_ok=True)
    (upload_dir / "scans" / "abc.stl.part").write_bytes(b"an upload in progress")

    report = backup.create_backup(app.config["DATABASE_URL"], upload_dir, tmp_path / "lossy.tar")
    manifest = report.manifest
    assert manifest["missing_files"] == [lost.name]
    assert [item["path"] for item in manifest["hash_mismatches"]] == [damaged.name]
    paths = {f["path"]: f["referenced"] for f in manifest["files"]}
    assert paths["cases/photo-from-a-newer-feature.jpg"] is False and paths[damaged.name] is True
    assert "scans/abc.stl.part" not in paths
    lines = report.lines()
    assert any(lost.name in line and "gone" in line for line in lines)
    assert any(damaged.name in line and "SHA-256" in line for line in lines)

    url, target_uploads = fresh_instance()
    backup.restore_backup(report.path, url, target_uploads)
    assert (target_uploads / "cases" / "photo-from-a-newer-feature.jpg").read_bytes().endswith(b"by any row")
    assert (target_uploads / damaged.name).read_bytes() == damaged.read_bytes()
    with pytest.raises(backup.BackupError, match="outside the upload folder"):
        backup.create_backup(app.config["DATABASE_URL"], upload_dir, upload_dir / "backup.tar")


def repack(source: Path, target: Path, change_member=None, change_manifest=None, drop=None):
    """Copy an archive member by member, altering one on the way (what an attacker or bit rot does)."""
    with tarfile.open(source) as old, tarfile.open(target, "w") as new:
        for member in old.getmembers():
            if member.name == drop:
                continue
            data = old.extractfile(member).read()
            if member.name == backup.MANIFEST and change_manifest:
                manifest = json.loads(data)
                change_manifest(manifest)
                data = json.dumps(manifest).encode()
            elif change_member and change_member[0](member.name):
                data = change_member[1](data)
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    return target


def assert_untouched(url, upload_dir):
    if url.startswith("sqlite"):
        assert not backup.sqlite_path(url).exists()
    else:
        conn = open_cursor(url)
        try:
            assert backup.row_counts(conn.cursor(), "postgresql") == {}
        finally:
            conn.close()
    assert not upload_dir.exists() or backup.stored_files(upload_dir) == []


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


@pytest.mark.parametrize("alteration, message", [
    ({"change_member": (lambda name: name.startswith("files/"), flip_last_byte)}, "does not match its SHA-256"),
    ({"change_member": (lambda name: name.startswith("database."), flip_last_byte)}, "does not match its SHA-256"),
    ({"drop": "manifest.json"}, "has no manifest"),
    ({"change_manifest": lambda m: m["files"].pop()}, "not in its manifest"),
    ({"change_manifest": lambda m: m.update(format_version=99)}, "format version 99 is not supported"),
    ({"change_manifest": lambda m: m["migrations"].append("9999_from_the_future")}, "newer SmilePass"),
    ({"change_manifest": lambda m: m["files"][0].update(path="../../etc/cron.d/x")}, "manifest is incomplete"),
])
def test_a_damaged_or_altered_archive_is_refused_before_anything_changes(small_backup, fresh_instance, tmp_path,
                                                                          alteration, message):
    altered = repack(small_backup, tmp_path / "altered.tar", **alteration)
    url, upload_dir = fresh_instance()
    with pytest.raises(backup.BackupError, match=message):
        backup.restore_backup(altered, url, upload_dir)
    assert_untouched(url, upload_dir)


def test_a_truncated_archive_is_refused(small_backup, fresh_instance, tmp_path):
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(small_backup.read_bytes()[: small_backup.stat().st_size // 2])
    url, upload_dir = fresh_instance()
    with pytest.raises(backup.BackupError, match="damaged or incomplete"):
        backup.restore_backup(truncated, url, upload_dir)
    assert_untouched(url, upload_dir)


def test_a_backup_of_the_other_database_kind_is_refused(small_backup, fresh_instance, tmp_path):
    other = "sqlite" if PG_URL else "postgresql"

    def pretend(manifest):
        manifest["database"].update(kind=other, member=backup.DATABASE_MEMBERS[other])

    altered = repack(small_backup, tmp_path / "other-kind.tar", change_manifest=pretend)
    url, upload_dir = fresh_instance("target")
    with pytest.raises(backup.BackupError, match="restoring across database kinds is not supported"):
        backup.restore_backup(altered, url, upload_dir)
    assert_untouched(url, upload_dir)


def test_a_target_with_data_is_refused_without_force(small_backup, fresh_instance):
    url, upload_dir = fresh_instance()
    first = backup.restore_backup(small_backup, url, upload_dir)
    with pytest.raises(backup.BackupError, match="already holds data"):
        backup.restore_backup(small_backup, url, upload_dir)
    again = backup.restore_backup(small_backup, url, upload_dir, force=True)
    assert again.counts == first.counts == first.manifest["row_counts"]
    # Files alone also count as data: a folder of someone's uploads is not a fresh instance.
    url2, upload_dir2 = fresh_instance("files-only")
    upload_dir2.mkdir()
    (upload_dir2 / "someone-elses.png").write_bytes(png_bytes(3))
    with pytest.raises(backup.BackupError, match="already holds files"):
        backup.restore_backup(small_backup, url2, upload_dir2)


def test_an_older_backup_is_upgraded_by_the_migrations(fresh_instance, tmp_path):
    from playhouse.migrations import Runner

    old_url, old_uploads = fresh_instance("old")
    database = db.open_database(old_url)
    with database.connection_context():
        runner = Runner(database, str(db.MIGRATIONS_DIR))
        runner.up(target="0001_initial")
        # A row from those days; the later migrations fill in the columns they add.
        database.execute_sql("""INSERT INTO "user" (email, name, role, password_hash, session_stamp, is_active,
                                ticket_sort, created_at) VALUES ('old@clinic.test', 'Old', 'clinician', 'x', 's',
                                true, '-date', '2026-01-01 00:00:00')""")
        runner.up(target="0007_service_levels")
    if hasattr(database, "close_all"):
        database.close_all()
    archive = backup.create_backup(old_url, old_uploads, tmp_path / "old.tar").path
    url, upload_dir = fresh_instance("new")
    restored = backup.restore_backup(archive, url, upload_dir)
    assert "0008_shipment_clinician" in restored.migrations_applied
    assert restored.counts["user"] == 1
    conn = open_cursor(url)
    try:
        assert backup.applied_migrations(conn.cursor(), backup.database_kind(url)) == sorted(
            path.stem for path in db.MIGRATIONS_DIR.glob("[0-9]*.py"))
    finally:
        conn.close()


def flask_cli(env, *args):
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_round_trip(app, browser_for, fresh_instance, tmp_path, storage_settings, s3_server):
    """From the upload folder into a bucket, and from a bucket into an upload folder (docs/scale-out.md)."""
    clinician = browser_for("dr.ada@clinic.test")
    file_request(clinician, "Tracking number not found", image=("tracking.png", png_bytes(11)))
    archive = tmp_path / "cli.tar.gz"
    made = flask_cli(worker_env(app), "backup", str(archive))
    assert made.returncode == 0, made.stderr
    assert f"backup written to {archive}" in made.stdout and "files: 2 (0 not named by any row)" in made.stdout
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile(backup.MANIFEST).read())
    stored = {f["path"]: for_config(app.config).read_bytes(f["path"]) for f in manifest["files"]}

    url, upload_dir = fresh_instance()
    # The restoring instance has the other kind of storage: a bucket's backup goes into a folder, and back.
    prefix = f"restored-{secrets.token_hex(6)}"
    into = {} if storage_settings else s3_server.settings(s3_server.bucket, prefix)
    target_env = {**worker_env(app), "DATABASE_URL": url, "SMILEPASS_INSTANCE": str(upload_dir.parent / "instance"),
                  "SMILEPASS_UPLOAD_DIR": str(upload_dir), "SMILEPASS_STORAGE_URL": "",
                  **({} if storage_settings else s3_server.environment(s3_server.bucket, prefix))}
    restored = flask_cli(target_env, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    assert "(as in the manifest), 2 files (hashes checked)" in restored.stdout
    target = for_config({**app.config, "UPLOAD_DIR": str(upload_dir), "STORAGE_URL": "", **into})
    assert target.kind == ("local" if storage_settings else "s3")
    assert {key: target.read_bytes(key) for key in stored} == stored and len(stored) == 2
    counts = counts_and_originals(url)[0]
    # The restore itself is on the restored audit trail, after the counts were checked.
    assert counts == {**manifest["row_counts"], "audit_log": manifest["row_counts"]["audit_log"] + 1}
    # The restored instance takes new rows (PostgreSQL sequences came back with the data).
    created = flask_cli(target_env, "users", "create", "new@clinic.test", "--password", "new-Pass-2026-ok")
    assert created.returncode == 0, created.stderr

    again = flask_cli(target_env, "restore", str(archive))
    assert again.returncode != 0
    error_lines = [line for line in again.stderr.splitlines() if line.strip()]
    assert error_lines == [error_lines[0]] and "already holds data" in error_lines[0] and "--force" in error_lines[0]

    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(archive.read_bytes()[:-200])
    refused = flask_cli(target_env, "restore", "--force", str(broken))
    assert refused.returncode != 0 and "damaged or incomplete" in refused.stderr
    assert len([line for line in refused.stderr.splitlines() if line.strip()]) == 1
    # Nothing changed: the account created after the first restore is still there.
    assert counts_and_originals(url)[0]["user"] == counts["user"] + 1


# Backups into a directory (issue #14): `flask backup` without PATH, `--keep N`, failures exit non-zero ------

def backup_names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_backup_without_path_goes_to_the_backup_dir_named_by_its_utc_time(app, tmp_path):
    backup_dir = tmp_path / "nightly"
    app.config["BACKUP_DIR"] = str(backup_dir)
    taken = dt.datetime(2026, 12, 5, 1, 30, 7, tzinfo=dt.UTC)
    cli = app.test_cli_runner()
    with time_machine.travel(taken, tick=False):
        first = cli.invoke(args=["backup"])
        second = cli.invoke(args=["backup"])  # the same second: a name of its own, nothing overwritten
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert backup_names(backup_dir) == ["smilepass-20261205T013007Z-2.tar.gz", "smilepass-20261205T013007Z.tar.gz"]
    assert f"backup written to {backup_dir / 'smilepass-20261205T013007Z.tar.gz'}" in first.output
    assert stat.S_IMODE(backup_dir.stat().st_mode) == 0o700  # patient data: the owner's only
    with tarfile.open(backup_dir / "smilepass-20261205T013007Z.tar.gz") as tar:
        manifest = json.loads(tar.extractfile(backup.MANIFEST).read())
    assert manifest["created_at"] == "2026-12-05T01:30:07+00:00"  # the name and the manifest agree


def test_keep_deletes_only_the_oldest_of_our_archives(app, tmp_path):
    backup_dir = tmp_path / "nightly"
    backup_dir.mkdir()
    app.config["BACKUP_DIR"] = str(backup_dir)
    ours = ["smilepass-20261201T013000Z.tar.gz", "smilepass-20261202T013000Z.tar.gz",
            "smilepass-20261203T013000Z.tar.gz", "smilepass-20261203T013000Z-2.tar.gz"]
    others = ["notes.txt", "smilepass-before-upgrade.tar.gz", "smilepass-20261130T013000Z.tar",
              "other-20261101T013000Z.tar.gz", "smilepass-20261301T013000Z.tar.gz"]  # month 13: not a time
    for name in ours + others:
        (backup_dir / name).write_bytes(b"an older archive")
    (backup_dir / "smilepass-20261101T013000Z.tar.gz").mkdir()  # a folder, whatever its name, stays
    with time_machine.travel(dt.datetime(2026, 12, 5, 1, 30, tzinfo=dt.UTC), tick=False):
        result = app.test_cli_runner().invoke(args=["backup", "--keep", "3"])
    assert result.exit_code == 0, result.output
    assert backup_names(backup_dir) == sorted(others + ["smilepass-20261101T013000Z.tar.gz",
                                                       "smilepass-20261203T013000Z.tar.gz",
                                                       "smilepass-20261203T013000Z-2.tar.gz",
                                                       "smilepass-20261205T013000Z.tar.gz"])
    assert f"deleted the old backup {backup_dir / ours[0]}" in result.output
    assert f"deleted the old backup {backup_dir / ours[1]}" in result.output

    with time_machine.travel(dt.datetime(2026, 12, 6, 1, 30, tzinfo=dt.UTC), tick=False):
        again = app.test_cli_runner().invoke(args=["backup", "--keep", "1"])
    assert again.exit_code == 0, again.output
    kept = [name for name in backup_names(backup_dir) if name not in others]
    assert kept == ["smilepass-20261101T013000Z.tar.gz", "smilepass-20261206T013000Z.tar.gz"]
    with tarfile.open(backup_dir / kept[1]) as tar:
        assert backup.MANIFEST in tar.getnames()  # the one kept is the new, real one


def test_keep_needs_the_backup_dir_and_at_least_one(app, tmp_path):
    cli = app.test_cli_runner()
    with_path = cli.invoke(args=["backup", str(tmp_path / "x.tar.gz"), "--keep", "3"])
    assert with_path.exit_code == 2 and "leave out PATH" in with_path.output
    assert not (tmp_path / "x.tar.gz").exists()
    assert cli.invoke(args=["backup", "--keep", "0"]).exit_code == 2


def test_a_failed_backup_exits_non_zero_with_one_clear_line(app, tmp_path):
    """`make upgrade` stops when the backup fails, and the systemd timer shows the failure."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the backup folder should be")
    app.config["BACKUP_DIR"] = str(blocked / "backups")
    result = app.test_cli_runner().invoke(args=["backup", "--keep", "14"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: backup failed, no archive was written: ")
    assert "Traceback" not in result.output and blocked.read_text().startswith("a file")

    inside = app.test_cli_runner().invoke(args=["backup", str(Path(app.config["UPLOAD_DIR"]) / "b.tar.gz")])
    assert inside.exit_code == 1 and "outside the upload folder" in inside.output

    if app.config["DATABASE_URL"].startswith("sqlite"):  # a damaged database file
        damaged = tmp_path / "damaged.db"
        damaged.write_bytes(b"not a database " * 100)
        app.config.update(DATABASE_URL=f"sqlite:///{damaged}", BACKUP_DIR=str(tmp_path / "nightly"))
        broken = app.test_cli_runner().invoke(args=["backup"])
        assert broken.exit_code == 1, broken.output
        assert broken.output.startswith("Error: backup failed, no archive was written: ") and "Traceback" not in \
            broken.output
        assert list((tmp_path / "nightly").iterdir()) == []


def test_backup_dir_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("SMILEPASS_BACKUP_DIR", raising=False)
    assert config.load(str(tmp_path / "inst"))["BACKUP_DIR"] == str(tmp_path / "inst" / "backups")
    monkeypatch.setenv("SMILEPASS_BACKUP_DIR", "/var/backups/smilepass")
    assert config.load(str(tmp_path / "inst"))["BACKUP_DIR"] == "/var/backups/smilepass"
