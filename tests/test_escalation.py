"""The escalation path: who owns each step (Enterprise account manager first, then the least loaded
holder of the role), refusals, skipped steps, the record (who, when, why), the notification, and the
ticket page (history for all, reasons and the Escalate form for staff only)."""
import pytest

from smilepass.db import database
from smilepass.models import AuditLog, Clinic, ClinicMember, Escalation, Notification, Status, Ticket, Tier, User
from smilepass.service import escalation

from .conftest import query


def set_role(email, role):
    query(lambda: User.update(escalation_role=role).where(User.email == email).execute())


def user(email):
    return query(lambda: User.get(User.email == email))


def ticket(ticket_id):
    return query(lambda: Ticket.get_by_id(ticket_id))


def escalate_directly(app, ticket_id, actor_email, reason="Needs a decision"):
    with app.app_context(), database.connection_context():
        actor = User.get(User.email == actor_email) if actor_email else None
        return escalation.escalate(Ticket.get_by_id(ticket_id), actor, reason)


@pytest.fixture
def chain(make_user):
    """Two supervisors, a liaison and an operations manager."""
    for email, role in [("sup1@smilepass.test", "supervisor"), ("sup2@smilepass.test", "supervisor"),
                        ("liaison@smilepass.test", "liaison"), ("ops@smilepass.test", "operations")]:
        make_user(email, "support")
        set_role(email, role)


def test_path_goes_supervisor_liaison_operations_then_refuses(app, clinician, support, new_ticket, chain):
    ticket_id = new_ticket(clinician)
    support.get(f"/support/tickets/{ticket_id}")
    owners = []
    for reason in ["Clinic threatens to cancel", "Clinical judgement needed", "Refund above limit"]:
        response = support.post(f"/support/tickets/{ticket_id}/escalate", {"reason": reason})
        assert response.status_code == 303, response.get_data(as_text=True)
        t = ticket(ticket_id)
        owners.append((t.escalation_level, user_email(t.escalation_owner_id)))
    assert owners == [(1, "sup1@smilepass.test"), (2, "liaison@smilepass.test"), (3, "ops@smilepass.test")]
    response = support.post(f"/support/tickets/{ticket_id}/escalate", {"reason": "Once more"})
    assert response.status_code == 422
    assert "last step of the escalation path" in response.get_data(as_text=True)
    steps = query(lambda: list(Escalation.select().where(Escalation.ticket == ticket_id).order_by(Escalation.id)))
    assert [(s.level, s.reason) for s in steps] == [
        (1, "Clinic threatens to cancel"), (2, "Clinical judgement needed"), (3, "Refund above limit")]
    assert all(s.actor_id == user("sam@smilepass.test").id for s in steps)
    audits = query(lambda: list(AuditLog.select().where(AuditLog.action == "ticket_escalated")))
    assert len(audits) == 3 and "level 0 -> 1" in audits[0].detail
    # Each new owner is told (in-app here; the mail follows their email preferences).
    told = query(lambda: {n.user.email for n in Notification.select().where(Notification.kind == "ticket_escalated")})
    assert told == {"sup1@smilepass.test", "liaison@smilepass.test", "ops@smilepass.test"}


def user_email(user_id):
    return query(lambda: User.get_by_id(user_id).email) if user_id else None


def test_enterprise_account_manager_owns_level_one(app, make_user, clinician, new_ticket, chain):
    manager = make_user("am@smilepass.test", "support")
    with database.connection_context():
        clinic = Clinic.create(name="Bright Smiles", tier=Tier.ENTERPRISE.value, account_manager=manager.id)
        ClinicMember.create(user=User.get(User.email == "dr.ada@clinic.test").id, clinic=clinic.id)
    ticket_id = new_ticket(clinician)
    step = escalate_directly(app, ticket_id, "sup2@smilepass.test")
    assert (step.level, step.owner_id) == (1, manager.id)
    # Level 2 is the liaison as usual.
    assert escalate_directly(app, ticket_id, "sup2@smilepass.test").owner_id == user("liaison@smilepass.test").id
    # A Pro clinic has no account manager path.
    query(lambda: Clinic.update(tier=Tier.PRO.value).execute())
    with app.app_context(), database.connection_context():
        assert escalation.owner_for(Ticket.get_by_id(ticket_id), 1).email == "sup1@smilepass.test"


