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

Rare codes: kappa and alpha are 0 at 99% agreement
--------------------------------------------------
Kappa and alpha divide by the disagreement expected by chance, which vanishes when a
code is almost never applied: one disagreement in 100 units and no agreed
application gives kappa = alpha = 0 at 99% agreement (Feinstein & Cicchetti's
"paradox"). Two coefficients that stay near the percent agreement are reported next
to them:

* **Gwet's AC1** (Gwet 2008, *Br J Math Stat Psychol* 61:29-48; Gwet 2014,
  *Handbook of Inter-Rater Reliability*, 4th ed., ch. 2-5) -- any number of coders,
  missing values allowed, with Gwet's handling of missing data: the observed
  agreement ``pa`` is taken over units coded by at least two coders, the category
  shares ``pi_k`` over units coded by at least one, ``pe = sum_k pi_k (1 - pi_k) /
  (q - 1)`` with ``q = 2`` categories (applied / not applied) for every code, and
  ``AC1 = (pa - pe) / (1 - pe)``. A code nobody applied therefore has AC1 = 1 (the
  coders agree it is absent), where kappa and alpha are undefined.
* **PABAK**, the prevalence- and bias-adjusted kappa (Byrt, Bishop & Carlin 1993,
  *J Clin Epidemiol* 46:423-9), ``2 * po - 1`` for two coders over the units both
  coded; reported only for exactly two coders.

AC1 and PABAK use the Landis & Koch bands of kappa (as Wongpakaran et al. 2013,
*BMC Med Res Methodol* 13:61, do for AC1).

Confidence intervals
--------------------
Kappa, alpha and AC1 get percentile bootstrap confidence intervals (Efron &
Tibshirani 1993, ch. 13): units are drawn with replacement (``resamples`` times,
default 1,000, from a ``numpy`` generator seeded with ``seed``, default 0, so the
same data and seed give the same intervals), every statistic is recomputed on each
resample -- per code and overall from the *same* resamples, so the overall row
keeps the codes of a unit together -- and the interval is the ``(1 - confidence) /
2`` and ``(1 + confidence) / 2`` quantiles of the recomputed values. Resamples in
which a statistic is undefined (e.g. a rare code that no drawn unit carries) are left
out; :attr:`ConfidenceInterval.resamples` says how many counted.

The bootstrap is vectorised: every statistic here is a ratio of sums over units of
per-unit counts, so a resample is a vector of unit weights (how often each unit was
drawn) and all resamples of all codes are one matrix product.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import PostkitError
from ..io import spreadsheet_safe

REQUIRED_COLUMNS: tuple[str, ...] = ("unit_id", "coder", "code_id", "applied")

#: code_id of the :attr:`AgreementReport.overall` row.
OVERALL_CODE_ID = "(all codes)"
#: Name of the pseudo-coder used by :func:`suggestion_agreement`.
RULES_CODER = "rules"

BAND_ONE_CATEGORY = "undefined (one category)"
BAND_NO_SHARED = "undefined (no units coded by two coders)"
BAND_UNDEFINED = "undefined"
BAND_KAPPA_NOT_TWO = "n/a (kappa needs exactly 2 coders)"
BAND_PABAK_NOT_TWO = "n/a (PABAK needs exactly 2 coders)"

#: Bootstrap defaults: 1,000 percentile resamples over units, seed 0 (reproducible by default).
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
DEFAULT_CONFIDENCE = 0.95
#: Upper bound on resamples x units weights held in memory at once (about 32 MB of float64).
_BOOTSTRAP_CELLS = 4_000_000

#: Alpha thresholds (Krippendorff 2004: rely on >= .800, tentative conclusions >= .667).
ALPHA_RELIABLE = 0.800
ALPHA_TENTATIVE = 0.667

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


@dataclass(frozen=True)
class ConfidenceInterval:
    """A percentile bootstrap interval; ``resamples`` counts the resamples in which
    the statistic was defined (those the quantiles were taken over)."""

    low: float
    high: float
    resamples: int


