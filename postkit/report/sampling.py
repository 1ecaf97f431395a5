"""The sampling report: one HTML page that shows an ethics reviewer how a sample was drawn.

The page is a single self-contained file (inline CSS and SVG, no scripts, no fonts or
links from elsewhere) so it can be archived next to the sample, opened offline and
printed. Everything on it comes from the ``report`` dict the sampling stage builds; every
value is escaped by jinja2's autoescape, because stratum names are forum data.

Chart geometry (bins, scales, bar positions) is computed here by small pure functions and
passed to the template as plain shapes: the template only draws, and the arithmetic can be
unit-tested without parsing SVG.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jinja2

from ..io import write_atomic

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "sampling.html.j2"

# The funnel's steps, in order: report key and the label a reader sees.
STEPS = ("total", "phrase", "length", "sampled")

# Sequential light-to-dark blues: the order is carried by lightness, which survives every
# kind of colour blindness and greyscale printing.
STEP_COLOURS = {"total": "#c6dbef", "phrase": "#6baed6", "length": "#2171b5", "sampled": "#08306b"}
# Okabe–Ito orange and blue: distinguishable with every common colour-vision deficiency.
ELIGIBLE_COLOUR = "#E69F00"
SAMPLED_COLOUR = "#0072B2"
# The N marks and 'short' flags use Okabe–Ito vermillion (#D55E00), set in the template's CSS.

CHART_WIDTH = 960
CHAR_WIDTH = 0.6  # generous average glyph width (a fraction of font size): labels must not overrun
LEGEND_CHAR_WIDTH = 0.53  # typical width: legend gaps only need to look even


# --------------------------------------------------------------------------- formatting

def fmt_int(value: int | float) -> str:
    """Thousands separators, so 1234567 reads as 1,234,567 at a glance."""
    return f"{int(value):,}"


def fmt_pct(part: int | float, whole: int | float) -> str:
    """Share as a percentage with one decimal; '–' when the whole is zero (no 0/0 = 'nan%')."""
    if not whole:
        return "–"
    share = 100.0 * part / whole
    if share == 0 or share == 100:
        return f"{share:.0f}%"
    if share < 0.1:
        return "<0.1%"
    if 99.9 < share < 100:
        return ">99.9%"  # not '100%' while some posts are missing
    return f"{share:.1f}%"


def fmt_tick(value: float, suffix: str = "") -> str:
    """Axis numbers: integers get separators, fractions (2.5) keep their decimals."""
    if float(value).is_integer():
        return fmt_int(value) + suffix
    return f"{value:g}{suffix}"


def short_hash(digest: str, keep: int = 12) -> str:
    """The first characters of a hash; enough to compare by eye, the full value is shown too."""
    digest = str(digest or "")
    return digest if len(digest) <= keep + 1 else digest[:keep] + "…"


def fit_text(text: str, max_width: float, font_size: float) -> str:
    """Shorten ``text`` with an ellipsis so it fits ``max_width`` px (estimated) in an SVG label.

    SVG text does not wrap or clip, so a very long stratum name would run over the bars;
    the full name stays in the chart's <title> tooltip and in the table.
    """
    max_chars = max(1, int(max_width / (font_size * CHAR_WIDTH)))
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def display_name(value: Any) -> str:
    """A stratum value as text; blank or missing values are named, not shown as nothing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "(missing)"
    text = str(value)
    return text if text.strip() else "(blank)"


# --------------------------------------------------------------------------- scales

def nice_ceiling(value: float) -> float:
    """Smallest 1, 2, 2.5 or 5 × 10^k that is at least ``value``: axes end on round numbers."""
    if value <= 0:
        return 1.0
    base = 10.0 ** math.floor(math.log10(value))
    for multiple in (1, 2, 2.5, 5, 10):
        if multiple * base >= value * (1 - 1e-12):
            return multiple * base
    return 10 * base  # pragma: no cover - the loop always returns


def axis_ticks(max_value: float, target: int = 5, integer: bool = True) -> tuple[float, list[float]]:
    """(axis maximum, tick values): about ``target`` round steps from 0 covering ``max_value``.

    Counts use whole-number steps (no '2.5 posts'); percentages may use fractional steps.
    """
    step = nice_ceiling(max_value / target) if max_value > 0 else 1.0
    if integer:
        step = max(1.0, float(math.ceil(step)))
    steps = max(1, math.ceil(max_value / step - 1e-9))
    return steps * step, [i * step for i in range(steps + 1)]


