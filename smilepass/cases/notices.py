"""What a shipment change tells the treating clinician (by mail, if their choice allows). No patient
name or birth date: the case number identifies the case."""
from ..i18n import in_english
from ..models import Case, OutboxMail, Shipment, ShipmentState, User
from ..notifications.outbox import absolute_url, notify
from .eta import estimate

SHIPMENT_CHANGES = {
    "created": "A new shipment was created and is In Production.",
    "advanced": "The shipment is now {state}.",
    "carrier_eta": "The carrier's delivery date changed.",
    "reopened": "An administrator took the shipment back from Delivered to In Transit.",
}


@in_english
def shipment_changed(shipment: Shipment, actor: User | None, change: str) -> OutboxMail | None:
    """Tell the case's treating clinician about a shipment change (see SHIPMENT_CHANGES)."""
    case = Case.select(Case.id, Case.case_number, Case.clinician).where(Case.id == shipment.case_id).get()
    clinician = User.get_by_id(case.clinician_id)
    state = ShipmentState(shipment.state)

    def compose():
        return f"Case {case.case_number}: shipment {state.label}", _shipment_body(shipment, case, state, change)
    return notify("shipment_updates", clinician, compose, actor)


def _shipment_body(shipment: Shipment, case: Case, state: ShipmentState, change: str) -> str:
    lines = [
        f"Shipment update for case {case.case_number}.",
        "",
        SHIPMENT_CHANGES[change].format(state=state.label),
        "",
        f"Phases: {shipment.phases}",
        f"State: {state.label}",
    ]
    if shipment.carrier:
        lines += [f"Carrier: {shipment.carrier}", f"Tracking number: {shipment.tracking_number}"]
    if state is ShipmentState.DELIVERED and shipment.delivered_at:
        lines.append(f"Delivered: {shipment.delivered_at:%Y-%m-%d}")
    else:
        kind, eta = estimate(shipment)
        if kind == "carrier":
            lines.append(f"Expected delivery: {eta:%Y-%m-%d} (carrier's date)")
        else:
            lines.append(f"Expected delivery: between {eta[0]:%Y-%m-%d} and {eta[1]:%Y-%m-%d} (estimate)")
    lines += ["", f"Case page (sign-in needed): {absolute_url('cases.detail', case_id=case.id)}"]
    return "\n".join(lines)
