"""`postkit report RUN_DIR`: one self-contained page about a run, with no post text; and DATA.md.

A full run (consent, deid, sample, tag, disguise) is made once for the module, then two
coders' decisions and a quote approval are added to its store, as the review app would.
Faster tests use a consent + sample run, where the other stages did not run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CONSENT_CSV, POSTS_CSV, TEST_KEY

from postkit.cli import main
from postkit.errors import PostkitError
from postkit.hashing import sha256_path
from postkit.io import read_table
from postkit.report.data_dictionary import PASSED_THROUGH, build_data_dictionary
from postkit.report.run_report import build_report

FULL_STUDY = """\
[study]
name = "unit"

[inputs]
posts = "posts.csv"
consent = "consent.csv"

[pipeline]
stages = ["consent", "deid", "sample", "tag", "disguise"]

[consent]
as_of = "2025-01-01T00:00:00Z"

[deid]
spans = true

[sample]
per_forum = 2
min_words = 1
seed = 1
phrases = ["thank you", "post", "fine"]

[tag]
store = true

[disguise]
quotes_from_sample = 2
"""
SHORT_STUDY = FULL_STUDY.replace('"consent", "deid", "sample", "tag", "disguise"', '"consent", "sample"')
SECTIONS = ["consent", "audit", "deid", "sample", "coding", "disguise", "manifest"]
HEADINGS = ["Consent funnel", "Audit verification", "De-identification", "Sampling funnel and word counts",
            "Coding progress and agreement", "Disguise verdicts of quotes", "Manifest"]
# Words of the fixture posts (tests/conftest.py) that are neither forum names nor report vocabulary,
# and of texts written into the store below: none may reach the page.
POST_WORDS = ["listening", "helped", "rough", "withdrew", "nobody", "signals", "sadly", "wobbly"]
SECRET_APPROVED = "zephyrine"  # in the approved quote's text
SECRET_MEMO = "quixotically"  # in a coder's memo


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _make_run(folder: Path, study_text: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "posts.csv").write_text(POSTS_CSV, encoding="utf-8")
    (folder / "consent.csv").write_text(CONSENT_CSV, encoding="utf-8")
    (folder / "study.toml").write_text(study_text, encoding="utf-8")
    result = invoke("run", folder / "study.toml", "--output", folder / "run")
    assert result.exit_code == 0, result.output
    return folder / "run"


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    """A full run, with two coders' decisions and one approved quote in its store."""
    from postkit.coding.store import CodingStore

    base = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:  # the conftest key fixtures are per test; this is per module
        patch.setenv("POSTKIT_KEY_DIR", str(base / "keys"))
        patch.setenv("POSTKIT_PSEUDONYM_KEY", TEST_KEY)
        patch.setenv("POSTKIT_CACHE_DIR", str(base / "cache"))
        (base / "keys").mkdir()
        run = _make_run(base / "study", FULL_STUDY)
        with CodingStore(run / "tag" / "coding.sqlite") as store:
            units = store.excerpts()["unit_id"].tolist()
            assert len(units) >= 2
            for coder, actions in (("alice", ("accept", "reject")), ("bob", ("accept", "accept"))):
                for unit, action in zip(units, actions):
                    store.decide(unit, "SE-C1", coder, action, memo=f"{SECRET_MEMO} {coder}")
            quotes = [json.loads(line)["quote_id"] for line in
                      (run / "disguise" / "suggestions.jsonl").read_text().splitlines() if line.strip()]
            assert quotes
            store.add_review("quote", quotes[0], "carol", "approve", text=f"A {SECRET_APPROVED} rewording.",
                             scores={"verdict": "disguised", "source_rank": 40, "longest_shared_run": 2,
                                     "meaning_score": 0.81}, note=f"{SECRET_MEMO} note")
    return run


@pytest.fixture
def short_run(corpus) -> Path:
    (corpus["folder"] / "study.toml").write_text(SHORT_STUDY)
    result = invoke("run", corpus["folder"] / "study.toml", "--output", corpus["folder"].parent / "run")
    assert result.exit_code == 0, result.output
    return corpus["folder"].parent / "run"


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page, re.I), "an external URL"
    assert "<script" not in page.lower() and not re.search(r"<link\b", page, re.I)
    assert not re.search(r"@import|@font-face", page, re.I)
    for name, value in re.findall(r'\b(src|href|xlink:href)="([^"]*)"', page):
        assert name == "href" and value.startswith("#"), (name, value)
    for value in re.findall(r"url\(\s*([^)]*)\)", page):
        assert value.startswith("#"), value