@dataclass(frozen=True)
class BootstrapSettings:
    """How the confidence intervals of an :class:`AgreementReport` were made."""

    resamples: int
    seed: int | None
    confidence: float
    method: str = "percentile"
    resampled: str = "units"


@dataclass
class CodeAgreement:
    """Agreement on one code (or, for the overall row, on all (unit, code) items).

    ``units`` counts the units (items) coded by at least two coders; ``coders`` the
    coders who coded at least one of them. The ``*_ci`` fields are None when no
    bootstrap was asked for or the statistic itself is undefined.
    """

    code_id: str
    units: int
    percent_agreement: float | None
    cohen_kappa: float | None
    krippendorff_alpha: float | None
    kappa_band: str
    alpha_band: str
    gwet_ac1: float | None = None
    ac1_band: str = BAND_UNDEFINED
    pabak: float | None = None
    pabak_band: str = BAND_UNDEFINED
    coders: int = 0
    kappa_ci: ConfidenceInterval | None = None
    alpha_ci: ConfidenceInterval | None = None
    ac1_ci: ConfidenceInterval | None = None


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
    bootstrap: BootstrapSettings | None = None


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


# Gwet's AC1 is written out here on purpose. The one maintained Python implementation,
# irrCAC 0.4.4 (PyPI, no licence declared in its metadata), pins scipy==1.12.0 and
# pandas<3 and pulls in coverage<7 at run time, which conflicts with postkit's pandas 3 and
# scipy 1.17; the GPL-3 `agreement` package cannot ship inside MIT postkit and drops
# missing data. The formula is four lines and is tested against the worked examples
# printed in the README of Gwet's own R package irrCAC (Gwet 2014, Handbook, 4th ed.).


def _ac1_from_counts(counts: np.ndarray) -> tuple[float | None, str]:
    """AC1 from a units x categories matrix of how many coders chose each category."""
    counts = np.asarray(counts, dtype=float)
    q = counts.shape[1]
    r = counts.sum(axis=1)
    pairable = r >= 2
    if not pairable.any():
        return None, BAND_NO_SHARED
    if q < 2:
        return None, BAND_ONE_CATEGORY
    c2 = counts[pairable]
    r2 = r[pairable]
    pa = float(np.mean((c2 * (c2 - 1)).sum(axis=1) / (r2 * (r2 - 1))))
    rated = r >= 1
    pi = (counts[rated] / r[rated, None]).mean(axis=0)
    pe = float((pi * (1 - pi)).sum() / (q - 1))
    ac1 = min((pa - pe) / (1 - pe), 1.0)  # min: float noise above 1
    return ac1, interpret_kappa(ac1)


def gwet_ac1(reliability_data: Any, categories: Sequence[float] | None = None) -> tuple[float | None, str]:
    """Gwet's AC1 (nominal) of a coders x units matrix (NaN = missing); returns ``(ac1, band)``.

    ``categories`` is the scale, i.e. what ``q`` counts: by default the values that
    occur; pass ``(0, 1)`` for a binary code, so that a code only ever rated 0 still
    has two categories (AC1 = percent agreement = 1 when all agree). Units rated by a
    single coder count towards the category shares but not the observed agreement
    (Gwet 2014). AC1 is None when no unit has two ratings or the scale has one category.
    """
    m = np.asarray(reliability_data, dtype=float)
    if m.ndim != 2:
        raise ValueError("reliability data must be a 2-D coders x units matrix")
    seen = np.unique(m[~np.isnan(m)])
    cats = seen if categories is None else np.unique(np.asarray(list(categories), dtype=float))
    if np.setdiff1d(seen, cats).size:
        raise ValueError("the data hold values that are not among the categories")
    counts = np.stack([(m == c).sum(axis=0) for c in cats], axis=1) if cats.size else np.zeros((m.shape[1], 0))
    return _ac1_from_counts(counts)


