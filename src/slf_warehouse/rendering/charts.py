"""Charts as inline SVG, drawn here from a table figure's rows: no plotting library.

Two kinds: ``bars`` (horizontal bars, a category per bar: amounts by funding source or district)
and ``columns`` (vertical columns, for a series over time: spending per quarter). Both have a
value axis with gridlines and tick labels in Danish number format ("0", "2,5", "5" with the unit,
"mio. kr.", as the axis title), the category labels, and each bar's value.

The SVG is plain text built from numbers rounded to 0.1 user unit, so the same rows give the same
bytes. Text is DejaVu Sans, the letter's font; label widths are computed from that font's advance
widths (below) so labels are placed without measuring at run time. The ``<title>`` holds the
chart's title and every value as text: WeasyPrint writes it as the figure's alternate text in the
tagged PDF, and a screen reader reads the numbers instead of the picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup, escape

from slf_warehouse.rendering import formatting as fmt

FONT = "DejaVu Sans"
FONT_SIZE = 7.5  # user units = pt: the SVG is drawn 1:1 in points
SMALL = 6.5
WIDTH = 420.0  # pt; the answer column is about 445 pt wide
BAR_COLOUR = "#003f7f"
NEGATIVE_COLOUR = "#b24a00"
GRID_COLOUR = "#d4d4d4"
AXIS_COLOUR = "#555555"
TEXT_COLOUR = "#1a1a1a"

# DejaVu Sans advance widths in em (from the font's hmtx table), for placing labels.
_WIDTHS: dict[float, str] = {
    0.275: "'",
    0.278: "ijl",
    0.295: "IJ",
    0.318: " ,.·",
    0.337: "/:;\\|",
    0.352: "f",
    0.361: "-",
    0.39: "()[]",
    0.392: "t",
    0.401: "!²",
    0.411: "r",
    0.46: '"',
    0.5: "*_`–",
    0.521: "s",
    0.525: "z",
    0.531: "?",
    0.55: "c",
    0.557: "L",
    0.575: "F",
    0.579: "k",
    0.592: "vxy",
    0.603: "P",
    0.611: "TY",
    0.612: "oø«»",
    0.613: "aå",
    0.615: "eé",
    0.632: "EÉ",
    0.634: "hnuü",
    0.635: "Sbdgpq",
    0.636: "$0123456789{}",
    0.656: "K",
    0.684: "AVÅ",
    0.685: "XZ",
    0.686: "B",
    0.695: "R",
    0.698: "C",
    0.732: "U",
    0.748: "N",
    0.752: "H",
    0.77: "D",
    0.775: "G",
    0.78: "&",
    0.787: "OQØ",
    0.818: "w",
    0.838: "#+<=>^~",
    0.863: "M",
    0.95: "%",
    0.974: "mÆ",
    0.982: "æ",
    0.989: "W",
    1.0: "@",
}
_CHAR_WIDTH = {ch: w for w, chars in _WIDTHS.items() for ch in chars}


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """How wide ``text`` is in DejaVu Sans at ``size`` pt, to place labels without measuring."""
    return sum(_CHAR_WIDTH.get(ch, 0.62) for ch in text) * size


def coordinate(x: float) -> str:
    """A coordinate as the SVG writes it: one decimal, no trailing ".0" noise, never "-0"."""
    text = f"{x:.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True)
class Point:
    """One bar or column: its label (one or two lines) and value."""

    label: tuple[str, ...]
    value: Decimal
    text: str  # the value as the letter writes it, for the alternate text
    name: str = ""  # the category in full ("2. kvt. 2022") for the alternate text; default the label


@dataclass(frozen=True)
class Scale:
    """How the value axis writes numbers: kroner in millions or whole, counts as they are."""

    divisor: Decimal
    title: str  # the axis title, e.g. "mio. kr."
    decimals: int

    def label(self, value: float) -> str:
        """A tick label."""
        return fmt.format_number(Decimal(repr(value)) / self.divisor, decimals=self.decimals)

    def column_label(self, value: Decimal) -> str:
        """A column's value in the axis unit: millions with one decimal ("1,9"), thousands whole."""
        return fmt.format_number(
            Decimal(value) / self.divisor, decimals=1 if self.divisor >= 1_000_000 else 0
        )


