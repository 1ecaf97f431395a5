// postkit review: disguise quotes for publication, confirm code suggestions.
//
// Plain browser JavaScript, no build step, no external resources. Post text is sensitive
// and untrusted: it only ever reaches the page through textContent / text nodes (see el()),
// never innerHTML. Character offsets from the server are Unicode code points (Python
// str indices), so text is sliced with Array.from(), not JavaScript's UTF-16 indices.
//
// Who you are comes from your secret link (`/#token=...`, printed by `postkit review
// serve`): the token is moved from the address bar into sessionStorage (this tab only;
// never localStorage, never a cookie) and sent with every API call as
// `Authorization: Bearer`. The server records decisions under the token's name.
"use strict";

(() => {
  const TOKEN_KEY = "postkit-review.token";
  const NO_LINK = {
    error: "open this app with your own reviewer link",
    fix: "use the link `postkit review serve` printed for you (links change each time it starts)",
  };
  const CHECK_DELAY_MS = 300;
  const VERDICT_ORDER = { disguised: 0, "at risk": 1, traceable: 2 };
  const VERDICT_WHY = {
    traceable: "a search for this text finds the source post: reword it",
    "at risk": "the source post is still findable: reword the highlighted words",
    disguised: "searching for this text does not find the source post",
  };
  const STATUS = { approve: "approved", reject: "rejected" };

  const $ = (id) => document.getElementById(id);
  const state = {
    token: null, // the secret of this tab's reviewer link
    me: null, // the reviewer's name, from /api/me
    study: "",
    quotes: [],
    quoteId: null,
    drafts: {}, // quote_id -> unsaved text (memory only)
    check: null, // {text, result} of the latest finished check of the draft
    checkSeq: 0,
    checkTimer: null,
    checkAbort: null,
    excerpts: [],
    unitId: null,
    excerptsLoaded: false, // false: reload the excerpts (and your decisions) before showing them
    excerptSeq: 0,
    page: null,
  };

  // ------------------------------------------------------------------ helpers

  /** A DOM element; string children become text nodes (never parsed as HTML). */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  /** `text` with the code-point spans marked: runs (class "run") over shared words ("shared"). */
  function highlighted(text, layers) {
    const chars = Array.from(text || "");
    const cuts = new Set([0, chars.length]);
    for (const { spans } of layers) {
      for (const [start, end] of spans || []) {
        cuts.add(Math.max(0, Math.min(chars.length, start)));
        cuts.add(Math.max(0, Math.min(chars.length, end)));
      }
    }
    const points = [...cuts].sort((a, b) => a - b);
    const fragment = document.createDocumentFragment();
    let previous = null; // the last mark, extended while the same layer continues (one mark per run)
    for (let i = 0; i + 1 < points.length; i++) {
      const [a, b] = [points[i], points[i + 1]];
      const piece = chars.slice(a, b).join("");
      const layer = layers.find(({ spans }) => (spans || []).some(([s, e]) => s <= a && b <= e));
      if (layer && previous && previous.layer === layer) {
        previous.mark.append(piece);
      } else if (layer) {
        previous = { layer, mark: el("mark", { class: layer.cls }, piece) };
        fragment.append(previous.mark);
      } else {
        previous = null;
        fragment.append(piece);
      }
    }
    return fragment;
  }

  function clear(node) {
    node.replaceChildren();
    return node;
  }

  /** The token from a `#token=...` link (then removed from the address bar), else this tab's saved one. */
  function takeToken() {
    const match = location.hash.match(/^#token=([A-Za-z0-9_-]+)$/);
    if (match) {
      try {
        sessionStorage.setItem(TOKEN_KEY, match[1]);
      } catch (exc) {
        /* storage disabled: the token lasts until the page is reloaded */
      }
      history.replaceState(null, "", `${location.pathname}${location.search}#/quotes`);
      return match[1];
    }
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch (exc) {
      return null;
    }
  }

  function showError(error) {
    $("error-message").textContent = error.error || String(error);
    $("error-fix").textContent = error.fix ? `— ${error.fix}` : "";
    $("error").hidden = false;
  }

  function hideError() {
    $("error").hidden = true;
  }

  async function api(method, path, body, signal) {
    if (!state.token) throw NO_LINK;
    const options = { method, headers: { Accept: "application/json", Authorization: `Bearer ${state.token}` },
      signal };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (exc) {
      if (exc.name === "AbortError") throw exc;
      throw { error: "cannot reach the review server", fix: "is `postkit review serve` still running?" };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (exc) {
      data = null;
    }
    if (response.status === 401) throw NO_LINK;
    if (!response.ok) {
      throw { error: (data && data.error) || `HTTP ${response.status}`, fix: data && data.fix };
    }
    return data;
  }

  function formatTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return isNaN(date) ? iso : date.toLocaleString();
  }

  function statusOf(item) {
    return item.status ? STATUS[item.status.action] || item.status.action : "pending";
  }

  function scoreList(target, entries) {
    clear(target);
    for (const [label, value, title] of entries) {
      target.append(el("div", { title }, el("dt", { text: label }), el("dd", { text: value })));
    }
  }

  function fmt(value, digits = 2) {
    if (value === null || value === undefined) return "—";
    return typeof value === "number" && !Number.isInteger(value) ? value.toFixed(digits) : String(value);
  }

  function share(value) {
    return value === null || value === undefined ? "—" : Number(value).toFixed(2);
  }

  function verdictBadge(verdict) {
    return el("span", { class: `verdict v-${(verdict || "none").replace(" ", "-")}`, text: verdict || "?" });
  }

  function candidateScores(c) {
    return [
      ["source rank", c.source_rank == null ? "not found" : fmt(c.source_rank),
        "The source post's position when this text is searched for (1 = first result)"],
      ["longest shared run", `${fmt(c.longest_shared_run)} word${c.longest_shared_run === 1 ? "" : "s"}`,
        "Longest run of consecutive words shared with the source"],
      ["meaning", share(c.meaning_score), "How much of the original's meaning survives (0-1)"],
    ];
  }

  // ------------------------------------------------------------------ routing

  function route() {
    const [page, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
    const id = rest.length ? decodeURIComponent(rest.join("/")) : null;
    const coding = page === "coding";
    if (coding && state.page !== "coding") state.excerptsLoaded = false; // entering the page: fresh decisions
    state.page = coding ? "coding" : "quotes";
    $("page-quotes").hidden = coding;
    $("page-coding").hidden = !coding;
    $("nav-quotes").toggleAttribute("aria-current", !coding);
    $("nav-coding").toggleAttribute("aria-current", coding);
    if (coding) showExcerpt(id);
    else showQuote(id);
  }

  function go(page, id) {
    const hash = `#/${page}/${encodeURIComponent(id)}`;
    if (location.hash !== hash) location.hash = hash;
    else route();
  }

  // ------------------------------------------------------------------ quotes

  async function loadQuotes() {
    const data = await api("GET", "/api/quotes");
    state.study = data.study;
    state.quotes = data.quotes;
    $("study-name").textContent = data.study ? `— ${data.study}` : "";
    renderQuoteList();
  }

  function renderQuoteList() {
    const list = clear($("quote-list"));
    const counts = { pending: 0, approved: 0, rejected: 0 };
    for (const quote of state.quotes) {
      const status = statusOf(quote);
      counts[status] = (counts[status] || 0) + 1;
      list.append(el("li", { "data-quote": quote.quote_id },
        el("a", { href: `#/quotes/${encodeURIComponent(quote.quote_id)}`,
          "aria-current": quote.quote_id === state.quoteId ? "true" : null },
        el("span", { class: `badge s-${status}`, text: status }), " ",
        el("strong", { text: quote.quote_id }), " ",
        el("span", { class: "snippet", text: quote.text }))));
    }
    $("quote-counts").textContent =
      `${counts.approved} approved · ${counts.rejected} rejected · ${counts.pending} pending`;
  }

  function bestCandidate(quote) {
    const ranked = [...(quote.candidates || [])].sort((a, b) =>
      (VERDICT_ORDER[a.verdict] ?? 3) - (VERDICT_ORDER[b.verdict] ?? 3) ||
      (b.meaning_score ?? -1) - (a.meaning_score ?? -1));
    return ranked[0];
  }

  function currentQuote() {
    return state.quotes.find((q) => q.quote_id === state.quoteId);
  }

  async function showQuote(id) {
    const quotes = state.quotes;
    $("quotes-empty").hidden = quotes.length > 0;
    $("quote-body").hidden = quotes.length === 0;
    if (!quotes.length) return;
    if (id === null || !quotes.some((q) => q.quote_id === id)) {
      if (id !== null) showError({ error: `unknown quote ${id}`, fix: "pick one from the list" });
      go("quotes", quotes[0].quote_id);
      return;
    }
    const changed = id !== state.quoteId;
    state.quoteId = id;
    renderQuoteList();
    let quote = currentQuote();
    try {
      const data = await api("GET", `/api/quotes/${encodeURIComponent(id)}`);
      if (state.quoteId !== id) return; // navigated away meanwhile
      Object.assign(quote, data.quote);
      renderHistory(data.history);
    } catch (error) {
      showError(error);
    }
    quote = currentQuote();
    renderQuote(quote, changed);
    renderQuoteList();
  }

  function renderQuote(quote, fresh) {
    const index = state.quotes.indexOf(quote);
    $("quote-position").textContent = `${index + 1} of ${state.quotes.length}`;
    $("quote-prev").disabled = index <= 0;
    $("quote-next").disabled = index >= state.quotes.length - 1;
    $("quote-id").textContent = quote.quote_id;
    const status = statusOf(quote);
    $("quote-status").textContent = status;
    $("quote-status").className = `badge s-${status}`;
    $("quote-source").textContent = quote.source_post_id;
    $("original").textContent = quote.text;

    const list = clear($("candidates"));
    (quote.candidates || []).forEach((candidate, number) => {
      const edits = candidate.edits && candidate.edits.length
        ? el("ul", { class: "edits" }, ...candidate.edits.map((e) => el("li", { text: e })))
        : null;
      const scores = el("dl", { class: "scores" });
      scoreList(scores, candidateScores(candidate));
      list.append(el("li", {},
        el("button", { type: "button", class: "candidate", "data-candidate": number,
          title: "Edit this candidate", onclick: () => useText(candidate.text) },
        el("span", { class: "head" }, verdictBadge(candidate.verdict), scores),
        el("span", { class: "text" }, highlighted(candidate.text, [
          { cls: "run", spans: candidate.runs }, { cls: "shared", spans: candidate.shared }])),
        edits)));
    });

    renderDecision(quote);
    if (fresh) {
      $("note").value = "";
      const draft = state.drafts[quote.quote_id];
      const best = bestCandidate(quote);
      const text = draft ?? (quote.status ? quote.status.text : best ? best.text : quote.text);
      useText(text || "");
    }
  }

  function renderDecision(quote) {
    const box = clear($("decision"));
    box.hidden = !quote.status;
    if (!quote.status) return;
    const s = quote.status;
    box.className = `decision s-${statusOf(quote)}`;
    box.append(
      el("p", {}, el("strong", { text: `${statusOf(quote)[0].toUpperCase()}${statusOf(quote).slice(1)}` }),
        ` by ${s.reviewer}, ${formatTime(s.decided_at)}`),
      s.note ? el("p", { class: "note" }, "Note: ", el("span", { class: "note-text", text: s.note })) : null,
      s.text ? el("blockquote", { class: "text", text: s.text }) : null,
    );
  }

  function renderHistory(history) {
    const list = clear($("history"));
    for (const h of history || []) {
      list.append(el("li", {},
        el("strong", { text: STATUS[h.action] || h.action }), ` by ${h.reviewer}, ${formatTime(h.decided_at)}`,
        h.scores && h.scores.verdict ? ` (${h.scores.verdict})` : "",
        h.note ? el("div", { class: "note", text: `Note: ${h.note}` }) : null,
        h.text ? el("div", { class: "text", text: h.text }) : null));
    }
    $("history-box").hidden = !(history && history.length);
  }

  function useText(text) {
    $("draft").value = text;
    onDraftInput(true);
  }

  function onDraftInput(immediate) {
    const quote = currentQuote();
    if (!quote) return;
    const text = $("draft").value;
    state.drafts[quote.quote_id] = text;
    state.check = null;
    clearTimeout(state.checkTimer);
    $("verdict").textContent = "checking…";
    $("verdict").className = "verdict v-checking";
    $("verdict-why").textContent = "";
    updateDecideButtons();
    state.checkTimer = setTimeout(() => runCheck(quote.quote_id, text), immediate === true ? 0 : CHECK_DELAY_MS);
  }

  async function runCheck(quoteId, text) {
    const seq = ++state.checkSeq;
    if (state.checkAbort) state.checkAbort.abort();
    if (!text.trim()) {
      renderCheck(text, null);
      return;
    }
    const controller = new AbortController();
    state.checkAbort = controller;
    try {
      const result = await api("POST", "/api/check", { quote_id: quoteId, text }, controller.signal);
      if (seq !== state.checkSeq || quoteId !== state.quoteId) return; // superseded
      state.check = { text, result };
      renderCheck(text, result);
    } catch (error) {
      if (error.name === "AbortError" || seq !== state.checkSeq) return;
      renderCheck(text, null);
      showError(error);
    }
  }

  function renderCheck(text, result) {
    const verdict = $("verdict");
    if (!result) {
      verdict.textContent = text.trim() ? "not checked" : "empty";
      verdict.className = "verdict v-none";
      $("verdict-why").textContent = text.trim() ? "" : "type the version to publish";
      clear($("scores"));
      clear($("preview"));
      updateDecideButtons();
      return;
    }
    verdict.textContent = result.verdict;
    verdict.className = `verdict v-${result.verdict.replace(" ", "-")}`;
    $("verdict-why").textContent = VERDICT_WHY[result.verdict] || "";
    scoreList($("scores"), [
      ...candidateScores(result),
      ["5-word matches", fmt(result.exact_5gram_hits), "Posts containing any 5 consecutive words of this text"],
      ["distinctive overlap", share(result.distinctive_overlap),
        "Share of the source's rarest words still present (0-1)"],
    ]);
    const preview = clear($("preview"));
    preview.append(highlighted(text, [{ cls: "run", spans: result.runs }, { cls: "shared", spans: result.shared }]));
    updateDecideButtons();
  }

  function updateDecideButtons() {
    const named = Boolean(state.me);
    const check = state.check;
    const current = check && check.text === $("draft").value;
    const disguised = current && check.result.verdict === "disguised";
    $("approve").disabled = !(named && disguised);
    $("reject").disabled = !named;
    let hint = "";
    if (!named) hint = "Open your reviewer link to decide.";
    else if (!current) hint = "Checking your version…";
    else if (!disguised) hint = "Only a disguised version can be approved.";
    $("decide-hint").textContent = hint;
  }

  async function decide(action) {
    const quote = currentQuote();
    if (!quote) return;
    if (!state.me) {
      showError(NO_LINK);
      return;
    }
    const buttons = [$("approve"), $("reject")];
    buttons.forEach((b) => (b.disabled = true));
    try {
      await api("POST", "/api/decide", {
        quote_id: quote.quote_id, action,
        text: $("draft").value, note: $("note").value.trim() || null,
      });
      hideError();
      $("note").value = "";
      delete state.drafts[quote.quote_id];
      await loadQuotes();
      await showQuote(quote.quote_id);
    } catch (error) {
      showError(error);
    } finally {
      updateDecideButtons();
    }
  }

  function step(delta) {
    const index = state.quotes.findIndex((q) => q.quote_id === state.quoteId);
    const next = state.quotes[index + delta];
    if (next) go("quotes", next.quote_id);
  }

  // ------------------------------------------------------------------ coding

  async function loadExcerpts() {
    const seq = ++state.excerptSeq;
    const data = await api("GET", "/api/excerpts"); // only your own decisions come back
    if (seq !== state.excerptSeq) return; // a later load (e.g. after a decision) wins
    state.excerpts = data.excerpts;
    state.excerptsLoaded = true;
  }

  function excerptStatus(excerpt) {
    const total = excerpt.suggestions.length;
    const done = excerpt.suggestions.filter((s) => excerpt.decisions[s.code_id]).length;
    return { total, done, label: total === 0 ? "no suggestions" : done === total ? "done" : `${total - done} to review` };
  }

  function renderExcerptList() {
    const list = clear($("excerpt-list"));
    let finished = 0;
    for (const excerpt of state.excerpts) {
      const status = excerptStatus(excerpt);
      if (status.done === status.total) finished += 1;
      list.append(el("li", { "data-unit": excerpt.unit_id },
        el("a", { href: `#/coding/${encodeURIComponent(excerpt.unit_id)}`,
          "aria-current": excerpt.unit_id === state.unitId ? "true" : null },
        el("span", { class: `badge ${status.done === status.total ? "s-approved" : "s-pending"}`, text: status.label }),
        " ", el("strong", { text: excerpt.unit_id }), " ", el("span", { class: "snippet", text: excerpt.text }))));
    }
    $("excerpt-counts").textContent = `${finished} of ${state.excerpts.length} done`;
  }

  async function showExcerpt(id) {
    if (!state.excerptsLoaded) {
      try {
        await loadExcerpts();
      } catch (error) {
        showError(error);
        return;
      }
    }
    const excerpts = state.excerpts;
    $("excerpts-empty").hidden = excerpts.length > 0;
    $("excerpt-body").hidden = excerpts.length === 0;
    if (!excerpts.length) return;
    if (id === null || !excerpts.some((e) => e.unit_id === id)) {
      go("coding", excerpts[0].unit_id);
      return;
    }
    state.unitId = id;
    renderExcerptList();
    renderExcerpt(excerpts.find((e) => e.unit_id === id));
  }

  function evidenceSpans(text, evidence) {
    // Offsets are code points into the excerpt; trust them only when they point at the quoted words.
    const chars = Array.from(text);
    const spans = [];
    for (const ev of evidence || []) {
      if (chars.slice(ev.start, ev.end).join("") === ev.text) spans.push([ev.start, ev.end]);
      else if (ev.text) {
        const at = text.indexOf(ev.text);
        if (at >= 0) {
          const start = Array.from(text.slice(0, at)).length;
          spans.push([start, start + Array.from(ev.text).length]);
        }
      }
    }
    return spans;
  }

  function renderExcerpt(excerpt) {
    const index = state.excerpts.indexOf(excerpt);
    $("excerpt-position").textContent = `${index + 1} of ${state.excerpts.length}`;
    $("excerpt-prev").disabled = index <= 0;
    $("excerpt-next").disabled = index >= state.excerpts.length - 1;
    $("excerpt-id").textContent = excerpt.unit_id;
    $("excerpt-post").textContent = excerpt.post_id || "";
    $("excerpt-forum").textContent = excerpt.forum ? `in ${excerpt.forum}` : "";
    const allEvidence = excerpt.suggestions.flatMap((s) => evidenceSpans(excerpt.text, s.evidence));
    clear($("excerpt-text")).append(highlighted(excerpt.text, [{ cls: "evidence", spans: allEvidence }]));

    const list = clear($("codes"));
    for (const suggestion of excerpt.suggestions) {
      const mine = excerpt.decisions[suggestion.code_id];
      const memo = el("textarea", { rows: 1, maxlength: 2000, class: "memo",
        "aria-label": `Memo for ${suggestion.code_id}`,
        placeholder: "memo (optional)" });
      memo.value = mine && mine.memo ? mine.memo : "";
      const decideCode = (action, button) => {
        button.closest(".actions").querySelectorAll("button").forEach((b) => (b.disabled = true));
        codeDecision(excerpt, suggestion, action, memo.value).finally(() => {
          button.closest(".actions").querySelectorAll("button").forEach((b) => (b.disabled = false));
        });
      };
      const evidence = (suggestion.evidence || []).map((ev) => el("q", { text: ev.text }));
      list.append(el("li", { class: `code ${mine ? `d-${mine.action}` : ""}`, "data-code": suggestion.code_id },
        el("div", { class: "head" },
          el("strong", { text: suggestion.code_id }), " ", el("span", { text: suggestion.name || "" }),
          el("span", { class: "muted", text: ` · ${suggestion.area || "?"} · ${suggestion.polarity || "?"} · score ${fmt(suggestion.score)}` })),
        evidence.length ? el("p", { class: "evidence-list" }, "Evidence: ", ...evidence) : null,
        el("p", { class: "mine" }, mine
          ? el("span", { class: `badge ${mine.action === "reject" ? "s-rejected" : "s-approved"}`,
            text: `you: ${mine.action}ed` })
          : el("span", { class: "badge s-pending", text: "not decided" })),
        memo,
        el("div", { class: "actions" },
          el("button", { type: "button", class: "approve", onclick: (e) => decideCode("accept", e.currentTarget) },
            "Accept"),
          el("button", { type: "button", class: "reject", onclick: (e) => decideCode("reject", e.currentTarget) },
            "Reject"))));
    }
    if (!excerpt.suggestions.length) list.append(el("li", { class: "muted", text: "No suggested codes." }));
  }

  async function codeDecision(excerpt, suggestion, action, memo) {
    if (!state.me) {
      showError(NO_LINK);
      return;
    }
    try {
      await api("POST", "/api/code", { unit_id: excerpt.unit_id, code_id: suggestion.code_id,
        action, memo: memo.trim() || null });
      hideError();
      await loadExcerpts();
      await showExcerpt(excerpt.unit_id);
    } catch (error) {
      showError(error);
    }
  }

  function stepExcerpt(delta) {
    const index = state.excerpts.findIndex((e) => e.unit_id === state.unitId);
    const next = state.excerpts[index + delta];
    if (next) go("coding", next.unit_id);
  }

  // ------------------------------------------------------------------ start

  async function loadMe() {
    const data = await api("GET", "/api/me");
    state.me = data.name;
    $("me").textContent = data.name;
    $("who").hidden = false;
  }

  function start() {
    state.token = takeToken();
    $("error-close").addEventListener("click", hideError);
    $("draft").addEventListener("input", () => onDraftInput(false));
    $("approve").addEventListener("click", () => decide("approve"));
    $("reject").addEventListener("click", () => decide("reject"));
    $("quote-prev").addEventListener("click", () => step(-1));
    $("quote-next").addEventListener("click", () => step(1));
    $("excerpt-prev").addEventListener("click", () => stepExcerpt(-1));
    $("excerpt-next").addEventListener("click", () => stepExcerpt(1));
    window.addEventListener("hashchange", route);
    if (!state.token) {
      showError(NO_LINK);
      updateDecideButtons();
      return;
    }
    loadMe().then(loadQuotes).then(route, (error) => {
      showError(error);
      updateDecideButtons();
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
