"""The review app in headless Chromium: disguise a quote, approve it, code an excerpt.

Uses the system Chromium (scripts/test.sh installs Debian's package), never a browser
downloaded by `playwright install`. Every request the page makes must go to the app on
127.0.0.1: the page works offline. Each reviewer opens their own secret link; the page
takes the token out of the address bar and acts as that reviewer only.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from review_fixtures import (
    AT_RISK_1,
    DISGUISED_1,
    SOURCE_1,
    make_study_folder,
    running_app,
)

from postkit.coding.codebook import load_codebook
from postkit.coding.store import CodingStore


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (apt-get install chromium; "
                                                          "scripts/test.sh does it)")
SCREENSHOT = Path("/tmp/review.png")


# An excerpt whose suggestions overlap: "only" and "only one" twice for SE-C5 (one as a duplicate),
# and "only one person" for UA-C3 across them.
OVERLAP_TEXT = "There was only one person who got it, and they had been through it too."
OVERLAP_SUGGESTIONS = [
    {"unit_id": "p40", "code_id": "UA-C3", "score": 0.9,
     "evidence": [{"start": 10, "end": 25, "text": "only one person"}]},
    {"unit_id": "p40", "code_id": "SE-C5", "score": 0.7,
     "evidence": [{"start": 10, "end": 14, "text": "only"}, {"start": 10, "end": 18, "text": "only one"},
                  {"start": 10, "end": 18, "text": "only one"}, {"start": 51, "end": 66, "text": "been through it"}]},
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = make_study_folder(tmp_path_factory.mktemp("study") / "study")
    with CodingStore(folder / "coding.sqlite") as store:
        store.add_excerpts([{"unit_id": "p40", "post_id": "p40", "forum": "Jay", "text": OVERLAP_TEXT}])
        store.add_suggestions(OVERLAP_SUGGESTIONS, codebook_version="test")
    with running_app(folder, warm_up=True) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser, app):
    """Fresh pages (each its own browser context: own storage, like another person's browser)
    that record every URL they request."""
    contexts = []

    def make():
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        contexts.append(context)
        opened = context.new_page()
        opened.set_default_timeout(8_000)
        opened.requested = []
        opened.on("request", lambda request: opened.requested.append(request.url))
        opened.script_errors = []  # (the browser also logs the API's deliberate 4xx answers; those are fine)
        opened.on("pageerror", lambda exc: opened.script_errors.append(str(exc)))
        return opened

    yield make
    pages = [context.pages[0] for context in contexts]
    for context in contexts:
        context.close()
    for opened in pages:
        outside = [url for url in opened.requested if not url.startswith(app.url)]
        assert opened.requested and not outside, f"requests outside the app: {outside}"
        assert not opened.script_errors


@pytest.fixture
def page(new_page):
    return new_page()


def token_of(app, name):
    return next(r.token for r in app.reviewers if r.name == name)


def test_disguise_approve_and_reload(page, app):
    page.goto(app.link("alice"))
    expect(page.locator("#me")).to_have_text("alice")
    assert token_of(app, "alice") not in page.url  # the secret left the address bar (and its history entry)
    expect(page.locator("#quote-list li")).to_have_count(2)
    expect(page.locator("#quote-id")).to_have_text("q1")
    expect(page.locator("#original")).to_have_text(SOURCE_1)
    expect(page.locator('#quote-list li[data-quote="q1"] .badge')).to_have_text("pending")

    # Candidates: verdicts shown, shared content words highlighted (function words such as
    # "after" are not: they would hide the words worth changing).
    candidates = page.locator("#candidates button.candidate")
    expect(candidates).to_have_count(3)
    expect(candidates.nth(0).locator(".verdict")).to_have_text("traceable")
    expect(candidates.nth(2).locator(".verdict")).to_have_text("at risk")
    expect(candidates.nth(2).locator("mark")).to_have_count(0)
    expect(candidates.nth(1).locator("mark").first).to_have_text("GP")
    expect(candidates.nth(0).locator("mark.run")).to_have_count(1)

    # Prefilled with the best candidate; clicking the verbatim one loads it: traceable.
    expect(page.locator("#draft")).to_have_value(AT_RISK_1)
    candidates.nth(0).click()
    expect(page.locator("#verdict")).to_have_text("traceable")
    expect(page.locator("#preview mark.run")).to_have_count(1)
    expect(page.locator("#approve")).to_be_disabled()

    # Rewrite it; the server re-checks as you type (debounced) until it is disguised.
    checks_before = sum(url.endswith("/api/check") for url in page.requested)
    page.fill("#draft", DISGUISED_1[:-12])
    page.locator("#draft").press_sequentially(DISGUISED_1[-12:], delay=15)
    expect(page.locator("#verdict")).to_have_text("disguised")
    expect(page.locator("#preview mark")).to_have_count(0)
    expect(page.locator("#scores")).to_contain_text("not found")
    assert sum(url.endswith("/api/check") for url in page.requested) - checks_before < 6  # not one per key

    # The server refuses a traceable approval even if the button is forced; the page shows why.
    page.fill("#note", "no shared words left; meaning kept")
    expect(page.locator("#approve")).to_be_enabled()
    page.click("#approve")
    expect(page.locator("#quote-status")).to_have_text("approved")
    expect(page.locator("#decision .note-text")).to_have_text("no shared words left; meaning kept")

    page.reload()
    expect(page.locator("#me")).to_have_text("alice")  # this tab keeps its link's identity
    expect(page.locator("#quote-status")).to_have_text("approved")
    expect(page.locator("#decision")).to_contain_text("by alice")
    expect(page.locator("#decision .note-text")).to_have_text("no shared words left; meaning kept")
    expect(page.locator("#draft")).to_have_value(DISGUISED_1)
    expect(page.locator('#quote-list li[data-quote="q1"] .badge')).to_have_text("approved")
    expect(page.locator("#verdict")).to_have_text("disguised")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # Next quote: a traceable text cannot be approved, even by forcing the button.
    page.click("#quote-next")
    expect(page.locator("#quote-id")).to_have_text("q2")
    page.fill("#draft", "the night shift at the warehouse makes my sleep and my mood so much worse")
    expect(page.locator("#verdict")).to_have_text("traceable")
    page.evaluate("document.getElementById('approve').disabled = false")
    page.click("#approve")
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#error-message")).to_contain_text("cannot approve")
    expect(page.locator("#quote-status")).to_have_text("pending")
    page.fill("#note", "too close to the source")
    page.click("#reject")
    expect(page.locator("#quote-status")).to_have_text("rejected")
    expect(page.locator('#quote-list li[data-quote="q2"] .badge')).to_have_text("rejected")


def test_unknown_quote_is_explained(page, app):
    page.goto(app.link("bob"))
    expect(page.locator("#me")).to_have_text("bob")
    page.goto(app.url + "#/quotes/nope")
    expect(page.locator("#error-message")).to_contain_text("unknown quote nope")
    expect(page.locator("#quote-id")).to_have_text("q1")


@pytest.mark.parametrize("suffix", ["", "#token=not-a-valid-token"])
def test_without_a_valid_link_nothing_is_shown(page, app, suffix):
    page.goto(app.url + suffix)
    expect(page.locator("#error-message")).to_contain_text("open this app with your own reviewer link")
    expect(page.locator("#error-fix")).to_contain_text("postkit review serve")
    expect(page.locator("#who")).to_be_hidden()
    expect(page.locator("#quote-list li")).to_have_count(0)  # no post text without a token
    expect(page.locator("#page-quotes")).to_be_hidden()


def test_coding_page_accepts_a_code(page, new_page, app):
    page.goto(app.link("carol"))
    expect(page.locator("#me")).to_have_text("carol")
    page.click("#nav-coding")
    expect(page.locator("#excerpt-id")).to_have_text("p36")
    expect(page.locator("#excerpt-text mark.evidence")).to_have_count(1)
    code = page.locator('#codes li[data-code="SE-C5"]')
    expect(code).to_contain_text("Peers with lived experience")
    expect(code.locator(".mine")).to_have_text("not decided")
    code.locator("textarea.memo").fill("they had been through it too")
    code.get_by_role("button", name="Accept").click()
    expect(code.locator(".mine")).to_have_text("you: accepted")
    expect(page.locator('#excerpt-list li[data-unit="p36"] .badge')).to_have_text("1 to review")

    page.reload()
    code = page.locator('#codes li[data-code="SE-C5"]')
    expect(code.locator(".mine")).to_have_text("you: accepted")
    expect(code.locator("textarea.memo")).to_have_value("they had been through it too")
    other = new_page()  # another coder, on their own link, sees none of carol's decisions
    other.goto(app.link("dave"))
    expect(other.locator("#me")).to_have_text("dave")
    other.click("#nav-coding")
    expect(other.locator('#codes li[data-code="SE-C5"] .mine')).to_have_text("not decided")

    with CodingStore(app.study.store_path) as store:
        codings = store.codings()
    assert codings[["unit_id", "coder", "code_id", "action", "memo"]].values.tolist() == [
        ["p36", "carol", "SE-C5", "accept", "they had been through it too"]]


def _style(locator, prop, pseudo=None):
    return locator.evaluate(f"(node) => getComputedStyle(node, {pseudo!r} || null).{prop}" if pseudo else
                            f"(node) => getComputedStyle(node).{prop}")


def test_codes_show_definitions_and_one_colour_and_number_each(page, app):
    book = load_codebook()
    page.goto(app.link("alice"))
    expect(page.locator("#me")).to_have_text("alice")
    page.goto(app.url + "#/coding/p40")
    expect(page.locator("#excerpt-id")).to_have_text("p40")
    # Overlapping and duplicate spans are merged: the excerpt reads as it is written, no word twice.
    expect(page.locator("#excerpt-text")).to_have_text(OVERLAP_TEXT)
    first, second = page.locator('#codes li[data-code="UA-C3"]'), page.locator('#codes li[data-code="SE-C5"]')
    expect(second.locator(".evidence-list q")).to_have_text(["only one", "been through it"])
    for card, code_id, number in ((first, "UA-C3", "1"), (second, "SE-C5", "2")):
        code = book.code(code_id)
        expect(card.locator(".head .name")).to_have_text(code.name)
        expect(card.locator(".definition .def")).to_have_text(code.definition)
        expect(card.locator(".definition .include")).to_have_text(code.include)
        expect(card.locator(".definition .exclude")).to_have_text(code.exclude)
        expect(card.locator(".chip")).to_have_text(number)
    # Each code's evidence has its card's colour and number; the two codes differ in both.
    marks = page.locator("#excerpt-text mark.evidence")
    expect(marks).to_have_count(3)  # "only one" (both codes), " person" (UA-C3), "been through it" (SE-C5)
    expect(marks.nth(0)).to_have_attribute("data-n", "1+2")
    expect(marks.nth(1)).not_to_have_attribute("data-n", "1")  # continues code 1's highlight: no new label
    expect(marks.nth(2)).to_have_attribute("data-n", "2")
    both_only = page.locator('#excerpt-text mark[data-codes="SE-C5"]')
    assert _style(both_only, "backgroundColor") == _style(second.locator(".evidence-list q").first, "backgroundColor")
    assert _style(both_only, "backgroundColor", "::before") == _style(second.locator(".chip"), "backgroundColor")
    assert _style(first.locator(".chip"), "backgroundColor") != _style(second.locator(".chip"), "backgroundColor")
    assert _style(marks.nth(0), "backgroundColor") != _style(both_only, "backgroundColor")


def test_keyboard_shortcuts_focus_and_adding_a_code(page, app):
    page.goto(app.link("bob"))
    expect(page.locator("#me")).to_have_text("bob")
    page.goto(app.url + "#/coding/p36")
    expect(page.locator("#excerpt-id")).to_have_text("p36")
    expect(page.locator("#shortcuts")).to_contain_text("accept")
    five, seven = page.locator('#codes li[data-code="SE-C5"]'), page.locator('#codes li[data-code="SE-C7"]')
    expect(five).to_have_class(re.compile(r"\bactive\b"))  # what "a" acts on is marked

    page.keyboard.press("a")  # accepts the first undecided code; the focus moves to the next one
    expect(five.locator(".mine")).to_have_text("you: accepted")
    expect(seven).to_be_focused()
    expect(page.locator("#coding-status")).to_contain_text("SE-C5 accepted")

    seven.locator("textarea.memo").press_sequentially("rare", delay=10)  # typing: no shortcut fires
    expect(seven.locator(".mine")).to_have_text("not decided")
    page.keyboard.press("Escape")  # leaves the memo for its card
    expect(seven).to_be_focused()
    page.keyboard.press("r")
    expect(seven.locator(".mine")).to_have_text("you: rejected")
    expect(page.locator("#excerpt-next")).to_be_focused()  # nothing left here: next excerpt
    expect(page.locator("#coding-status")).to_contain_text("press n")

    page.keyboard.press("n")
    expect(page.locator("#excerpt-id")).to_have_text("p38")
    expect(page.locator("#excerpt-heading")).to_be_focused()
    page.keyboard.press("p")
    expect(page.locator("#excerpt-id")).to_have_text("p36")
    page.keyboard.press("j")  # to the codes: the first, then the next
    expect(five).to_be_focused()
    page.keyboard.press("j")
    expect(seven).to_be_focused()
    page.keyboard.press("k")
    expect(five).to_be_focused()

    # Add a code that was not suggested: search the codebook, read its definition, add it.
    page.locator("#add-code-search").press_sequentially("resonate", delay=10)  # "a" and "r" typed, not fired
    expect(page.locator("#add-code-select option")).to_have_count(1)
    page.locator("#add-code-search").press("ArrowDown")
    expect(page.locator("#add-code-select")).to_be_focused()
    expect(page.locator("#add-code-definition")).to_contain_text(load_codebook().code("UA-C2").definition)
    page.click("#add-code")
    added = page.locator('#added-codes li[data-code="UA-C2"]')
    expect(added.locator(".mine")).to_have_text("you: added")
    expect(added).to_be_focused()
    expect(added.locator(".definition .def")).to_have_text(load_codebook().code("UA-C2").definition)
    expect(page.locator('#add-code-select option[value="UA-C2"]')).to_have_count(0)

    with CodingStore(app.study.store_path) as store:
        mine = store.decisions("bob")
    assert mine[["unit_id", "code_id", "action"]].values.tolist() == [
        ["p36", "SE-C5", "accept"], ["p36", "SE-C7", "reject"], ["p36", "UA-C2", "add"]]
    assert mine["memo"].tolist()[1] == "rare"


# Written for these tests: first-person posts about writing things out, and plain questions.
VENTS = [f"I just needed to write this all out somewhere, day {n} of feeling flat and tired, thanks for reading."
         for n in range(10)]
QUESTIONS = [f"Does anyone know how long the waiting list is for clinic {n}? Thanks for any advice." for n in range(10)]


@pytest.fixture
def learning_app(tmp_path):
    """A study whose store already holds 16 decisions by bob; the ranker retrains after every decision."""
    folder = make_study_folder(tmp_path / "study")
    units = [(f"v{n}", t) for n, t in enumerate(VENTS)] + [(f"q{n}", t) for n, t in enumerate(QUESTIONS)]
    with CodingStore(folder / "coding.sqlite") as store:
        store.add_excerpts([{"unit_id": u, "post_id": u, "forum": "Robin", "text": t} for u, t in units])
        store.add_suggestions([{"unit_id": u, "code_id": "CS-C2", "score": 0.4, "evidence": []} for u, _ in units],
                              codebook_version="test")
        for unit_id in [f"v{n}" for n in range(8)] + [f"q{n}" for n in range(8)]:
            store.decide(unit_id, "CS-C2", "bob", "accept" if unit_id.startswith("v") else "reject")
    with running_app(folder, retrain_every=1) as server:
        server.learner.min_units = 10  # the app waits for 50 coded excerpts; this study has 20
        yield server


def _unit_order(app, name, order):
    import http.client
    import json

    connection = http.client.HTTPConnection("127.0.0.1", app.port, timeout=60)
    connection.request("GET", f"/api/excerpts?order={order}",
                       headers={"Authorization": f"Bearer {token_of(app, name)}"})
    data = json.loads(connection.getresponse().read())
    connection.close()
    return [e["unit_id"] for e in data["excerpts"]]


@pytest.mark.slow
def test_order_toggle_persists_and_the_retraining_status_shows(browser, learning_app):
    app = learning_app
    sampled, informative = _unit_order(app, "carol", "sampled"), _unit_order(app, "carol", "uncertainty")
    assert sampled != informative
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)  # the first uncertainty order loads spaCy
    requested, errors = [], []
    page.on("request", lambda request: requested.append(request.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(app.link("carol"))
        expect(page.locator("#me")).to_have_text("carol")
        page.click("#nav-coding")
        expect(page.locator("#excerpt-id")).to_have_text(sampled[0])
        items = page.locator("#excerpt-list li")
        expect(items).to_have_count(len(sampled))
        assert items.evaluate_all("(nodes) => nodes.map((n) => n.dataset.unit)") == sampled
        toggle = page.locator("#order-uncertainty")
        expect(toggle).not_to_be_checked()
        expect(page.locator("#learning-status")).to_have_text("The ranker retrains after every decision.")

        toggle.check()  # most informative first; the open excerpt stays open
        expect(page.locator("#excerpt-list li").first).to_have_attribute("data-unit", informative[0])
        assert items.evaluate_all("(nodes) => nodes.map((n) => n.dataset.unit)") == informative
        expect(page.locator("#excerpt-id")).to_have_text(sampled[0])
        page.reload()  # the choice persists
        expect(page.locator("#excerpt-list li").first).to_have_attribute("data-unit", informative[0])
        expect(page.locator("#order-uncertainty")).to_be_checked()

        page.goto(app.url + f"#/coding/{informative[0]}")
        expect(page.locator("#excerpt-id")).to_have_text(informative[0])
        page.locator("#codes li").first.get_by_role("button", name="Accept").click()
        status = page.locator("#learning-status")
        expect(status).to_have_attribute("data-state", "retrained", timeout=60_000)  # trained in the background
        expect(status).to_have_text(re.compile(r"^Ranker retrained on 17 decisions at \d\d:\d\d"))
        # What carol coded stays first, in the order she coded it; the rest follow most informative first.
        expect(page.locator("#excerpt-list li").first).to_have_attribute("data-unit", informative[0])
        page.screenshot(path=str(SCREENSHOT))
    finally:
        context.close()
    assert requested and not [url for url in requested if not url.startswith(app.url)]
    assert not errors
