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
//
// The coder's choice of excerpt order (as sampled, or most informative first) is kept in
// localStorage per study and coder, so it survives reloads; it is a preference, not a secret.
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
    traceable: "a search for this text, by its words or its meaning, finds the source post: reword it",
    "at risk": "the source post is still findable by its words or its meaning: reword, generalise or quote less",
    disguised: "searching for this text, by its words or its meaning, does not find the source post",
  };
  const STATUS = { approve: "approved", reject: "rejected" };
  const CODE_COLOURS = 8; // evidence colours c1 … c8 in app.css
  const ORDER_KEY = "postkit-review.order";
  const LEARNING_POLL_MS = 1500;

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
    codes: null, // the codebook's codes, from /api/codes (for adding one that was not suggested)
    unitId: null,
    activeCode: null, // the code a/r act on when no card has the focus
    focusAfter: null, // what to focus once the excerpt is rendered again (after a decision or n/p)
    memoDrafts: {}, // unit + code -> memo typed but not yet saved (memory only)
    addPick: null,
    deciding: false,
    excerptsLoaded: false, // false: reload the excerpts (and your decisions) before showing them
    excerptSeq: 0,
    order: null, // "sampled" or "uncertainty" once the coder chose (saved); null: the app's default
    learning: null, // the ranker's retraining status, from the server
    learningTimer: null,
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
        "The source post's position when this text is searched for by its words (1 = first result)"],
      ["meaning search rank", c.dense_rank == null ? "not run" : fmt(c.dense_rank),
        "The source post's position when the forum is searched by meaning (sentence embeddings of " +
        "passages; within the first 20 = findable). Not run = no quote can be called disguised"],
      ["longest shared run", `${fmt(c.longest_shared_run)} word${c.longest_shared_run === 1 ? "" : "s"}`,
        "Longest run of consecutive words shared with the source"],
      ["meaning", share(c.meaning_score) + (c.cmo_changed ? " · CMO area changed" : ""),
        "How much of the original's meaning survives (0-1; careful human rewrites score about 0.6), by " +
        (c.meaning_method === "embedding" ? "sentence-embedding similarity" : "word overlap") +
        (c.cmo_changed ? "; the codebook tagger now reads another CMO area or direction" : "")],
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
    // Suggestions carrying `demoted` are already ranked by postkit (an order-only or long-run
    // candidate is never first): keep that order.
    if ((quote.candidates || []).some((c) => "demoted" in c)) return quote.candidates[0];
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
    let advice = $("no-rewording");
    if (!advice) {
      advice = el("p", { id: "no-rewording", class: "notice", role: "status" });
      list.before(advice);
    }
    advice.hidden = !quote.no_rewording;
    advice.textContent = quote.no_rewording ? quote.advice || "No rewording will do for this quote." : "";
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
  //
  // Each suggested code gets a number and a colour (classes c1 … c8 in app.css); its evidence in
  // the excerpt is highlighted in that colour and labelled with that number, and its card shows the
  // same number and colour, so the link never rests on colour alone. Keyboard: a/r accept/reject the
  // active code, j/k move between codes, n/p between excerpts (never while typing in a field).
  // After a decision the focus moves to the next undecided code, or to "Next" when none is left,
  // and a status line says what happened (for screen readers).

  async function loadExcerpts() {
    const seq = ++state.excerptSeq;
    const query = state.order ? `?order=${encodeURIComponent(state.order)}` : "";
    const data = await api("GET", `/api/excerpts${query}`); // only your own decisions come back
    if (seq !== state.excerptSeq) return; // a later load (e.g. after a decision) wins
    state.excerpts = data.excerpts;
    state.excerptsLoaded = true;
    $("order-uncertainty").checked = data.order === "uncertainty";
    renderLearning(data.learning);
  }

  // -- excerpt order and the ranker's retraining

  function orderKey() {
    return `${ORDER_KEY}:${state.study}:${state.me}`;
  }

  function savedOrder() {
    try {
      const saved = localStorage.getItem(orderKey());
      return saved === "sampled" || saved === "uncertainty" ? saved : null;
    } catch (exc) {
      return null; // storage disabled: the app's default order
    }
  }

  async function changeOrder() {
    state.order = $("order-uncertainty").checked ? "uncertainty" : "sampled";
    try {
      localStorage.setItem(orderKey(), state.order);
    } catch (exc) {
      /* storage disabled: the choice lasts until the page is reloaded */
    }
    state.excerptsLoaded = false;
    await showExcerpt(state.unitId); // the same excerpt stays open; the list takes the new order
    announce(state.order === "uncertainty" ? "Excerpts you have not coded: most informative first."
      : "Excerpts in the order they were sampled.");
  }

  function clock(iso) {
    const date = new Date(iso);
    return isNaN(date) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function learningText(status) {
    if (status.state === "retrained") {
      const at = status.at ? ` at ${clock(status.at)}` : "";
      const reranked = status.reranked ? `; suggestions of ${status.reranked} uncoded excerpt${status.reranked === 1 ? "" : "s"} re-ranked` : "";
      return `Ranker retrained on ${status.decisions} decisions${at}${reranked}.`;
    }
    if (status.state === "idle") {
      return `The ranker retrains after every ${status.every === 1 ? "decision" : `${status.every} decisions`}.`;
    }
    const message = status.message || "";
    return message ? `${message[0].toUpperCase()}${message.slice(1)}${/[.…]$/.test(message) ? "" : "."}` : "";
  }

  function renderLearning(status) {
    const node = $("learning-status");
    const was = state.learning && state.learning.state;
    state.learning = status || null;
    if (!status || status.state === "off") {
      node.hidden = true;
      return;
    }
    node.dataset.state = status.state;
    node.textContent = learningText(status);
    node.hidden = !node.textContent;
    if (status.state === "running" && !state.learningTimer) {
      state.learningTimer = setTimeout(pollLearning, LEARNING_POLL_MS);
    }
    if (was === "running" && status.state === "retrained") state.excerptsLoaded = false; // re-ranked: reload on the next move
  }

  async function pollLearning() {
    state.learningTimer = null;
    try {
      const status = await api("GET", "/api/learning");
      const finished = state.learning && state.learning.state === "running" && status.state !== "running";
      renderLearning(status);
      if (finished && status.state === "retrained" && state.page === "coding" && !state.deciding) {
        // The list takes the new order and suggestions; the open excerpt is left as it is until the coder moves.
        await loadExcerpts();
        renderExcerptList();
      }
    } catch (error) {
      /* the status line is a courtesy: a failed poll is not worth an error box */
    }
  }

  async function loadCodes() {
    if (state.codes) return;
    const data = await api("GET", "/api/codes");
    state.codes = data.codes;
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

  function currentExcerpt() {
    return state.excerpts.find((e) => e.unit_id === state.unitId);
  }

  async function showExcerpt(id) {
    if (!state.excerptsLoaded || !state.codes) {
      try {
        await Promise.all([state.excerptsLoaded ? null : loadExcerpts(), loadCodes()]);
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
    if (id !== state.unitId) state.activeCode = null;
    state.unitId = id;
    renderExcerptList();
    renderExcerpt(currentExcerpt());
  }

  function evidenceSpans(text, evidence) {
    // Offsets are code points into the excerpt; trust them only when they point at the quoted words.
    const chars = Array.from(text);
    const spans = [];
    for (const ev of evidence || []) {
      if (Number.isInteger(ev.start) && Number.isInteger(ev.end) && ev.start >= 0 && ev.end > ev.start &&
          chars.slice(ev.start, ev.end).join("") === ev.text) {
        spans.push([ev.start, ev.end]);
      } else if (ev.text) {
        const at = text.indexOf(ev.text);
        if (at >= 0) {
          const start = Array.from(text.slice(0, at)).length;
          spans.push([start, start + Array.from(ev.text).length]);
        }
      }
    }
    return spans;
  }

  /** The excerpt with each code's evidence marked in its colour; overlaps merge into one mark per piece
   * of text, labelled (data-n, shown by CSS) with the numbers of the codes whose evidence starts there. */
  function evidenceHighlight(text, codes) {
    const chars = Array.from(text || "");
    const cuts = new Set([0, chars.length]);
    const spans = [];
    for (const code of codes) {
      for (const [start, end] of evidenceSpans(text || "", code.evidence)) {
        spans.push({ start, end, code });
        cuts.add(Math.min(chars.length, start));
        cuts.add(Math.min(chars.length, end));
      }
    }
    const points = [...cuts].sort((a, b) => a - b);
    const fragment = document.createDocumentFragment();
    let previous = null;
    for (let i = 0; i + 1 < points.length; i++) {
      const [a, b] = [points[i], points[i + 1]];
      const piece = chars.slice(a, b).join("");
      const covering = codes.filter((code) => spans.some((s) => s.code === code && s.start <= a && b <= s.end));
      if (!covering.length) {
        previous = null;
        fragment.append(piece);
        continue;
      }
      const key = covering.map((c) => c.n).join("+");
      if (previous && previous.key === key) {
        previous.mark.append(piece);
        continue;
      }
      const starting = covering.filter((c) => !(previous && previous.codes.includes(c)));
      const mark = el("mark", {
        class: `evidence c${covering[0].colour}${covering.length > 1 ? ` also-c${covering[1].colour}` : ""}`,
        "data-codes": covering.map((c) => c.code_id).join(" "),
        "data-n": starting.length ? starting.map((c) => c.n).join("+") : null,
        title: `evidence for ${covering.map((c) => `${c.n}: ${c.code_id} ${c.name || ""}`.trim()).join("; ")}`,
      }, piece);
      previous = { key, codes: covering, mark };
      fragment.append(mark);
    }
    return fragment;
  }

  /** A code's definition and include/exclude notes from the codebook. */
  function definitionList(code) {
    return el("dl", { class: "definition" },
      el("dt", { text: "Definition" }),
      el("dd", { class: "def", text: code.definition || "not in this codebook (suggested with an older one)" }),
      code.include ? el("dt", { text: "Include" }) : null,
      code.include ? el("dd", { class: "include", text: code.include }) : null,
      code.exclude ? el("dt", { text: "Exclude" }) : null,
      code.exclude ? el("dd", { class: "exclude", text: code.exclude }) : null);
  }

  const DECIDED = { accept: "accepted", reject: "rejected", add: "added", remove: "removed" };

  function memoKey(excerpt, codeId) {
    return `${excerpt.unit_id}\u0000${codeId}`;
  }

  function codeCard(excerpt, code, suggested, id) {
    const mine = excerpt.decisions[code.code_id];
    const [yes, no] = suggested ? ["accept", "reject"] : ["add", "remove"];
    const key = memoKey(excerpt, code.code_id);
    const memo = el("textarea", { rows: 1, maxlength: 2000, class: "memo", "aria-label": `Memo for ${code.code_id}`,
      placeholder: "memo (optional)" });
    memo.value = state.memoDrafts[key] ?? (mine && mine.memo ? mine.memo : "");
    memo.addEventListener("input", () => { state.memoDrafts[key] = memo.value; });
    const evidence = [];
    for (const ev of code.evidence || []) {
      if (evidence.length) evidence.push(" · ");
      evidence.push(el("q", { class: suggested ? `c${code.colour}` : null, text: ev.text }));
    }
    const card = el("li", { id, class: `code${mine ? ` d-${mine.action}` : ""}`, "data-code": code.code_id,
      "data-yes": yes, "data-no": no, "data-suggested": suggested ? "yes" : "no", tabindex: "-1",
      "aria-labelledby": `${id}-head ${id}-mine` },
    el("div", { class: "head", id: `${id}-head` },
      suggested ? el("span", { class: `chip c${code.colour}`, title: `evidence colour and number ${code.n}`,
        "aria-label": `code ${code.n}`, text: String(code.n) }) : null,
      el("strong", { text: code.code_id }), " ", el("span", { class: "name", text: code.name || "" }),
      el("span", { class: "muted", text: ` · ${code.area_name || code.area || "?"} · ${code.polarity || "?"}` +
        (suggested ? ` · score ${fmt(code.score)}` : " · added by you") })),
    definitionList(code),
    evidence.length ? el("p", { class: "evidence-list" }, "Evidence: ", ...evidence) : null,
    el("p", { class: "mine", id: `${id}-mine` }, mine
      ? el("span", { class: `badge ${["reject", "remove"].includes(mine.action) ? "s-rejected" : "s-approved"}`,
        text: `you: ${DECIDED[mine.action] || mine.action}` })
      : el("span", { class: "badge s-pending", text: "not decided" })),
    memo,
    el("div", { class: "actions" },
      el("button", { type: "button", class: "approve", "data-action": yes, "aria-keyshortcuts": "a",
        onclick: () => decideCode(excerpt, code.code_id, yes) }, suggested ? "Accept" : "Keep"),
      el("button", { type: "button", class: "reject", "data-action": no, "aria-keyshortcuts": "r",
        onclick: () => decideCode(excerpt, code.code_id, no) }, suggested ? "Reject" : "Remove")));
    card.addEventListener("focusin", () => markActive(card));
    return card;
  }

  function renderExcerpt(excerpt) {
    const index = state.excerpts.indexOf(excerpt);
    $("excerpt-position").textContent = `${index + 1} of ${state.excerpts.length}`;
    $("excerpt-prev").disabled = index <= 0;
    $("excerpt-next").disabled = index >= state.excerpts.length - 1;
    $("excerpt-id").textContent = excerpt.unit_id;
    $("excerpt-post").textContent = excerpt.post_id || "";
    $("excerpt-forum").textContent = excerpt.forum ? `in ${excerpt.forum}` : "";
    const codes = excerpt.suggestions.map((s, i) => ({ ...s, n: i + 1, colour: (i % CODE_COLOURS) + 1 }));
    clear($("excerpt-text")).append(evidenceHighlight(excerpt.text, codes));

    const list = clear($("codes"));
    codes.forEach((code, i) => list.append(codeCard(excerpt, code, true, `code-s${i}`)));
    if (!codes.length) list.append(el("li", { class: "muted", text: "No suggested codes." }));
    const added = excerpt.added || [];
    const addedList = clear($("added-codes"));
    added.forEach((code, i) => addedList.append(codeCard(excerpt, code, false, `code-a${i}`)));
    $("added-box").hidden = !added.length;
    renderAddCode(excerpt);
    placeFocus();
  }

  function cards() {
    return [...document.querySelectorAll("#codes li.code, #added-codes li.code")];
  }

  function cardOf(codeId) {
    return cards().find((card) => card.dataset.code === codeId);
  }

  function undecided(card) {
    return card.dataset.suggested === "yes" && !/\bd-/.test(card.className);
  }

  /** The card a/r act on: marked, and remembered across re-renders. */
  function markActive(card) {
    for (const other of cards()) other.classList.toggle("active", other === card);
    state.activeCode = card ? card.dataset.code : null;
  }

  function activeCard() {
    const focused = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest("li.code") : null;
    return focused || cardOf(state.activeCode) || cards().find(undecided) || cards()[0] || null;
  }

  function focusCard(card) {
    if (!card) return;
    markActive(card);
    card.focus();
    card.scrollIntoView({ block: "nearest" });
  }

  function announce(message) {
    const status = $("coding-status");
    status.textContent = "";
    if (message) setTimeout(() => { status.textContent = message; }, 50); // a change, even to the same words
  }

  /** After a render: focus what the last action asked for (state.focusAfter), else keep the active card. */
  function placeFocus() {
    const want = state.focusAfter;
    state.focusAfter = null;
    const all = cards();
    if (!want) {
      markActive(cardOf(state.activeCode) || all.find(undecided) || null);
      return;
    }
    if (want.heading) {
      markActive(all.find(undecided) || all[0] || null);
      $("excerpt-heading").focus();
      announce(`Excerpt ${state.unitId}: ${$("excerpt-position").textContent}`);
      return;
    }
    if (want.code) {
      focusCard(cardOf(want.code));
      announce(want.said);
      return;
    }
    const at = all.findIndex((card) => card.dataset.code === want.after);
    const next = [...all.slice(at + 1), ...all.slice(0, at + 1)].find(undecided);
    if (next) {
      focusCard(next);
      announce(`${want.said}. Next: ${next.dataset.code}.`);
    } else if (!$("excerpt-next").disabled) {
      markActive(all[at] || null);
      $("excerpt-next").focus();
      announce(`${want.said}. Every suggested code is decided: press n for the next excerpt.`);
    } else {
      focusCard(all[at]);
      announce(`${want.said}. Every suggested code is decided, and this is the last excerpt.`);
    }
  }

  async function decideCode(excerpt, codeId, action) {
    if (!state.me) {
      showError(NO_LINK);
      return;
    }
    if (state.deciding) return;
    const card = cardOf(codeId);
    const buttons = card ? [...card.querySelectorAll("button")] : [];
    const memo = card ? card.querySelector("textarea.memo").value : "";
    state.deciding = true;
    buttons.forEach((b) => (b.disabled = true));
    try {
      await api("POST", "/api/code", { unit_id: excerpt.unit_id, code_id: codeId, action, memo: memo.trim() || null });
      delete state.memoDrafts[memoKey(excerpt, codeId)];
      hideError();
      const said = `${codeId} ${DECIDED[action] || action}`;
      state.focusAfter = action === "add" && !card ? { code: codeId, said } : { after: codeId, said };
      await loadExcerpts();
      await showExcerpt(excerpt.unit_id);
    } catch (error) {
      state.focusAfter = null;
      buttons.forEach((b) => (b.disabled = false));
      showError(error);
      if (card && card.isConnected) focusCard(card);
    } finally {
      state.deciding = false;
    }
  }

  // -- adding a code that was not suggested

  function renderAddCode(excerpt) {
    const present = new Set([...excerpt.suggestions, ...(excerpt.added || [])].map((c) => c.code_id));
    const words = $("add-code-search").value.toLowerCase().split(/\s+/).filter(Boolean);
    const select = clear($("add-code-select"));
    const groups = new Map();
    let shown = 0;
    for (const code of state.codes || []) {
      if (present.has(code.code_id)) continue;
      const haystack = [code.code_id, code.name, code.area_name, code.definition, code.include]
        .join(" ").toLowerCase();
      if (!words.every((word) => haystack.includes(word))) continue;
      const area = code.area_name || code.area || "other";
      if (!groups.has(area)) groups.set(area, el("optgroup", { label: area }));
      groups.get(area).append(el("option", { value: code.code_id, text: `${code.code_id} — ${code.name}` }));
      shown += 1;
    }
    select.append(...groups.values());
    select.value = state.addPick && [...select.options].some((o) => o.value === state.addPick) ? state.addPick : "";
    $("add-code-count").textContent = `${shown} code${shown === 1 ? "" : "s"} match`;
    showAddDefinition();
  }

  function showAddDefinition() {
    const picked = $("add-code-select").value;
    const code = (state.codes || []).find((c) => c.code_id === picked);
    state.addPick = code ? code.code_id : null;
    const box = clear($("add-code-definition"));
    $("add-code").disabled = !code;
    if (code) box.append(el("p", {}, el("strong", { text: code.code_id }), ` ${code.name}`), definitionList(code));
  }

  function addCode() {
    const excerpt = currentExcerpt();
    const codeId = state.addPick;
    if (!excerpt || !codeId) return;
    $("add-code-search").value = "";
    state.addPick = null;
    decideCode(excerpt, codeId, "add");
  }

  function onAddSearchKey(event) {
    const select = $("add-code-select");
    if ((event.key === "ArrowDown" || event.key === "Enter") && select.options.length) {
      event.preventDefault();
      if (!select.value) select.value = select.options[0].value;
      showAddDefinition();
      select.focus();
    }
  }

  // -- keys

  const KEYS = { a: "yes", r: "no", j: "next-code", k: "previous-code", n: "next-excerpt", p: "previous-excerpt" };

  function typingIn(node) {
    return node instanceof Element &&
      node.closest("input, textarea, select, [contenteditable]:not([contenteditable='false'])") !== null;
  }

  function onKey(event) {
    if (state.page !== "coding" || $("excerpt-body").hidden || event.defaultPrevented || event.isComposing ||
        event.ctrlKey || event.metaKey || event.altKey) return;
    if (typingIn(event.target)) {
      if (event.key === "Escape" && event.target.classList.contains("memo")) {
        event.preventDefault();
        focusCard(event.target.closest("li.code"));
      }
      return;
    }
    const command = event.shiftKey ? undefined : KEYS[event.key.toLowerCase()]; // Caps Lock on: still a key
    if (!command) return;
    event.preventDefault();
    const excerpt = currentExcerpt();
    if (!excerpt) return;
    if (command === "next-excerpt" || command === "previous-excerpt") {
      const delta = command === "next-excerpt" ? 1 : -1;
      const index = state.excerpts.indexOf(excerpt);
      if (!state.excerpts[index + delta]) {
        announce(delta > 0 ? "This is the last excerpt." : "This is the first excerpt.");
        return;
      }
      state.focusAfter = { heading: true };
      stepExcerpt(delta);
      return;
    }
    const card = activeCard();
    if (!card) return;
    if (command === "yes" || command === "no") {
      decideCode(excerpt, card.dataset.code, command === "yes" ? card.dataset.yes : card.dataset.no);
      return;
    }
    const all = cards();
    const at = all.indexOf(card);
    const focused = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest("li.code") : null;
    // The first j on a fresh excerpt goes to the active card itself, not past it.
    const step = command === "next-code" ? 1 : -1;
    focusCard(all[focused !== card ? at : Math.max(0, Math.min(all.length - 1, at + step))]);
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
    state.study = data.study;
    state.order = savedOrder();
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
    $("order-uncertainty").addEventListener("change", () => changeOrder().catch(showError));
    $("add-code-search").addEventListener("input", () => {
      const excerpt = currentExcerpt();
      if (excerpt) renderAddCode(excerpt);
    });
    $("add-code-search").addEventListener("keydown", onAddSearchKey);
    $("add-code-select").addEventListener("change", showAddDefinition);
    $("add-code-select").addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        addCode();
      }
    });
    $("add-code").addEventListener("click", addCode);
    document.addEventListener("keydown", onKey);
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
