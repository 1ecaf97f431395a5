"""``postkit report RUN_DIR``: one HTML page about a whole run, for the ethics reviewer and the researcher.

A run folder holds many files (parquet tables, an audit log, a coding store, disguise
suggestions) and a manifest. A reviewer should not need postkit, Python or a network to
see what the run did, so this module gathers, from the folder alone:

* the consent funnel, by forum and by reason (manifest counts; the audit log's entries
  and footer, which must agree with them);
* the recheck of every hash and of the audit chain and signature
  (:func:`postkit.verify_run.verify_run`);
* de-identification counts by type; the sampling funnel and word counts; coding
  progress and agreement (the coding store, opened read-only); the disguise verdicts of
  the quotes and of those approved for publication; the manifest itself.

Every section is present whatever ran: a stage that did not run says so, and a stage
whose files are missing or unreadable is shown as a problem, not skipped, so an absent
section can never hide a failure.

**No post text.** The page is shared with reviewers, so it holds counts, ids, codes,
hashes and settings, never the text of a post, an excerpt, a quote or a coder's memo.
Readers below pick the columns and fields they need and drop the rest as they read.

Charts come from the shared chart path (:mod:`postkit.report.charts`, matplotlib as
inline SVG); every chart has a table with the same numbers beside it.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import jinja2
from markupsafe import Markup

from .. import __version__
from ..errors import PostkitError
from ..io import write_atomic
from ..timestamps import iso, now_utc
from . import charts
from .sampling import (
    STEPS,
    TEMPLATE_DIR,
    consistency_problems,
    count_into,
    fmt_int,
    fmt_pct,
    funnel_chart,
    funnel_rows,
    histogram_chart,
    make_bins,
    short_hash,
    step_labels,
    summary_stats,
)

TEMPLATE_NAME = "run.html.j2"
OK, NOT_RUN, PROBLEM = "ok", "not run", "problem"
VERDICTS = ("traceable", "at risk", "disguised")


@dataclass
class Table:
    """A table on the page (and in :meth:`RunReport.to_dict`); ``numeric`` columns are right-aligned."""

    caption: str
    headers: list[str]
    rows: list[list[Any]]
    numeric: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"caption": self.caption, "headers": self.headers, "rows": self.rows}


@dataclass
class Section:
    """One part of the report. ``status`` is ``ok``, ``not run`` or ``problem``."""

    key: str
    title: str
    status: str = OK
    summary: str = ""
    problems: list[str] = field(default_factory=list)
    facts: list[tuple[str, Any]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[tuple[Markup, str]] = field(default_factory=list)  # (inline SVG, caption)
    notes: list[str] = field(default_factory=list)
    blocks: list[tuple[str, str]] = field(default_factory=list)  # (caption, preformatted text)
    data: dict[str, Any] = field(default_factory=dict)

    def problem(self, message: str) -> None:
        self.problems.append(message)
        self.status = PROBLEM

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "status": self.status, "summary": self.summary,
                "problems": self.problems, "facts": {label: value for label, value in self.facts},
                "tables": [t.to_dict() for t in self.tables], "notes": self.notes, "data": self.data}


@dataclass
class RunReport:
    """Everything :func:`build_report` found; :meth:`render` is the HTML page, :meth:`to_dict` the data."""

    run_dir: str
    study: str
    created_at: str
    postkit_version: str
    sections: list[Section]

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)

    @property
    def ok(self) -> bool:
        return not any(s.status == PROBLEM for s in self.sections)

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": self.run_dir, "study": self.study, "created_at": self.created_at,
                "postkit_version": self.postkit_version, "ok": self.ok,
                "sections": [s.to_dict() for s in self.sections]}

    def render(self) -> str:
        return _environment().get_template(TEMPLATE_NAME).render(report=self, OK=OK, NOT_RUN=NOT_RUN,
                                                                 PROBLEM=PROBLEM)

    def write(self, path: str | Path) -> None:
        """Render first, then publish atomically: a failed render leaves no half-written page."""
        write_atomic(path, self.render())


# --------------------------------------------------------------------------- reading the folder


def _load_manifest(run_dir: Path) -> dict[str, Any]:
    from ..verify_run import _load_manifest as load  # one definition of "a run folder"

    return load(run_dir)


def _stage(manifest: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in manifest.get("stages") or [] if isinstance(s, dict) and s.get("name") == name), None)


def _file(run_dir: Path, stage: dict[str, Any], label: str) -> Path | None:
    record = (stage.get("files") or {}).get(label)
    return run_dir / str(record["path"]) if isinstance(record, dict) and record.get("path") else None


def _describe(exc: BaseException) -> str:
    """A problem in one sentence without echoing data: postkit's own errors are written that way;
    for anything else only its kind is shown."""
    if isinstance(exc, PostkitError):
        return exc.one_line()
    return f"it could not be read ({type(exc).__name__})"


def _not_run(section: Section, stage: str) -> Section:
    section.status = NOT_RUN
    section.summary = f"The {stage} stage did not run in this run (it is not in the manifest's stages)."
    return section


def _num(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _ratio(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


# --------------------------------------------------------------------------- sections


def consent_section(run_dir: Path, manifest: dict[str, Any], draw: bool) -> Section:
    section = Section("consent", "Consent funnel")
    stage = _stage(manifest, "consent")
    if stage is None:
        return _not_run(section, "consent")
    counts = stage.get("counts") or {}
    by_reason = {str(k): _num(v) for k, v in (counts.get("by_reason") or {}).items()}
    by_forum = {str(k): v for k, v in (counts.get("by_forum") or {}).items() if isinstance(v, dict)}
    posts, kept, excluded = _num(counts.get("posts")), _num(counts.get("kept")), _num(counts.get("excluded"))
    section.summary = (f"{fmt_int(posts)} posts: {fmt_int(kept)} kept ({fmt_pct(kept, posts)}), "
                       f"{fmt_int(excluded)} excluded, consent judged as of {stage.get('as_of', '(not recorded)')}.")
    section.facts += [("Posts", posts), ("Kept", kept), ("Excluded", excluded),
                      ("Consent judged as of", stage.get("as_of", "(not recorded)")),
                      ("Pseudonym key id", stage.get("key_id", "(not recorded)"))]
    section.data = {"posts": posts, "kept": kept, "excluded": excluded, "by_reason": by_reason,
                    "by_forum": by_forum}
    if kept + excluded != posts:
        section.problem(f"kept ({fmt_int(kept)}) and excluded ({fmt_int(excluded)}) do not add up to the "
                        f"{fmt_int(posts)} posts the manifest counts.")
    section.tables.append(Table("Posts by reason", ["Reason", "Decision", "Posts", "Share"],
                                [[reason, "kept" if reason == "OPTED_IN" else "excluded", n, fmt_pct(n, posts)]
                                 for reason, n in by_reason.items()], numeric=(2, 3)))
    section.tables.append(Table("Posts by forum", ["Forum", "Posts", "Kept", "Excluded", "Kept share"],
                                [[forum, _num(v.get("kept")) + _num(v.get("excluded")), _num(v.get("kept")),
                                  _num(v.get("excluded")),
                                  fmt_pct(_num(v.get("kept")), _num(v.get("kept")) + _num(v.get("excluded")))]
                                 for forum, v in by_forum.items()], numeric=(1, 2, 3, 4)))
    matrix = _forum_by_reason(run_dir, stage, section, counts)
    if matrix:
        reasons = [r for r in by_reason if any(matrix[f].get(r) for f in matrix)] or list(by_reason)
        section.tables.append(Table("Posts by forum and reason (from the audit log's entries)",
                                    ["Forum", *reasons, "Total"],
                                    [[forum, *[matrix[forum].get(r, 0) for r in reasons], sum(matrix[forum].values())]
                                     for forum in matrix], numeric=tuple(range(1, len(reasons) + 2))))
        section.data["by_forum_and_reason"] = matrix
    if draw and by_forum:
        chart = charts.bar_chart("consent-forum", "Posts kept and excluded per forum", list(by_forum),
                                 {"kept": [_num(v.get("kept")) for v in by_forum.values()],
                                  "excluded": [_num(v.get("excluded")) for v in by_forum.values()]},
                                 stacked=True, xlabel="posts", colours=("#0072B2", "#E69F00"))
        if chart:
            section.charts.append((chart, "Posts kept (blue) and excluded (orange) per forum; the number is the "
                                          "forum's total. The table gives the same numbers."))
    if draw and by_reason:
        chart = charts.bar_chart("consent-reason", "Posts per consent decision reason", list(by_reason),
                                 {"posts": list(by_reason.values())}, xlabel="posts")
        if chart:
            section.charts.append((chart, "Why each post was kept (OPTED_IN) or excluded."))
    return section


def _forum_by_reason(run_dir: Path, stage: dict[str, Any], section: Section,
                     counts: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Forum × reason counts from the audit log's entries; the footer must match the manifest."""
    from ..audit import read_audit

    log = _file(run_dir, stage, "audit")
    if log is None:
        section.problem("the manifest names no audit log for the consent stage.")
        return {}
    if not log.is_file():
        section.problem(f"the audit log {log.relative_to(run_dir).as_posix()} is missing; the counts above come "
                        "from the manifest alone.")
        return {}
    matrix: dict[str, Counter[str]] = {}
    footer = None
    before = len(section.problems)
    try:
        for line in read_audit(log):
            kind = line.get("type")
            if kind == "entry":
                forum = str(line.get("forum") or "(no forum)")
                matrix.setdefault(forum, Counter())[str(line.get("reason"))] += 1
            elif kind == "footer":
                footer = line
    except (PostkitError, OSError) as exc:
        section.problem(f"the audit log could not be read: {_describe(exc)}")
        return {}
    if footer is None:
        section.problem("the audit log has no footer (it was cut short); see the audit verification below.")
    else:
        recorded = footer.get("counts") or {}
        for key in ("posts", "kept", "excluded"):
            if _num(recorded.get(key)) != _num(counts.get(key)):
                section.problem(f"the audit log's footer counts {fmt_int(_num(recorded.get(key)))} {key} posts, "
                                f"the manifest {fmt_int(_num(counts.get(key)))}.")
        if _num(footer.get("entries")) != sum(sum(c.values()) for c in matrix.values()):
            section.problem("the audit log's footer and its entries disagree on the number of posts.")
    by_reason = {str(k): _num(v) for k, v in (counts.get("by_reason") or {}).items()}
    in_log = sum((c for c in matrix.values()), Counter())
    for reason in sorted(set(by_reason) | set(in_log)):
        if in_log.get(reason, 0) != by_reason.get(reason, 0):
            section.problem(f"the audit log's entries give {fmt_int(in_log.get(reason, 0))} posts the reason "
                            f"{reason}, the manifest {fmt_int(by_reason.get(reason, 0))}.")
    if footer is not None:
        section.facts.append(("Audit log", f"{fmt_int(_num(footer.get('entries')))} entries; its counts "
                                           f"{'match' if len(section.problems) == before else 'DIFFER FROM'} "
                                           "the manifest's"))
    return {forum: dict(matrix[forum]) for forum in sorted(matrix)}