def test_the_least_loaded_supervisor_gets_it_ties_by_id(app, clinician, new_ticket, chain):
    first, second, third = (new_ticket(clinician, title=f"Request {n}") for n in range(3))
    assert escalate_directly(app, first, None, "auto").owner.email == "sup1@smilepass.test"
    assert escalate_directly(app, second, None, "auto").owner.email == "sup2@smilepass.test"
    # One each: the tie goes to the lower id. Once sup1's ticket is resolved, sup1 has none open.
    query(lambda: Ticket.update(status=Status.RESOLVED.value).where(Ticket.id == first).execute())
    with app.app_context(), database.connection_context():
        assert escalation.owner_for(Ticket.get_by_id(third), 1).email == "sup1@smilepass.test"
        query(lambda: Ticket.update(status=Status.OPEN.value).where(Ticket.id == first).execute())
        query(lambda: Ticket.update(escalation_owner=None).where(Ticket.id == second).execute())
        assert escalation.owner_for(Ticket.get_by_id(third), 1).email == "sup2@smilepass.test"
    # Inactive holders and clinicians with a stray role never own a step.
    query(lambda: User.update(is_active=False).where(User.email == "sup2@smilepass.test").execute())
    with app.app_context(), database.connection_context():
        assert escalation.owner_for(Ticket.get_by_id(third), 1).email == "sup1@smilepass.test"


def test_refusals_have_clear_messages(app, clinician, support, new_ticket, chain):
    ticket_id = new_ticket(clinician)
    support.get(f"/support/tickets/{ticket_id}")
    response = support.post(f"/support/tickets/{ticket_id}/escalate", {"reason": "   "})
    assert response.status_code == 422
    assert "Say why the request needs escalating." in response.get_data(as_text=True)
    for status in (Status.RESOLVED, Status.CLOSED):
        query(lambda: Ticket.update(status=status.value).where(Ticket.id == ticket_id).execute())
        with pytest.raises(escalation.EscalationRefused, match=f"is {status.label}; reopen it"):
            escalate_directly(app, ticket_id, "sam@smilepass.test")
    assert query(lambda: Escalation.select().count()) == 0
    with pytest.raises(escalation.EscalationRefused, match="Only support staff"):
        escalate_directly(app, ticket_id, "dr.ada@clinic.test")


