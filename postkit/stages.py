"""The stages ``postkit run`` knows, each a thin adapter from a study section to a library call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .consent_filter import filter_consent_files
from .errors import PostkitError
from .pipeline import StageContext, StageResult, register_stage, stage_timestamp

_CONSENT_OPTIONS = {"as_of", "key_file", "signing_key", "ignore_later_withdrawals"}


def _check_options(context: StageContext, section: str, config: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(config) - known)
    if unknown:
        raise PostkitError(
            f"[{section}] unknown option '{unknown[0]}'",
            path=context.study.path,
            fix=f"known options: {', '.join(sorted(known))}",
        )


def _flag(context: StageContext, config: dict[str, Any], name: str) -> bool:
    value = config.get(name, False)
    if not isinstance(value, bool):
        raise PostkitError(f"[consent] {name} must be true or false", path=context.study.path,
                           fix=f"write {name} = true (only to reproduce an old run) or leave it out")
    return value


@register_stage("consent")
def consent_stage(context: StageContext, config: dict[str, Any]) -> StageResult:
    _check_options(context, "consent", config, _CONSENT_OPTIONS)
    study = context.study
    if study.consent is None:
        raise PostkitError("the consent stage needs [inputs] consent = \"FILE\"", path=study.path,
                           fix="name the consent records file, relative to the study file")
    if "as_of" not in config:
        # A study must be rerunnable with the same result, so "now" is not a default here.
        raise PostkitError("[consent] needs as_of = \"TIMESTAMP\"", path=study.path,
                           fix="e.g. as_of = \"2025-01-01T00:00:00Z\" (the date consent is judged at)")
    key = context.key(config)
    output = context.output_path("posts")
    audit = context.folder / "audit.jsonl"
    with context.input_progress("consent") as advance:
        summary = filter_consent_files(
            context.input,
            study.consent,
            output,
            audit,
            key,
            as_of=stage_timestamp(config, "consent", "as_of", study),
            column_map=context.column_map,
            consent_column_map=study.consent_column_map,
            batch_size=study.batch_size,
            on_progress=advance,
            signing_key=context.signing_key(config),
            ignore_later_withdrawals=_flag(context, config, "ignore_later_withdrawals"),
        )
    signature, public_key = summary.signature, summary.public_key
    summary.output, summary.audit = context.final_path(output), context.final_path(audit)
    summary.signature, summary.public_key = context.final_path(signature), context.final_path(public_key)
    # Warnings go to the warn channel when there is one (shown even with -q), else into the summary.
    context.echo(summary.render(warnings=context.warn is None))
    if context.warn is not None and summary.unmatched_forums:
        context.warn(summary.unmatched_forums_warning())
    for note in summary.signing_key.notes:
        context.notify(note)
    return StageResult(
        output=output,
        counts=summary.counts.as_dict(),
        files={"posts": output, "audit": audit, "signature": signature, "public_key": public_key},
        notes={"audit_head": summary.audit_head, "as_of": summary.as_dict()["as_of"],
               "key_id": key.key_id, "signing_key": summary.signing_key.fingerprint},
    )


_DEID_OPTIONS = {"operator", "entities", "model", "processes", "text_columns", "key_file", "spans",
                 "batch_size", "deny_usernames", "deny_names", "locales"}


@register_stage("deid")
def deid_stage(context: StageContext, config: dict[str, Any]) -> StageResult:
    """De-identify the previous stage's posts (text replaced, user ids pseudonymised)."""
    _check_options(context, "deid", config, _DEID_OPTIONS)
    from .deid.run import DeidSettings, deidentify_file
    from .deid.rules import read_word_list

    study = context.study
    deny = {name: tuple(read_word_list(study.resolve(config[name]))) if config.get(name) else ()
            for name in ("deny_usernames", "deny_names")}
    settings = DeidSettings(
        operator=config.get("operator", "tag"),
        model=config.get("model"),
        entities=tuple(config["entities"]) if config.get("entities") else None,
        deny_usernames=deny["deny_usernames"],
        deny_names=deny["deny_names"],
        locales=_locales(context, config),
    )
    output = context.output_path("posts")
    spans = context.folder / "spans.jsonl" if config.get("spans") else None
    with context.input_progress("deid") as advance:
        summary = deidentify_file(
            context.input, output, context.key(config), settings=settings, spans_out=spans,
            text_columns=tuple(config.get("text_columns", ["text"])),
            column_map=context.column_map,
            processes=config.get("processes"), batch_size=int(config.get("batch_size", 2_000)),
            on_progress=advance,
        )
    summary.output = context.final_path(output)
    context.echo(summary.render())
    files = {"posts": output} | ({"spans": spans} if spans else {})
    return StageResult(output=output, counts=summary.as_dict(), files=files,
                       notes={"model": summary.model, "model_sha256": summary.model_sha256,
                              "rules_sha256": summary.rules_sha256, "locales": list(summary.locales)})