def visible_width(width: float, value: float, minimum: float = 1.5) -> float:
    """At least ``minimum`` px for a non-zero value: 120 of 2 million posts must not vanish."""
    return max(width, minimum) if value > 0 else 0.0


def scale(value: float, domain_max: float, length: float) -> float:
    """Linear map of 0..domain_max onto 0..length pixels (0 when the domain is empty)."""
    return 0.0 if domain_max <= 0 else length * value / domain_max


# --------------------------------------------------------------------------- histogram

@dataclass(frozen=True)
class Bin:
    """Word counts ``lo`` ≤ n < ``hi``; ``hi`` None is the overflow bin (``lo`` and more)."""

    lo: int
    hi: int | None

    @property
    def overflow(self) -> bool:
        return self.hi is None

    @property
    def label(self) -> str:
        if self.hi is None:
            return f"{fmt_int(self.lo)}+"
        if self.hi - self.lo == 1:
            return fmt_int(self.lo)
        return f"{fmt_int(self.lo)}–{fmt_int(self.hi - 1)}"


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of already sorted values (an actual value, never interpolated)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def bin_width(span: int, width: int, max_bins: int) -> int:
    """``width`` if ``span`` fits in ``max_bins`` bins of it, else the next round width that does.

    A few posts of 5,000 words would otherwise make hundreds of unreadable 10-word bins.
    """
    candidate = max(1, int(width))
    while math.ceil(span / candidate) > max_bins:
        candidate = int(nice_ceiling(candidate * 1.01))  # 10 → 20 → 25 → 50 → 100 …
    return candidate


def make_bins(
    values: Iterable[int],
    width: int = 10,
    start: int | None = None,
    quantile: float = 0.99,
    max_bins: int = 40,
) -> list[Bin]:
    """Equal-width bins from ``start`` up to the ``quantile`` value, then one overflow bin.

    Capping at the 99th percentile keeps the few very long posts from squashing the shape
    of the distribution into a couple of bars; the overflow bin still counts them. ``start``
    lets the first bin begin at min_words + 1 (31–40, 41–50, … for 'more than 30 words');
    it moves down by whole bins if some value is smaller. No values: no bins.
    """
    ordered = sorted(int(v) for v in values)
    if not ordered:
        return []
    low = ordered[0] if start is None else int(start)
    if ordered[0] < low:
        low -= math.ceil((low - ordered[0]) / width) * width
    cutoff = max(percentile(ordered, quantile), low)
    step = bin_width(cutoff - low + 1, width, max_bins)
    regular = (cutoff - low) // step + 1
    bins = [Bin(low + i * step, low + (i + 1) * step) for i in range(regular)]
    top = low + regular * step
    if ordered[-1] >= top:
        bins.append(Bin(top, None))
    return bins


def count_into(values: Iterable[int], bins: Sequence[Bin]) -> list[int]:
    """How many values fall in each bin (bins as made by :func:`make_bins`: equal width).

    Values outside the bins are clamped to the first or last bin rather than dropped, so
    the counts always add up to the number of values; bins made from the same values (or
    a superset) never need clamping.
    """
    counts = [0] * len(bins)
    if not bins:
        if any(True for _ in values):
            raise ValueError("values given but no bins to count them into")
        return counts
    low = bins[0].lo
    step = (bins[0].hi or (low + 1)) - low
    last = len(bins) - 1
    for value in values:
        index = (int(value) - low) // step
        counts[min(max(index, 0), last)] += 1
    return counts


@dataclass(frozen=True)
class Histogram:
    """One series binned: ``counts[i]`` values fell in ``bins[i]``."""

    bins: list[Bin]
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)


def histogram(values: Sequence[int], **bin_options: Any) -> Histogram:
    """Bins and counts for one series (see :func:`make_bins` for the options)."""
    bins = make_bins(values, **bin_options)
    return Histogram(bins, count_into(values, bins))