def test_htmx_escalation_swaps_the_panel(app, clinician, support, new_ticket, chain):
    ticket_id = new_ticket(clinician)
    support.get(f"/support/tickets/{ticket_id}")
    response = support.post(f"/support/tickets/{ticket_id}/escalate", {"reason": "Angry <b>clinic</b>"}, htmx=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and page.lstrip().startswith('<section id="escalation"')
    assert "Angry &lt;b&gt;clinic&lt;/b&gt;" in page and "Support supervisor" in page
    response = support.post(f"/support/tickets/{ticket_id}/escalate", {"reason": ""}, htmx=True)
    assert response.status_code == 422 and "Say why" in response.get_data(as_text=True)


def test_no_holder_skips_to_the_next_step_with_one(app, clinician, new_ticket, make_user):
    make_user("ops@smilepass.test", "support")
    set_role("ops@smilepass.test", "operations")
    ticket_id = new_ticket(clinician)
    step = escalate_directly(app, ticket_id, None, "auto")
    assert (step.level, step.owner.email) == (3, "ops@smilepass.test")
    audit = query(lambda: AuditLog.get(AuditLog.action == "ticket_escalated"))
    assert "skipped for want of a holder: Support supervisor, Clinical liaison" in audit.detail


def test_nobody_on_the_path_escalates_unowned_and_tells_admins(app, clinician, new_ticket, make_user):
    make_user("root@smilepass.test", "admin")
    ticket_id = new_ticket(clinician)
    step = escalate_directly(app, ticket_id, None, "First response target missed")
    assert (step.level, step.owner_id) == (1, None)
    assert ticket(ticket_id).escalation_level == 1
    told = query(lambda: [n.user.email for n in Notification.select().where(Notification.kind == "ticket_escalated")])
    assert told == ["root@smilepass.test"]
    # The next step again finds nobody: level 2, unowned.
    assert escalate_directly(app, ticket_id, None, "Resolution target missed").level == 2


def test_history_shown_and_reasons_are_staff_only(app, clinician, other_clinician, support, new_ticket, chain):
    ticket_id = new_ticket(clinician)
    support.get(f"/support/tickets/{ticket_id}")
    support.post(f"/support/tickets/{ticket_id}/escalate", {"reason": "Internal: clinic owes us money"})
    escalate_directly(app, ticket_id, None, "Resolution target missed")
    staff_page = support.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "Internal: clinic owes us money" in staff_page and "by Sam" in staff_page
    assert "automatically (SLA breach)" in staff_page and "Resolution target missed" in staff_page
    assert "Sup1" in staff_page and "Liaison" in staff_page and ">Escalate</button>" in staff_page
    clinician_page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "Escalated" in clinician_page and "Clinical liaison" in clinician_page
    for secret in ("clinic owes us money", "Resolution target missed", "Sup1", "by Sam", ">Escalate</button>"):
        assert secret not in clinician_page
    # Clinicians cannot escalate, even their own ticket; another clinician's ticket is simply absent.
    assert clinician.post(f"/support/tickets/{ticket_id}/escalate", {"reason": "Please"}).status_code == 404
    assert other_clinician.post(f"/support/tickets/{ticket_id}/escalate", {"reason": "x"}).status_code == 404
    assert support.post("/support/tickets/9999/escalate", {"reason": "x"}).status_code == 404
    assert ticket(ticket_id).escalation_level == 2


def test_escalate_needs_csrf(app, clinician, support, new_ticket, chain):
    ticket_id = new_ticket(clinician)
    response = support.post(f"/support/tickets/{ticket_id}/escalate", {"reason": "x"}, csrf=False)
    assert response.status_code == 400
    assert ticket(ticket_id).escalation_level == 0


def test_admin_sets_escalation_roles_for_staff_only(app, admin, make_user):
    make_user("sam@smilepass.test", "support")
    make_user("dr.ada@clinic.test")
    sam, ada = user("sam@smilepass.test"), user("dr.ada@clinic.test")
    page = admin.get("/admin/users").get_data(as_text=True)
    assert f'id="escalation-role-{sam.id}"' in page and f'id="escalation-role-{ada.id}"' not in page
    assert admin.post(f"/admin/users/{sam.id}/escalation-role", {"escalation_role": "liaison"}).status_code == 303
    assert user("sam@smilepass.test").escalation_role == "liaison"
    audit = query(lambda: AuditLog.get(AuditLog.action == "escalation_role"))
    assert audit.detail == "none -> liaison" and audit.object_id == str(sam.id)
    admin.post(f"/admin/users/{ada.id}/escalation-role", {"escalation_role": "supervisor"})
    assert user("dr.ada@clinic.test").escalation_role == ""
    assert "Only support staff and admins" in admin.get("/admin/users").get_data(as_text=True)
    admin.post(f"/admin/users/{sam.id}/escalation-role", {"escalation_role": "boss"})
    assert user("sam@smilepass.test").escalation_role == "liaison"
    admin.post(f"/admin/users/{sam.id}/escalation-role", {"escalation_role": ""})
    assert user("sam@smilepass.test").escalation_role == ""


def test_escalation_roles_are_admin_only(app, support, make_user):
    sam = user("sam@smilepass.test")
    assert support.post(f"/admin/users/{sam.id}/escalation-role", {"escalation_role": "supervisor"}).status_code == 404
    assert user("sam@smilepass.test").escalation_role == ""