def _locales(context: StageContext, config: dict[str, Any]) -> tuple[str, ...] | None:
    """``[deid] locales = ["uk", "au"]``: checked here so a bad value names the study file."""
    if "locales" not in config:
        return None
    from .deid.rules import available_locales, choose_locales

    value = config["locales"]
    available = ", ".join(available_locales())
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PostkitError("[deid] locales must be a list of locale codes", path=context.study.path,
                           fix=f'e.g. locales = ["uk", "au"]; available: {available}')
    try:
        return choose_locales(value)
    except PostkitError as exc:
        raise PostkitError(f"[deid] {exc.message}", path=context.study.path, fix=exc.fix) from None


_SAMPLE_OPTIONS = {"per_forum", "phrases", "min_words", "seed", "by", "report"}


@register_stage("sample")
def sample_stage(context: StageContext, config: dict[str, Any]) -> StageResult:
    """Reproducible per-forum sample of the previous stage's posts, with an HTML report."""
    _check_options(context, "sample", config, _SAMPLE_OPTIONS)
    from .sample import default_phrases, sample_file

    output = context.output_path("posts")
    report = context.folder / "report.html" if config.get("report", True) else None
    manifest = context.folder / "sample.manifest.json"
    study = context.study
    with context.input_progress("sample") as advance:
        result = sample_file(
            context.input, output, per_stratum=int(config.get("per_forum", 120)),
            phrases=list(config.get("phrases") or default_phrases()), min_words=int(config.get("min_words", 30)),
            seed=config.get("seed", 2024), by=list(config.get("by", ["forum"])), manifest_path=manifest,
            report_path=report, column_map=context.column_map,
            batch_size=study.batch_size, on_progress=advance,
            labels=(str(context.input if context.first else context.final_path(context.input)),
                    str(context.final_path(output))),
        )
    context.echo(result.render())
    files = {"posts": output, "manifest": manifest} | ({"report": report} if report else {})
    return StageResult(output=output, counts={"posts": result.rows_in, "sampled": result.rows_out,
                                               "funnel": result.funnel_rows()}, files=files)


_TAG_OPTIONS = {"unit", "codebook", "store", "ranker"}


@register_stage("tag")
def tag_stage(context: StageContext, config: dict[str, Any]) -> StageResult:
    """Code suggestions for the previous stage's posts; optionally loaded into the run's coding store."""
    _check_options(context, "tag", config, _TAG_OPTIONS)
    from .coding.load import load_tagged
    from .coding.store import CodingStore
    from .coding.tagger import render_tag_counts, tag_file

    codebook = context.study.resolve(config["codebook"]) if config.get("codebook") else None
    ranker: str | Path | None = config.get("ranker", "default")
    if ranker == "none":
        ranker = None
    elif ranker != "default":
        ranker = context.study.resolve(str(ranker))
    output = context.output_path("posts")
    with context.input_progress("tag") as advance:
        counts = tag_file(context.input, output, codebook_path=codebook, unit=config.get("unit", "post"),
                          on_progress=advance, ranker=ranker)
    context.echo(render_tag_counts(counts))
    files = {"posts": output}
    if config.get("store", True):
        store = context.folder / "coding.sqlite"
        with CodingStore(store) as opened:
            loaded = load_tagged(opened, output)
        context.echo(f"Coding store: {context.final_path(store)} ({loaded['units']:,} units, "
                     f"{loaded['suggestions']:,} suggestions to review)")
        files["store"] = store
        counts = counts | {"store": loaded}
    return StageResult(output=output, counts=counts, files=files,
                       notes={"codebook_version": counts["codebook_version"],
                              "ranker_version": counts["ranker_version"]})


_DISGUISE_OPTIONS = {"quotes", "quotes_from_sample", "corpus", "candidates", "max_words", "paraphraser_url",
                     "paraphraser_model", "paraphraser_prompt", "paraphraser_timeout", "allow_remote"}


