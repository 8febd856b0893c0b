"""The audit trail is append-only, in the code and in the database; record() keeps details short and
free of the object's private text; admins browse, filter and page it and export it as CSV that no
spreadsheet evaluates."""
import csv
import datetime as dt
import io
import re
from html import unescape as html_unescape

import peewee
import pytest
from playhouse.migrations import Runner

from smilepass import audit, db
from smilepass.models import AuditLog, AuditLogIsAppendOnly, User

from .case_helpers import ADA, make_case, user
from .conftest import query


def add_row(app, action="login", actor_email=None, obj=None, detail="", ip="192.0.2.1"):
    """One row through audit.record, as a request from `ip` would write it."""
    actor = user(actor_email) if actor_email else None
    with app.test_request_context(environ_base={"REMOTE_ADDR": ip}), db.database.connection_context():
        audit.record(action, obj, detail, actor=actor)
        return AuditLog.select().order_by(AuditLog.id.desc()).first()


def insert_row(**values):
    """A row with values record() would never write (hostile text, old dates), inserted directly."""
    values = {"actor_email": "", "action": "login", "object_type": "", "object_id": "", "detail": "", "ip": "",
              "created_at": dt.datetime(2026, 11, 30, 12, 0), **values}
    return query(lambda: AuditLog.insert(**values).execute())


# Append-only ----------------------------------------------------------------------------------

def test_the_code_cannot_change_or_delete_a_row(app, make_user):
    make_user(ADA)
    row = add_row(app, actor_email=ADA, detail="first")
    with db.database.connection_context():
        row.detail = "rewritten"
        with pytest.raises(AuditLogIsAppendOnly):
            row.save()
        with pytest.raises(AuditLogIsAppendOnly):
            row.delete_instance()
        with pytest.raises(AuditLogIsAppendOnly):
            AuditLog.update(detail="rewritten").where(AuditLog.id == row.id).execute()
        with pytest.raises(AuditLogIsAppendOnly):
            AuditLog.delete().where(AuditLog.id == row.id).execute()
        with pytest.raises(AuditLogIsAppendOnly):
            AuditLog.set_by_id(row.id, {"detail": "rewritten"})
        with pytest.raises(AuditLogIsAppendOnly):
            AuditLog.delete_by_id(row.id)
        with pytest.raises(AuditLogIsAppendOnly):
            AuditLog.replace(id=row.id, action="login", created_at=row.created_at).execute()
        assert AuditLog.get_by_id(row.id).detail == "first"


@pytest.mark.parametrize("sql", ["UPDATE audit_log SET detail = 'rewritten'",
                                 "UPDATE audit_log SET actor_id = NULL",
                                 "DELETE FROM audit_log",
                                 "DELETE FROM audit_log WHERE action = 'login'"])
def test_the_database_refuses_update_and_delete(app, make_user, sql):
    make_user(ADA)
    add_row(app, actor_email=ADA, detail="first")
    with db.database.connection_context():
        with pytest.raises(peewee.IntegrityError, match="append-only"):
            with db.database.atomic():
                db.database.execute_sql(sql)
        assert [(r.detail, r.actor_email) for r in AuditLog.select()] == [("first", ADA)]


def test_a_user_with_audit_rows_cannot_be_deleted(app, make_user):
    """Users are deactivated, never deleted; the foreign key has no ON DELETE action (SET NULL would
    be an update of audit rows)."""
    make_user(ADA)
    add_row(app, actor_email=ADA)
    with db.database.connection_context():
        with pytest.raises(peewee.IntegrityError):
            with db.database.atomic():
                db.database.execute_sql('DELETE FROM "user"')
        assert AuditLog.get().actor_id == User.by_email(ADA).id


