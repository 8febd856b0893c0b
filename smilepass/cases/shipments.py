"""Shipment tracker rules: In Production → In Transit → Delivered, one step at a time, each step's
time recorded, every change audited. Only an admin, with a written reason, takes a tracker back
from Delivered. A tracker stays in the active views until 30 days after delivery."""
import datetime as dt

from flask_babel import gettext

from .. import audit
from ..auth.tokens import new_token, token_hash
from ..db import database
from ..models import Case, PatientLink, Shipment, ShipmentState, User, utcnow
from ..notifications.outbox import hand_over
from ..search import index as search_index
from .notices import shipment_changed

ACTIVE_DAYS = 30
CARRIER_MAX = 60
TRACKING_MAX = 80
PHASES_MAX = 200


class ShipmentRefused(Exception):
    """A change the rules do not allow; the message is for the user."""


def active_since(now: dt.datetime | None = None) -> dt.datetime:
    return (now or utcnow()) - dt.timedelta(days=ACTIVE_DAYS)


def active_condition(now: dt.datetime | None = None):
    """Not delivered, or delivered less than 30 days ago."""
    return (Shipment.state != ShipmentState.DELIVERED.value) | (Shipment.delivered_at > active_since(now))


def is_active(shipment: Shipment, now: dt.datetime | None = None) -> bool:
    if shipment.state != ShipmentState.DELIVERED.value:
        return True
    return shipment.delivered_at is not None and shipment.delivered_at > active_since(now)


def refresh_case_state(case_id: int) -> None:
    """Keep Case.latest_state equal to the state of the case's newest shipment."""
    newest = Shipment.select(Shipment.state).where(Shipment.case == case_id).order_by(Shipment.id.desc()).first()
    Case.update(latest_state=newest.state if newest else "").where(Case.id == case_id).execute()


def create_shipment(case: Case, actor: User, phases: str, target_ship_date: dt.date) -> Shipment:
    phases = (phases or "").strip()
    if not phases:
        raise ShipmentRefused(gettext("Say which phases ship in this tracker, e.g. Aligners 1–12."))
    if len(phases) > PHASES_MAX:
        raise ShipmentRefused(gettext("Phases may be at most %(count)s characters.", count=PHASES_MAX))
    if target_ship_date is None:
        raise ShipmentRefused(gettext("Give a target shipping date."))
    with database.atomic():
        shipment = Shipment.create(case=case.id, phases=phases, target_ship_date=target_ship_date)
        refresh_case_state(case.id)
        audit.record("shipment_create", shipment, f"case #{case.id}", actor=actor)
        shipment_changed(shipment, actor, "created")
    hand_over()
    return shipment


def _clean(value: str | None, too_long: str, limit: int) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise ShipmentRefused(too_long)
    return value


def advance(shipment: Shipment, actor: User, to_state: str | None = None, carrier: str | None = None,
            tracking_number: str | None = None, carrier_eta: dt.date | None = None,
            at: dt.datetime | None = None) -> Shipment:
    """Move the tracker one step on. to_state, when given, must be that next step (a stale page
    asking for a step already taken is refused rather than skipping ahead)."""
    if not actor.is_staff:
        raise ShipmentRefused(gettext("Only the support team moves shipments."))
    current = shipment.state_enum
    target = current.next
    if target is None:
        raise ShipmentRefused(gettext("This shipment is already delivered."))
    if to_state is not None and to_state != target.value:
        raise ShipmentRefused(gettext("This shipment is %(state)s; the next step is %(next)s.", state=current.label,
                                      next=target.label))
    when = at or utcnow()
    with database.atomic():
        if target is ShipmentState.IN_TRANSIT:
            carrier = _clean(carrier, gettext("The carrier may be at most %(count)s characters.", count=CARRIER_MAX),
                             CARRIER_MAX)
            tracking_number = _clean(
                tracking_number,
                gettext("The tracking number may be at most %(count)s characters.", count=TRACKING_MAX),
                TRACKING_MAX,
            )
            if not carrier or not tracking_number:
                raise ShipmentRefused(gettext("In Transit needs the carrier and the tracking number."))
            shipment.carrier, shipment.tracking_number = carrier, tracking_number
            if carrier_eta is not None:
                shipment.carrier_eta = carrier_eta
            shipment.in_transit_at = when
        else:
            shipment.delivered_at = when
        shipment.state = target.value
        shipment.save()
        refresh_case_state(shipment.case_id)
        detail = f"{current.value} -> {target.value}"
        if target is ShipmentState.IN_TRANSIT:
            # The tracking number leads to the patient's address: the shipment keeps it, not the trail.
            detail += f"; carrier {shipment.carrier}, tracking number set"
        audit.record("shipment_advance", shipment, detail, actor=actor)
        search_index.reindex_cases([shipment.case_id], with_tickets=False)  # the tracking number
        shipment_changed(shipment, actor, "advanced")
    hand_over()
    return shipment


