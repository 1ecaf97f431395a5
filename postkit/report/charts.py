"""One charting path for every postkit report: matplotlib figures as inline SVG.

Reports are single HTML files a reviewer archives and opens offline, so a chart must be
part of the page: no image files, no scripts, no fonts or stylesheets from elsewhere.
matplotlib draws the chart (scales, ticks, bars, hatching, legends: geometry we do not
write by hand) and its SVG backend writes it; :func:`to_svg` then makes that SVG safe to
inline several times in one page:

* the XML declaration, DOCTYPE and namespace attributes go (inline SVG in HTML needs
  none, and they are the only ``http://`` strings matplotlib writes);
* matplotlib's global ``<style>`` (``* {…}``) goes: inlined, it would restyle the page;
* every ``id`` gets the chart's own prefix, so two charts never share ids (clip paths,
  hatch patterns), and ``xlink:href`` becomes plain ``href``;
* text stays text (``svg.fonttype = 'none'``): searchable, selectable, small, and
  escaped by matplotlib's XML writer; ``$`` is never read as mathtext, since forum names
  are data;
* the output is deterministic (fixed hash salt, no date), so the same run gives the
  same page.

matplotlib is imported only when a chart is drawn. When it is missing, :func:`require`
raises one :class:`PostkitError` saying how to install it.
"""

from __future__ import annotations

import io
import re
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

from markupsafe import Markup, escape

from ..errors import PostkitError

# Okabe–Ito: distinguishable with every common colour-vision deficiency.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
INK, MUTED, GRID = "#1b1f24", "#59636e", "#e4e7eb"
WIDTH_IN = 9.6  # inches at 100 dpi: the 960 px column of the report pages

_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "postkit",
    "svg.image_inline": True,
    "text.parse_math": False,
    "text.usetex": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 10,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "text.color": INK,
    "hatch.linewidth": 1.5,
    "figure.dpi": 100,
    "savefig.dpi": 100,
}
_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


def require() -> Any:
    """The ``matplotlib`` module with the Agg backend, or a one-line error saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise PostkitError("the HTML reports draw their charts with matplotlib, which is not installed",
                           fix="pip install matplotlib (or reinstall postkit, which depends on it)") from None
    matplotlib.use("Agg", force=False)
    return matplotlib


@contextmanager
def figure(height_in: float, width_in: float = WIDTH_IN) -> Iterator[Any]:
    """A matplotlib Figure under postkit's chart settings (not pyplot: no global state)."""
    matplotlib = require()
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        yield Figure(figsize=(width_in, max(height_in, 0.8)), layout="constrained")


_ID = re.compile(r'\bid="([^"]+)"')


def to_svg(fig: Any, chart_id: str, title: str) -> Markup:
    """The figure as an inline ``<svg>`` element (see the module docstring), with ``title`` as its name.

    Call inside :func:`figure`'s ``with`` block, so the settings apply while saving.
    """
    buffer = io.StringIO()
    with warnings.catch_warnings():
        # A glyph DejaVu Sans lacks (CJK, emoji in a forum name) only makes matplotlib's layout
        # estimate rougher; the text is kept as text and the browser draws it with its own fonts.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        fig.savefig(buffer, format="svg", metadata=_METADATA)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg, count=3)
    svg = re.sub(r"<style[^>]*>.*?</style>", "", svg, flags=re.S)
    svg = svg.replace("xlink:href=", "href=")
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", chart_id)
    for old in sorted(set(_ID.findall(svg)), key=len, reverse=True):
        new = f"{prefix}-{old}"
        svg = (svg.replace(f'id="{old}"', f'id="{new}"').replace(f"url(#{old})", f"url(#{new})")
               .replace(f'href="#{old}"', f'href="#{new}"'))
    svg = re.sub(r'<svg\b[^>]*?\swidth="([\d.]+)pt"\s+height="([\d.]+)pt"',
                 lambda m: f'<svg class="chart" role="img" aria-labelledby="{prefix}-title"', svg, count=1)
    svg = svg.replace(">", f'><title id="{prefix}-title">{escape(title)}</title>', 1)
    return Markup(svg.strip())


def clip_label(text: str, limit: int = 34) -> str:
    """Axis labels are shortened with an ellipsis; the full name is in the table beside the chart."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def bar_chart(chart_id: str, title: str, categories: Sequence[str], series: Mapping[str, Sequence[float]], *,
              stacked: bool = False, xlabel: str = "", colours: Sequence[str] | None = None,
              value_labels: bool = True) -> Markup | None:
    """Horizontal bars, one row per category; several series side by side or stacked.

    Used for counts by forum, reason, entity type, code area and verdict; the number is
    written at the end of each bar (and of each stack), since readers compare numbers.
    None when there is nothing to draw.
    """
    if not categories or not series or not any(any(v for v in values) for values in series.values()):
        return None
    colours = list(colours or OKABE_ITO)
    rows = len(categories)
    per_row = 0.32 if stacked or len(series) == 1 else 0.22 * len(series) + 0.1
    with figure(0.9 + rows * per_row + (0.3 if len(series) > 1 else 0)) as fig:
        ax = fig.subplots()
        positions = list(range(rows))[::-1]  # first category on top
        height = 0.7 if stacked or len(series) == 1 else 0.8 / len(series)
        left = [0.0] * rows
        for index, (name, values) in enumerate(series.items()):
            values = [float(v) for v in values]
            if stacked:
                offsets = [p for p in positions]
            else:
                offsets = [p + (len(series) - 1) / 2 * height - index * height for p in positions]
            bars = ax.barh(offsets, values, height=height, left=left if stacked else None,
                           color=colours[index % len(colours)], label=name)
            if value_labels and not stacked:
                ax.bar_label(bars, labels=[f"{int(v):,}" if float(v).is_integer() else f"{v:.2f}" for v in values],
                             padding=3, fontsize=9)
            if stacked:
                left = [a + b for a, b in zip(left, values)]
        if stacked and value_labels:
            for position, total in zip(positions, left):
                ax.text(total, position, f" {int(total):,}", va="center", fontsize=9)
        ax.set_yticks(positions, [clip_label(str(c)) for c in categories])
        ax.tick_params(axis="y", length=0)
        ax.margins(x=0.12)
        ax.grid(axis="x", color=GRID)
        ax.set_axisbelow(True)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if xlabel:
            ax.set_xlabel(xlabel)
        if len(series) > 1:
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=min(len(series), 4), frameon=False)
        return to_svg(fig, chart_id, title)
