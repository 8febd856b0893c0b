"""The figures on the Practice Insights page: each a titled table of numbers (shown under its chart
and downloadable as CSV) and the chart drawn from it. Metrics are computed once per request and only
when a figure asks for them, so a CSV download runs only its own queries."""
from dataclasses import dataclass
from functools import cached_property

from flask_babel import format_date, format_decimal, gettext, lazy_gettext, ngettext

from ..models import RESCAN_REASONS, EscalationRole, ShipmentState, Status, category_label
from . import charts, metrics
from .charts import Series


@dataclass
class Figure:
    key: str  # its CSV is /insights/<key>.csv
    title: str
    note: str  # what is counted, in one sentence
    columns: list[str]
    rows: list[list]  # label first, then numbers; the CSV and the table under the chart
    chart: charts.Chart | None


class Numbers:
    """The metrics for one scope, each queried at most once."""

    def __init__(self, scope: metrics.Scope):
        self.scope = scope

    @cached_property
    def weeks(self):
        return metrics.tickets_per_week(self.scope)

    @cached_property
    def response(self):
        return metrics.first_response_times(self.scope)

    @cached_property
    def resolution(self):
        return metrics.resolution_times(self.scope)

    @cached_property
    def backlog(self):
        return metrics.backlog(self.scope)

    @property
    def backlog_status(self):
        return metrics.backlog_by_status(self.backlog)

    @property
    def backlog_category(self):
        return metrics.backlog_by_category(self.backlog)

    @cached_property
    def escalations(self):
        return metrics.escalations(self.scope)

    @cached_property
    def scans(self):
        return metrics.scan_outcomes(self.scope)

    @cached_property
    def defects(self):
        return metrics.scan_defects(self.scope)

    @cached_property
    def cases(self):
        return metrics.cases_by_state(self.scope)

    @cached_property
    def delivery(self):
        return metrics.production_to_delivery(self.scope)

    @cached_property
    def rescans_by_clinic(self):
        return metrics.rescan_rates(self.scope, by_clinic=True)

    @cached_property
    def rescans_by_clinician(self):
        return metrics.rescan_rates(self.scope, by_clinic=False)

    @cached_property
    def rescan_reasons(self):
        return metrics.rescan_reasons(self.scope)

    @cached_property
    def rescan_wait(self):
        return metrics.rescan_wait(self.scope)


DEFECT_LABELS = {
    "holes_filled": lazy_gettext("Small holes (filled)"),
    "holes_left_open": lazy_gettext("Holes too large to fill"),
    "fragments_removed": lazy_gettext("Floating debris"),
    "duplicates_removed": lazy_gettext("Duplicate triangles"),
    "degenerate_removed": lazy_gettext("Degenerate triangles"),
    "non_manifold_removed": lazy_gettext("Non-manifold edges"),
    "flipped_triangles": lazy_gettext("Inverted triangles"),
    "welded_vertices": lazy_gettext("Cracks (unwelded vertices)"),
}
OUTCOME_LABELS = {
    "uploaded": lazy_gettext("Uploaded"),
    "ready": lazy_gettext("Ready as sent"),
    "repaired": lazy_gettext("Repaired"),
    "check": lazy_gettext("To check (several bodies)"),
    "needs_rescan": lazy_gettext("Needs a rescan"),
    "failed": lazy_gettext("Repair failed"),
    "in_progress": lazy_gettext("Still being repaired"),
}
OUTCOME_COLOURS = {"uploaded": charts.BRAND, "ready": charts.OK, "repaired": charts.BRAND,
                   "check": charts.WARN,
                   "needs_rescan": charts.WARN, "failed": charts.DANGER, "in_progress": charts.MUTED}


def hours(minutes) -> str:
    """Business minutes for people: 45 min, 3.5 h."""
    if minutes is None:
        return "–"
    if minutes < 60:
        return gettext("%(n)s min", n=int(minutes))
    return gettext("%(n)s h", n=format_decimal(round(minutes / 60, 1)))


def count(n) -> str:
    return format_decimal(n)


def day_count(value) -> str:
    # A fraction of a day reads plural in English and German ("1.5 days", "1,5 Tage"); the plural
    # rule is given a whole number, so only exactly 1 picks the singular.
    plural_of = int(value) if float(value).is_integer() else 2
    return ngettext("%(n)s day", "%(n)s days", plural_of, n=format_decimal(value))


def week_label(day) -> str:
    """An axis label under a week's column: "02 Mar", "02 Mär" in German."""
    return format_date(day, "dd MMM")


def percent(value) -> str:
    return "–" if value is None else gettext("%(n)s %%", n=format_decimal(round(value, 1)))


