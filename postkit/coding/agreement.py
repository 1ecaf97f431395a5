"""Inter-coder agreement for qualitative coding of forum-post excerpts.

Data model
----------
``codings`` is a long table with columns ``unit_id`` (the excerpt), ``coder``,
``code_id`` and ``applied`` (bool). For every coder and unit:

* the coder **coded** the unit when at least one row for that (unit, coder) pair
  exists, whatever its code or ``applied`` value;
* for a coded unit, a code is **applied** (1) when some row says ``applied`` is true,
  otherwise it is explicitly **not applied** (0) -- including codes that have no row
  at all for that coder and unit;
* a unit the coder never coded is **missing** (NaN) for that coder, and drops out of
  every comparison involving that coder.

Each code is then a binary (applied / not applied) variable over units, and:

* **percent agreement** -- share of units coded by at least two coders on which all
  coders who coded the unit gave the same value;
* **Cohen's kappa** -- only with exactly two coders, over the units both coded
  (:func:`sklearn.metrics.cohen_kappa_score`);
* **Krippendorff's alpha** (nominal) -- any number of coders, missing values allowed
  (:func:`krippendorff.alpha`); units coded by a single coder are not pairable and
  do not count.

The **overall** row treats every (unit, code) pair as one item and computes the same
three statistics over all items at once. ``CodeAgreement.units`` is the number of
units (items, for the overall row) that at least two coders coded, i.e. the units
that actually enter the comparison.

When a statistic is undefined -- nothing to compare, or only one category observed
(e.g. a code nobody ever applied) -- it is reported as ``None`` with an explanatory
band such as ``"undefined (one category)"``; NaN never reaches a report.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import PostkitError

REQUIRED_COLUMNS: tuple[str, ...] = ("unit_id", "coder", "code_id", "applied")

#: code_id of the :attr:`AgreementReport.overall` row.
OVERALL_CODE_ID = "(all codes)"
#: Name of the pseudo-coder used by :func:`suggestion_agreement`.
RULES_CODER = "rules"

BAND_ONE_CATEGORY = "undefined (one category)"
BAND_NO_SHARED = "undefined (no units coded by two coders)"
BAND_UNDEFINED = "undefined"
BAND_KAPPA_NOT_TWO = "n/a (kappa needs exactly 2 coders)"

#: Alpha thresholds (Krippendorff 2004: rely on >= .800, tentative conclusions >= .667).
ALPHA_RELIABLE = 0.800
ALPHA_TENTATIVE = 0.667

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


@dataclass
class CodeAgreement:
    """Agreement on one code (or, for the overall row, on all (unit, code) items)."""

    code_id: str
    units: int
    percent_agreement: float | None
    cohen_kappa: float | None
    krippendorff_alpha: float | None
    kappa_band: str
    alpha_band: str


@dataclass
class AgreementReport:
    """Result of :func:`agreement`.

    ``units`` counts the units coded by at least one of ``coders``.
    ``disagreements`` has columns ``unit_id``, ``code_id`` and one column per coder
    holding 1 (applied), 0 (not applied) or None (did not code the unit).
    """

    coders: list[str]
    units: int
    per_code: list[CodeAgreement]
    overall: CodeAgreement
    disagreements: pd.DataFrame


# --------------------------------------------------------------------------- bands


def _is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def interpret_kappa(k: float | None) -> str:
    """Landis & Koch (1977) band for a kappa value.

    ``< 0`` poor, ``0-0.20`` slight, ``0.21-0.40`` fair, ``0.41-0.60`` moderate,
    ``0.61-0.80`` substantial, ``0.81-1`` almost perfect. Upper bounds are
    inclusive (0.20 is slight, 0.2001 is fair). None/NaN gives ``"undefined"``.
    """
    if _is_missing(k):
        return BAND_UNDEFINED
    k = round(float(k), 10)  # absorb float noise such as 0.6000000000000001
    if k > 1:
        raise ValueError(f"kappa cannot exceed 1, got {k}")
    if k < 0:
        return "poor"
    if k <= 0.20:
        return "slight"
    if k <= 0.40:
        return "fair"
    if k <= 0.60:
        return "moderate"
    if k <= 0.80:
        return "substantial"
    return "almost perfect"


def interpret_alpha(a: float | None) -> str:
    """Krippendorff's thresholds: ``>= 0.800`` reliable, ``>= 0.667`` tentative,
    otherwise unreliable. None/NaN gives ``"undefined"``."""
    if _is_missing(a):
        return BAND_UNDEFINED
    a = round(float(a), 10)
    if a >= ALPHA_RELIABLE:
        return "reliable"
    if a >= ALPHA_TENTATIVE:
        return "tentative"
    return "unreliable"


# ------------------------------------------------------------------ statistics


def cohen_kappa(a: Sequence[float], b: Sequence[float]) -> tuple[float | None, str]:
    """Cohen's kappa of two equally long rating vectors (NaN = missing).

    Only positions rated by both count. Returns ``(kappa, band)``; kappa is None
    when nothing is shared or only one category occurs.
    """
    from sklearn.metrics import cohen_kappa_score

    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    both = ~np.isnan(x) & ~np.isnan(y)
    x, y = x[both], y[both]
    if x.size == 0:
        return None, BAND_NO_SHARED
    labels = np.unique(np.concatenate([x, y]))
    if labels.size < 2:
        return None, BAND_ONE_CATEGORY
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = float(cohen_kappa_score(x, y, labels=labels))
    if math.isnan(k):
        return None, BAND_UNDEFINED
    return k, interpret_kappa(k)


def krippendorff_alpha_nominal(reliability_data: Any) -> tuple[float | None, str]:
    """Nominal Krippendorff's alpha of a coders x units matrix (NaN = missing).

    Returns ``(alpha, band)``; alpha is None when no unit has two values or only
    one category occurs among the pairable values.
    """
    import krippendorff

    m = np.asarray(reliability_data, dtype=float)
    if m.ndim != 2:
        raise ValueError("reliability data must be a 2-D coders x units matrix")
    pairable = (~np.isnan(m)).sum(axis=0) >= 2
    if not pairable.any():
        return None, BAND_NO_SHARED
    values = m[:, pairable]
    if np.unique(values[~np.isnan(values)]).size < 2:
        return None, BAND_ONE_CATEGORY
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = float(krippendorff.alpha(reliability_data=m, level_of_measurement="nominal"))
    except (ValueError, ZeroDivisionError):
        return None, BAND_UNDEFINED
    if math.isnan(a):
        return None, BAND_UNDEFINED
    return a, interpret_alpha(a)


def _percent_agreement(m: np.ndarray) -> tuple[float | None, int]:
    """Share of columns with >= 2 values where all values agree; and that count."""
    present = ~np.isnan(m)
    pairable = present.sum(axis=0) >= 2
    n = int(pairable.sum())
    if n == 0:
        return None, 0
    sub = m[:, pairable]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agree = np.nanmin(sub, axis=0) == np.nanmax(sub, axis=0)
    return float(agree.mean()), n


def _stats(code_id: str, m: np.ndarray) -> CodeAgreement:
    pa, n = _percent_agreement(m)
    if m.shape[0] == 2:
        kappa, kappa_band = cohen_kappa(m[0], m[1])
    else:
        kappa, kappa_band = None, BAND_KAPPA_NOT_TWO
    alpha, alpha_band = krippendorff_alpha_nominal(m)
    return CodeAgreement(
        code_id=code_id,
        units=n,
        percent_agreement=pa,
        cohen_kappa=kappa,
        krippendorff_alpha=alpha,
        kappa_band=kappa_band,
        alpha_band=alpha_band,
    )


# ------------------------------------------------------------------ input


def _ordered(values: Sequence[Hashable]) -> list[Hashable]:
    """Unique values, sorted when comparable, else in order of first appearance."""
    uniq = list(dict.fromkeys(values))
    try:
        return sorted(uniq)
    except TypeError:
        return uniq


def _to_bool(value: Any, row: int) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, (float, np.floating)) and value in (0.0, 1.0):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise PostkitError(
        f"'applied' must be true/false, got {value!r}",
        row=row,
        column="applied",
        fix="use true/false (or 1/0) in the 'applied' column",
    )


def _clean(codings: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(codings, pd.DataFrame):
        raise PostkitError(
            f"codings must be a pandas DataFrame, got {type(codings).__name__}",
            fix="load the codings table with pandas first",
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in codings.columns]
    if missing:
        raise PostkitError(
            f"codings table is missing column(s) {', '.join(missing)}",
            fix="the codings table needs columns unit_id, coder, code_id, applied",
        )
    if codings.empty:
        raise PostkitError(
            "the codings table has no rows",
            fix="export the codings of at least two coders before computing agreement",
        )
    df = codings.loc[:, list(REQUIRED_COLUMNS)].reset_index(drop=True)
    for col in ("unit_id", "coder", "code_id"):
        blank = df[col].isna()
        if blank.any():
            first = int(np.flatnonzero(blank.to_numpy())[0])
            raise PostkitError(
                f"empty {col} in {int(blank.sum())} row(s)",
                row=first + 1,
                column=col,
                fix=f"fill in {col} for every coding row",
            )
    df["coder"] = df["coder"].astype(str)
    df["code_id"] = df["code_id"].astype(str)
    df["applied"] = [_to_bool(v, i + 1) for i, v in enumerate(df["applied"].tolist())]
    return df


# ------------------------------------------------------------------ main API


def agreement(
    codings: pd.DataFrame,
    coders: Sequence[str] | None = None,
    codes: Sequence[str] | None = None,
) -> AgreementReport:
    """Inter-coder agreement per code and overall.

    ``coders`` picks (and orders) the coders to compare; by default every coder in
    the data. ``codes`` picks (and orders) the codes to report; by default every
    code that the selected coders used. A listed code nobody applied is still
    reported (as a single-category, undefined code), so passing the whole codebook
    shows codes that were never used.
    """
    df = _clean(codings)
    present = _ordered(df["coder"].tolist())
    if coders is None:
        coder_list = [str(c) for c in present]
    else:
        coder_list = list(dict.fromkeys(str(c) for c in coders))
        unknown = [c for c in coder_list if c not in set(present)]
        if unknown:
            raise PostkitError(
                f"coder(s) {', '.join(repr(c) for c in unknown)} have no rows in the codings",
                fix=f"check the spelling; coders in the data: {', '.join(map(str, present))}",
            )
    if len(coder_list) < 2:
        raise PostkitError(
            f"agreement needs at least two coders, found {len(coder_list)}"
            + (f" ({coder_list[0]})" if coder_list else ""),
            fix="add the codings of a second coder (or pass two or more coders)",
        )
    df = df[df["coder"].isin(coder_list)]

    if codes is None:
        code_list = [str(c) for c in _ordered(df["code_id"].tolist())]
    else:
        code_list = list(dict.fromkeys(str(c) for c in codes))
        if not code_list:
            raise PostkitError("no codes given", fix="pass at least one code_id, or codes=None")

    units = _ordered(df["unit_id"].tolist())
    u_index = {u: i for i, u in enumerate(units)}
    c_index = {c: i for i, c in enumerate(coder_list)}
    k_index = {k: i for i, k in enumerate(code_list)}

    # values[coder, unit, code]: NaN = not coded, 0 = coded but not applied, 1 = applied.
    values = np.full((len(coder_list), len(units), len(code_list)), np.nan)
    ci = df["coder"].map(c_index).to_numpy()
    ui = df["unit_id"].map(u_index).to_numpy()
    values[ci, ui, :] = 0.0  # every (coder, unit) with a row was coded
    hits = df[df["applied"] & df["code_id"].isin(k_index)]
    values[
        hits["coder"].map(c_index).to_numpy(),
        hits["unit_id"].map(u_index).to_numpy(),
        hits["code_id"].map(k_index).to_numpy(),
    ] = 1.0

    per_code = [_stats(code, values[:, :, k]) for code, k in k_index.items()]
    # Overall: items are (unit, code) pairs, unit-major.
    flat = values.reshape(len(coder_list), len(units) * len(code_list))
    overall = _stats(OVERALL_CODE_ID, flat)

    rows = []
    for ui_, unit in enumerate(units):
        for code, k in k_index.items():
            col = values[:, ui_, k]
            seen = col[~np.isnan(col)]
            if seen.size >= 2 and seen.min() != seen.max():
                row: dict[str, Any] = {"unit_id": unit, "code_id": code}
                for coder, c in c_index.items():
                    row[coder] = None if np.isnan(col[c]) else int(col[c])
                rows.append(row)
    disagreements = pd.DataFrame(rows, columns=["unit_id", "code_id", *coder_list], dtype=object)

    return AgreementReport(
        coders=coder_list,
        units=len(units),
        per_code=per_code,
        overall=overall,
        disagreements=disagreements,
    )


def suggestion_agreement(
    codings: pd.DataFrame,
    suggestions: pd.DataFrame,
    codes: Sequence[str] | None = None,
) -> dict[str, AgreementReport]:
    """Agreement of each human coder with rule-based code suggestions.

    ``suggestions`` has columns ``unit_id, code_id`` (one row per suggested code;
    an optional ``applied`` column is honoured). The suggestions act as a
    pseudo-coder named ``"rules"`` that coded every unit it has a row for or that
    any human coded. Returns ``{coder: AgreementReport(coders=[coder, "rules"])}``;
    every report covers the same codes (``codes``, or every code used by a human or
    suggested).
    """
    human = _clean(codings)
    if not isinstance(suggestions, pd.DataFrame) or not {"unit_id", "code_id"} <= set(suggestions.columns):
        raise PostkitError(
            "suggestions must be a table with columns unit_id, code_id",
            fix="pass the rule-based suggestions as a DataFrame with unit_id and code_id",
        )
    if RULES_CODER in set(human["coder"]):
        raise PostkitError(
            f"a human coder is named {RULES_CODER!r}, which is reserved for the suggestions",
            column="coder",
            fix="rename that coder in the codings table",
        )
    sugg = suggestions.loc[:, [c for c in ("unit_id", "code_id", "applied") if c in suggestions.columns]]
    sugg = sugg.dropna(subset=["unit_id", "code_id"]).copy()
    if "applied" not in sugg.columns:
        sugg["applied"] = True
    sugg["coder"] = RULES_CODER
    sugg = _clean(sugg) if not sugg.empty else sugg.reindex(columns=list(REQUIRED_COLUMNS))

    # "rules" coded every unit any human coded: add a not-applied row where needed.
    extra_units = [u for u in dict.fromkeys(human["unit_id"].tolist()) if u not in set(sugg["unit_id"])]
    filler = pd.DataFrame(
        {
            "unit_id": extra_units,
            "coder": RULES_CODER,
            "code_id": human["code_id"].iloc[0],
            "applied": False,
        }
    )
    combined = pd.concat([human, sugg, filler], ignore_index=True)

    if codes is None:
        codes = [str(c) for c in _ordered(list(human["code_id"]) + [str(c) for c in sugg["code_id"]])]
    coders = [str(c) for c in _ordered(human["coder"].tolist())]
    return {c: agreement(combined, coders=[c, RULES_CODER], codes=codes) for c in coders}


# ------------------------------------------------------------------ rendering


def _fmt_num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _fmt_pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _fmt_cell(x: Any) -> str:
    return "-" if _is_missing(x) else str(x)


def _table(header: list[str], rows: list[list[str]], fmt: str) -> list[str]:
    if fmt == "markdown":
        esc = lambda s: str(s).replace("|", "\\|")
        out = ["| " + " | ".join(esc(h) for h in header) + " |"]
        out.append("|" + "|".join("---" for _ in header) + "|")
        out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
        return out
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(header)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def render_agreement(report: AgreementReport, fmt: str = "text", max_disagreements: int = 20) -> str:
    """A human-readable agreement report: one row per code, the overall row, the
    interpretation bands and the first ``max_disagreements`` disagreements."""
    if fmt not in ("text", "markdown"):
        raise PostkitError(f"unknown format {fmt!r}", fix="use 'text' or 'markdown'")
    md = fmt == "markdown"
    header = ["code", "units", "% agreement", "kappa", "kappa band", "alpha", "alpha band"]

    def row(ca: CodeAgreement, label: str | None = None) -> list[str]:
        return [
            label or ca.code_id,
            str(ca.units),
            _fmt_pct(ca.percent_agreement),
            _fmt_num(ca.cohen_kappa),
            ca.kappa_band,
            _fmt_num(ca.krippendorff_alpha),
            ca.alpha_band,
        ]

    rows = [row(c) for c in report.per_code]
    rows.append(row(report.overall, "**overall**" if md else "OVERALL"))

    out: list[str] = []
    title = "Inter-coder agreement"
    out.append(f"## {title}" if md else title)
    out.append("")
    out.append(f"Coders: {', '.join(report.coders)}; units coded: {report.units}")
    out.append("")
    out += _table(header, rows, fmt)
    out.append("")
    note = (
        "Units = units coded by at least two coders (overall: unit x code items). "
        "Kappa bands (Landis & Koch 1977): <0 poor, 0-0.20 slight, 0.21-0.40 fair, "
        "0.41-0.60 moderate, 0.61-0.80 substantial, 0.81-1 almost perfect. "
        "Alpha bands (Krippendorff): >= 0.800 reliable, >= 0.667 tentative, below unreliable."
    )
    out.append(f"_{note}_" if md else note)
    out.append("")

    dis = report.disagreements
    n = len(dis)
    shown = dis.head(max(0, max_disagreements))
    heading = f"Disagreements ({n})" if len(shown) == n else f"Disagreements (first {len(shown)} of {n})"
    out.append(f"### {heading}" if md else heading)
    out.append("")
    if n == 0:
        out.append("None: every coder who coded a unit agreed on every code.")
    elif len(shown):
        dheader = ["unit_id", "code_id", *report.coders]
        drows = [[_fmt_cell(r[c]) for c in dheader] for r in shown.to_dict("records")]
        out += _table(dheader, drows, fmt)
        out.append("")
        out.append("1 = applied, 0 = not applied, - = did not code the unit")
    return "\n".join(out).rstrip() + "\n"