def test_down_migration_drops_the_triggers_and_up_restores_them(tmp_path):
    database = peewee.SqliteDatabase(str(tmp_path / "m.db"), pragmas={"foreign_keys": 1})
    runner = Runner(database, str(db.MIGRATIONS_DIR))
    runner.up("0009_audit_append_only")
    database.execute_sql("INSERT INTO audit_log (actor_email, action, object_type, object_id, detail, ip, created_at) "
                         "VALUES ('', 'login', '', '', 'kept', '', '2026-11-30')")
    runner.down("0009_audit_append_only")
    database.execute_sql("UPDATE audit_log SET detail = 'changed while down'")
    runner.up("0009_audit_append_only")
    with pytest.raises(peewee.IntegrityError, match="append-only"):
        database.execute_sql("DELETE FROM audit_log")
    assert database.execute_sql("SELECT detail FROM audit_log").fetchall() == [("changed while down",)]


# record() -------------------------------------------------------------------------------------

def test_record_is_one_row_with_actor_object_and_address(app, make_user):
    make_user(ADA)
    case = make_case(ADA)
    row = add_row(app, "case_view", ADA, case, ip="2001:db8::7")
    assert (row.actor_id, row.actor_email, row.action, row.object_type, row.object_id, row.ip) == (
        user(ADA).id, ADA, "case_view", "case", str(case.id), "2001:db8::7")


def test_details_are_short_single_lines(app):
    row = add_row(app, detail="line one\nline two\r\n\t" + "x" * 500)
    assert row.detail.startswith("line one line two x") and len(row.detail) == audit.DETAIL_MAX
    assert row.detail.endswith("…") and "\n" not in row.detail


def test_a_detail_repeating_the_objects_private_text_is_withheld(app, make_user, caplog):
    make_user(ADA)
    case = make_case(ADA, number="QZ-4471", patient_name="Ottoline Marchbanks", dob=dt.date(1979, 6, 2))
    for slip in ("case QZ-4471", "for ottoline marchbanks", "born 1979-06-02"):
        assert add_row(app, "case_update", ADA, case, slip).detail == audit.WITHHELD
    assert "withheld" in caplog.text and "Ottoline" not in caplog.text
    # Ids and field names are what a detail is for.
    assert add_row(app, "case_update", ADA, case, "changed: patient_name").detail == "changed: patient_name"


def test_without_cuts_the_patients_identifiers(app, make_user):
    make_user(ADA)
    case = make_case(ADA, number="QZ-4471", patient_name="Ottoline Marchbanks", dob=dt.date(1979, 6, 2),
                     clinic_patient_id="PX-31")
    text = "Sent back: MARCHBANKS moved (QZ-4471, PX-31); Ottoline will call"
    assert audit.without(text, *audit.patient_identifiers(case)) == "Sent back: … moved (…, …); … will call"


# Admin → Audit log ----------------------------------------------------------------------------

def test_only_admins_see_the_log(clinician, support):
    for browser in (clinician, support):
        assert browser.get("/admin/audit").status_code == 404
        assert browser.get("/admin/audit/export.csv").status_code == 404


def test_filters_combine_and_pages_go_back_in_time(app, admin, make_user):
    make_user(ADA)
    case = make_case(ADA)
    for _ in range(55):
        add_row(app, "case_view", ADA, case, ip="198.51.100.10")
    add_row(app, "case_view", "root@smilepass.test", case, ip="198.51.100.30")
    insert_row(action="case_view", actor_email=ADA, object_type="case", object_id=str(case.id), ip="198.51.100.10",
               created_at=dt.datetime(2026, 1, 15, 9, 30))

    page = admin.get(f"/admin/audit?actor=Dr.Ada@clinic.test&action=case_view&object_type=case&object_id={case.id}"
                     "&ip=198.51.100.10")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and html.count("<td>dr.ada@clinic.test</td>") == 50
    assert "root@smilepass.test</td>" not in html and "Older entries" in html
    # Newest first by id: January's row was written last. The link keeps the filter.
    older_url = html_unescape(re.search(r'href="([^"]*before=\d+[^"]*)"', html).group(1))
    assert "actor=dr.ada@clinic.test" in older_url and "ip=198.51.100.10" in older_url
    older = admin.get(older_url).get_data(as_text=True)
    assert older.count("<td>dr.ada@clinic.test</td>") == 6  # 56 of Ada's, 50 a page
    assert "Older entries" not in older and "Newest entries" in older

    january = admin.get("/admin/audit?action=case_view&since=2026-01-01&until=2026-01-31").get_data(as_text=True)
    assert january.count("<td>dr.ada@clinic.test</td>") == 1 and "2026-01-15 09:30 UTC" in january
    by_address = admin.get("/admin/audit?ip=198.51.100.30").get_data(as_text=True)
    assert by_address.count("<td>root@smilepass.test</td>") == 1


