"""Chart geometry for server-rendered SVG. This module only computes shapes and their positions;
templates/insights/_chart.html draws them, so every text goes through the template's escaping.

Two kinds: vertical grouped columns (a value per week) and horizontal grouped bars (a value per
label). Coordinates are in the SVG's own units; the SVG scales to its box through its viewBox."""
import math
from dataclasses import dataclass, field

# The app's palette (static/css/app.css): brand teal, ok green, warning amber, danger red, muted slate.
BRAND = "#0f7a8a"
OK = "#1a7f4b"
WARN = "#b7791f"
DANGER = "#b42318"
MUTED = "#8794a5"
SERIES_COLOURS = [BRAND, WARN, OK, DANGER, MUTED]

WIDTH = 640
WIDE = 1240  # a chart across the whole page


@dataclass
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str
    tip: str  # the SVG <title>: shown on hover, read by screen readers


@dataclass
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"
    kind: str = "label"  # CSS class chart-<kind>: label, value, axis


@dataclass
class Line:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass
class Series:
    name: str
    values: list
    colour: str


@dataclass
class Chart:
    width: float
    height: float
    rects: list[Rect] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (name, colour); empty for one series


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is at least value (an axis maximum people can read)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _r(value: float) -> float:
    return round(value, 1)


def columns(labels: list[str], tips: list[str], series: list[Series], fmt=str, height: float = 240,
            max_labels: int = 14, width: float = WIDTH) -> Chart:
    """Vertical grouped columns, one group per label (e.g. per week), with a y axis of three ticks.
    `tips` names each group in the tooltips; at most max_labels labels are written under the axis."""
    left, right, top, bottom = 44, 8, 12, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = nice_ceiling(max((v or 0 for s in series for v in s.values), default=0))
    chart = Chart(width, height, legend=[(s.name, s.colour) for s in series] if len(series) > 1 else [])
    for i in range(3):
        value = top_value * i / 2
        y = top + plot_h - plot_h * i / 2
        chart.lines.append(Line(left, _r(y), width - right, _r(y)))
        chart.texts.append(Text(left - 6, _r(y + 4), fmt(int(value) if value == int(value) else value), "end", "axis"))
    n = max(len(labels), 1)
    group_w = plot_w / n
    bar_w = group_w * 0.78 / max(len(series), 1)
    every = max(1, math.ceil(len(labels) / max_labels))
    for g, label in enumerate(labels):
        x0 = left + g * group_w + group_w * 0.11
        for k, s in enumerate(series):
            value = s.values[g]
            h = plot_h * (value or 0) / top_value
            chart.rects.append(Rect(_r(x0 + k * bar_w), _r(top + plot_h - h), _r(max(bar_w - 1, 1)), _r(h), s.colour,
                                    f"{tips[g]} · {s.name}: {'–' if value is None else fmt(value)}"))
        if g % every == 0:
            chart.texts.append(Text(_r(left + g * group_w + group_w / 2), height - 8, label, "middle", "axis"))
    return chart


def bars(labels: list[str], series: list[Series], fmt=str, maximum: float | None = None) -> Chart:
    """Horizontal grouped bars, one group per label, the value written after each bar. `maximum`
    fixes the scale (e.g. 100 for percentages); else the largest value fills the width."""
    label_w, value_w, bar_h, gap, pad = 190, 64, 16, 12, 6
    plot_w = WIDTH - label_w - value_w
    top_value = maximum or max((v or 0 for s in series for v in s.values), default=0) or 1
    group_h = bar_h * len(series) + gap
    height = pad * 2 + group_h * len(labels) - gap if labels else 40
    chart = Chart(WIDTH, height, legend=[(s.name, s.colour) for s in series] if len(series) > 1 else [])
    chart.lines.append(Line(label_w, 0, label_w, height))
    for g, label in enumerate(labels):
        y0 = pad + g * group_h
        chart.texts.append(Text(label_w - 8, _r(y0 + bar_h * len(series) / 2 + 4), label, "end", "label"))
        for k, s in enumerate(series):
            value = s.values[g]
            w = plot_w * (value or 0) / top_value
            y = y0 + k * bar_h
            shown = "–" if value is None else fmt(value)
            chart.rects.append(Rect(label_w, _r(y + 1), _r(w), bar_h - 2, s.colour, f"{label} · {s.name}: {shown}"))
            chart.texts.append(Text(_r(label_w + w + 6), _r(y + bar_h - 4), shown, "start", "value"))
    return chart