# --------------------------------------------------------------------------- the full run


@pytest.mark.slow
def test_every_section_is_present_and_fine_on_a_full_run(full_run):
    report = build_report(full_run)
    assert [s.key for s in report.sections] == SECTIONS
    assert {s.key: s.status for s in report.sections} == dict.fromkeys(SECTIONS, "ok"), \
        [(s.key, s.problems) for s in report.sections if s.problems]
    consent = report.section("consent")
    assert consent.data["kept"] == 3 and consent.data["excluded"] == 8
    assert consent.data["by_forum_and_reason"]["Robin"]["OPTED_IN"] == 2
    assert sum(report.section("deid").data["entities"].values()) >= 0
    sample = report.section("sample")
    assert sample.data["totals"]["sampled"] == len(read_table(full_run / "sample" / "posts.parquet"))
    coding = report.section("coding")
    assert coding.data["progress"]["units_decided_by_coder"] == {"alice": 2, "bob": 2}
    assert coding.data["agreement"]["coders"] == ["alice", "bob"]
    assert coding.data["agreement"]["overall"]["percent_agreement"] == pytest.approx(0.5)
    disguise = report.section("disguise")
    assert disguise.data["statuses"]["approved"] == 1 and disguise.data["approved_verdicts"] == {"disguised": 1}
    audit = report.section("audit")
    assert any(c["what"] == "audit signature" and c["status"] == "ok" for c in audit.data["checks"])
    json.dumps(report.to_dict())  # plain data


@pytest.mark.slow
def test_page_is_self_contained_with_charts_from_matplotlib(full_run):
    page = build_report(full_run).render()
    assert_self_contained(page)
    for key, heading in zip(SECTIONS, HEADINGS):
        assert f'<section id="{key}"' in page and heading in page
    assert page.count('<svg class="chart"') >= 6
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "two elements share an id"
    assert "sha256:" in page  # the signing key's fingerprint is shown


@pytest.mark.slow
def test_no_post_quote_or_memo_text_reaches_the_page(full_run):
    page = build_report(full_run).render().lower()
    data = json.dumps(build_report(full_run).to_dict()).lower()
    for word in [*POST_WORDS, SECRET_APPROVED, SECRET_MEMO]:
        assert word not in page and word not in data, word
    # nor the quotes' own words (they are verbatim from the posts)
    for line in (full_run / "disguise" / "suggestions.jsonl").read_text().splitlines():
        text = json.loads(line)["text"]
        assert text.lower() not in page


@pytest.mark.slow
def test_cli_writes_the_page_and_json(full_run, tmp_path):
    out = tmp_path / "report.html"
    result = invoke("report", full_run, "--output", out)
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "Coding progress and agreement" in result.output and "problem" not in result.output
    result = invoke("report", full_run, "-o", out, "--json")
    assert result.exit_code == 0
    assert [s["key"] for s in json.loads(result.output)["sections"]] == SECTIONS


