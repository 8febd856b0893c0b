"""Erasures survive a restore (GDPR follow-up to issue #6). Two patients are built through the real
pages, the instance is backed up, one patient is erased by an admin, and the backup is restored into
a fresh instance with `flask --app app restore`: the erasure ledger (copied along, as when moving
servers) erases the patient again, leaving no row, file or text that names them, and the other
patient whole. Also: the ledger's lines name nobody, a restore without a ledger says it re-applied
nothing, a case that only shares an erased case's id is spared, and an erasure whose ledger line
cannot be written still completes and says so."""
import json
import shutil
from pathlib import Path

import pytest

from smilepass import backup, db
from smilepass.models import AuditLog, Case, Scan, Ticket
from smilepass.stewardship import ledger
from smilepass.stewardship.erase import REAPPLIED
from smilepass.stewardship.reapply import reapply

from .conftest import PASSWORD, PG_URL, query, worker_env
from .test_backup_restore import flask_cli, fresh_instance  # noqa: F401  (fresh_instance is a fixture)
from .test_stewardship import (
    NAME,
    NEEDLES,
    NUMBER,
    OTHER_NAME,
    OTHER_NUMBER,
    build_other_patient,
    build_patient,
    create_case,
    files_on_disk,
    referenced_files,
    traces,
)

pytestmark = pytest.mark.usefixtures("pg_client_tools")


def erase(admin, case_id, number):
    response = admin.post(f"/cases/{case_id}/erase", {"confirm_number": number, "password": PASSWORD})
    assert response.status_code == 303, response.get_data(as_text=True)[-2000:]


def restore_env(app, url, upload_dir, instance):
    return {**worker_env(app), "DATABASE_URL": url, "SMILEPASS_INSTANCE": str(instance),
            "SMILEPASS_UPLOAD_DIR": str(upload_dir)}


