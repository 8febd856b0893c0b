"""Admin → Clinics: create and rename, tiers, the account manager (required for Enterprise, staff
only), clinician membership (one clinic at most), audit rows, and admins only."""
from smilepass.models import AuditLog, Clinic, ClinicMember, Tier, User

from .conftest import query


def user_id(email):
    return query(lambda: User.get(User.email == email).id)


def create(admin, name="Bright Smiles", tier=Tier.STANDARD, manager=""):
    admin.get("/admin/clinics")
    return admin.post("/admin/clinics", {"name": name, "tier": str(tier.value), "account_manager": str(manager)})


def clinic(name="Bright Smiles"):
    return query(lambda: Clinic.get(Clinic.name == name))


def test_create_rename_and_change_tier(app, admin, make_user):
    response = create(admin, tier=Tier.PRO)
    assert response.status_code == 303
    created = clinic()
    assert response.headers["Location"].endswith(f"/admin/clinics/{created.id}")
    assert created.tier == Tier.PRO.value and created.account_manager_id is None
    page = admin.get("/admin/clinics").get_data(as_text=True)
    assert "Bright Smiles" in page and "Pro (Priority Support)" in page
    response = admin.post(f"/admin/clinics/{created.id}", {"name": "Bright Smiles Dental", "tier": "0",
                                                          "account_manager": ""})
    assert response.status_code == 303
    assert (clinic("Bright Smiles Dental").tier) == Tier.STANDARD.value
    actions = query(lambda: [(a.action, a.detail) for a in AuditLog.select().where(
        AuditLog.object_type == "clinic").order_by(AuditLog.id)])
    assert actions[0] == ("clinic_created", "Bright Smiles; tier Pro (Priority Support); account manager none")
    assert actions[1][0] == "clinic_updated" and "-> Bright Smiles Dental; tier Standard" in actions[1][1]


def test_enterprise_needs_a_staff_account_manager(app, admin, make_user):
    make_user("am@smilepass.test", "support")
    make_user("dr.ada@clinic.test")
    response = create(admin, tier=Tier.ENTERPRISE)
    assert response.status_code == 422
    assert "An Enterprise clinic needs an account manager." in response.get_data(as_text=True)
    # Only staff are offered, and a clinician's id sent anyway is refused.
    page = admin.get("/admin/clinics").get_data(as_text=True)
    assert "am@smilepass.test" in page and "dr.ada@clinic.test" not in page
    response = create(admin, tier=Tier.ENTERPRISE, manager=user_id("dr.ada@clinic.test"))
    assert response.status_code == 422 and "must be an active staff member" in response.get_data(as_text=True)
    assert query(lambda: Clinic.select().count()) == 0
    assert create(admin, tier=Tier.ENTERPRISE, manager=user_id("am@smilepass.test")).status_code == 303
    assert clinic().account_manager_id == user_id("am@smilepass.test")
    # Taking the manager away from an Enterprise clinic is refused as well.
    response = admin.post(f"/admin/clinics/{clinic().id}",
                          {"name": "Bright Smiles", "tier": "2", "account_manager": ""})
    assert response.status_code == 422 and "needs an account manager" in response.get_data(as_text=True)


def test_names_are_unique_ignoring_case(app, admin):
    create(admin)
    response = create(admin, name="bright smiles")
    assert response.status_code == 422
    assert "There is already a clinic called bright smiles." in response.get_data(as_text=True)
    response = create(admin, name="  ")
    assert response.status_code == 422 and "Name the clinic." in response.get_data(as_text=True)


def test_members_belong_to_one_clinic_at_most(app, admin, make_user):
    make_user("dr.ada@clinic.test")
    make_user("sam@smilepass.test", "support")
    create(admin, name="North")
    create(admin, name="South")
    north, south = clinic("North"), clinic("South")
    admin.get(f"/admin/clinics/{north.id}")
    assert admin.post(f"/admin/clinics/{north.id}/members", {"email": "Dr.Ada@clinic.test"}).status_code == 303
    assert query(lambda: ClinicMember.get(ClinicMember.user == user_id("dr.ada@clinic.test")).clinic_id) == north.id
    response = admin.post(f"/admin/clinics/{south.id}/members", {"email": "dr.ada@clinic.test"})
    assert response.status_code == 422 and "already belongs to North" in response.get_data(as_text=True)
    response = admin.post(f"/admin/clinics/{south.id}/members", {"email": "sam@smilepass.test"})
    assert response.status_code == 422 and "is not a clinician" in response.get_data(as_text=True)
    response = admin.post(f"/admin/clinics/{south.id}/members", {"email": "nobody@clinic.test"})
    assert response.status_code == 422
    assert "No user with the address nobody@clinic.test." in response.get_data(as_text=True)
    page = admin.get(f"/admin/clinics/{north.id}").get_data(as_text=True)
    assert "dr.ada@clinic.test" in page
    ada = user_id("dr.ada@clinic.test")
    # Removing from the wrong clinic is a 404; from the right one frees them for another clinic.
    assert admin.post(f"/admin/clinics/{south.id}/members/{ada}/remove").status_code == 404
    assert admin.post(f"/admin/clinics/{north.id}/members/{ada}/remove").status_code == 303
    assert admin.post(f"/admin/clinics/{south.id}/members", {"email": "dr.ada@clinic.test"}).status_code == 303
    actions = query(lambda: [(a.action, a.object_id, a.detail) for a in AuditLog.select().where(
        AuditLog.action.startswith("clinic_member")).order_by(AuditLog.id)])
    assert actions == [("clinic_member_added", str(north.id), "dr.ada@clinic.test"),
                       ("clinic_member_removed", str(north.id), "dr.ada@clinic.test"),
                       ("clinic_member_added", str(south.id), "dr.ada@clinic.test")]


def test_clinics_are_admin_only(app, admin, support, clinician):
    create(admin)
    clinic_id = clinic().id
    for browser in (support, clinician):
        assert browser.get("/admin/clinics").status_code == 404
        assert browser.get(f"/admin/clinics/{clinic_id}").status_code == 404
        assert browser.post("/admin/clinics", {"name": "Mine", "tier": "2", "account_manager": ""}).status_code == 404
        assert browser.post(f"/admin/clinics/{clinic_id}/members", {"email": "dr.ada@clinic.test"}).status_code == 404
    assert admin.get("/admin/clinics/9999").status_code == 404
    assert "Clinics</a>" in admin.get("/admin/clinics").get_data(as_text=True)
    assert "/admin/clinics" not in support.get("/support/").get_data(as_text=True)


def test_clinic_forms_need_csrf(app, admin):
    admin.get("/admin/clinics")
    response = admin.post("/admin/clinics", {"name": "X", "tier": "0", "account_manager": ""}, csrf=False)
    assert response.status_code == 400
    assert query(lambda: Clinic.select().count()) == 0