@pytest.mark.slow
def test_a_damaged_coding_store_and_an_edited_log_are_problems(full_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(full_run, run)
    for side in run.glob("tag/coding.sqlite-*"):
        side.unlink()
    (run / "tag" / "coding.sqlite").write_bytes(b"not a database")
    log = run / "consent" / "audit.jsonl"
    log.write_text(log.read_text().replace('"OPTED_OUT"', '"OPTED_IN"', 1))
    report = build_report(run)
    assert report.section("coding").status == "problem"
    assert report.section("audit").status == "problem"
    assert any("audit chain" in p for p in report.section("audit").problems)
    assert report.section("consent").status == "problem"  # its entries no longer match the footer's counts
    page = report.render()
    assert page.count('class="problems"') >= 3
    result = invoke("report", run, "-o", tmp_path / "r.html")
    assert result.exit_code == 1 and "!!" in result.output


# --------------------------------------------------------------------------- stages that did not run


def test_stages_that_did_not_run_say_so(short_run):
    report = build_report(short_run)
    statuses = {s.key: s.status for s in report.sections}
    assert statuses == {"consent": "ok", "audit": "ok", "deid": "not run", "sample": "ok", "coding": "not run",
                        "disguise": "not run", "manifest": "ok"}
    page = report.render()
    assert_self_contained(page)
    for heading in HEADINGS:
        assert heading in page
    assert page.count("stage did not run in this run") == 3


def test_a_missing_audit_log_is_shown_not_skipped(short_run, tmp_path):
    (short_run / "consent" / "audit.jsonl").unlink()
    report = build_report(short_run)
    assert report.section("consent").status == "problem"
    assert "audit log consent/audit.jsonl is missing" in report.section("consent").problems[0]
    assert report.section("audit").status == "problem"
    assert any("consent/audit.jsonl: missing" in p for p in report.section("audit").problems)
    assert not report.ok
    assert "is missing" in report.render()


def test_missing_sample_output_is_a_problem(short_run):
    (short_run / "sample" / "posts.parquet").unlink()
    section = build_report(short_run, draw=False).section("sample")
    assert section.status == "problem" and "sampled posts the run wrote are missing" in section.problems[0]


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(PostkitError, match="no manifest.json"):
        build_report(tmp_path)
    result = invoke("report", tmp_path, "-o", tmp_path / "r.html")
    assert result.exit_code != 0 and "no manifest.json" in result.output + (result.stderr or "")
    assert not (tmp_path / "r.html").exists()


def test_without_matplotlib_one_line_says_how_to_install_it(short_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(PostkitError, match="pip install matplotlib"):
        build_report(short_run)
    assert "<svg" not in build_report(short_run, draw=False).render()  # tables only, still complete


# --------------------------------------------------------------------------- DATA.md


def test_data_dictionary_has_one_line_per_column_and_is_in_the_manifest(short_run):
    text = (short_run / "DATA.md").read_text(encoding="utf-8")
    manifest = json.loads((short_run / "manifest.json").read_text())
    assert manifest["files"]["data_dictionary"] == {"path": "DATA.md", "sha256": sha256_path(short_run / "DATA.md")}
    for rel in ("consent/posts.parquet", "sample/posts.parquet"):
        block = text.split(f"## `{rel}`")[1].split("\n## ")[0]
        rows = [line for line in block.splitlines() if line.startswith("| `")]
        columns = list(read_table(short_run / rel).columns)
        assert [re.match(r"\| `([^`]*)`", row).group(1) for row in rows] == columns
        assert all(row.count(" | ") == 2 and row.endswith(" |") for row in rows)
    assert "| `likes` | text | " + PASSED_THROUGH in text  # a column postkit did not make
    assert "NOT pseudonymised" in text and "| `word_count` | integer |" in text
    assert "audit.jsonl" not in text  # logs and keys are not tables


def test_data_dictionary_reads_jsonl_and_sqlite_tables(tmp_path):
    from postkit.coding.store import CodingStore

    (tmp_path / "deid").mkdir()
    (tmp_path / "deid" / "spans.jsonl").write_text('{"post_id": "p1", "column": "text", "spans": []}\n')
    (tmp_path / "tag").mkdir()
    with CodingStore(tmp_path / "tag" / "coding.sqlite"):
        pass
    stages = [{"name": "deid", "files": {"spans": {"path": "deid/spans.jsonl"}}},
              {"name": "tag", "files": {"store": {"path": "tag/coding.sqlite"}}}]
    text = build_data_dictionary(tmp_path, stages)
    assert "| `spans` | text (empty) |" in text or "| `spans` | list" in text
    assert "table `decisions`" in text and "| `coder` | text |" in text
    assert "| `user_id` |" not in text


# --------------------------------------------------------------------------- in a browser


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="no Chromium binary (apt-get install chromium; scripts/test.sh does it)")
def test_the_page_renders_in_headless_chromium_without_any_request(full_run, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    out = tmp_path / "report.html"
    build_report(full_run).write(out)
    url = out.resolve().as_uri()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 900}, offline=True)
            page = context.new_page()
            requested, errors = [], []
            page.on("request", lambda request: requested.append(request.url))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            page.wait_for_load_state("load")
            for key, heading in zip(SECTIONS, HEADINGS):
                title = page.locator(f"section#{key} h2")
                playwright.expect(title).to_be_visible()
                playwright.expect(title).to_contain_text(heading)
            charts = page.locator("svg.chart")
            assert charts.count() >= 6
            box = charts.first.bounding_box()
            assert box and box["width"] > 300 and box["height"] > 50  # drawn, not collapsed
            assert page.evaluate("document.documentElement.scrollWidth") <= 1200  # nothing overflows sideways
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert requested == [url], f"requests besides the page itself: {requested}"
    assert not errors