def audit_section(run_dir: Path, manifest: dict[str, Any], public_key: str | Path | None) -> Section:
    from ..verify_run import verify_run

    section = Section("audit", "Audit verification")
    result = verify_run(run_dir, public_key=public_key)
    consent = _stage(manifest, "consent")
    failed = result.problems
    section.summary = ("Every file the run recorded is unchanged" if not failed else
                       f"{len(failed)} check(s) failed: something the run wrote was changed or is missing")
    section.summary += (", and the consent audit chain verifies." if consent and not any(
        c.what.startswith("audit") and c.failed for c in result.checks) else ".")
    if consent is None:
        section.notes.append("There is no consent stage, so no audit log to verify; the files of the other "
                             "stages are still checked.")
    signature = next((c for c in result.checks if c.what == "audit signature"), None)
    if consent is not None:
        section.facts.append(("Audit head (manifest)", consent.get("audit_head") or "(not recorded)"))
        section.facts.append(("Signing key", consent.get("signing_key") or "(not recorded: the log is unsigned)"))
        section.facts.append(("Signature", "(no signature check)" if signature is None else
                              f"{signature.status}: {signature.detail}"))
        if public_key is None:
            section.notes.append("The signature was checked against the public key inside the run folder, which "
                                 "proves the log was not edited since it was signed, not who signed it: rerun "
                                 "with --public-key STEWARD.pub, the key the data steward gave you.")
    for check in failed:
        section.problem(f"{check.what}: {check.path}: {check.status}" + (f" ({check.detail})" if check.detail else ""))
    section.tables.append(Table("Every check", ["What", "File", "Status", "Detail"],
                                [[c.what, c.path, c.status, c.detail] for c in result.checks]))
    section.data = result.to_dict()
    return section