def summary_stats(values: Sequence[int]) -> dict[str, str]:
    """n, median, min and max as display strings (empty dict for no values)."""
    if not values:
        return {}
    ordered = sorted(int(v) for v in values)
    n = len(ordered)
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {"n": fmt_int(n), "median": fmt_tick(median), "min": fmt_int(ordered[0]),
            "max": fmt_int(ordered[-1])}


# --------------------------------------------------------------------------- chart shapes

@dataclass(frozen=True)
class Rect:
    """A bar or swatch in SVG user units; ``title`` becomes its tooltip (and accessible name)."""

    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str = ""
    pattern: str = ""  # id of an SVG <pattern> drawn over the fill (short strata)


@dataclass(frozen=True)
class Label:
    """A piece of SVG text; the template escapes ``text`` and ``title``."""

    x: float
    y: float
    text: str
    anchor: str = "start"  # SVG text-anchor
    cls: str = ""          # CSS class in the template
    title: str = ""        # full text when ``text`` was shortened
    rotate: float = 0      # degrees about (x, y); -90 for a vertical axis title


@dataclass(frozen=True)
class Line:
    """A grid line, axis, or marker; its look comes from the CSS class."""

    x1: float
    y1: float
    x2: float
    y2: float
    cls: str = ""


@dataclass
class Chart:
    """Everything the template needs to draw one SVG: size, shapes, and its accessible name."""

    width: float
    height: float
    aria_label: str
    rects: list[Rect] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)     # drawn under the bars (grid, axes)
    overlay: list[Line] = field(default_factory=list)   # drawn over the bars (N marks)
    legend: list[tuple[Rect, Label]] = field(default_factory=list)


def _r(value: float) -> float:
    """One decimal place: sub-pixel precision is invisible and bloats the file."""
    return round(value, 1)


def legend_row(items: Sequence[tuple[str, str, str]], x: float, y: float,
               font: float = 12) -> list[tuple[Rect, Label]]:
    """Swatch + text pairs laid left to right; items are (fill, pattern id, text)."""
    out = []
    for fill, pattern, text in items:
        out.append((Rect(_r(x), _r(y - 10), 14, 12, fill, pattern=pattern),
                    Label(_r(x + 19), _r(y), text, cls="legend")))
        x += 19 + len(text) * font * LEGEND_CHAR_WIDTH + 22
    return out


@dataclass(frozen=True)
class FunnelRow:
    """One stratum's funnel counts, normalised from the report."""

    stratum: str
    total: int
    phrase: int
    length: int
    sampled: int
    short: bool

    def count(self, step: str) -> int:
        return int(getattr(self, step))


def funnel_chart(rows: Sequence[FunnelRow], per_stratum: int, step_labels: Mapping[str, str]) -> Chart | None:
    """Small multiples: per stratum, four horizontal bars (all → phrase → eligible → sampled).

    Each stratum gets its own scale, running to its total (or to N when N is larger).
    Forums differ in size by orders of magnitude, and on one shared scale a small forum's
    funnel shrinks to a few pixels; the question here is each stratum's attrition and
    whether it reached N, which its own scale shows. Sizes are compared in the table, and
    every bar carries its value. The dashed mark at N shows which strata were short; those
    are also labelled and their 'sampled' bar is hatched, so the flag does not rely on colour.
    """
    if not rows:
        return None
    label_w, right_w, bar_h, bar_gap, group_gap, top = 250.0, 150.0, 12.0, 3.0, 26.0, 78.0
    x0, x1 = label_w, CHART_WIDTH - right_w
    group_h = len(STEPS) * bar_h + (len(STEPS) - 1) * bar_gap
    chart = Chart(CHART_WIDTH, _r(top + len(rows) * (group_h + group_gap) - group_gap + 8), "")
    chart.aria_label = (f"Bar chart of the sampling funnel for {len(rows)} "
                        f"{'stratum' if len(rows) == 1 else 'strata'}: all posts, posts containing the "
                        f"phrase, eligible posts and sampled posts, each stratum on its own scale. "
                        f"The table gives the same numbers.")
    hatched = "Sampled, from a short stratum (fewer than N eligible: all taken)"
    chart.legend = (legend_row([(STEP_COLOURS[s], "", step_labels[s]) for s in STEPS], 0, 16)
                    + legend_row([("#ffffff", "short-hatch", hatched)], 0, 40))
    if per_stratum > 0:
        chart.lines.append(Line(2, 59, 16, 59, "n-line"))
        chart.labels.append(Label(21, 63, f"N = {fmt_int(per_stratum)} per stratum; a stratum whose "
                                          f"eligible bar ends left of this mark is short", "start", "legend"))
    for index, row in enumerate(rows):
        _funnel_group(chart, row, top + index * (group_h + group_gap), x0, x1, per_stratum, bar_h, bar_gap,
                      step_labels)
    return chart