def _paraphrasers(context: StageContext, config: dict[str, Any]) -> list[Any]:
    """``paraphraser_url`` (and its model, prompt, timeout, allow_remote): a language model as paraphraser."""
    from .disguise.suggest import chat_paraphraser

    study = context.study
    if "paraphraser_url" not in config:
        extra = sorted({"paraphraser_model", "paraphraser_prompt", "paraphraser_timeout", "allow_remote"} & set(config))
        if extra:
            raise PostkitError(f"[disguise] {extra[0]} goes with paraphraser_url", path=study.path,
                               fix='add paraphraser_url = "http://127.0.0.1:11434/v1" or leave it out')
        return []
    allow_remote = config.get("allow_remote", False)
    if not isinstance(allow_remote, bool):
        raise PostkitError("[disguise] allow_remote must be true or false", path=study.path)
    timeout = config.get("paraphraser_timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise PostkitError("[disguise] paraphraser_timeout must be a number of seconds", path=study.path)
    prompt = study.resolve(config["paraphraser_prompt"]) if config.get("paraphraser_prompt") else None
    try:
        return [chat_paraphraser(str(config["paraphraser_url"]), model=config.get("paraphraser_model"),
                                 prompt_path=prompt, allow_remote=allow_remote, timeout=timeout)]
    except PostkitError as exc:
        raise PostkitError(f"[disguise] {exc.message}", path=exc.path or study.path, fix=exc.fix) from None


@register_stage("disguise")
def disguise_stage(context: StageContext, config: dict[str, Any]) -> StageResult:
    """Paraphrase suggestions for the study's quotes, saved as a review folder (``RUN/disguise/``).

    The attacker's corpus defaults to the study's raw posts (the whole forum, consented
    or not): that is what a reader of the paper could search. Its index is cached
    privately outside the run folder; the folder records only its key (``index.json``).
    """
    _check_options(context, "disguise", config, _DISGUISE_OPTIONS)
    from .disguise.study import INDEX_RECORD, SUGGESTIONS_FILE
    from .disguise.suggest import describe_external, quotes_from_posts, render_summary, suggest_file
    from .io import open_table, write_table

    study = context.study
    if ("quotes" in config) == ("quotes_from_sample" in config):
        raise PostkitError("[disguise] needs exactly one of quotes = \"FILE\" or quotes_from_sample = N",
                           path=study.path, fix="name the researchers' quotes file (quote_id, source_post_id, "
                                                "text), or take N excerpts of the sampled posts for a trial")
    if "quotes" in config:
        quotes = study.resolve(config["quotes"])
    else:
        count = config["quotes_from_sample"]
        if not isinstance(count, int) or count < 1:
            raise PostkitError("[disguise] quotes_from_sample must be a whole number ≥ 1", path=study.path)
        import pandas as pd

        posts = open_table(context.input, required=("post_id", "text")).read_all()
        chosen = quotes_from_posts(posts.to_dict("records"), count, int(config.get("max_words", 45)))
        quotes = context.folder / "quotes.csv"
        write_table(pd.DataFrame(chosen, columns=["quote_id", "source_post_id", "text"]), quotes)
    corpus = study.resolve(config["corpus"]) if config.get("corpus") else study.posts
    output = context.folder / SUGGESTIONS_FILE
    externals = _paraphrasers(context, config)
    with context.progress("disguise", None, "quotes") as advance:
        summary = suggest_file(quotes, corpus, None, study_dir=context.folder,
                               n_candidates=int(config.get("candidates", 5)), on_quote_progress=advance,
                               corpus_columns=study.column_map if corpus == study.posts else None,
                               externals=externals)
    context.echo(render_summary(summary))
    context.echo(f"Review the candidates: postkit review serve {context.final_run_folder}")
    files = {"suggestions": output, "index": context.folder / INDEX_RECORD} | \
        ({"quotes": quotes} if quotes.parent == context.folder else {})
    notes = {"corpus": str(corpus), "index_key": summary["index_key"]}
    if externals:
        notes["paraphrasers"] = [describe_external(e) for e in externals]
    return StageResult(output=output, counts={k: summary[k] for k in ("quotes", "before", "best",
                                                                          "best_meaning_mean")},
                       files=files, notes=notes)