def _case_state_label(state: str) -> str:
    return ShipmentState(state).label if state else gettext("No shipment yet")


def tickets(n: Numbers) -> Figure:
    weeks = n.weeks
    opened, resolved = gettext("Opened"), gettext("Resolved")
    chart = charts.columns(
        [week_label(w.week) for w in weeks],
        [gettext("Week of %(day)s", day=w.week.isoformat()) for w in weeks],
        [Series(opened, [w.opened for w in weeks], charts.BRAND),
         Series(resolved, [w.resolved for w in weeks], charts.OK)], fmt=count, width=charts.WIDE)
    return Figure("tickets", gettext("Tickets opened and resolved per week"),
                  gettext("Weeks start on Monday (UTC); a ticket counts as resolved in the week it was last resolved."),
                  [gettext("Week starting"), opened, resolved],
                  [[w.week.isoformat(), w.opened, w.resolved] for w in weeks], chart)


def times(n: Numbers) -> Figure:
    measures = [(gettext("First response"), n.response), (gettext("Resolution"), n.resolution)]
    median, p90 = gettext("Median"), gettext("90th percentile")
    chart = charts.bars([label for label, _ in measures],
                        [Series(median, [s.median for _, s in measures], charts.BRAND),
                         Series(p90, [s.p90 for _, s in measures], charts.WARN)], fmt=hours)
    return Figure("times", gettext("First-response and resolution times"),
                  gettext("Business minutes, pauses excluded, of tickets first answered (or resolved) in the range. "
                          "Percentiles are nearest-rank: the 90th percentile is the time within which 90 percent of "
                          "those tickets got there; the median is the lower middle value."),
                  [gettext("Measure"), gettext("Tickets"), gettext("Median (business minutes)"),
                   gettext("90th percentile (business minutes)")],
                  [[label, s.count, s.median, s.p90] for label, s in measures], chart)


def sla(n: Numbers) -> Figure:
    targets = [(gettext("First response"), n.response), (gettext("Resolution"), n.resolution)]
    chart = charts.bars([label for label, _ in targets],
                        [Series(gettext("On time"), [s.compliance for _, s in targets], charts.OK)],
                        fmt=percent, maximum=100)
    return Figure("sla", gettext("SLA compliance"),
                  gettext("Share of the tickets first answered (or resolved) in the range that met their target."),
                  [gettext("Target"), gettext("Tickets"), gettext("On time"), gettext("Missed"), gettext("On time %")],
                  [[label, s.count, s.on_time, s.breached, None if s.compliance is None else round(s.compliance, 1)]
                   for label, s in targets], chart)


def _counts(key: str, title: str, description: str, label_header: str, value_header: str, rows: list,
            colour: str = charts.BRAND) -> Figure:
    """A figure of one count per label: horizontal bars, and the same rows as its table and CSV."""
    chart = charts.bars([r[0] for r in rows], [Series(value_header, [r[1] for r in rows], colour)], fmt=count)
    return Figure(key, title, description, [label_header, value_header], rows, chart)


def backlog_status(n: Numbers) -> Figure:
    return _counts("backlog-status", gettext("Backlog by status"),
                   gettext("Unresolved tickets today, whatever the date range."), gettext("Status"),
                   gettext("Tickets"), [[Status(status).label, total] for status, total in n.backlog_status.items()])


def backlog_category(n: Numbers) -> Figure:
    return _counts("backlog-category", gettext("Backlog by category"),
                   gettext("Unresolved tickets today, whatever the date range."), gettext("Category"),
                   gettext("Tickets"), [[category_label(category), total] for category, total in n.backlog_category])


def escalations(n: Numbers) -> Figure:
    steps = n.escalations
    labels = [str(EscalationRole.for_level(e.level).label) for e in steps]
    by_staff, automatic = gettext("By staff"), gettext("Missed target")
    chart = charts.bars(labels, [Series(by_staff, [e.by_staff for e in steps], charts.BRAND),
                                 Series(automatic, [e.automatic for e in steps], charts.DANGER)], fmt=count)
    return Figure("escalations", gettext("Escalations"),
                  gettext("Steps up the escalation path taken in the range: by staff, or automatically when a "
                          "target was missed."),
                  [gettext("Level"), by_staff, automatic, gettext("Total")],
                  [[label, e.by_staff, e.automatic, e.total] for label, e in zip(labels, steps, strict=True)], chart)


