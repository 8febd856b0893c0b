"""The one role guard and object lookup (smilepass/auth/guards.py): roles, and ids in URLs that name
nothing, however large."""
import pytest

from smilepass.auth.guards import LARGEST_ID, id_arg
from smilepass.models import EscalationRole, Role, User

from .conftest import query

# One past the largest id the databases hold, and a number far beyond any integer column.
TOO_LARGE = (LARGEST_ID + 1, 10**30)


@pytest.mark.parametrize("path", [
    "/support/tickets/{id}", "/support/attachments/{id}", "/support/scans/{id}", "/cases/{id}",
    "/cases/{id}/edit", "/cases/shipments/{id}", "/cases/{id}/export",
])
def test_ids_too_large_for_the_database_are_missing_pages(clinician, support, path):
    for browser in (clinician, support):
        for object_id in (*TOO_LARGE, LARGEST_ID):
            assert browser.get(path.format(id=object_id)).status_code == 404, (path, object_id)


def test_too_large_ids_in_staff_and_admin_pages_are_missing(support, admin):
    for object_id in TOO_LARGE:
        assert support.get(f"/queue/canned/{object_id}").status_code == 404
        assert admin.get(f"/admin/clinics/{object_id}").status_code == 404
        assert admin.post(f"/admin/users/{object_id}/active", {}).status_code == 404
        assert admin.post(f"/admin/holidays/{object_id}/delete", {}).status_code == 404
        assert admin.post(f"/account/notifications/{object_id}/read", {}).status_code == 404


def test_too_large_ids_in_query_strings_are_ignored(clinician, admin):
    huge = TOO_LARGE[1]
    assert clinician.get(f"/support/?created={huge}&case={huge}").status_code == 200
    assert clinician.get(f"/cases/?label={huge}").status_code == 200
    assert admin.get(f"/admin/audit?before={huge}").status_code == 200
    assert admin.get(f"/contact/inbox?before={huge}").status_code == 200


def test_id_arg_takes_only_ids_the_database_can_hold():
    assert id_arg("42") == 42 and id_arg(str(LARGEST_ID)) == LARGEST_ID
    for text in (None, "", "0", "-3", "4x", " 4", str(LARGEST_ID + 1)):
        assert id_arg(text) is None, text


def test_holds_account_roles_and_staff_escalation_roles(make_user):
    clinician = make_user("dr.cy@clinic.test")
    support = make_user("sue@smilepass.test", "support")
    admin = make_user("ann@smilepass.test", "admin")
    assert clinician.holds(Role.CLINICIAN) and not clinician.holds(Role.SUPPORT, Role.ADMIN)
    assert support.holds(Role.SUPPORT, Role.ADMIN) and admin.holds(Role.SUPPORT, Role.ADMIN)
    assert not support.holds(EscalationRole.SUPERVISOR)
    support.escalation_role = clinician.escalation_role = EscalationRole.SUPERVISOR.value
    assert support.holds(Role.ADMIN, EscalationRole.SUPERVISOR)
    # An escalation role counts for staff only, even if one is left on a clinician's row.
    assert not clinician.holds(EscalationRole.SUPERVISOR)


def test_wrong_role_answers_as_before(clinician, support, admin, make_user):
    # Pages that are not the user's are missing; the Contact inbox and Insights' whole practice are
    # for admins and supervisors; clinicians see their own Insights.
    for path in ("/queue/", "/queue/canned", "/shipments/import", "/admin/users", "/admin/clinics", "/admin/audit",
                 "/contact/inbox"):
        assert clinician.get(path).status_code == 404, path
    assert support.get("/contact/inbox").status_code == 404
    assert support.get("/insights/").status_code == 404
    assert clinician.get("/insights/").status_code == 200
    assert admin.get("/contact/inbox").status_code == 200
    sue = query(lambda: User.by_email("sam@smilepass.test"))
    query(lambda: User.update(escalation_role=EscalationRole.SUPERVISOR.value).where(User.id == sue.id).execute())
    assert support.get("/contact/inbox").status_code == 200
    assert support.get("/insights/").status_code == 200