def _funnel_group(chart: Chart, row: FunnelRow, y: float, x0: float, x1: float, per_stratum: int,
                  bar_h: float, bar_gap: float, step_labels: Mapping[str, str]) -> None:
    """The stratum's name (and short flag) on the left, a track for its scale, bars with values, N mark."""
    group_h = len(STEPS) * bar_h + (len(STEPS) - 1) * bar_gap
    domain = max(row.total, per_stratum, 1)
    middle = y + group_h / 2
    name = fit_text(row.stratum, x0 - 16, 13)
    chart.labels.append(Label(0, _r(middle - 3 if row.short else middle + 4), name, "start", "stratum",
                              title=row.stratum))
    if row.short:
        chart.labels.append(Label(0, _r(middle + 13), "▲ short: all eligible taken", "start", "short-flag"))
    chart.rects.append(Rect(x0, _r(y - 2), x1 - x0, _r(group_h + 4), "#f3f5f7"))
    for offset, step in enumerate(STEPS):
        value = row.count(step)
        bar_y = _r(y + offset * (bar_h + bar_gap))
        width = _r(visible_width(scale(value, domain, x1 - x0), value))
        share = "" if step == "total" else f" ({fmt_pct(value, row.total)})"
        title = f"{row.stratum}: {step_labels[step]}: {fmt_int(value)}{share}"
        pattern = "short-hatch" if step == "sampled" and row.short else ""
        chart.rects.append(Rect(x0, bar_y, max(width, 0.0), bar_h, STEP_COLOURS[step], title, pattern))
        chart.labels.append(Label(_r(x0 + width + 5), _r(bar_y + bar_h - 2), fmt_int(value) + share,
                                  "start", "value"))
    if per_stratum > 0:
        x = _r(x0 + scale(per_stratum, domain, x1 - x0))
        chart.overlay.append(Line(x, _r(y - 6), x, _r(y + group_h + 6), "n-line"))
        chart.labels.append(Label(x, _r(y - 8), "N", "middle", "n-label"))


