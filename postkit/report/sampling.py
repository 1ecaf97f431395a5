"""The sampling report: one HTML page that shows an ethics reviewer how a sample was drawn.

The page is a single self-contained file (inline CSS and SVG, no scripts, no fonts or
links from elsewhere) so it can be archived next to the sample, opened offline and
printed. Everything on it comes from the ``report`` dict the sampling stage builds; every
value is escaped by jinja2's autoescape, because stratum names are forum data.

The binning of word counts is computed here by small pure functions (unit-tested without
a chart); the charts themselves are drawn by matplotlib through the one chart path all
postkit reports share (:mod:`postkit.report.charts`), which inlines them as SVG.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jinja2
from markupsafe import Markup

from ..io import write_atomic
from . import charts

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

SHORT_COLOUR = "#D55E00"  # Okabe–Ito vermillion: the N marks and 'short' flags


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


def display_name(value: Any) -> str:
    """A stratum value as text; blank or missing values are named, not shown as nothing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "(missing)"
    text = str(value)
    return text if text.strip() else "(blank)"


# --------------------------------------------------------------------------- round numbers

def nice_ceiling(value: float) -> float:
    """Smallest 1, 2, 2.5 or 5 × 10^k that is at least ``value``: axes end on round numbers."""
    if value <= 0:
        return 1.0
    base = 10.0 ** math.floor(math.log10(value))
    for multiple in (1, 2, 2.5, 5, 10):
        if multiple * base >= value * (1 - 1e-12):
            return multiple * base
    return 10 * base  # pragma: no cover - the loop always returns


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


# --------------------------------------------------------------------------- charts

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


def funnel_chart(rows: Sequence[FunnelRow], per_stratum: int, step_labels: Mapping[str, str],
                 chart_id: str = "funnel-chart") -> Markup | None:
    """Small multiples: per stratum, four horizontal bars (all → phrase → eligible → sampled).

    Each stratum gets its own scale, running to its total (or to N when N is larger).
    Forums differ in size by orders of magnitude, and on one shared scale a small forum's
    funnel shrinks to a few pixels; the question here is each stratum's attrition and
    whether it reached N, which its own scale shows. Sizes are compared in the table, and
    every bar carries its value. The dashed mark at N shows which strata were short; those
    are also labelled and their 'sampled' bar is hatched, so the flag does not rely on colour.
    None when there are no strata.
    """
    if not rows:
        return None
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    title = (f"Bar chart of the sampling funnel for {len(rows)} {'stratum' if len(rows) == 1 else 'strata'}: "
             "all posts, posts containing the phrase, eligible posts and sampled posts, each stratum on its own "
             "scale. The table gives the same numbers.")
    with charts.figure(0.9 + 0.95 * len(rows)) as fig:
        axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
        for ax, row in zip(axes, rows):
            values = [row.count(step) for step in STEPS]
            hatched = [step == "sampled" and row.short for step in STEPS]
            bars = ax.barh([3, 2, 1, 0], values, height=0.8,
                           color=["#ffffff" if h else STEP_COLOURS[s] for s, h in zip(STEPS, hatched)],
                           edgecolor=[STEP_COLOURS[s] for s in STEPS], linewidth=0.8,
                           hatch=["///" if h else "" for h in hatched])
            ax.bar_label(bars, labels=[fmt_int(v) + ("" if s == "total" else f" ({fmt_pct(v, row.total)})")
                                       for s, v in zip(STEPS, values)], padding=4, fontsize=8.5)
            domain = max(row.total, per_stratum, 1)
            ax.set_xlim(0, domain * 1.3)
            ax.axvspan(0, domain, color="#f3f5f7", zorder=0)
            if per_stratum > 0:
                ax.axvline(per_stratum, color=SHORT_COLOUR, linestyle=(0, (5, 3)), linewidth=1.5)
                ax.text(per_stratum, 3.55, "N", color=SHORT_COLOUR, fontweight="bold", ha="center", fontsize=9)
            name = charts.clip_label(row.stratum, 60)
            ax.set_title(name + ("   ▲ short: all eligible taken" if row.short else ""), loc="left",
                         fontsize=10, fontweight="bold", color=SHORT_COLOUR if row.short else charts.INK)
            ax.set_yticks([])
            ax.set_xticks([])
            for side in ("left", "bottom"):
                ax.spines[side].set_visible(False)
        handles = [Patch(facecolor=STEP_COLOURS[s], label=step_labels[s]) for s in STEPS]
        handles.append(Patch(facecolor="#ffffff", edgecolor=STEP_COLOURS["sampled"], hatch="///",
                             label="Sampled, from a short stratum (fewer than N eligible: all taken)"))
        if per_stratum > 0:
            handles.append(Line2D([], [], color=SHORT_COLOUR, linestyle=(0, (5, 3)),
                                  label=f"N = {fmt_int(per_stratum)} per stratum"))
        fig.legend(handles=handles, loc="outside upper left", ncols=3, frameon=False, fontsize=9)
        return charts.to_svg(fig, chart_id, title)


def histogram_chart(bins: Sequence[Bin], eligible_counts: Sequence[int], sampled_counts: Sequence[int],
                    n_eligible: int, n_sampled: int, chart_id: str = "words-chart") -> Markup:
    """Side-by-side bars per bin: the share of eligible posts and of sampled posts in it.

    Shares, not counts: the eligible pool can be hundreds of times larger than the sample,
    and on a count axis the sample's bars would be invisible. The question a reviewer asks
    is whether the two shapes match; exact counts are in the table. With no eligible
    posts (a sample's word counts alone) only the sampled bars are drawn.
    """
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    series = [(f"eligible posts (n = {fmt_int(n_eligible)})", eligible_counts, n_eligible, ELIGIBLE_COLOUR),
              (f"sampled posts (n = {fmt_int(n_sampled)})", sampled_counts, n_sampled, SAMPLED_COLOUR)]
    series = [s for s in series if s[2]]
    title = ("Histogram of words per post: share of "
             + " and share of ".join(s[0].split(" (")[0] for s in series)
             + " in each word-count bin. The table below gives the same numbers.")
    with charts.figure(3.4) as fig:
        ax = fig.subplots()
        width = 0.8 / max(len(series), 1)
        for index, (label, counts, n, colour) in enumerate(series):
            shares = [100.0 * c / n for c in counts]
            ax.bar([i - 0.4 + width * (index + 0.5) for i in range(len(bins))], shares, width=width,
                   color=colour, label=label)
        every = max(1, math.ceil(len(bins) / 9))  # about nine labels: they stay level and legible
        ticks = [i for i in range(len(bins)) if i % every == 0 or bins[i].overflow]
        if len(ticks) > 1 and bins[ticks[-1]].overflow and ticks[-1] - ticks[-2] < every:
            del ticks[-2]  # the overflow label is never crowded out
        ax.set_xticks(ticks, [bins[i].label for i in ticks], fontsize=8.5)
        if bins and bins[-1].overflow:
            ax.axvline(len(bins) - 1.5, color=charts.MUTED, linestyle=":", linewidth=1)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=None))
        ax.grid(axis="y", color=charts.GRID)
        ax.set_axisbelow(True)
        step = (bins[0].hi or bins[0].lo + 1) - bins[0].lo if bins else 0
        ax.set_xlabel(f"words per post (bins of {step})")
        ax.set_ylabel("share of the group's posts")
        ax.legend(loc="upper right", frameon=False)
        return charts.to_svg(fig, chart_id, title)


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
