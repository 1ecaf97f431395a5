"""The HTML sampling report: a well-formed, self-contained, escaped page, and its chart arithmetic."""

from __future__ import annotations

import html
import os
import random
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from postkit.report.sampling import (
    Bin,
    count_into,
    fmt_pct,
    funnel_chart,
    funnel_rows,
    histogram,
    make_bins,
    nice_ceiling,
    render_sampling_report,
    reproduce_command,
    step_labels,
    write_sampling_report,
)

FORUMS = [("Robin", 344), ("Magpie", 192), ("Jay", 980), ("Wren", 121), ("Kingfisher", 6200),
          ("Nightingale", 75), ("Łabędź / Swan 🦢", 510)]


def make_report(forums=FORUMS, per_stratum: int = 120, seed: int = 7, cap: int = 2000) -> dict:
    """A self-consistent report, built the way the sampling stage builds it.

    Half of each stratum's phrase posts (at most ``cap``, to keep tests fast) are eligible.
    """
    rng = random.Random(seed)
    funnel, eligible, sampled = [], [], []
    for name, total in forums:
        phrase = total // 4
        words = [31 + int(rng.lognormvariate(3.6, 0.8)) for _ in range(min(phrase // 2, cap))]
        sample = words[:per_stratum]
        eligible += words
        sampled += sample
        funnel.append({"stratum": name, "total": total, "phrase": phrase, "length": len(words),
                       "sampled": len(sample), "short": len(words) < per_stratum})
    totals = {k: sum(r[k] for r in funnel) for k in ("total", "phrase", "length", "sampled")}
    return {
        "title": "Sample of 'thank you for' posts",
        "created_at": "2026-11-21T06:20:00Z",
        "postkit_version": "0.1.0",
        "input": {"path": "posts.parquet", "sha256": "a" * 64, "rows": totals["total"]},
        "output": {"path": "sample.parquet", "sha256": "b" * 64, "rows": totals["sampled"]},
        "seed": 2024,
        "phrases": ["thank you for"],
        "min_words": 30,
        "per_stratum": per_stratum,
        "by": ["forum"],
        "word_definition": "a word is a whitespace-separated token containing at least one letter or digit",
        "sampling_method": "keyed hash (HMAC-SHA256, key = seed) of post_id; the N smallest keys per stratum",
        "funnel": funnel,
        "totals": totals,
        "word_counts": {"eligible": eligible, "sampled": sampled},
    }


def empty_report() -> dict:
    report = make_report(forums=[])
    assert report["funnel"] == [] and report["word_counts"] == {"eligible": [], "sampled": []}
    return report


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
BLOCK = {"details", "div", "dl", "figure", "h1", "h2", "p", "pre", "section", "table", "ul"}


class TagChecker(HTMLParser):
    """Every element opened is closed, in order; no block element inside <p> (browsers split it)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.seen: set[str] = set()
        self.doctype = ""
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value) of src / href attributes

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs) -> None:
        self.seen.add(tag)
        self.links += [(tag, name, value or "") for name, value in attrs
                       if name in ("src", "href", "xlink:href")]
        if tag in BLOCK and "p" in self.stack:
            self.errors.append(f"<{tag}> inside <p>")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def check_well_formed(page: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.doctype.lower() == "doctype html"
    assert not checker.errors, checker.errors[:5]
    assert not checker.stack, f"left open: {checker.stack}"
    return checker


def assert_self_contained(page: str) -> None:
    assert not re.search(r"https?://", page)
    assert "<script" not in page.lower()
    assert not re.search(r"<link\b", page, re.I)
    assert not re.search(r"@import|@font-face", page, re.I)
    for tag, name, value in check_well_formed(page).links:
        assert value.startswith("data:") or (name == "href" and value.startswith("#")), (tag, name, value)
    for match in re.finditer(r"url\(\s*([^)]*)\)", page):
        assert match.group(1).startswith("#"), match.group(0)  # only in-page SVG patterns


# --------------------------------------------------------------------------- the page

def test_typical_report_is_a_well_formed_self_contained_document():
    report = make_report()
    page = render_sampling_report(report)
    checker = check_well_formed(page)
    assert {"html", "head", "body", "table", "svg", "title"} <= checker.seen
    assert page.count("<svg") == 2  # funnel chart and histogram
    assert_self_contained(page)
    assert '<meta charset="utf-8">' in page
    for name, _ in FORUMS:
        assert html.escape(name) in page
    assert "2024" in page
    assert "thank you for" in page
    totals = report["totals"]
    for key in ("total", "phrase", "length", "sampled"):
        assert f"{totals[key]:,}" in page
    assert "more than 30 words" in page
    assert "This report does not add up" not in page  # the fixture is consistent


def test_header_shows_how_the_sample_was_drawn():
    report = make_report()
    page = render_sampling_report(report)
    assert report["word_definition"] in page
    assert html.escape(report["sampling_method"]) in page
    assert "N = 120" in page
    assert "posts.parquet" in page and "sample.parquet" in page
    assert "a" * 64 in page  # full hash available, not only the shortened one
    assert "a" * 12 + "…" in page
    assert "Created" in page and "2026-11-21T06:20:00Z" in page and "postkit 0.1.0" in page


def test_short_strata_are_flagged_in_table_and_chart():
    report = make_report()
    short = [r["stratum"] for r in report["funnel"] if r["short"]]
    assert short and len(short) < len(report["funnel"])
    page = render_sampling_report(report)
    assert page.count('<tr class="short">') == len(short)
    assert page.count("fewer than N = 120 eligible, all") == len(short)
    assert page.count("▲ short: all eligible taken") == len(short)  # chart labels
    assert page.count("fill: url(#funnel-chart-h") == len(short) + 1  # hatched bars + legend swatch
    assert f"{len(short)} of {len(report['funnel'])} strata had fewer than N = 120" in page


def test_stratum_names_and_phrases_are_escaped():
    report = make_report(forums=[("<script>alert(1)</script>", 500), ('Tom & "Jerry" <b>', 300)])
    report["phrases"] = ['thank you for <img src=x onerror=alert(1)>']
    page = render_sampling_report(report)
    check_well_formed(page)
    assert_self_contained(page)
    assert "<script" not in page.lower()
    assert "<img" not in page.lower() and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Tom &amp; &#34;Jerry&#34; &lt;b&gt;" in page


def test_empty_report_says_there_is_nothing_to_show():
    page = render_sampling_report(empty_report())
    check_well_formed(page)
    assert_self_contained(page)
    assert "<svg" not in page
    assert "no strata: the input had no posts" in page
    assert "No post was eligible" in page
    assert "This report does not add up" not in page


def test_zero_eligible_posts_keeps_the_funnel_but_no_histogram():
    report = make_report(forums=[("Robin", 40), ("Magpie", 10)])
    for row in report["funnel"]:
        row.update(length=0, sampled=0, short=True)
    report["totals"].update(length=0, sampled=0)
    report["output"]["rows"] = 0
    report["word_counts"] = {"eligible": [], "sampled": []}
    page = render_sampling_report(report)
    check_well_formed(page)
    assert page.count("<svg") == 1
    assert "No post was eligible" in page
    assert "This report does not add up" not in page


def test_single_stratum_and_no_stratification():
    report = make_report(forums=[("All posts", 900)])
    report["by"] = []
    page = render_sampling_report(report)
    check_well_formed(page)
    assert "in 1 stratum." in page
    assert "none (all posts form one stratum)" in page


def test_many_long_non_ascii_strata_and_huge_numbers():
    forums = [(f"Forum {i} — ünïcødé 日本語 " + "very long name " * 8, 2_000_000 + i)
              for i in range(35)]
    report = make_report(forums=forums, cap=200)
    page = render_sampling_report(report)
    check_well_formed(page)
    for name, _ in forums:
        assert html.escape(name) in page  # full names in the table (and chart tooltips)
    assert "2,000,034" in page
    assert "This report does not add up" not in page
    # chart titles are shortened to fit; the full names are in the table
    assert page.count("…</text>") >= 35


def test_inconsistent_report_is_called_out():
    report = make_report()
    report["totals"]["sampled"] += 1
    report["funnel"][0]["short"] = not report["funnel"][0]["short"]
    page = render_sampling_report(report)
    assert "This report does not add up" in page
    assert "Totals row: sampled" in page
    assert f"{report['funnel'][0]['stratum']}: marked" in page


def test_reproduce_command_is_built_from_the_report_and_quoted():
    report = make_report()
    assert reproduce_command(report) == ("postkit sample posts.parquet --output sample.parquet --seed 2024 "
                                         "--per-forum 120 --min-words 30 --phrase 'thank you for'")
    report.update(phrases=["thank you for", "thanks for"], by=["forum", "year"])
    report["input"]["path"] = "my posts.parquet"
    command = reproduce_command(report)
    assert "'my posts.parquet'" in command
    assert command.endswith("--phrase 'thank you for' --phrase 'thanks for' --by forum,year")  # as the CLI takes it
    assert str(escape(command)) in render_sampling_report(report)


# --------------------------------------------------------------------------- histogram arithmetic

def test_bins_start_after_min_words_and_counts_add_up():
    values = list(range(31, 131))  # 100 values, one per word count
    bins = make_bins(values, width=10, start=31, quantile=1.0)
    assert bins[0] == Bin(31, 41) and bins[0].label == "31–40"
    assert all(b.hi - b.lo == 10 for b in bins)
    counts = count_into(values, bins)
    assert sum(counts) == len(values)
    assert counts == [10] * 10
    assert not any(b.overflow for b in bins)


def test_long_tail_goes_into_an_overflow_bin():
    values = [40] * 990 + [5000] * 10  # 1% are very long
    hist = histogram(values, width=10, start=31, quantile=0.99)
    assert hist.bins[-1].overflow and hist.bins[-1].label.endswith("+")
    assert hist.counts[-1] == 10
    assert hist.total == len(values)
    assert len(hist.bins) == 2  # 31–40 and the overflow, not 500 empty bins


def test_wide_ranges_get_wider_bins_not_hundreds_of_bars():
    values = list(range(31, 3031))
    hist = histogram(values, width=10, start=31, quantile=1.0, max_bins=40)
    assert len(hist.bins) <= 41
    assert hist.bins[0].hi - hist.bins[0].lo in (100, 200, 250)  # a round width
    assert hist.total == len(values)


def test_values_below_start_move_the_first_bin_down():
    bins = make_bins([5, 35, 36], width=10, start=31, quantile=1.0)
    assert bins[0].lo == 1 and bins[0].lo <= 5
    assert sum(count_into([5, 35, 36], bins)) == 3


def test_empty_input_gives_no_bins():
    assert make_bins([]) == []
    assert count_into([], []) == []
    assert histogram([]).total == 0
    with pytest.raises(ValueError):
        count_into([40], [])


def test_single_value():
    hist = histogram([31], start=31)
    assert hist.bins == [Bin(31, 41)] and hist.counts == [1]


def test_hundred_thousand_values_are_binned_quickly():
    rng = random.Random(1)
    values = [31 + int(rng.lognormvariate(3.6, 0.9)) for _ in range(100_000)]
    hist = histogram(values, start=31)
    assert hist.total == 100_000
    assert hist.bins[-1].overflow
    assert 1_000 >= hist.counts[-1] > 0  # about 1% above the 99th percentile


# --------------------------------------------------------------------------- scales and chart geometry

def test_nice_numbers():
    assert [nice_ceiling(v) for v in (0, 0.3, 1, 3, 7, 12, 240, 6200)] == [1, 0.5, 1, 5, 10, 20, 250, 10000]


def test_percentages():
    assert fmt_pct(1, 3) == "33.3%"
    assert fmt_pct(0, 0) == "–"
    assert fmt_pct(1, 1_000_000) == "<0.1%"
    assert fmt_pct(5, 5) == "100%"
    assert fmt_pct(999_999, 1_000_000) == ">99.9%"
    assert fmt_pct(3, 2) == "150.0%"  # an inconsistent report is shown as it is


def test_funnel_chart_is_matplotlib_svg_with_every_stratum_and_count():
    report = make_report()
    rows = funnel_rows(report)
    chart = funnel_chart(rows, 120, step_labels(30))
    assert chart.startswith('<svg class="chart" role="img"') and chart.endswith("</svg>")
    assert_self_contained("<!DOCTYPE html>\n<html><body>" + str(chart) + "</body></html>")
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", chart)
    for row in rows:
        assert html.escape(row.stratum, quote=False) in " ".join(texts)
        for value in (row.total, row.phrase, row.length, row.sampled):
            assert any(t.startswith(f"{value:,}") for t in texts), (row.stratum, value)
    assert texts.count("N") == len(rows)  # one N mark per stratum
    assert funnel_chart([], 120, step_labels(30)) is None


def test_charts_are_deterministic_and_ids_are_unique_per_chart():
    report = make_report()
    assert render_sampling_report(report) == render_sampling_report(report)
    page = render_sampling_report(report)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    assert "xlink:href" not in page and "<style" not in page.split("</head>")[1]


# --------------------------------------------------------------------------- writing

def test_write_is_atomic_and_replaces_an_existing_report(tmp_path: Path):
    target = tmp_path / "sampling_report.html"
    target.write_text("old report", encoding="utf-8")
    write_sampling_report(make_report(), target)
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "Łabędź" in target.read_text(encoding="utf-8")  # written as UTF-8, not escaped away
    write_sampling_report(empty_report(), str(target))
    assert "no strata" in target.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sampling_report.html"]


def test_failed_write_leaves_the_old_report_and_no_temp_file(tmp_path: Path, monkeypatch):
    target = tmp_path / "sampling_report.html"
    target.write_text("old report", encoding="utf-8")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken_replace)  # the rename in postkit.io.publish
    with pytest.raises(OSError):
        write_sampling_report(make_report(), target)
    assert target.read_text(encoding="utf-8") == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["sampling_report.html"]


def test_render_error_writes_nothing(tmp_path: Path):
    target = tmp_path / "new.html"
    report = make_report()
    del report["seed"]
    with pytest.raises(KeyError):
        write_sampling_report(report, target)
    assert list(tmp_path.iterdir()) == []
    assert not os.path.exists(target)
