"""Clinics (Admin → Clinics): a clinic's name, its support tier, its account manager and the
clinicians who work for it. A clinician belongs to at most one clinic; an Enterprise clinic needs an
account manager (new requests go to them and they handle the clinic's escalations). Every change is
audited."""
import peewee as pw
from flask_babel import gettext

from .. import audit
from ..db import database
from ..i18n import in_english
from ..models import Clinic, ClinicMember, Role, Tier, User, normalize_email

NAME_MAX = 120
STAFF_ROLES = (Role.SUPPORT.value, Role.ADMIN.value)


class ClinicRefused(ValueError):
    """The message is for the admin; `field` says which form field it belongs beside."""

    def __init__(self, message: str, field: str = "name"):
        super().__init__(message)
        self.field = field


def listing() -> list[Clinic]:
    """Every clinic with its member count and account manager, by name."""
    members = (ClinicMember.select(ClinicMember.clinic, pw.fn.COUNT(ClinicMember.user).alias("n"))
               .group_by(ClinicMember.clinic).alias("members"))
    manager = User.alias()
    return list(Clinic.select(Clinic, manager, pw.fn.COALESCE(members.c.n, 0).alias("member_count"))
                .join(manager, pw.JOIN.LEFT_OUTER, on=(Clinic.account_manager == manager.id), attr="manager")
                .switch(Clinic).join(members, pw.JOIN.LEFT_OUTER, on=(members.c.clinic_id == Clinic.id))
                .order_by(Clinic.name))


def members(clinic: Clinic) -> list[User]:
    return list(User.select().join(ClinicMember).where(ClinicMember.clinic == clinic.id).order_by(User.email))


def staff_choices() -> list[User]:
    """Who can manage an account: active support staff and admins."""
    return list(User.select().where(User.role.in_(STAFF_ROLES) & User.is_active).order_by(User.name, User.email))


def _check(name: str, tier: int, manager: User | None, clinic_id: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise ClinicRefused(gettext("Name the clinic."))
    if len(name) > NAME_MAX:
        raise ClinicRefused(gettext("The name may be at most %(count)s characters.", count=NAME_MAX))
    taken = Clinic.select().where(pw.fn.LOWER(Clinic.name) == name.lower())
    if clinic_id is not None:
        taken = taken.where(Clinic.id != clinic_id)
    if taken.exists():
        raise ClinicRefused(gettext("There is already a clinic called %(name)s.", name=name))
    if tier not in {t.value for t in Tier}:
        raise ClinicRefused(gettext("Choose a tier."), "tier")
    if manager is not None and (manager.role not in STAFF_ROLES or not manager.is_active):
        raise ClinicRefused(gettext("The account manager must be an active staff member."), "account_manager")
    if tier == Tier.ENTERPRISE.value and manager is None:
        raise ClinicRefused(gettext("An Enterprise clinic needs an account manager."), "account_manager")
    return name


@in_english  # for the audit trail, written in one language
def _describe(clinic: Clinic, manager: User | None) -> str:
    return f"{clinic.name}; tier {Tier(clinic.tier).label}; account manager {manager.email if manager else 'none'}"


def create_clinic(name: str, tier: int, manager: User | None, actor: User) -> Clinic:
    name = _check(name, tier, manager)
    with database.atomic():
        clinic = Clinic.create(name=name, tier=tier, account_manager=manager.id if manager else None)
        audit.record("clinic_created", clinic, detail=_describe(clinic, manager), actor=actor)
    return clinic


def update_clinic(clinic: Clinic, name: str, tier: int, manager: User | None, actor: User) -> bool:
    """Rename, change tier or account manager; returns whether anything changed. Tickets keep the
    tier they were filed with (it ordered the queue when they came in); new ones get the new tier."""
    name = _check(name, tier, manager, clinic.id)
    before = _describe(clinic, User.get_or_none(User.id == clinic.account_manager_id)
                       if clinic.account_manager_id else None)
    manager_id = manager.id if manager else None
    if (name, tier, manager_id) == (clinic.name, clinic.tier, clinic.account_manager_id):
        return False
    with database.atomic():
        clinic.name, clinic.tier, clinic.account_manager = name, tier, manager_id
        clinic.save()
        audit.record("clinic_updated", clinic, detail=f"{before} -> {_describe(clinic, manager)}", actor=actor)
    return True


def add_member(clinic: Clinic, email: str, actor: User) -> User:
    user = User.by_email(normalize_email(email))
    if user is None:
        raise ClinicRefused(gettext("No user with the address %(email)s.", email=email.strip()), "email")
    if user.role != Role.CLINICIAN.value:
        raise ClinicRefused(
            gettext("%(email)s is not a clinician; only clinicians belong to clinics.", email=user.email), "email"
        )
    current = ClinicMember.get_or_none(ClinicMember.user == user.id)
    if current is not None:
        where = gettext("this clinic") if current.clinic_id == clinic.id else current.clinic.name
        raise ClinicRefused(
            gettext(
                "%(email)s already belongs to %(clinic)s. Remove them there first.", email=user.email, clinic=where
            ),
            "email",
        )
    with database.atomic():
        try:
            # The primary key on the user is what really keeps one clinic per clinician, also
            # against two admins adding the same person at once.
            ClinicMember.insert(user=user.id, clinic=clinic.id).execute()
        except pw.IntegrityError:
            raise ClinicRefused(gettext("%(email)s already belongs to a clinic.", email=user.email), "email") from None
        audit.record("clinic_member_added", clinic, detail=user.email, actor=actor)
    return user


def remove_member(clinic: Clinic, user_id: int, actor: User) -> User | None:
    """Returns the user removed, or None when they were not a member of this clinic."""
    user = User.get_or_none(User.id == user_id)
    if user is None:
        return None
    with database.atomic():
        removed = (ClinicMember.delete()
                   .where((ClinicMember.user == user.id) & (ClinicMember.clinic == clinic.id)).execute())
        if not removed:
            return None
        audit.record("clinic_member_removed", clinic, detail=user.email, actor=actor)
    return user