def test_the_filter_is_an_htmx_fragment_and_a_plain_page(app, admin):
    fragment = admin.get("/admin/audit?action=login", htmx=True)
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in html and 'id="audit"' in html
    assert "<html" in admin.get("/admin/audit?action=login").get_data(as_text=True)
    # The action list names what it means, and offers actions only other code records.
    insert_row(action="custom_thing")
    html = admin.get("/admin/audit").get_data(as_text=True)
    assert '<option value="case_view">Case page viewed</option>' in html
    assert '<option value="custom_thing">custom_thing</option>' in html


@pytest.mark.parametrize("htmx", [False, True])
def test_bad_filters_are_explained_and_kept(admin, htmx):
    response = admin.get("/admin/audit?actor=x%40y.test&object_id=12a&since=2026-02-30&until=2026-01-01"
                         "&ip=10.0.0&action=no_such_action", htmx=htmx)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for message in ("An object id is a number", "Give a date as YYYY-MM-DD.", "Give one full address",
                    "Not a valid choice"):
        assert message in html, message
    assert 'value="x@y.test"' in html and 'value="12a"' in html and 'value="10.0.0"' in html
    assert "Export these entries" not in html
    range_error = admin.get("/admin/audit?since=2026-02-01&until=2026-01-01").get_data(as_text=True)
    assert "The start date is after the end date." in range_error


def test_values_are_escaped(app, admin):
    insert_row(detail='<script>alert("x")</script>', actor_email="<b>@x.test")
    html = admin.get("/admin/audit").get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html and "<b>@x.test" not in html


# CSV export -----------------------------------------------------------------------------------

def export(admin, query_string=""):
    response = admin.get("/admin/audit/export.csv" + query_string)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-log-')
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_export_neutralises_formulas(app, admin):
    hostile = ["=HYPERLINK(\"http://evil.test\",\"click\")", "+1+2", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1",
               "plain text", "a=b"]
    for detail in hostile:
        insert_row(action="hostile", detail=detail, actor_email="=cmd@evil.test", object_id="-1", ip="@ip")
    table = export(admin, "?action=hostile")
    header, body = table[0], table[1:]
    assert header == ["id", "time_utc", "actor_email", "action", "object_type", "object_id", "detail",
                      "client_address"]
    details = [row[6] for row in reversed(body)]
    assert details == ["'" + d for d in hostile[:6]] + ["plain text", "a=b"]
    for row in body:
        assert row[2] == "'=cmd@evil.test" and row[5] == "'-1" and row[7] == "'@ip"
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


def test_export_follows_the_filter_streams_every_row_and_is_audited(app, admin, make_user):
    make_user(ADA)
    case = make_case(ADA)
    for _ in range(1203):  # more than two of the export's chunks
        insert_row(action="case_view", actor_email=ADA, object_type="case", object_id=str(case.id))
    insert_row(action="login", actor_email=ADA)
    table = export(admin, f"?action=case_view&object_type=case&object_id={case.id}")
    body = table[1:]
    assert len(body) == 1203 and {row[3] for row in body} == {"case_view"}
    ids = [int(row[0]) for row in body]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 1203
    [row] = query(lambda: list(AuditLog.select().where(AuditLog.action == "audit_export")))
    assert row.actor_email == "root@smilepass.test" and row.ip == "127.0.0.1"
    assert f"action=case_view, object_type=case, object_id={case.id}" in row.detail
    # The export's own row is not in the file it describes; the next export has it.
    everything = export(admin)[1:]
    assert [r[3] for r in everything].count("audit_export") == 1


def test_export_with_a_bad_filter_is_refused_with_the_reasons(admin):
    response = admin.get("/admin/audit/export.csv?object_id=abc")
    assert response.status_code == 422 and "An object id is a number" in response.get_data(as_text=True)
    assert query(lambda: AuditLog.select().where(AuditLog.action == "audit_export").count()) == 0