def pabak(a: Sequence[float], b: Sequence[float], n_categories: int = 2) -> tuple[float | None, str]:
    """Prevalence- and bias-adjusted kappa of two rating vectors (NaN = missing).

    ``(q * po - 1) / (q - 1)`` over the positions both rated (Byrt et al. 1993), which
    is ``2 * po - 1`` for a binary code. None when nothing is shared.
    """
    if n_categories < 2:
        raise ValueError("PABAK needs at least two categories")
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    both = ~np.isnan(x) & ~np.isnan(y)
    if not both.any():
        return None, BAND_NO_SHARED
    po = float(np.mean(x[both] == y[both]))
    value = (n_categories * po - 1) / (n_categories - 1)
    return value, interpret_kappa(value)


# ---------------------------------------------------------- vectorised core
#
# Every statistic of a binary code is a ratio of sums over units of per-unit terms.
# _unit_terms computes the terms once; a bootstrap resample is then a weight per unit
# (how often it was drawn) and the resampled sums of all codes are one matrix product.

_T_PAIRABLE, _T_AGREE, _T_PA, _T_RATED, _T_SHARE1, _T_N0, _T_N1, _T_DIS, _T_A1, _T_B1 = range(10)
_N_TERMS = 10


def _unit_terms(values: np.ndarray) -> np.ndarray:
    """values[coder, unit, code] (NaN / 0 / 1) -> terms[unit, term, code]."""
    n_coders = values.shape[0]
    present = ~np.isnan(values)
    r = present.sum(axis=0).astype(float)
    r1 = np.nansum(values, axis=0)
    r0 = r - r1
    pairable = r >= 2
    rated = r >= 1
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = [
            pairable,
            pairable & ((r0 == 0) | (r1 == 0)),
            # Gwet's observed agreement of the unit: agreeing ordered coder pairs / all pairs.
            np.where(pairable, (r1 * (r1 - 1) + r0 * (r0 - 1)) / (r * (r - 1)), 0.0),
            rated,
            np.where(rated, r1 / r, 0.0),
            # Krippendorff: pairable values and the unit's disagreeing coincidences o01 + o10.
            np.where(pairable, r0, 0.0),
            np.where(pairable, r1, 0.0),
            np.where(pairable, 2 * r0 * r1 / (r - 1), 0.0),
        ]
    if n_coders == 2:
        terms += [pairable & (values[0] == 1), pairable & (values[1] == 1)]
    else:
        terms += [np.zeros_like(pairable), np.zeros_like(pairable)]
    return np.stack([np.asarray(t, dtype=float) for t in terms], axis=1)


def _coefficients(sums: np.ndarray, two_coders: bool) -> dict[str, np.ndarray]:
    """Statistics from summed terms (``sums[..., term]``); NaN where undefined."""
    s = np.moveaxis(np.asarray(sums, dtype=float), -1, 0)
    n2 = s[_T_PAIRABLE]
    with np.errstate(divide="ignore", invalid="ignore"):
        po = np.where(n2 > 0, s[_T_AGREE] / n2, np.nan)
        pa = np.where(n2 > 0, s[_T_PA] / n2, np.nan)
        pi1 = np.where(s[_T_RATED] > 0, s[_T_SHARE1] / s[_T_RATED], np.nan)
        pe = 2 * pi1 * (1 - pi1)  # sum_k pi_k (1 - pi_k) / (q - 1) with q = 2
        ac1 = (pa - pe) / (1 - pe)
        n0, n1 = s[_T_N0], s[_T_N1]
        both = n0 * n1
        alpha = np.where(both > 0, 1 - (n0 + n1 - 1) * s[_T_DIS] / (2 * both), np.nan)
        if two_coders:
            p_a = s[_T_A1] / n2
            p_b = s[_T_B1] / n2
            pe_k = p_a * p_b + (1 - p_a) * (1 - p_b)
            kappa = np.where((n2 > 0) & (1 - pe_k > 1e-12), (po - pe_k) / (1 - pe_k), np.nan)
            pabak_ = 2 * po - 1
        else:
            kappa = np.full_like(po, np.nan)
            pabak_ = np.full_like(po, np.nan)
    return {"percent": po, "kappa": kappa, "alpha": alpha, "ac1": ac1, "pabak": pabak_}


