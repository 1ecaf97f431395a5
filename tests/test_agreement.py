"""Inter-coder agreement (postkit.coding.agreement), checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from postkit.coding.agreement import (
    BAND_KAPPA_NOT_TWO,
    BAND_ONE_CATEGORY,
    OVERALL_CODE_ID,
    AgreementReport,
    agreement,
    cohen_kappa,
    interpret_alpha,
    interpret_kappa,
    krippendorff_alpha_nominal,
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