def scans(n: Numbers) -> Figure:
    figure = _counts("scans", gettext("Scans uploaded, repaired and needing a rescan"),
                     gettext("Scans uploaded in the range, by the outcome of their latest repair."),
                     gettext("Outcome"), gettext("Scans"),
                     [[str(OUTCOME_LABELS[key]), n.scans[key]] for key in metrics.SCAN_OUTCOMES])
    for rect, key in zip(figure.chart.rects, metrics.SCAN_OUTCOMES, strict=False):
        rect.fill = OUTCOME_COLOURS[key]
    return figure


def defects(n: Numbers) -> Figure:
    return _counts("defects", gettext("Most common scan defects"),
                   gettext("Of the scans uploaded in the range and checked, how many had each kind of defect."),
                   gettext("Defect"), gettext("Scans"),
                   [[str(DEFECT_LABELS[kind]), total] for kind, total in n.defects], charts.WARN)


def cases(n: Numbers) -> Figure:
    return _counts("cases", gettext("Cases by tracker state"),
                   gettext("All cases today, by the state of their newest shipment, whatever the date range."),
                   gettext("Tracker state"), gettext("Cases"),
                   [[_case_state_label(state), total] for state, total in n.cases.items()])


def delivery(n: Numbers) -> Figure:
    d = n.delivery
    days = gettext("Average days")
    chart = charts.columns(
        [week_label(w.week) for w in d.weeks],
        [gettext("Week of %(day)s", day=w.week.isoformat()) for w in d.weeks],
        [Series(days, [w.average_days for w in d.weeks], charts.BRAND)], fmt=day_count, width=charts.WIDE)
    return Figure("delivery", gettext("Production to delivery"),
                  gettext("Shipments delivered in the range, per week of delivery: the average days from In "
                          "Production to Delivered."),
                  [gettext("Week starting"), gettext("Shipments delivered"), days],
                  [[w.week.isoformat(), w.shipments, w.average_days] for w in d.weeks], chart)


def _rescan_rates(key: str, title: str, label_header: str, rates: list, nameless: str) -> Figure:
    rate = gettext("Rescan rate")
    labels = [r.name or nameless for r in rates]
    chart = charts.bars(labels, [Series(rate, [r.rate for r in rates], charts.WARN)], fmt=percent)
    return Figure(key, title,
                  gettext("Rescan requests in the range per 100 scans uploaded in the range, by the clinician the "
                          "request was made of."),
                  [label_header, gettext("Scans uploaded"), gettext("Rescan requests"), gettext("Rescan rate %")],
                  [[label, r.uploaded, r.requested, None if r.rate is None else round(r.rate, 1)]
                   for label, r in zip(labels, rates, strict=True)], chart)


def rescans_clinic(n: Numbers) -> Figure:
    return _rescan_rates("rescans-clinic", gettext("Rescan rate per clinic"), gettext("Clinic"),
                         n.rescans_by_clinic, gettext("No clinic"))


def rescans_clinician(n: Numbers) -> Figure:
    return _rescan_rates("rescans-clinician", gettext("Rescan rate per clinician"), gettext("Clinician"),
                         n.rescans_by_clinician, "–")


def rescan_reasons(n: Numbers) -> Figure:
    note = gettext("Rescan requests made in the range, by reason (a request may name several).")
    return _counts("rescan-reasons", gettext("Top rescan reasons"), note, gettext("Reason"), gettext("Requests"),
                   [[str(RESCAN_REASONS[code]), total] for code, total in n.rescan_reasons], charts.WARN)


def rescan_time(n: Numbers) -> Figure:
    wait = n.rescan_wait
    median, p90 = gettext("Median"), gettext("90th percentile")
    label = gettext("Request to new scan")
    chart = charts.bars([label], [Series(median, [wait.median], charts.BRAND), Series(p90, [wait.p90], charts.WARN)],
                        fmt=hours)
    return Figure("rescan-time", gettext("Time from rescan request to new scan"),
                  gettext("Requests answered by a new scan in the range: minutes from the request to the new scan "
                          "(around the clock). Nearest-rank percentiles, as for the ticket times."),
                  [gettext("Measure"), gettext("Requests"), gettext("Median (minutes)"),
                   gettext("90th percentile (minutes)")],
                  [[label, wait.count, wait.median, wait.p90]], chart)


FIGURES = {"tickets": tickets, "times": times, "sla": sla, "backlog-status": backlog_status,
           "backlog-category": backlog_category, "escalations": escalations, "scans": scans, "defects": defects,
           "cases": cases, "delivery": delivery, "rescans-clinic": rescans_clinic,
           "rescans-clinician": rescans_clinician, "rescan-reasons": rescan_reasons, "rescan-time": rescan_time}


def all_figures(numbers: Numbers) -> dict[str, Figure]:
    return {key: build(numbers) for key, build in FIGURES.items()}