def _nice_step(span: float, ticks: int = 5) -> float:
    """A round tick step (1, 2, 2.5 or 5 × 10^k) giving about ``ticks`` intervals."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power: float = 10 ** math.floor(math.log10(raw))  # int ** int is typed Any (a negative power is a float)
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def _axis(values: list[Decimal], unit: str) -> tuple[float, float, float, Scale]:
    """Axis minimum, maximum and step (in the values' own unit) and its scale."""
    low = min([0.0, *(float(v) for v in values)])
    high = max([0.0, *(float(v) for v in values)])
    if high == low:
        high = low + 1
    step = _nice_step(high - low)
    low = math.floor(low / step) * step
    high = math.ceil(high / step) * step
    largest = max(abs(float(v)) for v in values) if values else 0.0
    if unit == "kr" and largest >= 10_000:
        divisor = 1_000_000 if largest >= 1_000_000 else 1_000
        step_in_unit = step / divisor
        decimals = next(
            d for d in (0, 1, 2, 3) if abs(step_in_unit * 10**d - round(step_in_unit * 10**d)) < 1e-9
        )
        scale = Scale(Decimal(divisor), "mio. kr." if divisor == 1_000_000 else "1.000 kr.", decimals)
    elif unit == "kr":
        scale = Scale(Decimal(1), "kr.", 0)
    else:
        scale = Scale(Decimal(1), "antal" if unit == "count" else "", 0 if step == int(step) else 1)
    return low, high, step, scale


def _ticks(low: float, high: float, step: float) -> list[float]:
    count = round((high - low) / step)
    return [low + i * step for i in range(count + 1)]


def svg_text(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    size: float = FONT_SIZE,
    colour: str = TEXT_COLOUR,
    weight: str | None = None,
) -> str:
    """A ``<text>`` element at (x, y), its text escaped."""
    extra = f' font-weight="{weight}"' if weight else ""
    return (
        f'<text x="{coordinate(x)}" y="{coordinate(y)}" text-anchor="{anchor}" '
        f'font-size="{coordinate(size)}" fill="{colour}"{extra}>{escape(text)}</text>'
    )


def _alt(title: str, points: list[Point]) -> str:
    values = "; ".join(f"{p.name or ' '.join(p.label)}: {p.text}" for p in points)
    if not values:
        return f"{title}. Ingen værdier."
    return f"{title}. {values}" + ("" if values.endswith(".") else ".")


def svg_line(x1: float, y1: float, x2: float, y2: float, colour: str, width: float) -> str:
    """A ``<line>`` element: a gridline or an axis."""
    return (
        f'<line x1="{coordinate(x1)}" y1="{coordinate(y1)}" x2="{coordinate(x2)}" y2="{coordinate(y2)}" '
        f'stroke="{colour}" stroke-width="{coordinate(width)}"/>'
    )


def svg_rect(x: float, y: float, width: float, height: float, fill: str) -> str:
    """A ``<rect>`` element: a bar, a column, or the white ground under a value."""
    return (
        f'<rect x="{coordinate(x)}" y="{coordinate(y)}" width="{coordinate(width)}" '
        f'height="{coordinate(height)}" fill="{fill}"/>'
    )


def svg_document(width: float, height: float, title: str, body: list[str]) -> Markup:
    """The chart's ``<svg>``, drawn 1:1 in points in the letters' font; ``title`` is its alternate
    text (every value as text, for a screen reader)."""
    w, h = coordinate(width), coordinate(height)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" role="img" '
        f'width="{w}pt" height="{h}pt" viewBox="0 0 {w} {h}" font-family="{FONT}, sans-serif">'
    )
    return Markup("\n".join([head, f"<title>{escape(title)}</title>", *body, "</svg>"]))