def _bootstrap_replicates(terms: np.ndarray, two_coders: bool, resamples: int,
                          seed: int | None) -> dict[str, np.ndarray]:
    """Kappa, alpha and AC1 on ``resamples`` resamples of the units (rows of ``terms``).

    ``terms`` is ``[unit, term, column]``; returns ``{statistic: [resample, column]}``.
    Resamples are drawn in blocks so the weight matrix stays small for big studies.
    """
    n_units, n_terms, n_cols = terms.shape
    flat = terms.reshape(n_units, n_terms * n_cols)
    rng = np.random.default_rng(seed)
    block = max(1, _BOOTSTRAP_CELLS // max(1, n_units))
    out: dict[str, list[np.ndarray]] = {"kappa": [], "alpha": [], "ac1": []}
    done = 0
    while done < resamples:
        b = min(block, resamples - done)
        drawn = rng.integers(0, n_units, size=(b, n_units))
        weights = np.bincount((drawn + (np.arange(b) * n_units)[:, None]).ravel(),
                              minlength=b * n_units).reshape(b, n_units).astype(float)
        stats = _coefficients((weights @ flat).reshape(b, n_terms, n_cols).transpose(0, 2, 1), two_coders)
        for name in out:
            out[name].append(stats[name])
        done += b
    return {name: np.concatenate(parts, axis=0) for name, parts in out.items()}


def _interval(replicates: np.ndarray, confidence: float) -> ConfidenceInterval | None:
    ok = replicates[np.isfinite(replicates)]
    if ok.size == 0:
        return None
    tail = (1 - confidence) / 2
    low, high = np.quantile(ok, [tail, 1 - tail])
    return ConfidenceInterval(low=min(float(low), 1.0), high=min(float(high), 1.0), resamples=int(ok.size))


def _finite(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else min(x, 1.0)


def _stats(code_id: str, m: np.ndarray, point: dict[str, float]) -> CodeAgreement:
    """One row: percent agreement, kappa and alpha (sklearn, krippendorff) and AC1 and
    PABAK from ``point`` (the vectorised core on all units)."""
    pa, n = _percent_agreement(m)
    two = m.shape[0] == 2
    if two:
        kappa, kappa_band = cohen_kappa(m[0], m[1])
    else:
        kappa, kappa_band = None, BAND_KAPPA_NOT_TWO
    alpha, alpha_band = krippendorff_alpha_nominal(m)
    ac1 = _finite(point["ac1"]) if n else None
    pabak_ = _finite(point["pabak"]) if n and two else None
    pairable = (~np.isnan(m)).sum(axis=0) >= 2
    return CodeAgreement(
        code_id=code_id,
        units=n,
        percent_agreement=pa,
        cohen_kappa=kappa,
        krippendorff_alpha=alpha,
        kappa_band=kappa_band,
        alpha_band=alpha_band,
        gwet_ac1=ac1,
        ac1_band=interpret_kappa(ac1) if ac1 is not None else BAND_NO_SHARED,
        pabak=pabak_,
        pabak_band=(interpret_kappa(pabak_) if pabak_ is not None
                    else BAND_PABAK_NOT_TWO if not two else BAND_NO_SHARED),
        coders=int((~np.isnan(m[:, pairable])).any(axis=1).sum()),
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
        f"'applied' must be true/false, got a {type(value).__name__} value that is neither",
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


def _check_bootstrap(resamples: int, seed: int | None, confidence: float) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 0:
        raise PostkitError(
            "the number of bootstrap resamples must be a whole number of at least 0",
            fix=f"use e.g. {DEFAULT_RESAMPLES} (0 leaves the confidence intervals out)",
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise PostkitError(
            "the bootstrap seed must be a whole number of at least 0 (or None)",
            fix=f"use e.g. {DEFAULT_SEED}",
        )
    if not isinstance(confidence, (int, float)) or not 0 < float(confidence) < 1:
        raise PostkitError(
            "the confidence level must lie strictly between 0 and 1",
            fix=f"use e.g. {DEFAULT_CONFIDENCE} for 95% intervals",
        )


def agreement(
    codings: pd.DataFrame,
    coders: Sequence[str] | None = None,
    codes: Sequence[str] | None = None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int | None = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
) -> AgreementReport:
    """Inter-coder agreement per code and overall.

    ``coders`` picks (and orders) the coders to compare; by default every coder in
    the data. ``codes`` picks (and orders) the codes to report; by default every
    code that the selected coders used. A listed code nobody applied is still
    reported (as a single-category, undefined code), so passing the whole codebook
    shows codes that were never used.

    ``resamples`` bootstrap resamples of the units (0: none) give percentile
    confidence intervals at level ``confidence`` for kappa, alpha and AC1. The
    default ``seed`` is fixed, so a report is reproducible unless another seed (or
    None, fresh randomness) is passed.
    """
    _check_bootstrap(resamples, seed, confidence)
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

    # terms[unit, term, column]: one column per code, the last (their sum) for the overall row.
    terms = _unit_terms(values)
    terms = np.concatenate([terms, terms.sum(axis=2, keepdims=True)], axis=2)
    two = len(coder_list) == 2
    point = _coefficients(terms.sum(axis=0).T, two)
    col = lambda j: {name: float(v[j]) for name, v in point.items()}  # noqa: E731

    per_code = [_stats(code, values[:, :, k], col(k)) for code, k in k_index.items()]
    # Overall: items are (unit, code) pairs, unit-major.
    flat = values.reshape(len(coder_list), len(units) * len(code_list))
    overall = _stats(OVERALL_CODE_ID, flat, col(len(code_list)))

    settings = None
    if resamples:
        settings = BootstrapSettings(resamples=int(resamples), seed=seed, confidence=float(confidence))
        reps = _bootstrap_replicates(terms, two, int(resamples), seed)
        for j, row in enumerate([*per_code, overall]):
            if row.cohen_kappa is not None:
                row.kappa_ci = _interval(reps["kappa"][:, j], settings.confidence)
            if row.krippendorff_alpha is not None:
                row.alpha_ci = _interval(reps["alpha"][:, j], settings.confidence)
            if row.gwet_ac1 is not None:
                row.ac1_ci = _interval(reps["ac1"][:, j], settings.confidence)

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
        bootstrap=settings,
    )


def suggestion_agreement(
    codings: pd.DataFrame,
    suggestions: pd.DataFrame,
    codes: Sequence[str] | None = None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int | None = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[str, AgreementReport]:
    """Agreement of each human coder with rule-based code suggestions.

    ``suggestions`` has columns ``unit_id, code_id`` (one row per suggested code;
    an optional ``applied`` column is honoured). The suggestions act as a
    pseudo-coder named ``"rules"`` that coded every unit it has a row for or that
    any human coded. Returns ``{coder: AgreementReport(coders=[coder, "rules"])}``;
    every report covers the same codes (``codes``, or every code used by a human or
    suggested). ``resamples``, ``seed`` and ``confidence`` are as for :func:`agreement`.
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
    return {c: agreement(combined, coders=[c, RULES_CODER], codes=codes, resamples=resamples,
                         seed=seed, confidence=confidence) for c in coders}


# ------------------------------------------------------------------ rendering

#: ``--format`` values :func:`render_agreement` accepts.
FORMATS: tuple[str, ...] = ("text", "markdown", "json", "csv")

#: Columns of one statistics row in JSON and CSV (CSV puts ``comparison`` and ``coders`` first).
ROW_FIELDS: tuple[str, ...] = (
    "code_id", "n_units", "n_coders", "percent_agreement",
    "cohen_kappa", "kappa_ci_low", "kappa_ci_high", "kappa_ci_resamples", "kappa_band",
    "krippendorff_alpha", "alpha_ci_low", "alpha_ci_high", "alpha_ci_resamples", "alpha_band",
    "gwet_ac1", "ac1_ci_low", "ac1_ci_high", "ac1_ci_resamples", "ac1_band",
    "pabak", "pabak_band",
)
CSV_FIELDS: tuple[str, ...] = ("comparison", "coders", *ROW_FIELDS)


def _fmt_num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _fmt_pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _fmt_cell(x: Any) -> str:
    return "-" if _is_missing(x) else str(x)


def _fmt_ci(x: float | None, ci: ConfidenceInterval | None, with_ci: bool) -> str:
    if not with_ci or x is None:
        return _fmt_num(x)
    return f"{x:.3f} [{ci.low:.3f}, {ci.high:.3f}]" if ci is not None else f"{x:.3f} [n/a]"


def _plain(x: Any) -> Any:
    """numpy scalars -> Python ones, so json and csv write plain numbers and strings."""
    return x.item() if isinstance(x, np.generic) else x


def _json_default(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else str(x)


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


def row_dict(ca: CodeAgreement) -> dict[str, Any]:
    """One statistics row as a flat dict with the keys :data:`ROW_FIELDS` (None = undefined)."""

    def ci(c: ConfidenceInterval | None) -> tuple[float | None, float | None, int | None]:
        return (None, None, None) if c is None else (c.low, c.high, c.resamples)

    k_lo, k_hi, k_n = ci(ca.kappa_ci)
    a_lo, a_hi, a_n = ci(ca.alpha_ci)
    g_lo, g_hi, g_n = ci(ca.ac1_ci)
    return {
        "code_id": ca.code_id, "n_units": ca.units, "n_coders": ca.coders,
        "percent_agreement": ca.percent_agreement,
        "cohen_kappa": ca.cohen_kappa, "kappa_ci_low": k_lo, "kappa_ci_high": k_hi,
        "kappa_ci_resamples": k_n, "kappa_band": ca.kappa_band,
        "krippendorff_alpha": ca.krippendorff_alpha, "alpha_ci_low": a_lo, "alpha_ci_high": a_hi,
        "alpha_ci_resamples": a_n, "alpha_band": ca.alpha_band,
        "gwet_ac1": ca.gwet_ac1, "ac1_ci_low": g_lo, "ac1_ci_high": g_hi,
        "ac1_ci_resamples": g_n, "ac1_band": ca.ac1_band,
        "pabak": ca.pabak, "pabak_band": ca.pabak_band,
    }


def report_dict(report: AgreementReport, max_disagreements: int | None = None) -> dict[str, Any]:
    """The whole report as plain data: coders, unit count, bootstrap settings, one
    row per code, the overall row and the disagreements (the first
    ``max_disagreements``; all when None; ``disagreements_total`` counts them all)."""
    dis = report.disagreements
    shown = dis if max_disagreements is None else dis.head(max(0, max_disagreements))
    listed = [{k: _plain(v) for k, v in r.items()} for r in shown.to_dict("records")]
    boot = report.bootstrap
    return {
        "coders": list(report.coders),
        "n_coders": len(report.coders),
        "n_units": report.units,
        "bootstrap": None if boot is None else {
            "method": boot.method, "resampled": boot.resampled, "resamples": boot.resamples,
            "seed": boot.seed, "confidence": boot.confidence,
        },
        "per_code": [row_dict(c) for c in report.per_code],
        "overall": row_dict(report.overall),
        "disagreements_total": int(len(dis)),
        "disagreements": listed,
    }


def _render_json(report: AgreementReport, max_disagreements: int,
                 versus_rules: dict[str, AgreementReport] | None) -> str:
    data = report_dict(report, max_disagreements)
    if versus_rules is not None:
        data["versus_suggestions"] = {
            coder: {k: v for k, v in report_dict(r, 0).items() if not k.startswith("disagreements")}
            for coder, r in versus_rules.items()
        }
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False, default=_json_default) + "\n"


def _render_csv(report: AgreementReport, versus_rules: dict[str, AgreementReport] | None) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS), lineterminator="\n")
    writer.writeheader()
    reports = [("coders", report)] + [("suggestions", r) for r in (versus_rules or {}).values()]
    for comparison, rep in reports:
        for ca in [*rep.per_code, rep.overall]:
            row = {k: ("" if v is None else spreadsheet_safe(_plain(v))) for k, v in row_dict(ca).items()}
            writer.writerow({"comparison": comparison, "coders": spreadsheet_safe(";".join(rep.coders)), **row})
    return buf.getvalue()


def _versus_lines(versus_rules: dict[str, AgreementReport]) -> list[str]:
    out = []
    for coder, rep in versus_rules.items():
        o = rep.overall
        out.append("")
        out.append(f"Rule suggestions vs {coder}: kappa {_fmt_num(o.cohen_kappa).replace('n/a', 'undefined')} "
                   f"({o.kappa_band}), alpha {_fmt_num(o.krippendorff_alpha).replace('n/a', 'undefined')} "
                   f"({o.alpha_band}), AC1 {_fmt_num(o.gwet_ac1).replace('n/a', 'undefined')} ({o.ac1_band})")
    return out


def render_agreement(
    report: AgreementReport,
    fmt: str = "text",
    max_disagreements: int = 20,
    versus_rules: dict[str, AgreementReport] | None = None,
) -> str:
    """The agreement report in ``fmt``.

    ``text`` and ``markdown``: one row per code and the overall row with each
    statistic, its confidence interval and interpretation band, then the first
    ``max_disagreements`` disagreements. ``json``: :func:`report_dict`, plus
    ``versus_suggestions`` (per coder, the report against the rule suggestions) when
    ``versus_rules`` is given. ``csv``: one row per code and comparison with the
    columns :data:`CSV_FIELDS` (``comparison`` is ``coders`` or ``suggestions``;
    empty cells are undefined statistics).
    """
    if fmt not in FORMATS:
        raise PostkitError(f"unknown format {fmt!r}", fix=f"use one of {', '.join(FORMATS)}")
    if fmt == "json":
        return _render_json(report, max_disagreements, versus_rules)
    if fmt == "csv":
        return _render_csv(report, versus_rules)
    md = fmt == "markdown"
    boot = report.bootstrap
    with_ci = boot is not None
    level = f" [{100 * boot.confidence:g}% CI]" if with_ci else ""
    header = ["code", "units", "% agreement", f"kappa{level}", "kappa band", f"alpha{level}", "alpha band",
              f"AC1{level}", "AC1 band", "PABAK"]

    def row(ca: CodeAgreement, label: str | None = None) -> list[str]:
        return [
            label or ca.code_id,
            str(ca.units),
            _fmt_pct(ca.percent_agreement),
            _fmt_ci(ca.cohen_kappa, ca.kappa_ci, with_ci),
            ca.kappa_band,
            _fmt_ci(ca.krippendorff_alpha, ca.alpha_ci, with_ci),
            ca.alpha_band,
            _fmt_ci(ca.gwet_ac1, ca.ac1_ci, with_ci),
            ca.ac1_band,
            _fmt_num(ca.pabak),
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
        "Alpha bands (Krippendorff): >= 0.800 reliable, >= 0.667 tentative, below unreliable. "
        "AC1 = Gwet's AC1 (Gwet 2008), which unlike kappa and alpha stays near the percent "
        "agreement on rarely applied codes; PABAK = prevalence- and bias-adjusted kappa, "
        "2 x agreement - 1 (two coders only); both use the kappa bands."
    )
    if with_ci:
        note += (
            f" CI = percentile bootstrap over units, {boot.resamples:,} resamples, seed {boot.seed}; "
            "resamples in which a statistic is undefined are left out."
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
    if versus_rules:
        out += _versus_lines(versus_rules)
    return "\n".join(out).rstrip() + "\n"
