"""Is a replacement request inside the warranty window? The window counts calendar days from the
delivery of the aligner: delivered on day 0, still covered on day `window_days`, not the day after.
No Flask here; `delivery_date` reads the case's shipments."""
import datetime as dt
from dataclasses import dataclass

from flask_babel import gettext, ngettext

from ..models import Shipment
from ..service.sla import local_date

WARRANTY_CATEGORY = "Warranty & Replacement"


@dataclass(frozen=True)
class WarrantyCheck:
    delivered: dt.date | None
    window_days: int
    today: dt.date
    source: str = ""  # "request" (the clinician's date) or "shipment" (the case's last delivery)

    @property
    def known(self) -> bool:
        return self.delivered is not None

    @property
    def days_ago(self) -> int:
        return (self.today - self.delivered).days

    @property
    def until(self) -> dt.date:
        return self.delivered + dt.timedelta(days=self.window_days)

    @property
    def inside(self) -> bool:
        return self.known and self.days_ago <= self.window_days

    @property
    def summary(self) -> str:
        if not self.known:
            return gettext("No delivery date known")
        ago = (gettext("today") if self.days_ago == 0
               else ngettext("%(num)d day ago", "%(num)d days ago", self.days_ago))
        facts = dict(
            delivered=self.delivered.isoformat(), ago=ago, window=self.window_days, until=self.until.isoformat()
        )
        if self.inside:
            return gettext(
                "Inside warranty: delivered %(delivered)s, %(ago)s (window %(window)s days, until %(until)s)", **facts
            )
        return gettext("Outside warranty: delivered %(delivered)s, %(ago)s (window %(window)s days, ended %(until)s)",
                       **facts)


def check(delivered: dt.date | None, window_days: int, today: dt.date, source: str = "") -> WarrantyCheck:
    return WarrantyCheck(delivered, window_days, today, source)


def delivery_date(requested: dt.date | None, case_id: int | None) -> tuple[dt.date | None, str]:
    """The delivery the warranty counts from: the date the clinician gave on the request, else the
    case's most recent delivered shipment; with where it came from."""
    if requested is not None:
        return requested, "request"
    if case_id is None:
        return None, ""
    latest = (Shipment.select(Shipment.delivered_at)
              .where((Shipment.case == case_id) & Shipment.delivered_at.is_null(False))
              .order_by(Shipment.delivered_at.desc()).limit(1).scalar())
    if latest is None:
        return None, ""
    if isinstance(latest, str):  # SQLite text when read through scalar()
        latest = dt.datetime.fromisoformat(latest)
    return local_date(latest), "shipment"  # the day the clinic received it, as the case page shows
