"""A patient's aligner case and its satellites: shipments (one tracker per shipment, which may carry
several phases), labels, patients' status links and the counts the database keeps for the lists."""
import enum

import peewee as pw

from ..i18n import lazy_gettext
from .accounts import User
from .base import BaseModel, utcnow

ARCHES = [
    ("both", lazy_gettext("Both arches")),
    ("upper", lazy_gettext("Upper arch")),
    ("lower", lazy_gettext("Lower arch")),
]
# Label colours come from a fixed palette; each has a CSS class `label-<name>` in cases.css.
COLOUR_LABELS = {"teal": lazy_gettext("Teal"), "blue": lazy_gettext("Blue"), "purple": lazy_gettext("Purple"),
                 "pink": lazy_gettext("Pink"), "red": lazy_gettext("Red"), "orange": lazy_gettext("Orange"),
                 "yellow": lazy_gettext("Yellow"), "green": lazy_gettext("Green"), "gray": lazy_gettext("Gray")}
PALETTE = list(COLOUR_LABELS)


def arches_label(arches: str) -> str:
    label = dict(ARCHES).get(arches)
    return str(label) if label is not None else arches.capitalize()


def colour_label(colour: str) -> str:
    label = COLOUR_LABELS.get(colour)
    return str(label) if label is not None else colour.capitalize()


class Case(BaseModel):
    """A patient's aligner case."""
    case_number = pw.CharField(max_length=40, unique=True)
    patient_name = pw.CharField(max_length=120)
    patient_dob = pw.DateField()
    clinic_patient_id = pw.CharField(max_length=60, default="")
    # The treating clinician owns the case: only they (and staff) see it.
    clinician = pw.ForeignKeyField(User, backref="cases", on_delete="RESTRICT")
    treatment_plan = pw.CharField(max_length=200, default="")
    arches = pw.CharField(max_length=8, default="both")
    notes = pw.TextField(default="")
    # The state of the case's newest shipment ("" when it has none), kept in step by shipments.py
    # so the list can sort, filter and count on it without a join.
    latest_state = pw.CharField(max_length=16, default="")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        # One index per sortable column, for staff (all cases) and for one clinician's cases.
        indexes = (
            (("created_at", "id"), False),
            (("patient_name", "id"), False),
            (("treatment_plan", "id"), False),
            (("latest_state", "id"), False),
            (("clinician", "created_at", "id"), False),
            (("clinician", "case_number"), False),
            (("clinician", "patient_name", "id"), False),
            (("clinician", "treatment_plan", "id"), False),
            (("clinician", "latest_state", "id"), False),
        )

    @classmethod
    def visible_to(cls, user: User):
        query = cls.select()
        return query if user.is_staff else query.where(cls.clinician == user.id)

    @classmethod
    def get_visible(cls, case_id: int, user: User):
        """The case if this user may see it, else None (callers answer 404 either way)."""
        return cls.visible_to(user).where(cls.id == case_id).first()


class ShipmentState(str, enum.Enum):
    IN_PRODUCTION = "in_production"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"

    @property
    def label(self) -> str:
        """In the current language; states are stored as their values."""
        return str(SHIPMENT_STATE_LABELS[self.value])

    @property
    def slug(self) -> str:
        return self.value.replace("_", "-")

    @property
    def next(self):
        order = list(ShipmentState)
        i = order.index(self)
        return order[i + 1] if i + 1 < len(order) else None


SHIPMENT_STATE_LABELS = {"in_production": lazy_gettext("In Production"), "in_transit": lazy_gettext("In Transit"),
                         "delivered": lazy_gettext("Delivered")}