def bar_chart(title: str, points: list[Point], unit: str) -> Markup:
    """Horizontal bars, one per point, in the given order (top to bottom)."""
    low, high, step, scale = _axis([p.value for p in points], unit)
    bar, gap, top = 13.0, 7.0, 4.0
    line = FONT_SIZE * 1.2
    label_width = min(
        max((text_width(part) for p in points for part in p.label), default=0) + 8, WIDTH * 0.42
    )
    value_labels = [p.text for p in points]
    value_room = max((text_width(t, SMALL) for t in value_labels), default=0) + 6
    plot_left, plot_right = label_width, WIDTH - value_room
    rows = [max(bar, line * len(p.label)) for p in points]
    plot_bottom = top + sum(r + gap for r in rows)
    height = plot_bottom + 26

    def x_of(v: float) -> float:
        return plot_left + (v - low) / (high - low) * (plot_right - plot_left)

    body = []
    for t in _ticks(low, high, step):
        x = x_of(t)
        body.append(svg_line(x, top - 2, x, plot_bottom, GRID_COLOUR, 0.5))
        body.append(
            svg_text(x, plot_bottom + 9, scale.label(t), anchor="middle", size=SMALL, colour=AXIS_COLOUR)
        )
    body.append(
        svg_text(
            (plot_left + plot_right) / 2,
            plot_bottom + 21,
            scale.title,
            anchor="middle",
            size=SMALL,
            colour=AXIS_COLOUR,
        )
    )
    y = top
    zero = x_of(0.0)
    for p, row, value_text in zip(points, rows, value_labels, strict=True):
        v = float(p.value)
        x0, x1 = sorted((zero, x_of(v)))
        bar_y = y + (row - bar) / 2
        colour = BAR_COLOUR if v >= 0 else NEGATIVE_COLOUR
        body.append(svg_rect(x0, bar_y, max(x1 - x0, 0.4), bar, colour))
        first = y + row / 2 - (len(p.label) - 1) * line / 2 + FONT_SIZE * 0.35
        for i, part in enumerate(p.label):
            body.append(svg_text(plot_left - 5, first + i * line, part, anchor="end"))
        # on a white ground, so a gridline behind the value does not cross it
        body.append(
            svg_rect(
                x1 + 1.5,
                bar_y + bar / 2 - SMALL * 0.6,
                text_width(value_text, SMALL) + 3,
                SMALL * 1.2,
                "#ffffff",
            )
        )
        body.append(svg_text(x1 + 3, bar_y + bar / 2 + SMALL * 0.35, value_text, size=SMALL))
        y += row + gap
    body.append(svg_line(zero, top - 2, zero, plot_bottom, AXIS_COLOUR, 0.8))
    return svg_document(WIDTH, height, _alt(title, points), body)


def column_chart(title: str, points: list[Point], unit: str) -> Markup:
    """Vertical columns, one per point, left to right; labels of up to two lines below."""
    low, high, step, scale = _axis([p.value for p in points], unit)
    tick_labels = [scale.label(t) for t in _ticks(low, high, step)]
    plot_left = max(text_width(t, SMALL) for t in tick_labels) + 8
    plot_right, top = WIDTH - 4, 14.0
    plot_height = 150.0
    plot_bottom = top + plot_height
    lines = max((len(p.label) for p in points), default=1)
    height = plot_bottom + 6 + lines * FONT_SIZE * 1.25 + 4
    n = max(len(points), 1)
    slot = (plot_right - plot_left) / n
    width = min(slot * 0.62, 40.0)

    def y_of(v: float) -> float:
        return plot_bottom - (v - low) / (high - low) * plot_height

    body = [svg_text(0, top - 6, scale.title, size=SMALL, colour=AXIS_COLOUR)]
    for t, label in zip(_ticks(low, high, step), tick_labels, strict=True):
        y = y_of(t)
        body.append(svg_line(plot_left, y, plot_right, y, GRID_COLOUR, 0.5))
        body.append(
            svg_text(plot_left - 4, y + SMALL * 0.35, label, anchor="end", size=SMALL, colour=AXIS_COLOUR)
        )
    zero = y_of(0.0)
    show_values = len(points) <= 16
    for i, p in enumerate(points):
        v = float(p.value)
        cx = plot_left + slot * (i + 0.5)
        y0, y1 = sorted((zero, y_of(v)))
        colour = BAR_COLOUR if v >= 0 else NEGATIVE_COLOUR
        body.append(svg_rect(cx - width / 2, y0, width, max(y1 - y0, 0.4), colour))
        if show_values:
            label_y = y0 - 2.5 if v >= 0 else y1 + SMALL + 1
            body.append(svg_text(cx, label_y, scale.column_label(p.value), anchor="middle", size=SMALL))
        for j, part in enumerate(p.label):
            if part:
                body.append(
                    svg_text(
                        cx,
                        plot_bottom + 6 + FONT_SIZE + j * FONT_SIZE * 1.25,
                        part,
                        anchor="middle",
                        colour=TEXT_COLOUR if j == 0 else AXIS_COLOUR,
                    )
                )
    body.append(svg_line(plot_left, zero, plot_right, zero, AXIS_COLOUR, 0.8))
    return svg_document(WIDTH, height, _alt(title, points), body)


CHARTS = {"bars": bar_chart, "columns": column_chart}