def test_an_erasure_after_the_backup_is_reapplied_by_the_restore(app, clinician, support, admin, redis_conn,
                                                                 fresh_instance, tmp_path):  # noqa: F811 (fixture)
    patient = build_patient(clinician, support)
    other = build_other_patient(clinician)
    archive = tmp_path / "before-erasure.tar.gz"
    backup.create_backup(app.config["DATABASE_URL"], app.config["UPLOAD_DIR"], archive)
    erase(admin, patient["case"], NUMBER)

    # One line, naming nobody: the time, the case id and its creation time, the tombstone's id.
    ledger_path = Path(app.config["ERASURE_LEDGER"])
    assert ledger_path == Path(app.instance_path) / "erasure-ledger.jsonl"
    text = ledger_path.read_text()
    assert [n for n in NEEDLES + [NAME.lower()] if n.lower() in text.lower()] == []
    [line] = text.splitlines()
    entry = json.loads(line)
    assert set(entry) == {"format", "erased_at", "case_ids", "case_created_at", "tombstone_ids"}
    [tomb] = query(lambda: list(AuditLog.select().where(AuditLog.action == "patient_erased")))
    assert entry["case_ids"] == [patient["case"]] and entry["tombstone_ids"] == [tomb.id]
    assert ledger_path.stat().st_mode & 0o077 == 0

    # Moving servers: the archive and the ledger, copied into the new instance folder.
    url, upload_dir = fresh_instance()
    instance = upload_dir.parent / "instance"
    instance.mkdir()
    shutil.copy(ledger_path, instance / "erasure-ledger.jsonl")
    env = restore_env(app, url, upload_dir, instance)
    restored = flask_cli(env, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr[-3000:]
    assert "erasure ledger: 1 of 1 erasures re-applied (1 cases were back in the restored database)" in restored.stdout

    db.bind(url)
    with db.database.connection_context():
        # The patient is gone again: no case, no row anywhere that names them, no file of theirs.
        assert not Case.select().where(Case.id == patient["case"]).exists()
        assert traces(NEEDLES) == []
        assert files_on_disk(upload_dir) == referenced_files()
        assert not any(path.startswith("pending-deletes") for path in files_on_disk(upload_dir))
        assert Scan.select().count() == 1
        ticket = Ticket.get_by_id(patient["ticket"])
        assert ticket.case_id is None and ticket.title == "Cracked tray for [removed]"
        # The re-applied tombstone says where it came from; the restore did it, not a person.
        tombs = list(AuditLog.select().where(AuditLog.action == "patient_erased"))
        assert len(tombs) == 1 and tombs[0].actor_id is None and tombs[0].actor_email == ""
        assert tombs[0].detail.startswith(REAPPLIED) and tombs[0].object_id == str(patient["case"])
        # The other patient is whole: case, request, screenshot and scan files.
        other_case = Case.get_by_id(other["case"])
        assert (other_case.patient_name, other_case.case_number) == (OTHER_NAME, OTHER_NUMBER)
        assert Ticket.get_by_id(other["ticket"]).case_id == other["case"]
        other_files = referenced_files()
        assert len(other_files) == 2 + 1 and all((upload_dir / name).is_file() for name in other_files)
    if not PG_URL:
        # Nor do SQLite's free pages or its write-ahead log hold the patient.
        path = backup.sqlite_path(url)
        raw = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
        assert [n for n in NEEDLES if n.encode() in raw] == []
    # The ledger was only read: the re-applied erasure is the same entry, not a new one.
    assert (instance / "erasure-ledger.jsonl").read_text() == text

    # Running it again finds nothing left to erase.
    again = flask_cli(env, "reapply-erasures")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "erasure ledger: 0 of 1 erasures re-applied" in again.stdout


def test_a_restore_without_a_ledger_reapplies_nothing_and_says_so(app, clinician, admin,
                                                                  fresh_instance, tmp_path):  # noqa: F811 (fixture)
    case_id = create_case(clinician, NUMBER, NAME, "1987-03-09", "PX-44719")
    archive = tmp_path / "before-erasure.tar"
    backup.create_backup(app.config["DATABASE_URL"], app.config["UPLOAD_DIR"], archive)
    erase(admin, case_id, NUMBER)

    url, upload_dir = fresh_instance()
    instance = upload_dir.parent / "instance"
    restored = flask_cli(restore_env(app, url, upload_dir, instance), "restore", str(archive))
    assert restored.returncode == 0, restored.stderr[-3000:]
    expected = f"erasure ledger: none at {instance / 'erasure-ledger.jsonl'}; no erasure was re-applied"
    assert expected in restored.stdout
    # Which is why the backup docs (docs/backup.md) say to move the ledger with the archive: the patient is back.
    db.bind(url)
    with db.database.connection_context():
        assert Case.select().where(Case.id == case_id).exists()


def test_only_the_very_case_that_was_erased_is_erased_again(app, clinician):
    """SQLite may give an erased case's id to the next new case: same id, another creation time,
    another patient. The ledger's creation time tells them apart."""
    case_id = create_case(clinician, NUMBER, NAME, "1987-03-09")
    case = query(lambda: Case.get_by_id(case_id))
    ledger_path = Path(app.config["ERASURE_LEDGER"])
    stranger = ledger.Entry("2026-11-30T10:00:00.000000Z", {case_id: "2001-01-01T00:00:00"}, [1])
    ledger.append(ledger_path, stranger)
    outcome = reapply(app.config)
    assert (outcome.entries, outcome.erasures) == (1, 0)
    assert query(lambda: Case.select().where(Case.id == case_id).exists())

    ledger.append(ledger_path, ledger.entry_for([case], [2]))
    outcome = reapply(app.config)
    assert (outcome.entries, outcome.erasures, outcome.case_ids) == (2, 1, [case_id])
    assert not query(lambda: Case.select().where(Case.id == case_id).exists())


def test_a_torn_line_is_skipped_and_the_next_one_kept(app):
    ledger_path = Path(app.config["ERASURE_LEDGER"])
    ledger_path.parent.mkdir(parents=True, exist_ok=True)
    ledger_path.write_text('{"format":1,"erased_at":"2026-11-30T10:00:00Z","case_ids":[4')  # a crash mid-write
    ledger.append(ledger_path, ledger.Entry("2026-11-30T11:00:00.000000Z", {7: "2026-11-01T09:00:00"}, [12]))
    entries, unreadable = ledger.read(ledger_path)
    assert unreadable == 1 and [(e.case_ids, e.tombstone_ids) for e in entries] == [([7], [12])]
    assert ledger.Reapplied(ledger_path, True, 1, 1).lines()[-1] == \
        "erasure ledger: 1 unreadable lines skipped (see the log)"


def test_an_erasure_stands_when_its_ledger_line_cannot_be_written(app, clinician, admin, tmp_path, caplog):
    case_id = create_case(clinician, NUMBER, NAME, "1987-03-09", "PX-44719")
    # A folder where the file should be: the write fails whoever runs the tests (root included).
    blocked = tmp_path / "blocked-ledger"
    blocked.mkdir()
    app.config["ERASURE_LEDGER"] = str(blocked)
    erase(admin, case_id, NUMBER)

    assert not query(lambda: Case.select().where(Case.id == case_id).exists())
    page = admin.get("/cases/").get_data(as_text=True)
    assert "could not be written to the erasure ledger" in page and NAME not in page
    [failed] = query(lambda: list(AuditLog.select().where(AuditLog.action == "erasure_ledger_failed")))
    assert failed.detail.startswith(f"cases {case_id}: ") and failed.actor_email == "root@smilepass.test"
    # The log carries the exact line to add by hand, and it names nobody either.
    [record] = [r for r in caplog.records if "add this line to it by hand" in r.getMessage()]
    line = record.getMessage().rsplit("by hand: ", 1)[1]
    assert ledger.Entry.parse(line).case_ids == [case_id] and NAME not in line and NUMBER not in line