def deid_section(run_dir: Path, manifest: dict[str, Any], draw: bool) -> Section:
    section = Section("deid", "De-identification")
    stage = _stage(manifest, "deid")
    if stage is None:
        return _not_run(section, "de-identification (deid)")
    counts = stage.get("counts") or {}
    entities = {str(k): _num(v) for k, v in (counts.get("entities") or {}).items()}
    total = sum(entities.values())
    posts = _num(counts.get("posts"))
    section.summary = (f"{fmt_int(total)} identifiers replaced in {fmt_int(posts)} posts "
                       f"(operator '{counts.get('operator', stage.get('operator', '?'))}').")
    section.facts += [("Posts", posts), ("Texts", _num(counts.get("texts"))),
                      ("Operator", counts.get("operator", "(not recorded)")),
                      ("Locales", ", ".join(stage.get("locales") or counts.get("locales") or []) or "(not recorded)"),
                      ("Model", stage.get("model") or counts.get("model") or "(not recorded)"),
                      ("Model sha256", stage.get("model_sha256") or "(not recorded)"),
                      ("Rules sha256", stage.get("rules_sha256") or "(not recorded)")]
    section.tables.append(Table("Identifiers found, by type", ["Type", "Found", "Share"],
                                [[k, v, fmt_pct(v, total)] for k, v in entities.items()], numeric=(1, 2)))
    section.data = {"posts": posts, "entities": entities}
    spans = _file(run_dir, stage, "spans")
    if spans is not None:
        if not spans.is_file():
            section.problem(f"the span file {spans.relative_to(run_dir).as_posix()} the run wrote is missing.")
        else:
            try:
                with_spans, rows = _span_counts(spans)
            except (PostkitError, OSError) as exc:
                section.problem(f"the span file could not be read: {_describe(exc)}")
            else:
                section.facts.append(("Texts with at least one identifier",
                                      f"{fmt_int(with_spans)} of {fmt_int(rows)} ({fmt_pct(with_spans, rows)})"))
                section.data["texts_with_identifiers"] = with_spans
    if draw and entities:
        chart = charts.bar_chart("deid-types", "Identifiers replaced, by type", list(entities),
                                 {"found": list(entities.values())}, xlabel="identifiers")
        if chart:
            section.charts.append((chart, "Identifiers found and replaced, by type."))
    return section