def set_carrier_eta(shipment: Shipment, actor: User, carrier_eta: dt.date | None) -> Shipment:
    """The carrier's delivery date replaces the estimated window (None goes back to the window)."""
    if not actor.is_staff:
        raise ShipmentRefused(gettext("Only the support team sets the carrier's date."))
    with database.atomic():
        shipment.carrier_eta = carrier_eta
        shipment.save(only=[Shipment.carrier_eta])
        audit.record("shipment_eta", shipment, f"carrier date {carrier_eta or 'cleared'}", actor=actor)
        shipment_changed(shipment, actor, "carrier_eta")
    hand_over()
    return shipment


def reopen(shipment: Shipment, actor: User, reason: str) -> Shipment:
    """Admin only: take a delivered tracker back to In Transit, with a written reason."""
    if not actor.is_admin:
        raise ShipmentRefused(gettext("Only an admin can take a shipment back from Delivered."))
    if shipment.state != ShipmentState.DELIVERED.value:
        raise ShipmentRefused(gettext("Only a delivered shipment can be taken back."))
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise ShipmentRefused(gettext("Write why the shipment goes back to In Transit."))
    with database.atomic():
        delivered_at = shipment.delivered_at
        shipment.state = ShipmentState.IN_TRANSIT.value
        shipment.delivered_at = None
        shipment.save()
        refresh_case_state(shipment.case_id)
        # The admin's reason is the only record of why, so it is kept, less anything naming the patient.
        reason = audit.without(reason, *audit.patient_identifiers(shipment.case))
        audit.record("shipment_reopen", shipment, f"delivered {delivered_at:%Y-%m-%d %H:%M} undone: {reason}",
                     actor=actor)
        shipment_changed(shipment, actor, "reopened")
    hand_over()
    return shipment


# Patient status links --------------------------------------------------------------------------

def create_link(shipment: Shipment, actor: User) -> tuple[PatientLink, str]:
    """A new link; the token (256 random bits) is returned once and only its hash is stored."""
    token, digest = new_token()
    with database.atomic():
        link = PatientLink.create(shipment=shipment.id, token_hash=digest, created_by=actor.id)
        audit.record("patient_link_create", link, f"shipment #{shipment.id}", actor=actor)
    return link, token


def revoke_link(link: PatientLink, actor: User) -> None:
    if link.revoked_at is None:
        with database.atomic():
            link.revoked_at = utcnow()
            link.save(only=[PatientLink.revoked_at])
            audit.record("patient_link_revoke", link, f"shipment #{link.shipment_id}", actor=actor)


def shipment_for_token(token: str, now: dt.datetime | None = None) -> Shipment | None:
    """The shipment a patient's token opens, or None when the token is unknown, revoked, or its
    shipment was delivered 30 or more days ago."""
    if not token or len(token) > 100:
        return None
    link = (PatientLink.select(PatientLink, Shipment).join(Shipment)
            .where((PatientLink.token_hash == token_hash(token)) & PatientLink.revoked_at.is_null())
            .first())
    if link is None or not is_active(link.shipment, now):
        return None
    return link.shipment


def visible_links(shipment: Shipment):
    return list(shipment.patient_links.where(PatientLink.revoked_at.is_null()).order_by(PatientLink.id))