class Shipment(BaseModel):
    case = pw.ForeignKeyField(Case, backref="shipments", on_delete="CASCADE")
    phases = pw.CharField(max_length=200)  # e.g. "Aligners 1–12": phases shipped together share one tracker
    state = pw.CharField(max_length=16, default=ShipmentState.IN_PRODUCTION.value)
    target_ship_date = pw.DateField()
    in_production_at = pw.DateTimeField(default=utcnow)
    in_transit_at = pw.DateTimeField(null=True)
    delivered_at = pw.DateTimeField(null=True)
    carrier = pw.CharField(max_length=60, default="")
    tracking_number = pw.CharField(max_length=80, default="")
    carrier_eta = pw.DateField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    # The case's clinician, copied here by database triggers (migration 0008) on insert and whenever
    # the case changes hands, so one clinician's Shipments view walks an index instead of joining
    # through all their cases. Never set by application code.
    clinician = pw.ForeignKeyField(User, null=True, backref="+", on_delete="CASCADE")

    class Meta:
        # The Shipments view lists by target date, all states or one; active delivered ones by date;
        # a clinician's own by target date, counted by state.
        indexes = (
            (("case", "id"), False),
            (("state", "id"), False),
            (("delivered_at",), False),
            (("target_ship_date", "id"), False),
            (("state", "target_ship_date", "id"), False),
            (("clinician", "target_ship_date", "id"), False),
            (("clinician", "state", "delivered_at"), False),
        )

    @property
    def state_enum(self) -> ShipmentState:
        return ShipmentState(self.state)

    @classmethod
    def visible_to(cls, user: User):
        query = cls.select(cls, Case).join(Case)
        return query if user.is_staff else query.where(Case.clinician == user.id)

    @classmethod
    def get_visible(cls, shipment_id: int, user: User):
        return cls.visible_to(user).where(cls.id == shipment_id).first()


class Label(BaseModel):
    """A coloured tag of one user's own: only its owner sees, attaches and filters by it."""
    owner = pw.ForeignKeyField(User, backref="labels", on_delete="CASCADE")
    name = pw.CharField(max_length=40)
    color = pw.CharField(max_length=16, default=PALETTE[0])
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("owner", "name"), True),)

    @classmethod
    def get_visible(cls, label_id: int, user: User):
        """The label if it is this user's own, else None."""
        return cls.get_or_none((cls.id == label_id) & (cls.owner == user.id))


class CaseLabel(BaseModel):
    case = pw.ForeignKeyField(Case, on_delete="CASCADE")
    label = pw.ForeignKeyField(Label, backref="case_links", on_delete="CASCADE")

    class Meta:
        primary_key = pw.CompositeKey("case", "label")
        indexes = ((("label", "case"), False),)


class PatientLink(BaseModel):
    """A private status link for a patient. Only the SHA-256 of the token is kept; the token
    itself is shown once to whoever made the link."""
    shipment = pw.ForeignKeyField(Shipment, backref="patient_links", on_delete="CASCADE")
    token_hash = pw.CharField(max_length=64, unique=True)
    created_by = pw.ForeignKeyField(User, on_delete="RESTRICT")
    created_at = pw.DateTimeField(default=utcnow)
    revoked_at = pw.DateTimeField(null=True)

    @classmethod
    def get_visible(cls, link_id: int, user: User):
        """The link if the user may see its shipment, else None."""
        link = cls.get_or_none(cls.id == link_id)
        if link is None or Shipment.get_visible(link.shipment_id, user) is None:
            return None
        return link


class CaseCount(BaseModel):
    """Cases per clinician and newest-shipment state, for the case list's quick filters.

    Kept by database triggers (migration 0006), not by application code, so that every write path —
    the web forms, bulk loads, imports, erasure, direct SQL — keeps it right."""
    clinician = pw.ForeignKeyField(User, on_delete="CASCADE")
    state = pw.CharField(max_length=16)
    n = pw.IntegerField(default=0)

    class Meta:
        primary_key = pw.CompositeKey("clinician", "state")


class ShipmentCount(BaseModel):
    """Shipments per state, clinic-wide, for the staff Shipments view. Kept by triggers like CaseCount."""
    state = pw.CharField(max_length=16, primary_key=True)
    n = pw.IntegerField(default=0)
