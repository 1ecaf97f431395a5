"""Inter-coder agreement (postkit.coding.agreement), checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from postkit.coding.agreement import (
    BAND_KAPPA_NOT_TWO,
    BAND_ONE_CATEGORY,
    BAND_PABAK_NOT_TWO,
    CSV_FIELDS,
    OVERALL_CODE_ID,
    ROW_FIELDS,
    AgreementReport,
    _bootstrap_replicates,
    _coefficients,
    _unit_terms,
    agreement,
    cohen_kappa,
    gwet_ac1,
    interpret_alpha,
    interpret_kappa,
    krippendorff_alpha_nominal,
    pabak,
    render_agreement,
    suggestion_agreement,
)
from postkit.errors import PostkitError

NAN = np.nan


def rows(spec: dict[str, dict], code_ids=None) -> pd.DataFrame:
    """Build codings from {coder: {unit: set_of_applied_codes}}.

    A unit listed with an empty set was coded with nothing applied (one
    applied=False row); a unit not listed was not coded by that coder.
    """
    out = []
    for coder, units in spec.items():
        for unit, applied in units.items():
            if not applied:
                out.append({"unit_id": unit, "coder": coder, "code_id": (code_ids or ["X"])[0], "applied": False})
            for code in applied:
                out.append({"unit_id": unit, "coder": coder, "code_id": code, "applied": True})
    return pd.DataFrame(out, columns=["unit_id", "coder", "code_id", "applied"])


def by_code(report: AgreementReport) -> dict[str, object]:
    return {c.code_id: c for c in report.per_code}


# ---------------------------------------------------------------- textbook examples


def classic_kappa_codings() -> pd.DataFrame:
    # 50 units, one code "C":      B yes   B no
    #                     A yes     a=20    b=5
    #                     A no      c=10    d=15
    a_yes = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b_yes = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    out = []
    for i, (x, y) in enumerate(zip(a_yes, b_yes)):
        out.append({"unit_id": f"u{i:02d}", "coder": "A", "code_id": "C", "applied": bool(x)})
        out.append({"unit_id": f"u{i:02d}", "coder": "B", "code_id": "C", "applied": bool(y)})
    return pd.DataFrame(out)


def test_cohen_kappa_classic_2x2():
    # po = (a + d) / n = (20 + 15) / 50 = 0.70
    # A says yes 25/50 = 0.5, B says yes 30/50 = 0.6
    # pe = 0.5*0.6 + 0.5*0.4 = 0.30 + 0.20 = 0.50
    # kappa = (po - pe) / (1 - pe) = (0.70 - 0.50) / 0.50 = 0.40
    report = agreement(classic_kappa_codings())
    c = by_code(report)["C"]
    assert c.units == 50
    assert c.cohen_kappa == pytest.approx(0.40)
    assert c.kappa_band == "fair"
    assert c.percent_agreement == pytest.approx(0.70)
    # With one code the overall row is the same variable.
    assert report.overall.cohen_kappa == pytest.approx(0.40)
    assert report.overall.code_id == OVERALL_CODE_ID
    assert len(report.disagreements) == 15  # b + c


def test_krippendorff_2011_nominal_example():
    # Krippendorff (2011) "Computing Krippendorff's Alpha-Reliability", nominal
    # example: 4 observers x 12 units, values 1-5, '.' = missing; alpha = 0.743.
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],  # A
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],  # B
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],  # C
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],  # D
    ]
    alpha, band = krippendorff_alpha_nominal(data)
    assert alpha == pytest.approx(0.743, abs=5e-4)
    assert band == "tentative"


def three_coder_codings() -> pd.DataFrame:
    # code "X" (1 applied, 0 not, . not coded):
    #         u1 u2 u3 u4 u5
    #   A      1  1  0  .  1
    #   B      1  0  0  1  .
    #   C      1  .  0  1  .
    # u5 is coded by A only: not pairable, left out of everything.
    return rows(
        {
            "A": {"u1": {"X"}, "u2": {"X"}, "u3": set(), "u5": {"X"}},
            "B": {"u1": {"X"}, "u2": set(), "u3": set(), "u4": {"X"}},
            "C": {"u1": {"X"}, "u3": set(), "u4": {"X"}},
        }
    )


def test_three_coders_with_missing_data_hand_computed():
    # Krippendorff coincidences (each ordered pair within unit u counts 1/(m_u - 1)):
    #   u1: 1,1,1 -> o11 += 6/2 = 3     u2: 1,0 -> o10 += 1, o01 += 1
    #   u3: 0,0,0 -> o00 += 3           u4: 1,1 -> o11 += 2
    #   n0 = 3 + 1 = 4, n1 = 1 + 5 = 6, n = 10
    #   Do = (o01 + o10) / n = 2/10 = 0.2
    #   De = 2 * n0 * n1 / (n (n - 1)) = 48/90
    #   alpha = 1 - 0.2 / (48/90) = 1 - 0.375 = 0.625
    # Percent agreement: u1, u3, u4 agree, u2 does not -> 3/4 = 0.75.
    report = agreement(three_coder_codings())
    assert report.coders == ["A", "B", "C"]
    assert report.units == 5
    x = by_code(report)["X"]
    assert x.units == 4
    assert x.percent_agreement == pytest.approx(0.75)
    assert x.krippendorff_alpha == pytest.approx(0.625)
    assert x.alpha_band == "unreliable"
    assert x.cohen_kappa is None  # three coders: no Cohen's kappa
    assert x.kappa_band == BAND_KAPPA_NOT_TWO


def test_percent_agreement_by_hand_two_codes():
    # Two coders, two codes, four units.
    #            code P      code Q
    #           A   B       A   B
    #   u1      1   1       0   0     P agree, Q agree
    #   u2      1   0       1   1     P differ, Q agree
    #   u3      0   0       0   1     P agree, Q differ
    #   u4      0   0       0   0     agree, agree
    # P: 3/4 = 0.75; Q: 3/4 = 0.75; overall 8 items, 6 agree -> 0.75.
    codings = rows(
        {
            "A": {"u1": {"P"}, "u2": {"P", "Q"}, "u3": set(), "u4": set()},
            "B": {"u1": {"P"}, "u2": {"Q"}, "u3": {"Q"}, "u4": set()},
        },
        code_ids=["P"],
    )
    report = agreement(codings)
    got = by_code(report)
    assert list(got) == ["P", "Q"]
    assert got["P"].percent_agreement == pytest.approx(0.75)
    assert got["Q"].percent_agreement == pytest.approx(0.75)
    assert report.overall.units == 8
    assert report.overall.percent_agreement == pytest.approx(6 / 8)
    # Overall kappa over the 8 flattened items:
    #   A: 1 0 1 1 0 0 0 0   B: 1 0 0 1 0 1 0 0  (u1P u1Q u2P u2Q u3P u3Q u4P u4Q)
    #   po = 6/8 = .75; pA(1) = 3/8, pB(1) = 3/8; pe = 9/64 + 25/64 = 34/64
    #   kappa = (.75 - 34/64) / (1 - 34/64) = (14/64) / (30/64) = 7/15
    assert report.overall.cohen_kappa == pytest.approx(7 / 15)


# ---------------------------------------------------------------- behaviour


def test_missing_units_only_shared_units_count_for_kappa():
    # A coded u1..u4; B coded u1..u3 only. u4 (A applied X) must not count as a
    # disagreement nor enter kappa.
    codings = rows(
        {
            "A": {"u1": {"X"}, "u2": set(), "u3": {"X"}, "u4": {"X"}},
            "B": {"u1": {"X"}, "u2": set(), "u3": set()},
        }
    )
    report = agreement(codings)
    x = by_code(report)["X"]
    assert report.units == 4
    assert x.units == 3
    assert x.percent_agreement == pytest.approx(2 / 3)
    # shared: A = 1 0 1, B = 1 0 0 -> po = 2/3, pA = 2/3, pB = 1/3,
    # pe = 2/9 + 2/9 = 4/9, kappa = (6/9 - 4/9) / (5/9) = 0.4
    assert x.cohen_kappa == pytest.approx(0.4)
    dis = report.disagreements
    assert dis[["unit_id", "code_id", "A", "B"]].values.tolist() == [["u3", "X", 1, 0]]


def test_degenerate_single_category_code_is_none_not_nan():
    # Both coders applied X everywhere; Y (from the codebook) was never applied.
    codings = rows(
        {
            "A": {"u1": {"X"}, "u2": {"X"}},
            "B": {"u1": {"X"}, "u2": {"X"}},
        }
    )
    report = agreement(codings, codes=["X", "Y"])
    for code in ("X", "Y"):
        c = by_code(report)[code]
        assert c.percent_agreement == pytest.approx(1.0)
        assert c.cohen_kappa is None and c.krippendorff_alpha is None
        assert c.kappa_band == BAND_ONE_CATEGORY
        assert c.alpha_band == BAND_ONE_CATEGORY
    # Overall has both categories (X=1, Y=0) and perfect agreement.
    assert report.overall.cohen_kappa == pytest.approx(1.0)
    assert report.overall.krippendorff_alpha == pytest.approx(1.0)
    assert report.disagreements.empty
    text = render_agreement(report)
    assert "nan" not in text.lower()
    assert BAND_ONE_CATEGORY in text


def test_no_shared_units():
    codings = rows({"A": {"u1": {"X"}}, "B": {"u2": set()}})
    x = by_code(agreement(codings))["X"]
    assert x.units == 0
    assert x.percent_agreement is None
    assert x.cohen_kappa is None and x.krippendorff_alpha is None
    assert x.kappa_band.startswith("undefined") and x.alpha_band.startswith("undefined")


def test_fewer_than_two_coders_is_a_postkit_error():
    codings = rows({"A": {"u1": {"X"}, "u2": set()}})
    with pytest.raises(PostkitError) as err:
        agreement(codings)
    assert "two coders" in str(err.value)
    assert err.value.fix
    with pytest.raises(PostkitError):
        agreement(three_coder_codings(), coders=["A"])
    with pytest.raises(PostkitError, match="'Z'"):
        agreement(three_coder_codings(), coders=["A", "Z"])


def test_bad_input_is_a_postkit_error():
    with pytest.raises(PostkitError, match="applied"):
        agreement(pd.DataFrame({"unit_id": [1], "coder": ["A"], "code_id": ["X"]}))
    bad = pd.DataFrame({"unit_id": [1, 1], "coder": ["A", "B"], "code_id": ["X", "X"], "applied": [True, "maybe"]})
    with pytest.raises(PostkitError) as err:
        agreement(bad)
    assert err.value.row == 2 and err.value.column == "applied"
    with pytest.raises(PostkitError):
        agreement(pd.DataFrame(columns=["unit_id", "coder", "code_id", "applied"]))


def test_applied_accepts_strings_and_ints():
    df = pd.DataFrame(
        {
            "unit_id": [1, 1, 2, 2],
            "coder": ["A", "B", "A", "B"],
            "code_id": ["X"] * 4,
            "applied": ["true", "TRUE", 0, "no"],
        }
    )
    x = by_code(agreement(df))["X"]
    assert x.percent_agreement == 1.0
    assert x.cohen_kappa == pytest.approx(1.0)


def test_subset_of_coders_gives_kappa():
    report = agreement(three_coder_codings(), coders=["B", "C"])
    assert report.coders == ["B", "C"]
    x = by_code(report)["X"]
    # B and C share u1, u3, u4: all agree with both categories -> kappa 1.
    assert x.units == 3
    assert x.cohen_kappa == pytest.approx(1.0)
    assert x.kappa_band == "almost perfect"


@pytest.mark.parametrize(
    "k, band",
    [
        (-0.01, "poor"),
        (0.0, "slight"),
        (0.20, "slight"),
        (0.21, "fair"),
        (0.40, "fair"),
        (0.41, "moderate"),
        (0.60, "moderate"),
        (0.1 + 0.2 + 0.3, "moderate"),  # 0.6000000000000001: float noise, still moderate
        (0.61, "substantial"),
        (0.80, "substantial"),
        (0.81, "almost perfect"),
        (1.0, "almost perfect"),
        (None, "undefined"),
        (math.nan, "undefined"),
    ],
)
def test_interpret_kappa_boundaries(k, band):
    assert interpret_kappa(k) == band


@pytest.mark.parametrize(
    "a, band",
    [
        (1.0, "reliable"),
        (0.800, "reliable"),
        (0.7999, "tentative"),
        (0.667, "tentative"),
        (0.6669, "unreliable"),
        (-0.2, "unreliable"),
        (None, "undefined"),
    ],
)
def test_interpret_alpha_boundaries(a, band):
    assert interpret_alpha(a) == band


def test_cohen_kappa_helper_ignores_missing():
    k, band = cohen_kappa([1, 0, 1, NAN], [1, 0, 0, 1])
    # shared 1 0 1 vs 1 0 0 -> 0.4 (as in test_missing_units_only_shared_units_count_for_kappa)
    assert k == pytest.approx(0.4)
    assert band == "fair"


def test_disagreements_listing_with_missing_coder():
    report = agreement(three_coder_codings())
    dis = report.disagreements
    assert list(dis.columns) == ["unit_id", "code_id", "A", "B", "C"]
    assert len(dis) == 1
    row = dis.iloc[0]
    assert (row["unit_id"], row["code_id"], row["A"], row["B"]) == ("u2", "X", 1, 0)
    assert row["C"] is None


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_render_contains_codes_bands_and_disagreements(fmt):
    codings = rows(
        {
            "A": {"u1": {"P"}, "u2": {"P", "Q"}, "u3": set(), "u4": set()},
            "B": {"u1": {"P"}, "u2": {"Q"}, "u3": {"Q"}, "u4": set()},
        },
        code_ids=["P"],
    )
    report = agreement(codings)
    out = render_agreement(report, fmt=fmt, max_disagreements=1)
    for needle in ("P", "Q", "overall" if fmt == "markdown" else "OVERALL", "75.0%", "u2"):
        assert needle in out
    for c in report.per_code + [report.overall]:
        assert c.kappa_band in out and c.alpha_band in out
    assert "first 1 of 2" in out
    assert "u3" not in out.split("Disagreements")[1]  # only the first one is listed
    if fmt == "markdown":
        assert "| code |" in out and "|---|" in out
    with pytest.raises(PostkitError):
        render_agreement(report, fmt="html")


def test_suggestion_agreement():
    codings = rows(
        {
            "A": {"u1": {"X"}, "u2": set(), "u3": {"X", "Y"}},
            "B": {"u1": {"X"}, "u2": {"X"}},
        }
    )
    # Rules suggest X on u1 and u2, Y on u3, and X on u9 (a unit no human coded).
    suggestions = pd.DataFrame({"unit_id": ["u1", "u2", "u3", "u9"], "code_id": ["X", "X", "Y", "X"]})
    reports = suggestion_agreement(codings, suggestions)
    assert set(reports) == {"A", "B"}
    a = reports["A"]
    assert a.coders == ["A", "rules"]
    # A vs rules on u1..u3 (u9 missing for A):
    #   X: A 1 0 1, rules 1 1 0 -> 1/3 agree
    #   Y: A 0 0 1, rules 0 0 1 -> 3/3 agree
    got = by_code(a)
    assert list(got) == ["X", "Y"]
    assert got["X"].units == 3
    assert got["X"].percent_agreement == pytest.approx(1 / 3)
    assert got["Y"].percent_agreement == pytest.approx(1.0)
    assert got["Y"].cohen_kappa == pytest.approx(1.0)
    b = by_code(reports["B"])
    # B coded u1, u2: X 1 1 vs rules 1 1 -> one category; Y 0 0 vs 0 0 -> one category.
    assert b["X"].percent_agreement == 1.0 and b["X"].cohen_kappa is None
    assert b["Y"].units == 2
    # rules "coded" u3 even for B's report, but B did not: u3 is missing for B.
    assert reports["B"].units == 4  # u1, u2, u3 (rules), u9 (rules)

    with pytest.raises(PostkitError):
        suggestion_agreement(rows({"rules": {"u1": {"X"}}, "A": {"u1": set()}}), suggestions)


def test_suggestion_agreement_unit_coded_by_human_without_suggestion():
    # Rules suggest nothing for u2, but a human coded it: rules count as "not applied".
    codings = rows({"A": {"u1": {"X"}, "u2": {"X"}}})
    suggestions = pd.DataFrame({"unit_id": ["u1"], "code_id": ["X"]})
    a = suggestion_agreement(codings, suggestions)["A"]
    x = by_code(a)["X"]
    assert x.units == 2
    assert x.percent_agreement == pytest.approx(0.5)
    assert a.disagreements[["unit_id", "A", "rules"]].values.tolist() == [["u2", 1, 0]]


# ---------------------------------------------------------------- Gwet's AC1 and PABAK
#
# Textbook values: the worked examples of Gwet (2014), Handbook of Inter-Rater
# Reliability, 4th ed., as printed (with their R output) in the README of Gwet's own R
# package irrCAC (github.com/kgwet/irrCAC): cont3x3abstractors, distrib.6raters and
# cac.raw4raters.


def test_gwet_ac1_textbook_raw_ratings_with_missing_data():
    # cac.raw4raters: 4 raters x 12 units, categories 1-5, no rater rated every unit.
    # gwet.ac1.raw: pa = 0.8181818, pe = 0.1903212, AC1 = 0.77544. Units rated by one
    # rater (unit 12) count in pe but not in pa.
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, NAN],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, 3],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
    ac1, band = gwet_ac1(data)
    assert ac1 == pytest.approx(0.77544, abs=5e-6)
    assert band == "substantial"
    # pe alone: (0.8181818 - pe) / (1 - pe) = AC1  <=>  pe = (pa - AC1) / (1 - AC1)
    assert (0.8181818 - ac1) / (1 - ac1) == pytest.approx(0.1903212, abs=1e-6)


def contingency_to_ratings(table):
    a, b = [], []
    for i, row in enumerate(table):
        for j, n in enumerate(row):
            a += [i] * n
            b += [j] * n
    return a, b


def test_gwet_ac1_textbook_contingency_table():
    # cont3x3abstractors (rows: abstractor 1, columns: abstractor 2; Ectopic, AIU, NIU):
    # Cohen's kappa 0.7964094, Krippendorff's alpha 0.7972585, Gwet's AC1 0.8493305,
    # Brennan-Prediger 0.835 (= PABAK for 3 categories), percent agreement 0.89.
    a, b = contingency_to_ratings([[13, 0, 0], [0, 20, 7], [0, 4, 56]])
    assert gwet_ac1([a, b])[0] == pytest.approx(0.8493305, abs=5e-8)
    assert cohen_kappa(a, b)[0] == pytest.approx(0.7964094, abs=5e-8)
    assert krippendorff_alpha_nominal([a, b])[0] == pytest.approx(0.7972585, abs=5e-8)
    assert pabak(a, b, n_categories=3)[0] == pytest.approx(0.835)
    # By hand: pi = (26, 51, 123) / 200 = (.13, .255, .615);
    # pe = (.13 * .87 + .255 * .745 + .615 * .385) / 2 = .269925; (.89 - pe) / (1 - pe).
    assert gwet_ac1([a, b])[0] == pytest.approx((0.89 - 0.269925) / (1 - 0.269925))


def test_gwet_ac1_textbook_six_raters():
    # distrib.6raters: 6 psychiatrists x 15 patients, 5 diagnoses, given as how many
    # raters chose each diagnosis; gwet.ac1.dist: AC1 0.4448007 (pa 0.5511111, pe 0.1914815).
    dist = [[0, 0, 0, 6, 0], [0, 3, 0, 0, 3], [0, 1, 4, 0, 1], [0, 0, 0, 0, 6], [0, 3, 0, 3, 0],
            [2, 0, 4, 0, 0], [0, 0, 4, 0, 2], [2, 0, 3, 1, 0], [2, 0, 0, 4, 0], [0, 0, 0, 0, 6],
            [1, 0, 0, 5, 0], [1, 1, 0, 4, 0], [0, 3, 3, 0, 0], [1, 0, 0, 5, 0], [0, 2, 0, 3, 1]]
    # AC1 treats raters as exchangeable, so any assignment of ratings to raters will do.
    raw = np.array([[k for k, n in enumerate(row) for _ in range(n)] for row in dist]).T
    assert raw.shape == (6, 15)
    assert gwet_ac1(raw)[0] == pytest.approx(0.4448007, abs=5e-8)


def test_gwet_ac1_binary_with_missing_data_hand_computed():
    # three_coder_codings, code X (r = coders who coded the unit, r1 = of them applied):
    #   u1 r=3 r1=3   u2 r=2 r1=1   u3 r=3 r1=0   u4 r=2 r1=2   u5 r=1 r1=1 (A only)
    #   pa = mean over u1..u4 of agreeing pairs / pairs = (1 + 0 + 1 + 1) / 4 = 0.75
    #   pi1 = mean over u1..u5 of r1 / r = (1 + .5 + 0 + 1 + 1) / 5 = 0.7
    #   pe = 2 * .7 * .3 = 0.42; AC1 = (.75 - .42) / (1 - .42) = .33 / .58
    x = by_code(agreement(three_coder_codings()))["X"]
    assert x.gwet_ac1 == pytest.approx(0.33 / 0.58)
    assert x.ac1_band == "moderate"
    assert x.pabak is None and x.pabak_band == BAND_PABAK_NOT_TWO  # three coders
    assert x.coders == 3
    assert gwet_ac1([[1, 1, 0, NAN, 1], [1, 0, 0, 1, NAN], [1, NAN, 0, 1, NAN]], categories=(0, 1))[0] == \
        pytest.approx(0.33 / 0.58)


def test_ac1_is_high_where_kappa_is_zero_on_a_rare_code():
    # 100 units; A applies the rare code R to one unit, B to none: 99% agreement.
    #   kappa: po = .99, pA = .01, pB = 0 -> pe = .99 -> kappa = 0
    #   alpha: n1 = 1, n0 = 199 -> Do = De = .01 -> alpha = 0
    #   AC1: pi1 = (.01 + 0) / 2 = .005, pe = 2 * .005 * .995 = .00995,
    #        AC1 = (.99 - .00995) / (1 - .00995) = 0.989899...
    #   PABAK = 2 * .99 - 1 = 0.98
    out = []
    for i in range(100):
        out.append({"unit_id": i, "coder": "A", "code_id": "R", "applied": i == 0})
        out.append({"unit_id": i, "coder": "B", "code_id": "R", "applied": False})
    r = by_code(agreement(pd.DataFrame(out)))["R"]
    assert r.percent_agreement == pytest.approx(0.99)
    assert r.cohen_kappa == pytest.approx(0.0, abs=1e-12)
    assert r.krippendorff_alpha == pytest.approx(0.0, abs=1e-12)
    assert r.gwet_ac1 == pytest.approx((0.99 - 0.00995) / (1 - 0.00995))
    assert r.gwet_ac1 > 0.98 and r.ac1_band == "almost perfect"
    assert r.pabak == pytest.approx(0.98) and r.pabak_band == "almost perfect"


def test_code_nobody_applied_has_ac1_one_while_kappa_is_undefined():
    codings = rows({"A": {"u1": {"X"}, "u2": {"X"}}, "B": {"u1": {"X"}, "u2": {"X"}}})
    y = by_code(agreement(codings, codes=["X", "Y"]))["Y"]
    assert y.cohen_kappa is None and y.kappa_band == BAND_ONE_CATEGORY
    # Two categories on the scale (applied / not): pi1 = 0, pe = 0, AC1 = pa = 1.
    assert y.gwet_ac1 == pytest.approx(1.0) and y.pabak == pytest.approx(1.0)
    assert y.ac1_ci is not None and (y.ac1_ci.low, y.ac1_ci.high) == (1.0, 1.0)
    assert y.kappa_ci is None and y.alpha_ci is None


def test_pabak_two_coders_is_two_po_minus_one():
    report = agreement(classic_kappa_codings())
    c = by_code(report)["C"]
    assert c.pabak == pytest.approx(2 * 0.70 - 1)
    assert pabak([1, 0, NAN], [1, 1, 0]) == (pytest.approx(0.0), "slight")
    assert pabak([NAN], [1])[0] is None


def test_no_shared_units_ac1_undefined():
    x = by_code(agreement(rows({"A": {"u1": {"X"}}, "B": {"u2": set()}})))["X"]
    assert x.gwet_ac1 is None and x.ac1_ci is None and x.ac1_band.startswith("undefined")
    assert x.pabak is None


def random_values(rng, n_coders, n_units, n_codes, missing=0.2):
    values = (rng.random((n_coders, n_units, n_codes)) < rng.random(n_codes)).astype(float)
    values[rng.random((n_coders, n_units)) < missing, :] = np.nan
    return values


@pytest.mark.parametrize("n_coders", [2, 3, 4])
def test_vectorised_statistics_equal_the_libraries(n_coders):
    # The bootstrap recomputes kappa and alpha from per-unit sums; with every unit
    # counted once they must equal sklearn's kappa, the krippendorff package's alpha and
    # gwet_ac1, including missing data and undefined cases.
    rng = np.random.default_rng(n_coders)
    for _ in range(40):
        values = random_values(rng, n_coders, int(rng.integers(2, 30)), 3)
        got = _coefficients(_unit_terms(values).sum(axis=0).T, n_coders == 2)
        for k in range(values.shape[2]):
            m = values[:, :, k]
            checks = [("alpha", krippendorff_alpha_nominal(m)[0]), ("ac1", gwet_ac1(m, (0, 1))[0])]
            if n_coders == 2:
                checks.append(("kappa", cohen_kappa(m[0], m[1])[0]))
            for name, expected in checks:
                if expected is None:
                    assert np.isnan(got[name][k]), name
                else:
                    assert got[name][k] == pytest.approx(expected, abs=1e-9), name


def test_bootstrap_equals_recomputing_on_resampled_units():
    # A resample draws units with replacement; each statistic, per code and overall
    # (all codes of a drawn unit together), is recomputed on the drawn units.
    rng = np.random.default_rng(11)
    values = random_values(rng, 2, 25, 3, missing=0.1)
    terms = _unit_terms(values)
    terms = np.concatenate([terms, terms.sum(axis=2, keepdims=True)], axis=2)
    reps = _bootstrap_replicates(terms, True, 6, seed=5)
    drawn = np.random.default_rng(5).integers(0, 25, size=(6, 25))
    for b in range(6):
        sample = values[:, drawn[b], :]
        columns = [sample[:, :, k] for k in range(3)] + [sample.reshape(2, -1)]
        for j, m in enumerate(columns):
            for name, (expected, _) in (("kappa", cohen_kappa(m[0], m[1])), ("alpha", krippendorff_alpha_nominal(m)),
                                        ("ac1", gwet_ac1(m, (0, 1)))):
                if expected is None:
                    assert np.isnan(reps[name][b, j])
                else:
                    assert reps[name][b, j] == pytest.approx(expected, abs=1e-9)


def bootstrap_codings(seed=3, n_units=80):
    rng = np.random.default_rng(seed)
    out = []
    for u in range(n_units):
        truth = rng.random(3) < [0.4, 0.2, 0.05]
        for coder in ("A", "B"):
            applied = truth ^ (rng.random(3) < 0.08)
            out.append({"unit_id": f"u{u:03d}", "coder": coder, "code_id": "P", "applied": bool(applied[0])})
            out += [{"unit_id": f"u{u:03d}", "coder": coder, "code_id": c, "applied": True}
                    for c, a in zip(("Q", "R"), applied[1:]) if a]
    return pd.DataFrame(out)


def intervals(report):
    return [(c.kappa_ci, c.alpha_ci, c.ac1_ci) for c in [*report.per_code, report.overall]]


def test_bootstrap_ci_contains_the_estimate_and_is_reproducible_with_a_seed():
    codings = bootstrap_codings()
    report = agreement(codings, seed=42)
    assert report.bootstrap.resamples == 1000 and report.bootstrap.seed == 42
    assert report.bootstrap.confidence == 0.95 and report.bootstrap.method == "percentile"
    for c in [*report.per_code, report.overall]:
        for value, ci in ((c.cohen_kappa, c.kappa_ci), (c.krippendorff_alpha, c.alpha_ci), (c.gwet_ac1, c.ac1_ci)):
            assert value is not None and ci is not None, c.code_id
            assert ci.low <= value <= ci.high, (c.code_id, value, ci)
            assert ci.low < ci.high and 0 < ci.resamples <= 1000
    assert report.overall.ac1_ci.resamples == 1000
    # Same seed, same intervals; another seed, other intervals; default seed is fixed.
    assert intervals(agreement(codings, seed=42)) == intervals(report)
    assert intervals(agreement(codings, seed=43)) != intervals(report)
    assert intervals(agreement(codings)) == intervals(agreement(codings))
    # A narrower level gives a narrower interval inside the wider one.
    narrow = agreement(codings, seed=42, confidence=0.5).overall.kappa_ci
    wide = report.overall.kappa_ci
    assert wide.low < narrow.low < narrow.high < wide.high


def test_no_bootstrap_when_resamples_is_zero():
    report = agreement(bootstrap_codings(), resamples=0)
    assert report.bootstrap is None
    assert all(ci is None for trio in intervals(report) for ci in trio)
    text = render_agreement(report)
    assert "CI" not in text and "bootstrap" not in text


@pytest.mark.parametrize("kwargs", [{"resamples": -1}, {"resamples": 2.5}, {"confidence": 1.0},
                                    {"confidence": 0}, {"seed": -1}, {"seed": "x"}])
def test_bad_bootstrap_settings_are_postkit_errors(kwargs):
    with pytest.raises(PostkitError) as err:
        agreement(bootstrap_codings(n_units=5), **kwargs)
    assert err.value.fix


def test_bootstrap_is_fast_on_a_study_sized_table():
    # 400 units x 40 codes x 2 coders, 1,000 resamples: vectorised, well under a few seconds.
    import time

    rng = np.random.default_rng(0)
    out = []
    for u in range(400):
        for coder in ("A", "B"):
            out.append({"unit_id": u, "coder": coder, "code_id": "C00", "applied": False})
            out += [{"unit_id": u, "coder": coder, "code_id": f"C{k:02d}", "applied": True}
                    for k in np.flatnonzero(rng.random(40) < 0.05)]
    codings = pd.DataFrame(out)
    agreement(codings, resamples=0)  # warm up imports
    start = time.perf_counter()
    report = agreement(codings)
    assert time.perf_counter() - start < 5
    assert len(report.per_code) == 40 and report.overall.ac1_ci.resamples == 1000


def test_render_shows_ac1_pabak_and_intervals():
    report = agreement(bootstrap_codings(), seed=1)
    text = render_agreement(report)
    header = text.splitlines()[4]
    for column in ("kappa [95% CI]", "alpha [95% CI]", "AC1 [95% CI]", "AC1 band", "PABAK"):
        assert column in header
    o = report.overall
    assert f"{o.gwet_ac1:.3f} [{o.ac1_ci.low:.3f}, {o.ac1_ci.high:.3f}]" in text
    assert f"{o.cohen_kappa:.3f} [{o.kappa_ci.low:.3f}, {o.kappa_ci.high:.3f}]" in text
    assert "1,000 resamples, seed 1" in text
    md = render_agreement(report, fmt="markdown")
    assert "| AC1 [95% CI] |" in md
    three = render_agreement(agreement(three_coder_codings()))
    assert "n/a" in three.splitlines()[6]  # PABAK of code X with three coders


def test_json_and_csv_renderings_hold_every_statistic():
    import csv
    import io
    import json

    report = agreement(bootstrap_codings(), seed=9)
    data = json.loads(render_agreement(report, fmt="json", max_disagreements=2))
    assert data["coders"] == ["A", "B"] and data["n_coders"] == 2 and data["n_units"] == 80
    assert data["bootstrap"] == {"method": "percentile", "resampled": "units", "resamples": 1000,
                                 "seed": 9, "confidence": 0.95}
    assert [r["code_id"] for r in data["per_code"]] == ["P", "Q", "R"]
    assert all(tuple(r) == ROW_FIELDS for r in [*data["per_code"], data["overall"]])
    assert data["overall"]["gwet_ac1"] == report.overall.gwet_ac1
    assert data["overall"]["kappa_ci_low"] == report.overall.kappa_ci.low
    assert data["disagreements_total"] == len(report.disagreements)
    assert len(data["disagreements"]) == 2 and set(data["disagreements"][0]) == {"unit_id", "code_id", "A", "B"}

    table = list(csv.DictReader(io.StringIO(render_agreement(report, fmt="csv"))))
    assert tuple(table[0]) == CSV_FIELDS
    assert [r["code_id"] for r in table] == ["P", "Q", "R", OVERALL_CODE_ID]
    assert {r["comparison"] for r in table} == {"coders"} and table[0]["coders"] == "A;B"
    assert float(table[3]["ac1_ci_high"]) == report.overall.ac1_ci.high
    three = list(csv.DictReader(io.StringIO(render_agreement(agreement(three_coder_codings()), fmt="csv"))))
    assert three[0]["cohen_kappa"] == "" and three[0]["kappa_band"] == BAND_KAPPA_NOT_TWO


# ---------------------------------------------------------------- CLI: --json / --csv


def write_sheet(path, decisions):
    pd.DataFrame([{"unit_id": u, "code_id": c, "decision": d} for (u, c), d in decisions.items()]).to_csv(
        path, index=False)


@pytest.fixture
def two_sheets(tmp_path):
    alice, bob = tmp_path / "alice.csv", tmp_path / "bob.csv"
    a, b = {}, {}
    for i in range(30):
        a[(f"u{i}", "SE-C1")] = "accept" if i % 3 == 0 else "reject"
        b[(f"u{i}", "SE-C1")] = "accept" if i % 3 == 0 or i == 1 else "reject"
        a[(f"u{i}", "CS-C4")] = "accept" if i == 5 else "reject"  # rare code
        b[(f"u{i}", "CS-C4")] = "reject"
    write_sheet(alice, a)
    write_sheet(bob, b)
    return alice, bob


def run_cli(*args):
    from click.testing import CliRunner

    from postkit.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_json_output(two_sheets):
    import json

    result = run_cli("agreement", *two_sheets, "--coders", "alice,bob", "--json", "--seed", "3")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["n_coders"] == 2 and data["n_units"] == 30 and data["bootstrap"]["seed"] == 3
    rows_ = {r["code_id"]: r for r in data["per_code"]}
    rare = rows_["CS-C4"]
    assert rare["n_units"] == 30 and rare["n_coders"] == 2
    assert rare["cohen_kappa"] == pytest.approx(0.0, abs=1e-12) and rare["gwet_ac1"] > 0.95
    assert rare["ac1_ci_low"] <= rare["gwet_ac1"] <= rare["ac1_ci_high"]
    assert "versus_suggestions" not in data  # sheets: no rule suggestions to compare with
    # Reproducible through the CLI too, and --format json is the same as --json.
    again = run_cli("agreement", *two_sheets, "--coders", "alice,bob", "--format", "json", "--seed", "3")
    assert again.output == result.output


def test_cli_csv_output_and_options(two_sheets):
    import csv
    import io

    result = run_cli("agreement", *two_sheets, "--coders", "alice,bob", "--csv", "--resamples", "200",
                     "--confidence", "0.9")
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.output)))
    assert tuple(table[0]) == CSV_FIELDS
    assert [r["code_id"] for r in table] == ["CS-C4", "SE-C1", OVERALL_CODE_ID]
    assert {r["n_units"] for r in table[:2]} == {"30"} and {r["n_coders"] for r in table} == {"2"}
    assert int(table[2]["ac1_ci_resamples"]) == 200
    assert all(r["pabak"] for r in table)
    no_ci = run_cli("agreement", *two_sheets, "--coders", "alice,bob", "--csv", "--resamples", "0")
    assert list(csv.DictReader(io.StringIO(no_ci.output)))[2]["kappa_ci_low"] == ""
    clash = run_cli("agreement", *two_sheets, "--coders", "alice,bob", "--json", "--csv")
    assert clash.exit_code == 2 and "one output format" in clash.output


def test_cli_text_keeps_bands_and_adds_ac1(two_sheets):
    result = run_cli("agreement", *two_sheets, "--coders", "alice,bob")
    assert result.exit_code == 0, result.output
    assert "AC1 [95% CI]" in result.output and "almost perfect" in result.output
    assert "Disagreements (2)" in result.output


def test_cli_json_from_a_store_includes_agreement_with_suggestions(tmp_path):
    import json

    from postkit.coding.store import CodingStore

    path = tmp_path / "coding.sqlite"
    with CodingStore(path) as store:
        store.add_excerpts([{"unit_id": f"u{i}", "post_id": f"p{i}", "forum": "Robin", "text": f"post {i}",
                             "start": 0, "end": 6} for i in range(8)])
        store.add_suggestions([{"unit_id": f"u{i}", "code_id": "SE-C1", "score": 0.8, "evidence": []}
                               for i in range(8)], codebook_version="v1")
        for i in range(8):
            store.decide(f"u{i}", "SE-C1", "alice", "accept" if i < 5 else "reject")
            store.decide(f"u{i}", "SE-C1", "bob", "accept" if i < 4 else "reject")
    result = run_cli("agreement", path, "--coders", "alice,bob", "--json", "--resamples", "100")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["overall"]["percent_agreement"] == pytest.approx(7 / 8)
    versus = data["versus_suggestions"]
    assert set(versus) == {"alice", "bob"} and versus["alice"]["coders"] == ["alice", "rules"]
    assert versus["alice"]["overall"]["percent_agreement"] == pytest.approx(5 / 8)
    assert versus["alice"]["bootstrap"]["resamples"] == 100
    text = run_cli("agreement", path, "--coders", "alice,bob", "--resamples", "0")
    assert "Rule suggestions vs alice: kappa" in text.output and "AC1" in text.output.split("vs alice")[1]


def test_agreement_csv_never_hands_a_spreadsheet_a_formula():
    """Coder names and code ids come from people; in CSV they must open as text, not run."""
    from postkit.coding.agreement import agreement, render_agreement

    codings = pd.DataFrame(
        [{"unit_id": f"u{i}", "code_id": "=HYPERLINK(1)", "coder": coder, "applied": (i + j) % 2 == 0}
         for i in range(6) for j, coder in enumerate(["@ann", "bob"])])
    text = render_agreement(agreement(codings), fmt="csv")
    assert "'=HYPERLINK(1)" in text and "'@ann" in text
    assert ",=HYPERLINK" not in text and ",@ann" not in text
