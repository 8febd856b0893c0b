"""What a shipment change tells the treating clinician (by mail, if their choice allows), in their
language (notify() writes each mail in its recipient's). No patient name or birth date: the case number
identifies the case."""
from ..i18n import fast_gettext as gettext
from ..i18n import in_english, lazy_gettext
from ..models import Case, OutboxMail, Shipment, ShipmentState, User
from ..notifications.outbox import absolute_url, notify
from .eta import estimate

SHIPMENT_CHANGES = {
    "created": lazy_gettext("A new shipment was created and is In Production."),
    "advanced": "",  # "The shipment is now <state>." (_change_line)
    "carrier_eta": lazy_gettext("The carrier's delivery date changed."),
    "reopened": lazy_gettext("An administrator took the shipment back from Delivered to In Transit."),
}


@in_english
def shipment_changed(shipment: Shipment, actor: User | None, change: str) -> OutboxMail | None:
    """Tell the case's treating clinician about a shipment change (see SHIPMENT_CHANGES)."""
    case = Case.select(Case.id, Case.case_number, Case.clinician).where(Case.id == shipment.case_id).get()
    clinician = User.get_by_id(case.clinician_id)
    state = ShipmentState(shipment.state)

    def compose():
        return (gettext("Case %(number)s: shipment %(state)s", number=case.case_number, state=state.label),
                _shipment_body(shipment, case, state, change))
    return notify("shipment_updates", clinician, compose, actor)


def _change_line(change: str, state: ShipmentState) -> str:
    if change == "advanced":
        return gettext("The shipment is now %(state)s.", state=state.label)
    return str(SHIPMENT_CHANGES[change])


def _shipment_body(shipment: Shipment, case: Case, state: ShipmentState, change: str) -> str:
    lines = [
        gettext("Shipment update for case %(number)s.", number=case.case_number),
        "",
        _change_line(change, state),
        "",
        gettext("Phases: %(phases)s", phases=shipment.phases),
        gettext("State: %(state)s", state=state.label),
    ]
    if shipment.carrier:
        lines += [gettext("Carrier: %(carrier)s", carrier=shipment.carrier),
                  gettext("Tracking number: %(number)s", number=shipment.tracking_number)]
    if state is ShipmentState.DELIVERED and shipment.delivered_at:
        lines.append(gettext("Delivered: %(date)s", date=f"{shipment.delivered_at:%Y-%m-%d}"))
    else:
        kind, eta = estimate(shipment)
        if kind == "carrier":
            lines.append(gettext("Expected delivery: %(date)s (carrier's date)", date=f"{eta:%Y-%m-%d}"))
        else:
            lines.append(gettext("Expected delivery: between %(start)s and %(end)s (estimate)",
                                 start=f"{eta[0]:%Y-%m-%d}", end=f"{eta[1]:%Y-%m-%d}"))
    lines += ["", gettext("Case page (sign-in needed): %(link)s", link=absolute_url('cases.detail', case_id=case.id))]
    return "\n".join(lines)