def histogram_chart(bins: Sequence[Bin], eligible_counts: Sequence[int], sampled_counts: Sequence[int],
                    n_eligible: int, n_sampled: int) -> Chart:
    """Side-by-side bars per bin: the share of eligible posts and of sampled posts in it.

    Shares, not counts: the eligible pool can be hundreds of times larger than the sample,
    and on a count axis the sample's bars would be invisible. The question a reviewer asks
    is whether the two shapes match; exact counts are in each bar's tooltip and the table.
    """
    left, right, top, bottom = 70.0, 16.0, 44.0, 62.0
    height = 340.0
    plot_w, plot_h = CHART_WIDTH - left - right, height - top - bottom
    base = top + plot_h
    shares = [[100.0 * c / n if n else 0.0 for c in counts] for counts, n in
              ((eligible_counts, n_eligible), (sampled_counts, n_sampled))]
    y_max, ticks = axis_ticks(max(max(s, default=0.0) for s in shares) or 1.0, integer=False)
    chart = Chart(CHART_WIDTH, height, "Histogram of words per post: share of eligible posts and share of "
                  "sampled posts in each word-count bin. The table below gives the same numbers.")
    chart.legend = legend_row([(ELIGIBLE_COLOUR, "", f"eligible posts (n = {fmt_int(n_eligible)})"),
                               (SAMPLED_COLOUR, "", f"sampled posts (n = {fmt_int(n_sampled)})")],
                              left, 18)
    for tick in ticks:
        y = _r(base - scale(tick, y_max, plot_h))
        chart.lines.append(Line(left, y, left + plot_w, y, "grid"))
        chart.labels.append(Label(left - 6, _r(y + 4), fmt_tick(tick, "%"), "end", "tick"))
    chart.lines.append(Line(left, base, left + plot_w, base, "axis"))
    slot = plot_w / max(len(bins), 1)
    pad, every = slot * 0.12, max(1, math.ceil(46 / slot))
    for i, b in enumerate(bins):
        x = left + i * slot
        series = ((shares[0], eligible_counts, n_eligible, ELIGIBLE_COLOUR, "eligible"),
                  (shares[1], sampled_counts, n_sampled, SAMPLED_COLOUR, "sampled"))
        for j, (share, counts, n, colour, who) in enumerate(series):
            h = visible_width(scale(share[i], y_max, plot_h), counts[i], 1.0)
            bar_w = (slot - 2 * pad) / 2
            title = f"{b.label} words: {fmt_int(counts[i])} {who} posts ({fmt_pct(counts[i], n)})"
            chart.rects.append(Rect(_r(x + pad + j * bar_w), _r(base - h), _r(bar_w), _r(h), colour, title))
        if b.overflow:
            chart.lines.append(Line(_r(x), top, _r(x), base, "overflow"))
            chart.labels.append(Label(_r(x + slot / 2), base + 16, b.label, "middle", "tick"))
        elif i % every == 0:
            chart.lines.append(Line(_r(x), base, _r(x), base + 4, "axis"))
            chart.labels.append(Label(_r(x), base + 16, fmt_int(b.lo), "middle", "tick"))
    if bins and not bins[-1].overflow and len(bins) % every == 0:
        end = left + len(bins) * slot
        chart.labels.append(Label(_r(end), base + 16, fmt_int(bins[-1].hi or 0), "middle", "tick"))
    width_words = (bins[0].hi or bins[0].lo + 1) - bins[0].lo if bins else 0
    chart.labels.append(Label(_r(left + plot_w / 2), height - 14,
                              f"words per post (bins of {width_words}; each tick marks where a bin starts)",
                              "middle", "axis-title"))
    chart.labels.append(Label(16, _r(top + plot_h / 2), "share of the group's posts", "middle", "axis-title",
                              rotate=-90))
    return chart


# --------------------------------------------------------------------------- report → page

def funnel_rows(report: Mapping[str, Any]) -> list[FunnelRow]:
    """The report's funnel as typed rows, in the report's display order."""
    return [FunnelRow(display_name(r.get("stratum")), int(r.get("total", 0)), int(r.get("phrase", 0)),
                      int(r.get("length", 0)), int(r.get("sampled", 0)), bool(r.get("short", False)))
            for r in report.get("funnel") or []]


def consistency_problems(report: Mapping[str, Any], rows: Sequence[FunnelRow],
                         n_eligible: int, n_sampled: int) -> list[str]:
    """Arithmetic a reviewer would otherwise check by hand; each problem is one sentence.

    A report that disagrees with itself (totals that do not add up, a stratum sampled
    beyond N, a 'short' flag that does not match its counts) must say so on the page.
    """
    n = int(report["per_stratum"])
    totals = report.get("totals") or {}
    problems = []
    for row in rows:
        counts = [row.count(s) for s in STEPS]
        if any(c < 0 for c in counts) or counts != sorted(counts, reverse=True):
            problems.append(f"{row.stratum}: the counts should shrink at each step "
                            f"({', '.join(map(fmt_int, counts))}).")
        if row.sampled != min(row.length, n):
            problems.append(f"{row.stratum}: {fmt_int(row.sampled)} sampled, but min(eligible, N) is "
                            f"{fmt_int(min(row.length, n))}.")
        if row.short != (row.length < n):
            problems.append(f"{row.stratum}: marked {'short' if row.short else 'not short'} with "
                            f"{fmt_int(row.length)} eligible and N = {fmt_int(n)}.")
    for step in STEPS:
        summed = sum(row.count(step) for row in rows)
        if step in totals and int(totals[step]) != summed:
            problems.append(f"Totals row: {step} is {fmt_int(totals[step])} but the strata add up to "
                            f"{fmt_int(summed)}.")
    expected = [("input rows", (report.get("input") or {}).get("rows"), totals.get("total")),
                ("output rows", (report.get("output") or {}).get("rows"), totals.get("sampled")),
                ("eligible word counts", n_eligible, totals.get("length")),
                ("sampled word counts", n_sampled, totals.get("sampled"))]
    for what, actual, wanted in expected:
        if actual is not None and wanted is not None and int(actual) != int(wanted):
            problems.append(f"{what.capitalize()}: {fmt_int(actual)}, but the totals row implies "
                            f"{fmt_int(wanted)}.")
    return problems


