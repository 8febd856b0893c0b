"""People and their clinics: users, roles, the escalation path, tiers, sign-in throttles, reset links and
per-user preferences."""
import enum

import peewee as pw

from ..db import prepared
from ..i18n import lazy_gettext
from .base import BaseModel, utcnow


class Role(str, enum.Enum):
    CLINICIAN = "clinician"
    SUPPORT = "support"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return str(ROLE_LABELS[self.value])


def role_label(role: str) -> str:
    """A stored role's display name; an unknown one shows as stored."""
    return str(ROLE_LABELS.get(role, role))


class User(BaseModel):
    email = pw.CharField(max_length=254, unique=True)
    name = pw.CharField(max_length=120, default="")
    role = pw.CharField(max_length=20, default=Role.CLINICIAN.value, index=True)
    password_hash = pw.CharField(max_length=255)
    # Changes whenever the password changes; part of the login session id, so that every other
    # session ends with it.
    session_stamp = pw.CharField(max_length=64)
    is_active = pw.BooleanField(default=True)
    ticket_sort = pw.CharField(max_length=20, default="-date")
    # A step on the escalation path (EscalationRole), assigned by admins; "" for none.
    escalation_role = pw.CharField(max_length=20, default="", index=True)
    # The UI language chosen under My Account → Language (a key of i18n.LANGUAGES); "" follows the
    # browser's Accept-Language.
    language = pw.CharField(max_length=10, default="")
    # Set when an admin gave the account a temporary password: the next sign-in leads to Password
    # until the person has chosen their own.
    password_change_required = pw.BooleanField(default=False)
    created_at = pw.DateTimeField(default=utcnow)
    last_login_at = pw.DateTimeField(null=True)

    # flask-login protocol
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_stamp}"

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.SUPPORT.value, Role.ADMIN.value)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value

    def holds(self, *roles) -> bool:
        """Whether the user holds one of these roles: an account Role, or a step of the escalation path
        (EscalationRole), which only staff hold."""
        return any(self.is_staff and self.escalation_role == role.value if isinstance(role, EscalationRole)
                   else self.role == role.value for role in roles)

    @property
    def display_name(self) -> str:
        return self.name or self.email

    @classmethod
    def get_visible(cls, user_id: int, viewer):
        """An account by id: admins see every account, anyone else only their own."""
        return cls.get_if_allowed(viewer.is_admin or viewer.id == user_id, user_id)

    @classmethod
    def by_email(cls, email: str):
        return cls.get_or_none(cls.email == normalize_email(email))

    @classmethod
    def holding(cls, role) -> list:
        """Active staff who hold this step of the escalation path (an EscalationRole, or None for nobody), by id."""
        if role is None:
            return []
        return list(cls.select().where((cls.escalation_role == role.value) & (cls.is_active == True)  # noqa: E712
                                       & (cls.role != Role.CLINICIAN.value)).order_by(cls.id))


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


class EscalationRole(str, enum.Enum):
    """The escalation path, in order: level 1 is the supervisor, level 3 the operations manager."""
    SUPERVISOR = "supervisor"
    LIAISON = "liaison"
    OPERATIONS = "operations"

    @property
    def label(self) -> str:
        return str(ESCALATION_ROLE_LABELS[self.value])

    @property
    def level(self) -> int:
        return list(EscalationRole).index(self) + 1

    @classmethod
    def for_level(cls, level: int):
        path = list(cls)
        return path[level - 1] if 1 <= level <= len(path) else None


class Tier(enum.IntEnum):
    """A clinic's support plan. Higher tiers' tickets come first in the staff queue."""
    STANDARD = 0
    PRO = 1
    ENTERPRISE = 2

    @property
    def label(self) -> str:
        return str(TIER_LABELS[self.value])


# Display names, translated when shown (lazy_gettext): what is stored is the value.
ROLE_LABELS = {"clinician": lazy_gettext("Clinician"), "support": lazy_gettext("Support"),
               "admin": lazy_gettext("Admin")}
ESCALATION_ROLE_LABELS = {"supervisor": lazy_gettext("Support supervisor"), "liaison": lazy_gettext("Clinical liaison"),
                          "operations": lazy_gettext("Operations manager")}
TIER_LABELS = {0: lazy_gettext("Standard"), 1: lazy_gettext("Pro (Priority Support)"), 2: lazy_gettext("Enterprise")}


class Clinic(BaseModel):
    name = pw.CharField(max_length=120, unique=True)
    tier = pw.SmallIntegerField(default=Tier.STANDARD.value)
    # Enterprise: new tickets are assigned to this person, who also handles their escalations.
    account_manager = pw.ForeignKeyField(User, null=True, backref="managed_clinics", on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)

    @property
    def tier_enum(self) -> Tier:
        return Tier(self.tier)

    @classmethod
    def get_visible(cls, clinic_id: int, viewer: User):
        """Clinics are managed by admins: only they open one by id."""
        return cls.get_if_allowed(viewer.is_admin, clinic_id)


class ClinicMember(BaseModel):
    """Which clinic a clinician works for (at most one)."""
    user = pw.ForeignKeyField(User, primary_key=True, backref="membership", on_delete="CASCADE")
    clinic = pw.ForeignKeyField(Clinic, backref="members", on_delete="CASCADE")


class LoginThrottle(BaseModel):
    """Failed sign-ins per email address, known or not, so that a lock says nothing about
    whether the account exists."""
    email = pw.CharField(max_length=254, unique=True)
    failures = pw.IntegerField(default=0)
    locked_until = pw.DateTimeField(null=True)
    updated_at = pw.DateTimeField(default=utcnow)


class PasswordReset(BaseModel):
    user = pw.ForeignKeyField(User, backref="resets", on_delete="CASCADE")
    token_hash = pw.CharField(max_length=64, unique=True)
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField()
    used_at = pw.DateTimeField(null=True)



class UserSession(BaseModel):
    """One signed-in browser. The cookie carries a random key; only its hash is kept here, so the table
    cannot be used to sign in. Deleting the row ends the session, whatever the cookie says."""
    user = pw.ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    key_hash = pw.CharField(max_length=64, unique=True)
    created_at = pw.DateTimeField(default=utcnow)
    # Written at most once a minute (see sessions.SEEN_RESOLUTION); the idle limit is measured from it.
    last_seen_at = pw.DateTimeField(default=utcnow)
    user_agent = pw.CharField(max_length=255, default="")
    address = pw.CharField(max_length=64, default="")
    # "" until this session passed the second step of sign-in, then the factor it used (see twofa).
    second_factor = pw.CharField(max_length=20, default="")


class UserPreference(BaseModel):
    user = pw.ForeignKeyField(User, on_delete="CASCADE")
    key = pw.CharField(max_length=40)
    value = pw.CharField(max_length=200)

    class Meta:
        primary_key = pw.CompositeKey("user", "key")

    @classmethod
    def get_value(cls, user: User, key: str, default=None):
        # Read on every case list view: the SQL is built once (see db.prepared).
        rows = prepared("user-preference", lambda p: cls.select(cls.value).where(
            (cls.user == p.user) & (cls.key == p.name)), raw_rows=True, user=user.id, name=key)
        return rows[0][0] if rows else default

    @classmethod
    def set_value(cls, user: User, key: str, value: str) -> None:
        (cls.insert(user=user.id, key=key, value=value)
         .on_conflict(conflict_target=[cls.user, cls.key], update={cls.value: value})
         .execute())
