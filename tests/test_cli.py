"""The command line: migrations, accounts, demo data and online backup (restore: test_backup_restore.py)."""
import datetime as dt
import json
import sqlite3
import tarfile
from itertools import pairwise

import pytest
import time_machine

from smilepass import db
from smilepass.auth.security import verify_password
from smilepass.demo import default_replies
from smilepass.models import AuditLog, Message, RescanRequest, Status, Ticket, User
from smilepass.search.text import terms

from .conftest import PG_URL, query


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def test_migrate_is_idempotent(cli):
    result = cli.invoke(args=["migrate"])
    assert result.exit_code == 0 and "up to date" in result.output


def test_users_create_with_password_option(cli):
    result = cli.invoke(
        args=["users", "create", "Owner@Clinic.test", "--role", "admin", "--password", "owner-Pass-2026"]
    )
    assert result.exit_code == 0, result.output
    user = query(lambda: User.by_email("owner@clinic.test"))
    assert user.role == "admin" and verify_password(user.password_hash, "owner-Pass-2026")
    assert query(lambda: AuditLog.select().where(AuditLog.action == "user_created").count()) == 1


def test_users_create_prompts_for_the_password(cli):
    result = cli.invoke(args=["users", "create", "nurse@clinic.test"], input="nurse-Pass-2026\nnurse-Pass-2026\n")
    assert result.exit_code == 0, result.output
    assert query(lambda: User.by_email("nurse@clinic.test").role) == "clinician"


def test_users_create_refuses_weak_password_and_duplicates(cli):
    weak = cli.invoke(args=["users", "create", "a@clinic.test", "--password", "password"])
    assert weak.exit_code != 0 and "common passwords" in weak.output
    cli.invoke(args=["users", "create", "a@clinic.test", "--password", "fine-Pass-2026"])
    again = cli.invoke(args=["users", "create", "A@clinic.test", "--password", "fine-Pass-2026"])
    assert again.exit_code != 0 and "already has an account" in again.output


def test_demo_data(cli):
    result = cli.invoke(args=["demo", "--tickets", "500", "--clinicians", "5"])
    assert result.exit_code == 0, result.output
    assert query(lambda: Ticket.select().count()) == 500
    assert query(lambda: User.select().count()) == 7
    assert query(lambda: Message.select().count()) > 0
    # Rescan requests for the scans that need one, for Practice Insights (issue 18).
    assert query(lambda: RescanRequest.select().count()) > 0
    # Running it again adds tickets to the same demo accounts.
    cli.invoke(args=["demo", "--tickets", "10", "--clinicians", "5"])
    assert query(lambda: (Ticket.select().count(), User.select().count())) == (510, 7)
    # The queue's tab counts (kept by triggers, counted once after the bulk load on PostgreSQL) are right.
    kept = query(lambda: sorted(db.database.execute_sql("SELECT kind, owner_id, n FROM queue_count WHERE n > 0")))
    counted = query(lambda: sorted(db.database.execute_sql(" UNION ALL ".join(
        f"SELECT {kind}, COALESCE({column}, 0), COUNT(*) FROM ticket WHERE status IN (0, 1, 2) "
        f"GROUP BY COALESCE({column}, 0)" for kind, column in ((0, "assignee_id"), (1, "escalation_owner_id"))))))
    assert kept == counted and sum(n for kind, _, n in kept if kind == 0) > 0


DEMO_NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def indexed(column_part: str, word: str) -> set[int]:
    """Tickets whose index entry holds this word in the clinician-visible part ("public") or in the
    staff-only one ("internal")."""
    term = terms(word)
    if db.is_postgres():
        column = "public_doc" if column_part == "public" else "staff_doc"
        sql = f"SELECT ticket_id FROM search_ticket WHERE {column} @@ to_tsquery('simple', %s)"
    else:
        columns = "{title body}" if column_part == "public" else "internal"
        term = f'{columns} : "{term}"'
        sql = "SELECT rowid FROM search_ticket WHERE search_ticket MATCH ?"
    return query(lambda: {ticket_id for (ticket_id,) in db.database.execute_sql(sql, [term])})