def reproduce_command(report: Mapping[str, Any]) -> str:
    """The CLI call that redraws this sample, every value shell-quoted.

    Stratification by forum is the CLI's default; other strata are spelled out as the
    CLI takes them (``--by forum,year``) so the command is not silently different from
    the report.
    """
    parts = ["postkit", "sample", str(report["input"]["path"]), "--output", str(report["output"]["path"]),
             "--seed", str(report["seed"]), "--per-forum", str(report["per_stratum"]),
             "--min-words", str(report["min_words"])]
    for phrase in report.get("phrases") or []:
        parts += ["--phrase", str(phrase)]
    by = [str(b) for b in report.get("by") or []]
    if by != ["forum"]:
        parts += ["--by", ",".join(by)]
    return " ".join(shlex.quote(p) for p in parts)


def int_list(values: Iterable[Any] | None) -> list[int]:
    """Word counts as plain ints; None is no values (a numpy array is accepted too)."""
    return [] if values is None else [int(v) for v in values]


def step_labels(min_words: int) -> dict[str, str]:
    """What each funnel step means, in words, for the table header and chart legend."""
    return {"total": "All posts", "phrase": "Contains phrase",
            "length": f"…and more than {fmt_int(min_words)} words (eligible)", "sampled": "Sampled"}


def build_context(report: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the template shows, computed once: display rows, charts, checks, command."""
    rows = funnel_rows(report)
    n = int(report["per_stratum"])
    min_words = int(report["min_words"])
    labels = step_labels(min_words)
    totals = {s: int((report.get("totals") or {}).get(s, sum(r.count(s) for r in rows))) for s in STEPS}
    counts = report.get("word_counts") or {}
    eligible, sampled = int_list(counts.get("eligible")), int_list(counts.get("sampled"))
    bins = make_bins(eligible + sampled, width=10, start=min_words + 1)
    eligible_counts, sampled_counts = count_into(eligible, bins), count_into(sampled, bins)
    by = [str(b) for b in report.get("by") or []]
    return {
        "r": report,
        "rows": rows,
        "n": n,
        "min_words": min_words,
        "by": by,
        "steps": STEPS,
        "step_labels": labels,
        "totals": totals,
        "short_rows": [row for row in rows if row.short],
        "funnel_chart": funnel_chart(rows, n, labels),
        "histogram_chart": (histogram_chart(bins, eligible_counts, sampled_counts, len(eligible),
                                            len(sampled)) if eligible else None),
        "histogram_rows": list(zip(bins, eligible_counts, sampled_counts)),
        "n_eligible": len(eligible),
        "n_sampled": len(sampled),
        "stats": {"eligible": summary_stats(eligible), "sampled": summary_stats(sampled)},
        "problems": consistency_problems(report, rows, len(eligible), len(sampled)),
        "command": reproduce_command(report),
        "hatch_colour": STEP_COLOURS["sampled"],
    }


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    """One autoescaping environment: stratum names and phrases are forum data, never markup."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails loudly instead of printing ''
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_int
    env.filters["pct"] = fmt_pct
    env.filters["short_hash"] = short_hash
    return env


def render_sampling_report(report: dict) -> str:
    """The complete, self-contained HTML document for one sampling run."""
    return _environment().get_template(TEMPLATE_NAME).render(**build_context(report))


def write_sampling_report(report: dict, path: str | Path) -> None:
    """Render and publish atomically: a temp file in the same folder, then os.replace.

    Rendering happens first, so a report that fails to render leaves nothing behind; a
    reader never sees a half-written page, and an existing report is replaced in one step.
    """
    write_atomic(path, render_sampling_report(report))