def _span_counts(path: Path) -> tuple[int, int]:
    """(texts with at least one span, texts): offsets only are read, never the text they point into."""
    from ..io import iter_json_lines

    with_spans = rows = 0
    for _number, record in iter_json_lines(path):
        rows += 1
        with_spans += bool(record.get("spans"))
    return with_spans, rows


def sample_section(run_dir: Path, manifest: dict[str, Any], draw: bool) -> Section:
    section = Section("sample", "Sampling funnel and word counts")
    stage = _stage(manifest, "sample")
    if stage is None:
        return _not_run(section, "sample")
    counts = stage.get("counts") or {}
    detail: dict[str, Any] = {}
    sample_manifest = _file(run_dir, stage, "manifest")
    if sample_manifest is not None and sample_manifest.is_file():
        try:
            detail = json.loads(sample_manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            section.problem(f"the sample's manifest could not be read: {_describe(exc)}")
    elif sample_manifest is not None:
        section.problem(f"the sample's manifest {sample_manifest.relative_to(run_dir).as_posix()} is missing.")
    report = {"funnel": counts.get("funnel") or detail.get("funnel") or [], "per_stratum": detail.get("per_stratum", 0),
              "totals": detail.get("totals") or {}, "input": detail.get("input") or {},
              "output": detail.get("output") or {}}
    rows = funnel_rows(report)
    per = _num(report["per_stratum"])
    min_words = _num(detail.get("min_words"))
    labels = step_labels(min_words)
    totals = {s: sum(r.count(s) for r in rows) for s in STEPS}
    section.summary = (f"{fmt_int(totals['sampled'])} of {fmt_int(totals['total'])} posts sampled in "
                       f"{fmt_int(len(rows))} strata; {fmt_int(sum(r.short for r in rows))} had fewer than N eligible.")
    section.facts += [("Phrases", ", ".join(f"“{p}”" for p in detail.get("phrases") or []) or "(not recorded)"),
                      ("Length", f"more than {fmt_int(min_words)} words"),
                      ("Per stratum (N)", per), ("Strata", " × ".join(detail.get("by") or []) or "(not recorded)"),
                      ("Seed", str(detail.get("seed", "(not recorded)"))),
                      ("Method", detail.get("sampling_method", "(not recorded)"))]
    section.tables.append(Table("Funnel per stratum", ["Stratum", *[labels[s] for s in STEPS], "Short"],
                                [[r.stratum, *[r.count(s) for s in STEPS], "▲ short" if r.short else ""]
                                 for r in rows] + [["Total", *[totals[s] for s in STEPS], ""]],
                                numeric=(1, 2, 3, 4)))
    words = _sampled_word_counts(run_dir, stage, section)
    problems = consistency_problems({**report, "totals": report["totals"] or totals, "per_stratum": per},
                                    rows, totals["length"], len(words) if words is not None else totals["sampled"])
    for problem in problems:
        section.problem(problem)
    section.data = {"funnel": [r.__dict__ for r in rows], "totals": totals, "per_stratum": per,
                    "min_words": min_words}
    if words:
        stats = summary_stats(words)
        section.facts.append(("Words per sampled post", f"median {stats['median']}, shortest {stats['min']}, "
                                                         f"longest {stats['max']}"))
        section.data["sampled_word_counts"] = {"n": len(words), "median": stats["median"], "min": min(words),
                                               "max": max(words)}
        bins = make_bins(words, width=10, start=min_words + 1)
        sampled_counts = count_into(words, bins)
        section.tables.append(Table("Words per sampled post", ["Words", "Sampled posts", "Share"],
                                    [[b.label, n, fmt_pct(n, len(words))] for b, n in zip(bins, sampled_counts)],
                                    numeric=(1, 2)))
        if draw:
            section.charts.append((histogram_chart(bins, [0] * len(bins), sampled_counts, 0, len(words),
                                                   chart_id="run-words-chart"),
                                   "Share of the sampled posts in each word-count bin. The distribution of all "
                                   "eligible posts is in the sample's own report (sample/report.html)."))
    if draw and rows:
        chart = funnel_chart(rows, per, labels, chart_id="run-funnel-chart")
        if chart is not None:
            section.charts.insert(0, (chart, "Each stratum on its own scale (the grey band runs to its number of "
                                             "posts, or to N if larger); the dashed mark is N."))
    return section


def _sampled_word_counts(run_dir: Path, stage: dict[str, Any], section: Section) -> list[int] | None:
    """The sample output's ``word_count`` column (only that column is kept)."""
    from ..io import open_table

    output = _file(run_dir, stage, "posts")
    if output is None or not output.exists():
        section.problem("the sampled posts the run wrote are missing, so their word counts cannot be shown.")
        return None
    try:
        reader = open_table(output)
        if "word_count" not in reader.columns:
            section.notes.append("The sample has no word_count column (made by an older postkit).")
            return None
        words: list[int] = []
        for batch in reader.batches():
            words += [int(v) for v in batch["word_count"].tolist()]
        return words
    except (PostkitError, OSError, ValueError) as exc:
        section.problem(f"the sampled posts could not be read: {_describe(exc)}")
        return None


def coding_section(run_dir: Path, manifest: dict[str, Any], draw: bool) -> Section:
    section = Section("coding", "Coding progress and agreement")
    stage = _stage(manifest, "tag")
    if stage is None:
        return _not_run(section, "tag")
    counts = stage.get("counts") or {}
    areas = {str(k): _num(v) for k, v in (counts.get("suggestions_per_area") or {}).items()}
    section.facts += [("Units tagged", _num(counts.get("units"))),
                      ("Units with a suggestion", _num(counts.get("units_with_suggestions"))),
                      ("Codebook version", stage.get("codebook_version") or "(not recorded)"),
                      ("Ranker version", stage.get("ranker_version") or "(not recorded)")]
    section.tables.append(Table("Code suggestions by programme-theory area", ["Area", "Suggestions"],
                                [[k, v] for k, v in areas.items()], numeric=(1,)))
    section.data = {"suggestions_per_area": areas}
    store_path = _file(run_dir, stage, "store")
    if store_path is None:
        section.summary = "Suggestions were made but not loaded into a coding store ([tag] store = false)."
        return section
    if not store_path.is_file():
        section.problem(f"the coding store {store_path.relative_to(run_dir).as_posix()} is missing: coders' "
                        "decisions cannot be shown.")
        section.summary = "The coding store is missing."
        return section
    try:
        progress, codings, chain = _read_store(store_path)
    except (PostkitError, OSError) as exc:
        section.problem(f"the coding store could not be read: {_describe(exc)}")
        section.summary = "The coding store could not be read."
        return section
    if not chain.ok:
        section.problem(f"the coding store's decision log does not verify: {chain.problem}")
    section.facts.append(("Decision log", "hash chain verifies" if chain.ok else "DOES NOT VERIFY"))
    total = _num(progress.get("units_total"))
    coders = list(progress.get("units_decided_by_coder") or {})
    section.summary = (f"{fmt_int(_num(progress.get('units_decided')))} of {fmt_int(total)} units have a coder's "
                       f"decision; {fmt_int(len(coders))} coder(s); {fmt_int(_num(progress.get('suggestions_pending')))}"
                       f" of {fmt_int(_num(progress.get('suggestions_total')))} suggestions await a decision.")
    applied = codings[codings["applied"]].groupby("coder").size().to_dict() if len(codings) else {}
    section.tables.append(Table("Progress per coder", ["Coder", "Units decided", "Share of units", "Decisions",
                                                       "Codes applied (current)"],
                                [[c, _num(n), fmt_pct(_num(n), total), _num(progress["decisions_by_coder"].get(c)),
                                  _num(applied.get(c))]
                                 for c, n in (progress.get("units_decided_by_coder") or {}).items()],
                                numeric=(1, 2, 3, 4)))
    section.data["progress"] = {k: v for k, v in progress.items()}
    if len(coders) >= 2:
        _agreement_table(section, codings)
    else:
        section.notes.append("Agreement needs the decisions of at least two coders on the same units"
                             + (f"; so far only {coders[0]} has coded." if coders else "; no coder has coded yet."))
    if draw and coders:
        chart = charts.bar_chart("coding-progress", "Units decided per coder", coders,
                                 {"units decided": [_num(v) for v in progress["units_decided_by_coder"].values()]},
                                 xlabel=f"units (of {fmt_int(total)})")
        if chart:
            section.charts.append((chart, f"Units each coder has decided, of {fmt_int(total)} in the store."))
    if draw and areas:
        chart = charts.bar_chart("coding-areas", "Code suggestions per programme-theory area", list(areas),
                                 {"suggestions": list(areas.values())}, xlabel="suggestions")
        if chart:
            section.charts.append((chart, "Suggestions the tagger made, by area (not yet codings: only a "
                                          "coder's decision is)."))
    return section


def _read_store(path: Path):
    """(progress, current codings without memos, chain check), reading the store read-only."""
    from ..coding.store import CodingStore, verify_store

    with CodingStore(path, read_only=True) as store:
        progress = store.progress()
        codings = store.codings().drop(columns=["memo"])
    return progress, codings, verify_store(path)


def _agreement_table(section: Section, codings: Any) -> None:
    from ..coding.agreement import agreement

    try:
        result = agreement(codings, resamples=0)
    except PostkitError as exc:
        section.notes.append(f"Agreement not computed: {exc.message}")
        return
    rows = []
    for row in [*result.per_code, result.overall]:
        rows.append([row.code_id, row.units, "–" if row.percent_agreement is None else fmt_pct(row.percent_agreement, 1),
                     _ratio(row.cohen_kappa), _ratio(row.krippendorff_alpha), _ratio(row.gwet_ac1),
                     row.kappa_band if len(result.coders) == 2 else row.alpha_band])
    section.tables.append(Table(f"Agreement between {', '.join(result.coders)} (units both coded)",
                                ["Code", "Units", "Agreement", "Cohen's κ", "Krippendorff's α", "Gwet's AC1", "Band"],
                                rows, numeric=(1, 2, 3, 4, 5)))
    section.data["agreement"] = {"coders": result.coders, "overall": {
        "units": result.overall.units, "percent_agreement": result.overall.percent_agreement,
        "cohen_kappa": result.overall.cohen_kappa, "krippendorff_alpha": result.overall.krippendorff_alpha,
        "gwet_ac1": result.overall.gwet_ac1}}
    section.notes.append("Agreement counts each coder's latest decision; `postkit code agreement` gives "
                         "confidence intervals and the disagreements.")


def disguise_section(run_dir: Path, manifest: dict[str, Any], draw: bool) -> Section:
    section = Section("disguise", "Disguise verdicts of quotes")
    stage = _stage(manifest, "disguise")
    if stage is None:
        return _not_run(section, "disguise")
    counts = stage.get("counts") or {}
    suggestions = _file(run_dir, stage, "suggestions")
    if suggestions is None or not suggestions.is_file():
        section.problem("the disguise suggestions (suggestions.jsonl) the run wrote are missing.")
        return section
    try:
        quotes = _quote_verdicts(suggestions)
        decisions = _quote_decisions(run_dir, suggestions.parent)
    except (PostkitError, OSError) as exc:
        section.problem(f"the disguise folder could not be read: {_describe(exc)}")
        return section
    rows, approved = [], Counter()
    for quote in quotes:
        decision = decisions.get(quote["quote_id"])
        status = {"approve": "approved", "reject": "rejected"}.get(decision["action"], decision["action"]) \
            if decision else "pending"
        scores = (decision or {}).get("scores") or {}
        verdict = scores.get("verdict") if status == "approved" else None
        if status == "approved":
            approved[str(verdict)] += 1
            if verdict != "disguised":
                section.problem(f"quote {quote['quote_id']} was approved with the verdict '{verdict}', not "
                                "'disguised'; `postkit disguise export` will refuse it.")
        rows.append([quote["quote_id"], quote["verdict"], quote["best"], status, verdict or "",
                     scores.get("source_rank", "") if status == "approved" else "",
                     _ratio(scores.get("meaning_score")) if status == "approved" and scores.get("meaning_score")
                     is not None else "",
                     (decision or {}).get("reviewer", "") if decision else ""])
    statuses = Counter(r[3] for r in rows)
    section.summary = (f"{fmt_int(len(quotes))} quotes: {fmt_int(statuses['approved'])} approved for publication, "
                       f"{fmt_int(statuses['rejected'])} rejected, {fmt_int(statuses['pending'])} awaiting review.")
    section.facts += [("Quotes", len(quotes)),
                      ("Mean meaning score of the best suggestions", counts.get("best_meaning_mean", "(not recorded)")),
                      ("Search index key", stage.get("index_key") or "(not recorded)")]
    section.tables.append(Table("Verdicts", ["Verdict", "Quotes as written", "Best suggestion", "Approved"],
                                [[v, _num((counts.get("before") or {}).get(v)), _num((counts.get("best") or {}).get(v)),
                                  approved.get(v, 0)] for v in VERDICTS], numeric=(1, 2, 3)))
    section.tables.append(Table("Per quote (ids only)", ["Quote", "As written", "Best suggestion", "Review",
                                                         "Verdict when approved", "Source rank", "Meaning",
                                                         "Reviewer"], rows, numeric=(5, 6)))
    section.notes.append("Verdicts are those recorded by the check when each text was suggested or approved; "
                         "`postkit disguise export` checks every approved text again before writing it.")
    section.data = {"quotes": len(quotes), "statuses": dict(statuses), "approved_verdicts": dict(approved),
                    "before": counts.get("before") or {}, "best": counts.get("best") or {}}
    if draw and quotes:
        chart = charts.bar_chart(
            "disguise-verdicts", "Quotes per verdict: as written, best suggestion, approved", list(VERDICTS),
            {"as written": [_num((counts.get("before") or {}).get(v)) for v in VERDICTS],
             "best suggestion": [_num((counts.get("best") or {}).get(v)) for v in VERDICTS],
             "approved": [approved.get(v, 0) for v in VERDICTS]},
            xlabel="quotes", colours=("#D55E00", "#E69F00", "#009E73"))
        if chart:
            section.charts.append((chart, "How findable the quotes are: as the researchers chose them, the best "
                                          "suggested rewording, and the texts approved for publication."))
    return section


def _quote_verdicts(path: Path) -> list[dict[str, str]]:
    """quote_id, its verdict and its best candidate's verdict: the texts are not kept."""
    from ..io import iter_json_lines

    order = {v: i for i, v in enumerate(VERDICTS)}
    quotes = []
    for number, record in iter_json_lines(path):
        if record.get("quote_id") in (None, ""):
            raise PostkitError("a quote has no quote_id", path=path, row=number)
        verdicts = [str(c.get("verdict")) for c in record.get("candidates") or [] if isinstance(c, dict)]
        best = max(verdicts, key=lambda v: order.get(v, -1)) if verdicts else "no candidate"
        quotes.append({"quote_id": str(record["quote_id"]), "verdict": str(record.get("verdict") or "(not recorded)"),
                       "best": best})
    return quotes


def _quote_decisions(run_dir: Path, folder: Path) -> dict[str, dict[str, Any]]:
    """The latest review of each quote (action, reviewer, time, scores): the approved text and note are dropped."""
    from ..coding.store import CodingStore
    from ..disguise.study import REVIEW_KIND, STORE_FILE

    shared = run_dir / "tag" / STORE_FILE
    store = shared if shared.is_file() else folder / STORE_FILE
    if not store.is_file():
        return {}
    with CodingStore(store, read_only=True) as opened:
        frame = opened.reviews(REVIEW_KIND).drop(columns=["text", "note"])
    return {str(row["item_id"]): row for row in frame.to_dict("records")}  # oldest first: the latest wins


def manifest_section(run_dir: Path, manifest: dict[str, Any]) -> Section:
    section = Section("manifest", "Manifest")
    study = manifest.get("study") or {}
    section.summary = (f"Run of study '{study.get('name', '?')}' by postkit {manifest.get('postkit_version', '?')}, "
                       f"{manifest.get('started_at', '?')} to {manifest.get('finished_at', '?')}.")
    section.facts += [("Study", study.get("name", "(not recorded)")), ("Study file", study.get("path", "")),
                      ("Study file sha256", study.get("sha256", "")), ("Started", manifest.get("started_at", "")),
                      ("Finished", manifest.get("finished_at", "")), ("Final output", manifest.get("output", "")),
                      ("Stages", ", ".join(str(s.get("name")) for s in manifest.get("stages") or []))]
    section.tables.append(Table("Software versions", ["Package", "Version"],
                                [[k, v] for k, v in (manifest.get("versions") or {}).items()]))
    section.tables.append(Table("Inputs", ["Input", "Path", "sha256"],
                                [[k, v.get("path", ""), v.get("sha256", "")]
                                 for k, v in (manifest.get("inputs") or {}).items() if isinstance(v, dict)]))
    files = [[s.get("name"), label, r.get("path", ""), r.get("sha256", "")]
             for s in manifest.get("stages") or [] for label, r in (s.get("files") or {}).items()
             if isinstance(r, dict)]
    files += [["run", label, r.get("path", ""), r.get("sha256", "")]
              for label, r in (manifest.get("files") or {}).items() if isinstance(r, dict)]
    section.tables.append(Table("Files the run wrote", ["Stage", "File", "Path", "sha256"], files))
    notes = [[s.get("name"), key, json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value]
             for s in manifest.get("stages") or []
             for key, value in s.items() if key not in ("name", "output", "counts", "files")]
    section.tables.append(Table("Stage settings recorded", ["Stage", "Setting", "Value"], notes))
    section.data = {"config": manifest.get("config") or {}, "versions": manifest.get("versions") or {}}
    section.blocks.append(("The study's configuration, as recorded",
                           json.dumps(manifest.get("config") or {}, indent=2, ensure_ascii=False)))
    return section


# --------------------------------------------------------------------------- the report


def build_report(run_dir: str | Path, *, public_key: str | Path | None = None, draw: bool = True) -> RunReport:
    """Read a run folder (never writing to it) into a :class:`RunReport`.

    ``public_key`` is the data steward's published key, to check who signed the audit log.
    ``draw=False`` leaves the charts out (no matplotlib needed; the tables hold every number).
    Raises :class:`PostkitError` only when the folder is not a run folder; anything wrong
    inside one is shown in its section.
    """
    run_dir = Path(run_dir)
    manifest = _load_manifest(run_dir)
    if draw:
        charts.require()
    builders: list[tuple[str, str, Callable[[], Section]]] = [
        ("consent", "Consent funnel", lambda: consent_section(run_dir, manifest, draw)),
        ("audit", "Audit verification", lambda: audit_section(run_dir, manifest, public_key)),
        ("deid", "De-identification", lambda: deid_section(run_dir, manifest, draw)),
        ("sample", "Sampling funnel and word counts", lambda: sample_section(run_dir, manifest, draw)),
        ("coding", "Coding progress and agreement", lambda: coding_section(run_dir, manifest, draw)),
        ("disguise", "Disguise verdicts of quotes", lambda: disguise_section(run_dir, manifest, draw)),
        ("manifest", "Manifest", lambda: manifest_section(run_dir, manifest)),
    ]
    sections = []
    for key, title, build in builders:
        try:
            sections.append(build())
        except (PostkitError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # A damaged manifest entry or file: the section says so rather than the whole report failing.
            broken = Section(key, title)
            broken.problem(f"this section could not be built: {_describe(exc)}")
            sections.append(broken)
    study = (manifest.get("study") or {}).get("name") or run_dir.name
    return RunReport(str(run_dir), str(study), iso(now_utc()), __version__, sections)


def write_report(run_dir: str | Path, output: str | Path, *, public_key: str | Path | None = None) -> RunReport:
    """Build the report of ``run_dir`` and write it to ``output`` (atomically)."""
    report = build_report(run_dir, public_key=public_key)
    report.write(output)
    return report


_HASH = re.compile(r"(sha256:)?[0-9a-f]{40,}")


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return fmt_int(value)
    return str(value)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["cell"] = _cell
    env.filters["short_hash"] = short_hash
    env.tests["hash"] = lambda value: isinstance(value, str) and _HASH.fullmatch(value) is not None
    return env


__all__: Sequence[str] = ("RunReport", "Section", "Table", "build_report", "write_report")