def test_demo_threads(cli):
    """--replies N: exactly N messages in threads that read like support conversations (public replies
    taking turns between support and the clinician, internal notes among them), dated after their ticket
    and in order, never after now, and all of it in the search index: public replies where clinicians
    search, internal notes only in the staff part."""
    with time_machine.travel(DEMO_NOW, tick=False):
        result = cli.invoke(args=["demo", "--tickets", "300", "--clinicians", "3", "--replies", "1500"])
    assert result.exit_code == 0, result.output
    assert "1500 replies" in result.output
    now = DEMO_NOW.replace(tzinfo=None)
    tickets = {t.id: t for t in query(lambda: list(Ticket.select()))}
    staff = query(lambda: {u.id for u in User.select().where(User.role != "clinician")})
    messages = query(lambda: list(Message.select().order_by(Message.id)))
    assert len(messages) == 1500
    threads = {}
    for message in messages:
        threads.setdefault(message.ticket_id, []).append(message)
    assert len(threads) > 150  # spread over most tickets, not piled on a few
    for ticket_id, thread in threads.items():
        ticket = tickets[ticket_id]
        times = [m.created_at for m in thread]
        assert ticket.created_at < times[0] and times == sorted(times) and times[-1] < now
        assert ticket.resolved_at is None or times[-1] <= ticket.resolved_at
        assert ticket.updated_at == times[-1]
        public = [m for m in thread if not m.internal]
        assert all(m.author_id in staff for m in thread if m.internal)
        assert all(m.author_id in staff or m.author_id == ticket.requester_id for m in public)
        if ticket.status == Status.OPEN:
            assert all(m.author_id not in staff for m in public)  # no staff reply yet
        elif public:
            # The first response is the ticket's, and then support and the clinician take turns.
            assert public[0].author_id in staff and public[0].created_at == ticket.first_response_at
            assert all((a.author_id in staff) != (b.author_id in staff) for a, b in pairwise(public))
    internal = [m for m in messages if m.internal]
    assert 0.05 < len(internal) / len(messages) < 0.3
    # The search index: an internal note's word is in the staff part only, a public reply's where the
    # clinician searches too (both words are in no title or description of the demo).
    noted = {m.ticket_id for m in internal if "complaint" in m.body}
    assert noted and indexed("internal", "complaint") == noted and not indexed("public", "complaint")
    replied = {m.ticket_id for m in messages if not m.internal and "Thursday" in m.body}
    assert replied and indexed("public", "Thursday") == replied


def test_demo_replies_default(cli):
    result = cli.invoke(args=["demo", "--tickets", "200", "--clinicians", "2"])
    assert result.exit_code == 0, result.output
    assert query(lambda: Message.select().count()) == default_replies(200) > 0
    none = cli.invoke(args=["demo", "--tickets", "20", "--clinicians", "2", "--replies", "0"])
    assert none.exit_code == 0 and query(lambda: Message.select().count()) == default_replies(200)


def backup_member(archive, name):
    with tarfile.open(archive) as tar:
        return tar.extractfile(name).read()


@pytest.mark.skipif(bool(PG_URL), reason="the online backup command copies SQLite files; PostgreSQL uses pg_dump")
def test_backup_is_a_consistent_sqlite_copy(cli, tmp_path):
    cli.invoke(args=["demo", "--tickets", "50", "--clinicians", "2"])
    target = tmp_path / "backups" / "smilepass-backup.tar"
    result = cli.invoke(args=["backup", str(target)])
    assert result.exit_code == 0, result.output
    copy_path = tmp_path / "copy.db"
    copy_path.write_bytes(backup_member(target, "database.sqlite3"))
    with sqlite3.connect(copy_path) as copy:
        assert copy.execute("select count(*) from ticket").fetchone()[0] == 50
        assert copy.execute("pragma integrity_check").fetchone()[0] == "ok"
    manifest = json.loads(backup_member(target, "manifest.json"))
    assert manifest["database"]["kind"] == "sqlite" and manifest["row_counts"]["ticket"] == 50
    assert query(lambda: AuditLog.select().where(AuditLog.action == "backup_created").count()) == 1


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL pass only")
def test_backup_on_postgres_uses_pg_dump(cli, tmp_path, pg_client_tools):
    target = tmp_path / "pg.tar"
    result = cli.invoke(args=["backup", str(target)])
    assert result.exit_code == 0, result.output
    assert backup_member(target, "database.pgdump").startswith(b"PGDMP")


def test_database_is_wal_with_foreign_keys(app):
    if db.is_postgres():
        pytest.skip("SQLite pragmas")
    with db.database.connection_context():
        assert db.database.execute_sql("pragma journal_mode").fetchone()[0] == "wal"
        assert db.database.execute_sql("pragma foreign_keys").fetchone()[0] == 1
        assert db.database.execute_sql("pragma busy_timeout").fetchone()[0] == 5000


def test_demo_cases(cli):
    from smilepass.models import Case, Shipment
    result = cli.invoke(args=["demo", "--tickets", "10", "--clinicians", "2", "--cases", "30"])
    assert result.exit_code == 0, result.output
    assert query(lambda: (Case.select().count(), Shipment.select().count())) == (30, 30)
    # Every case's list state matches its shipment.
    assert query(lambda: Case.select().join(Shipment).where(Case.latest_state != Shipment.state).count()) == 0
