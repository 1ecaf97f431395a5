"""The ``postkit`` command: options → one library call → progress and a summary.

Every user mistake surfaces as a :class:`~postkit.errors.PostkitError`, which the root
group prints as one line (plus the offending rows, when there are several) and exits
with status 1 — never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__
from .errors import PostkitError
from .signals import exit_code_for, signal_name_for, stop_on_signals
from .timestamps import parse_timestamp

# The consent reason codes, listed here so `--help` needs no heavy imports.
REASON_CODES = ["OPTED_IN", "NO_RECORD", "OPTED_OUT", "WITHDRAWN", "WITHDRAWN_LATER", "CONFLICT",
                "AMBIGUOUS_ID", "NOT_YET", "EXPIRED", "INVALID_POST"]

_MAX_DETAILS = 20


class _UserError(click.ClickException):
    exit_code = 1

    def __init__(self, error: PostkitError) -> None:
        super().__init__(error.one_line())
        self.error = error

    def show(self, file: Any = None) -> None:
        out = file or sys.stderr
        line_one = self.error.one_line()
        click.echo(f"error: {line_one}", file=out)
        details = self.error.details
        if any(detail not in line_one for detail in details):  # the message may already name the only one
            for line in details[:_MAX_DETAILS]:
                click.echo(f"  {line}", file=out)
            if len(details) > _MAX_DETAILS:
                click.echo(f"  … and {len(details) - _MAX_DETAILS} more", file=out)


class _Root(click.Group):
    def main(self, args: Any = None, *rest: Any, **kwargs: Any) -> Any:
        """The entry point: SIGTERM and SIGHUP stop a command the way Ctrl+C does, so its
        temporary files are removed (see :mod:`postkit.signals`); other processes' lock
        messages name the command (see :mod:`postkit.locks`)."""
        from .locks import set_process_purpose

        set_process_purpose(self._command_name(sys.argv[1:] if args is None else list(args)))
        with stop_on_signals():
            return super().main(args, *rest, **kwargs)

    def _command_name(self, args: list[str]) -> str:
        """``postkit consent filter`` from the command line's leading command names."""
        names, command = ["postkit"], self
        for word in args:
            found = command.commands.get(word) if isinstance(command, click.Group) else None
            if found is None:
                break
            names.append(word)
            command = found
        return " ".join(names)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as stop:
            # Ctrl+C, SIGTERM or SIGHUP: outputs were already cleaned up on the way out.
            code = exit_code_for(stop)
            click.echo(f"error: stopped by {signal_name_for(stop)} before the command finished; "
                       "unfinished outputs and temporary files were removed", err=True)
            raise click.exceptions.Exit(code) from None
        except PostkitError as error:
            raise _UserError(error) from None
        except OSError as error:
            # Disk full, permission denied, a vanished file: the machine's problem, not a
            # bug, so one line too (outputs were already cleaned up on the way out).
            where = error.filename or "a file"
            reason = error.strerror or str(error)
            raise _UserError(PostkitError(f"cannot read or write {where}: {reason}",
                                          fix="check the path, its permissions and free disk space")) from None


def _timestamp(_ctx: click.Context, _param: click.Parameter, value: str | None):
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; use e.g. 2025-01-01T00:00:00Z") from None


column_option = click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="NAME=SOURCE",
    help="Use input column SOURCE as postkit's NAME (e.g. user_id=author). Repeatable.",
)
batch_option = click.option(
    "--batch-size", default=50_000, show_default=True, type=click.IntRange(min=1),
    help="Rows per batch; memory use grows with it.",
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")


def engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--engine, --scheduler and --workers: where a stage runs (the results are the same)."""
    command = click.option("--workers", type=click.IntRange(min=1),
                           help="Workers of the Dask LocalCluster (default: one per core); not with --scheduler.")(command)
    command = click.option("--scheduler", metavar="ADDRESS",
                           help="A running Dask scheduler (e.g. tcp://HOST:8786, from dask-jobqueue on HPC) for "
                                "--engine dask; default: a LocalCluster on this machine.")(command)
    return click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                        help="Run here, streaming (local), or on a Dask cluster (dask: pip install 'postkit[dask]'). "
                             "Same kept posts, decisions and sample either way.")(command)


def _open_engine(name: str, scheduler: str | None, workers: int | None, quiet: bool) -> Any:
    """None for the local engine (postkit's own streaming), else a started Dask engine.

    On Dask, says where it runs and prints the dashboard link (on stderr, unless --quiet).
    """
    if name == "local":
        if scheduler or workers:
            raise PostkitError("--scheduler and --workers need --engine dask",
                               fix="add --engine dask, or drop them")
        return None
    if scheduler and workers:
        raise PostkitError("--workers sizes a LocalCluster; a --scheduler's cluster has its own workers",
                           fix="drop --workers, or drop --scheduler")
    from .engine import get_engine

    engine = get_engine(name, scheduler=scheduler, workers=workers)
    if not quiet:
        link = engine.dashboard_link()
        _echo_err(f"Dask: {engine.describe()}" + (f"; dashboard {link} (needs bokeh)" if link else ""))
    return engine


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


def _progress(quiet: bool) -> Callable[..., Any]:
    from .progress import progress_bar

    def open_bar(description: str, total: int | None = None, unit: str = "rows"):
        return progress_bar(description, total=total, unit=unit, enabled=not quiet)

    return open_bar


def _input_progress(quiet: bool, description: str, source: Path, columns) -> Any:
    """A progress bar sized to an input file (bytes for CSV/JSONL, rows for Parquet/datasets)."""
    from .io import open_table

    reader = open_table(source, column_map=columns)
    return _progress(quiet)(description, reader.progress_total, reader.progress_unit)


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="postkit")
def main() -> None:
    """Turn raw forum posts into an ethical research corpus.

    Consent filtering with a verifiable audit log, de-identification, reproducible
    sampling, CMO coding support and quote disguise. Run `postkit COMMAND --help`.
    """


# --------------------------------------------------------------------------- consent


@main.group()
def consent() -> None:
    """Keep only posts whose authors opted in to research."""


@consent.command("filter")
@click.argument("posts", type=click.Path(path_type=Path))
@click.option("--consent", "consent_path", required=True, type=click.Path(path_type=Path),
              help="Consent records (user_id, status, recorded_at[, forum, expires_at, ...]).")
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
              help="Where to write the kept posts (.csv/.jsonl/.parquet or a datasets folder).")
@click.option("--audit", required=True, type=click.Path(path_type=Path),
              help="Where to write the hash-chained audit log (.jsonl).")
@click.option("--as-of", callback=_timestamp, help="Judge consent at this time (default: now). Naive = UTC.")
@click.option("--key-file", type=click.Path(path_type=Path),
              help="Pseudonym key (else $POSTKIT_PSEUDONYM_KEY, else a new key is generated).")
@click.option("--signing-key", type=click.Path(path_type=Path),
              help="The data steward's Ed25519 private key (PEM PKCS#8, owner-only) that signs the log "
                   "(default: signing-ed25519.pem in $POSTKIT_KEY_DIR or ~/.config/postkit/keys, created "
                   "on first use).")
@column_option
@click.option("--consent-column", "consent_columns", multiple=True, metavar="NAME=SOURCE",
              help="Column mapping for the consent file. Repeatable.")
@batch_option
@quiet_option
@click.option("--ignore-later-withdrawals", is_flag=True,
              help="Keep posts whose authors opted out or withdrew after --as-of (default: such posts are "
                   "excluded as WITHDRAWN_LATER). Only to reproduce an old run exactly; written in the log.")
@engine_options
def consent_filter(posts, consent_path, output, audit, as_of, key_file, signing_key, columns, consent_columns,
                   batch_size, quiet, ignore_later_withdrawals, engine, scheduler, workers) -> None:
    """Keep posts whose author's latest applicable consent record is an opt-in.

    Every post gets a decision and a reason in the audit log; the log's head hash is
    printed at the end so it can be recorded elsewhere. The log is signed (LOG.sig) and
    the signer's public key written beside it (e.g. audit.pub).

    Example: postkit consent filter posts.csv --consent consent.csv
    --output kept.parquet --audit audit.jsonl --as-of 2025-01-01
    """
    from .consent_filter import filter_consent_files
    from .pseudonym import resolve_key
    from .signing import resolve_signing_key

    key = resolve_key(key_file, outputs=[output, audit])  # a new key is saved only if the run succeeds
    signer = resolve_signing_key(signing_key, outputs=[output, audit])
    notes: list[str] = []
    runner = _open_engine(engine, scheduler, workers, quiet)
    try:
        with _input_progress(quiet, "consent", posts, columns) as advance:
            summary = filter_consent_files(
                posts, consent_path, output, audit, key, as_of=as_of, column_map=columns,
                consent_column_map=consent_columns, batch_size=batch_size, on_progress=advance,
                signing_key=signer, before_publish=lambda: notes.extend(key.persist()),
                ignore_later_withdrawals=ignore_later_withdrawals, engine=runner,
            )
    finally:
        if runner is not None:
            runner.close()
    _announce_keys(key, notes + signer.notes)
    if not quiet:
        click.echo(summary.render())
    elif summary.unmatched_forums:
        _echo_err(summary.unmatched_forums_warning())


def _announce_keys(key, notes: list[str]) -> None:
    """On stderr, even with -q: where a new pseudonym key was saved, and other key notes."""
    for note in notes:
        _echo_err(note)
    if key.generated:
        _echo_err(f"Generated a new pseudonym key: {key.origin} (keep it private; pass "
                  f"--key-file {key.origin} to reuse the same pseudonyms)")


@consent.command("check")
@click.argument("consent_path", metavar="CONSENT", type=click.Path(path_type=Path))
@click.option("--consent-column", "consent_columns", multiple=True, metavar="NAME=SOURCE",
              help="Column mapping for the consent file. Repeatable.")
@click.option("--posts", "posts_path", type=click.Path(path_type=Path),
              help="Also list posts whose author matches records only as a look-alike id, and "
                   "forums no post belongs to.")
@column_option
def consent_check(consent_path, consent_columns, posts_path, columns) -> None:
    """Validate a consent file without filtering anything.

    Problems that stop `consent filter` (unreadable rows, duplicate columns or keys,
    ragged rows, `all` as a forum) exit 1. Look-alike user ids (equal only after case
    or confusable folding) and forum names are listed by record row, never by id:
    their records can exclude posts but never keep them.

    Example: postkit consent check consent.csv --posts posts.csv
    """
    from collections import Counter

    from .consent import CONSENT_REQUIRED, look_alike_forums, look_alike_id_groups, parse_consent_records
    from .identity import shown
    from .io import read_table
    from .summary import text_table

    frame = read_table(consent_path, column_map=consent_columns, required=CONSENT_REQUIRED,
                       mapping_option="--consent-column")
    records = parse_consent_records(frame, consent_path)
    statuses = Counter(r.status for r in records)
    forums = Counter(shown(r.forum_label) for r in records)
    click.echo(f"{consent_path}: {len(records):,} valid records for "
               f"{len({r.user_id for r in records}):,} users")
    click.echo(text_table(["status", "records"], sorted(statuses.items())))
    click.echo(text_table(["forum", "records"], sorted(forums.items())))
    groups = look_alike_id_groups(records)
    if groups:
        click.echo(f"\nLook-alike user ids (differ only by case or look-alike characters; their records "
                   f"only ever exclude): {len(groups):,} groups, by record rows")
        for group in groups:
            click.echo("  " + "  ~  ".join(_rows_text(rows) for rows in group.rows))
    for names in look_alike_forums(records):
        click.echo(f"Look-alike forum names (count only for exclusions): {', '.join(names)}")
    if posts_path is not None:
        _check_posts_against(records, posts_path, columns)


def _rows_text(rows) -> str:
    shown_rows = ", ".join(str(r) for r in rows[:5]) + (", …" if len(rows) > 5 else "")
    return f"row{'s' if len(rows) > 1 else ''} {shown_rows}"


def _check_posts_against(records, posts_path: Path, columns) -> None:
    """`consent check --posts`: authors who match records only as look-alikes, and unused forums."""
    from collections import Counter

    from .consent import POST_KEY_COLUMNS, ConsentPolicy, normalise_forum
    from .identity import clean_id, shown
    from .io import open_table
    from .timestamps import now_utc

    policy = ConsentPolicy(records, now_utc())
    reader = open_table(posts_path, column_map=columns, required=POST_KEY_COLUMNS)
    seen_forums: set[str] = set()
    first_row: dict[str, int] = {}
    posts_by_user: Counter = Counter()
    for frame in reader.batches():
        for row, user_id, forum in zip(frame.index, frame["user_id"].tolist(), frame["forum"].tolist()):
            user = clean_id(user_id)
            if forum is not None and str(forum).strip():
                seen_forums.add(normalise_forum(forum))
            if user is not None:
                first_row.setdefault(user, int(row) + 1)
                posts_by_user[user] += 1
    pairs = []
    for user, row in first_row.items():
        others = policy.look_alikes(user)
        if others:
            record_rows = sorted(r.row for other in others for r in policy.records_by_user[other])
            pairs.append((row, posts_by_user[user], record_rows))
    if pairs:
        click.echo(f"\nPost authors matching consent records only as look-alike ids (such posts are never "
                   f"kept on those records): {len(pairs):,} authors")
        for row, count, record_rows in sorted(pairs)[:_MAX_DETAILS]:
            click.echo(f"  author of post row {row} ({count:,} post{'s' if count > 1 else ''})  ~  "
                       f"record {_rows_text(record_rows)}")
        if len(pairs) > _MAX_DETAILS:
            click.echo(f"  … and {len(pairs) - _MAX_DETAILS} more")
    unused = sorted(shown(policy.forum_label(f)) for f in policy.forums_in_records - seen_forums)
    if unused:
        click.echo("Forums in consent records that no post belongs to (such records never keep a post): "
                   + ", ".join(unused))


# --------------------------------------------------------------------------- deid


def _entity_list(_ctx, _param, values: tuple[str, ...]):
    if not values:
        return None
    from .deid.engine import ENTITY_TYPES

    chosen = [v.strip().upper() for value in values for v in value.split(",") if v.strip()]
    unknown = [c for c in chosen if c not in ENTITY_TYPES]
    if unknown:
        raise click.BadParameter(f"unknown entity type {unknown[0]}; choose from {', '.join(ENTITY_TYPES)}")
    return tuple(chosen)


def _locale_list(_ctx, _param, values: tuple[str, ...]):
    """--locale uk --locale au (or uk,au): checked against the packs in rules/deid/locales/."""
    if not values:
        return None
    from .deid.rules import available_locales, choose_locales
    from .errors import PostkitError

    try:
        return choose_locales([v for value in values for v in value.split(",")])
    except PostkitError as exc:
        raise click.BadParameter(f"{exc.message}; choose from {', '.join(available_locales())}") from None


@main.command("deid")
@click.argument("source", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
              help="De-identified table (.csv/.jsonl/.parquet or a datasets folder).")
@click.option("--spans-out", type=click.Path(path_type=Path),
              help="JSONL of what was found per post (offsets into the original text). For the "
                   "data steward's checks only: never part of an export.")
@click.option("--operator", type=click.Choice(["tag", "surrogate", "hash"]), default="tag", show_default=True,
              help="tag: [PERSON]; surrogate: realistic fictitious values (consistent per thread); "
                   "hash: keyed, consistent across the corpus.")
@click.option("--entities", multiple=True, callback=_entity_list, metavar="TYPE[,TYPE]",
              help="Only these entity types (default: all). Repeatable or comma-separated.")
@click.option("--model", help="Another installed spaCy pipeline name or a model folder (default: the pinned one).")
@click.option("--locale", "locales", multiple=True, callback=_locale_list, metavar="CODE",
              help="National formats to find (phones, postcodes, ids): uk, au, us (rules/deid/locales/). "
                   "Repeatable; default: uk.")
@click.option("--processes", type=click.IntRange(min=1), help="Worker processes (default: all cores).")
@click.option("--text-column", "text_columns", multiple=True, metavar="NAME",
              help="Free-text column(s) to de-identify (default: text). Repeatable.")
@click.option("--deny-usernames", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The forum's own usernames/handles, one per line: always removed.")
@click.option("--deny-names", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Names to always remove (e.g. moderators), one per line.")
@click.option("--forum-pseudonyms", type=click.Path(dir_okay=False, path_type=Path),
              help="Forum → pseudonym map (CSV forum,pseudonym[,aliases][,urls] or YAML); replaces the forum "
                   "column and forum mentions/URLs in text. Generated (birds) and saved when absent.")
@click.option("--key-file", type=click.Path(path_type=Path),
              help="Pseudonym key (else $POSTKIT_PSEUDONYM_KEY, else a new key is generated).")
@column_option
@click.option("--batch-size", default=2_000, show_default=True, type=click.IntRange(min=1),
              help="Posts per batch handed to a worker.")
@quiet_option
def deid(source, output, spans_out, operator, entities, model, locales, processes, text_columns,
         deny_usernames, deny_names, forum_pseudonyms, key_file, columns, batch_size, quiet) -> None:
    """Remove identifiers from posts: names, usernames, contact details, national ids, places, dates.

    Example: postkit deid kept.parquet --output deid.parquet --spans-out spans.jsonl --locale uk --locale au
    """
    import gc

    # Speed (measured: about a tenth of a whole run, a fifth of a one-post run): start-up
    # allocates a great many long-lived objects (spaCy, Presidio, the rules), and each
    # default collection rescans them. Collect less often, and after the imports move
    # what exists into the permanent generation (this also keeps forked workers' memory shared).
    gc.set_threshold(50_000, 50, 100)
    from .deid.rules import read_word_list
    from .deid.run import DeidSettings, deidentify_file
    from .pseudonym import resolve_key

    gc.freeze()

    key = resolve_key(key_file, outputs=[p for p in (output, spans_out) if p])  # saved only if the run succeeds
    notes: list[str] = []
    settings = DeidSettings(
        operator=operator, model=model, entities=entities, locales=locales,
        deny_usernames=tuple(read_word_list(deny_usernames)) if deny_usernames else (),
        deny_names=tuple(read_word_list(deny_names)) if deny_names else (),
    )
    with _input_progress(quiet, "deid", source, columns) as advance:
        summary = deidentify_file(
            source, output, key, settings=settings, spans_out=spans_out,
            text_columns=text_columns or ("text",), column_map=columns, processes=processes,
            batch_size=batch_size, forum_pseudonyms=forum_pseudonyms, on_progress=advance,
            before_publish=lambda: notes.extend(key.persist()),
        )
    _announce_keys(key, notes)
    if not quiet:
        click.echo(summary.render())


# --------------------------------------------------------------------------- sample


@main.command("sample")
@click.argument("source", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path), help="The sampled posts.")
@click.option("--per-forum", "per_stratum", default=120, show_default=True, type=click.IntRange(min=1),
              help="Posts per forum (per stratum with --by).")
@click.option("--phrase", "phrases", multiple=True,
              help="Eligible posts contain this phrase (repeatable; any one is enough). "
                   "Default: rules/sampling/phrases.txt (\"thank you for\").")
@click.option("--min-words", default=30, show_default=True, type=click.IntRange(min=0),
              help="Eligible posts have MORE than this many words (a word: a token with a letter or digit).")
@click.option("--seed", default="2024", show_default=True, help="Sampling seed: same seed, same sample.")
@click.option("--by", "by", default="forum", show_default=True,
              help="Strata, comma-separated columns; 'year' is taken from created_at (e.g. forum,year).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write an HTML report (funnel per stratum, word counts) for reviewers.")
@click.option("--manifest", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the sampling manifest (default: OUTPUT.manifest.json).")
@column_option
@batch_option
@quiet_option
@engine_options
def sample(source, output, per_stratum, phrases, min_words, seed, by, report, manifest, columns, batch_size,
           quiet, engine, scheduler, workers) -> None:
    """Draw a reproducible random sample of eligible posts per forum.

    Example: postkit sample deid.parquet --output sample.parquet --per-forum 120
    --phrase "thank you for" --min-words 30 --seed 2024 --report sample.html
    """
    from .sample import default_phrases, sample_file

    strata = [part.strip() for part in by.split(",") if part.strip()]
    runner = _open_engine(engine, scheduler, workers, quiet)
    try:
        with _input_progress(quiet, "sample", source, columns) as advance:
            result = sample_file(
                source, output, per_stratum=per_stratum, phrases=list(phrases) or default_phrases(),
                min_words=min_words, seed=seed, by=strata, manifest_path=manifest, report_path=report,
                column_map=columns, batch_size=batch_size, on_progress=advance, engine=runner,
            )
    finally:
        if runner is not None:
            runner.close()
    if not quiet:
        click.echo(result.render())
        click.echo(f"\nOutput: {output} (sha256 {result.output_sha256[:16]}…); manifest "
                   f"{manifest or output.with_name(output.name + '.manifest.json')}"
                   + (f"; report {report}" if report else ""))


# --------------------------------------------------------------------------- codebook


codebook_option = click.option("--codebook", "codebook_path", type=click.Path(path_type=Path),
                               help="A CMO codebook YAML (default: rules/cmo_codebook.yaml).")


@main.group()
def codebook() -> None:
    """The CMO codebook (rules/cmo_codebook.yaml) that coding suggestions come from."""


@codebook.command("check")
@codebook_option
def codebook_check(codebook_path) -> None:
    """Validate a codebook; every problem is listed with where it is.

    Example: postkit codebook check --codebook my_codebook.yaml
    """
    from .coding.codebook import load_codebook

    book = load_codebook(codebook_path)
    configurations = sum(len(area.configurations) for area in book.areas)
    click.echo(f"OK: {book.name} {book.version}: {len(book.areas)} areas, {configurations} configurations, "
               f"{sum(1 for _ in book.codes())} codes; version hash {book.version_hash}")


@codebook.command("show")
@codebook_option
@click.option("--format", "fmt", type=click.Choice(["text", "markdown"]), default="text", show_default=True)
def codebook_show(codebook_path, fmt) -> None:
    """Print the codebook readably: areas, configurations, codes with definitions and cues.

    Example: postkit codebook show --format markdown > codebook.md
    """
    from .coding.codebook import load_codebook, render_codebook

    click.echo(render_codebook(load_codebook(codebook_path), fmt=fmt))


# --------------------------------------------------------------------------- tag


@main.command("tag")
@click.argument("source", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
              help="Posts (or sentences) with a `suggestions` column, best first.")
@codebook_option
@click.option("--unit", type=click.Choice(["post", "sentence"]), default="post", show_default=True,
              help="Suggest codes per post or per sentence.")
@click.option("--ranker", default="default", show_default=True, metavar="FILE|none",
              help="Area ranker (scripts/train_ranker.py) that re-ranks areas and sets the direction; "
                   "'none' for the codebook cues alone.")
@batch_option
@quiet_option
def tag(source, output, codebook_path, unit, ranker, batch_size, quiet) -> None:
    """Suggest CMO codes for each post from the codebook's cues, ranked with the area ranker.

    Each suggestion has the code, its theory area, polarity, a score and the evidence
    spans that justify it; each unit also gets its suggested area and pathway direction.
    Coders confirm or reject them (postkit code …).

    Example: postkit tag sample.parquet --output tagged.parquet --unit sentence
    """
    from .coding.tagger import render_tag_counts, tag_file

    with _input_progress(quiet, "tag", source, None) as advance:
        counts = tag_file(source, output, codebook_path=codebook_path, unit=unit,
                          batch_size=min(batch_size, 2_000), on_progress=advance,
                          ranker=None if ranker == "none" else ranker)
    if not quiet:
        click.echo(render_tag_counts(counts))


# --------------------------------------------------------------------------- QDA export


@main.group("export")
def export() -> None:
    """Hand coded excerpts and the codebook to QDA tools (REFI-QDA: NVivo, ATLAS.ti, MAXQDA, QualCoder)."""


@export.command("qdc")
@codebook_option
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The REFI-QDA codebook file (.qdc).")
def export_qdc_command(codebook_path, output) -> None:
    """The CMO codebook as a REFI-QDA codebook (areas > configurations > codes).

    Example: postkit export qdc --output codebook.qdc
    """
    from .coding.codebook import load_codebook
    from .coding.refi import export_qdc

    book = load_codebook(codebook_path)
    export_qdc(book, output)
    click.echo(f"{output}: {sum(1 for _ in book.codes())} codes in {len(book.areas)} areas")


@export.command("qdpx")
@click.argument("store", metavar="STORE", type=click.Path(path_type=Path))
@codebook_option
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The REFI-QDA project file (.qdpx).")
@click.option("--name", default="postkit study", show_default=True, help="Project name shown in the QDA tool.")
@click.option("--posts", "posts", type=click.Path(path_type=Path), default=None,
              help="The posts table the coded sample came from (post_id, created_at, forum): gives each "
                   "source its Date variable (the store keeps no dates).")
@click.option("--exported-by", "exported_by", default=None, metavar="NAME",
              help="Who hands the project off (data steward or coder): recorded as the creator of every "
                   "source. Default: postkit.")
def export_qdpx_command(store, codebook_path, output, name, posts, exported_by) -> None:
    """A REFI-QDA project: posts as sources (Forum and Date variables), coder-confirmed codings
    only, memos where QualCoder, MAXQDA and NVivo read them.

    Example: postkit export qdpx study/coding.sqlite --posts sample.parquet --exported-by "J. Smith" --output study.qdpx
    """
    from .coding.codebook import load_codebook
    from .coding.refi import export_qdpx
    from .coding.store import CodingStore

    with CodingStore(store) as opened:
        counts = export_qdpx(opened, load_codebook(codebook_path), output, name=name, posts=posts,
                             exported_by=exported_by)
    click.echo(f"{output}: {counts['sources']:,} sources, {counts['codings']:,} codings by {counts['coders']} "
               f"coder(s), {counts['notes']:,} notes ({counts['memos']:,} coding memos, "
               f"{counts['rejected_memos']:,} memos on rejected codes)")
    if posts is not None and counts["sources_with_date"] < counts["sources"]:
        click.echo(f"  {counts['sources'] - counts['sources_with_date']:,} source(s) have no Date: "
                   f"their post_id is not in {posts} or has no created_at")


# --------------------------------------------------------------------------- coding


store_argument = click.argument("store", metavar="STORE", type=click.Path(path_type=Path))


@main.group()
def code() -> None:
    """Record coders' decisions on code suggestions (a SQLite store per study)."""


@code.command("progress")
@store_argument
def code_progress(store) -> None:
    """How far coding has got: units, decisions per coder, suggestions still to review.

    Example: postkit code progress study/coding.sqlite
    """
    from .coding.store import CodingStore
    from .summary import text_table

    with CodingStore(store, read_only=True) as opened:
        numbers = opened.progress()
        head = opened.head()
    click.echo(f"{store}: {numbers['units_decided']:,} of {numbers['units_total']:,} units have decisions; "
               f"{numbers['suggestions_pending']:,} of {numbers['suggestions_total']:,} suggested codes not yet "
               f"reviewed by anyone")
    if head is not None:
        click.echo(f"Chain head: {head[1]} (seq {head[0]}; check later with `postkit code verify STORE "
                   "--expect-head HEAD`)")
    coders = sorted(numbers["decisions_by_coder"])
    if coders:
        click.echo(text_table(["coder", "units", "decisions"],
                              [[c, numbers["units_decided_by_coder"].get(c, 0), numbers["decisions_by_coder"][c]]
                               for c in coders]))


@code.command("load")
@click.argument("tagged", metavar="TAGGED", type=click.Path(path_type=Path))
@click.option("--store", "store", required=True, type=click.Path(path_type=Path),
              help="The study's coding store (created if missing; a folder gets coding.sqlite).")
def code_load(tagged, store) -> None:
    """Add the units and suggestions of a `postkit tag` output to the coding store.

    Suggestions are not codings: they count only once a coder accepts them.

    Example: postkit code load tagged.parquet --store study/coding.sqlite
    """
    from .coding.load import load_tagged
    from .coding.store import CodingStore

    with CodingStore(store) as opened:
        counts = load_tagged(opened, tagged)
    click.echo(f"{store}: {counts['new_units']:,} new units ({counts['units']:,} read), "
               f"{counts['suggestions']:,} suggestions added")


@code.command("export-sheet")
@store_argument
@click.option("--coder", required=True, help="Whose sheet: only their own earlier decisions are shown.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Sheet to write (.csv or .xlsx).")
@codebook_option
def code_export_sheet(store, coder, output, codebook_path) -> None:
    """Write a coding sheet: one row per suggested code (with its name and definition), to
    accept/reject/add with a memo; an .xlsx sheet has drop-downs and a codebook tab.

    Example: postkit code export-sheet study/coding.sqlite --coder alice --output alice.xlsx
    """
    from .coding.codebook import load_codebook
    from .coding.store import CodingStore, export_sheet

    book = load_codebook(codebook_path)
    with CodingStore(store, read_only=True) as opened:
        rows = export_sheet(opened, output, coder, codebook=book)
    click.echo(f"{output}: {rows:,} rows for {coder}; fill 'decision' (accept, reject, add, remove) and 'memo'")


@code.command("import-sheet")
@store_argument
@click.argument("sheet", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--coder", required=True, help="Whose decisions these are.")
def code_import_sheet(store, sheet, coder) -> None:
    """Record the decisions of a filled coding sheet (all rows checked first; all or nothing).

    Example: postkit code import-sheet study/coding.sqlite alice.xlsx --coder alice
    """
    from .coding.store import CodingStore, import_sheet

    with CodingStore(store) as opened:
        recorded = import_sheet(opened, sheet, coder)
    click.echo(f"{sheet}: recorded {recorded:,} decisions by {coder}")


@code.command("retrain")
@store_argument
@codebook_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Ranker file to write [default: ranker.json beside the store].")
def code_retrain(store, codebook_path, output) -> None:
    """Retrain the study's area ranker from the coders' decisions in the coding store.

    Applied codes (accept/add) give each unit its area; a unit whose every suggestion was
    rejected counts as "no area". Use the result with `postkit tag --ranker FILE`.

    Example: postkit code retrain study/coding.sqlite
    """
    from .coding.codebook import load_codebook
    from .coding.learn import retrain_from_store

    result = retrain_from_store(store, output=output, codebook=load_codebook(codebook_path))
    counts = ", ".join(f"{area} {n:,}" for area, n in result.outcomes.items())
    click.echo(f"{result.path}: trained on {result.units:,} coded units ({counts}) from {result.decisions:,} "
               f"decisions" + (f"; {result.skipped_ties:,} units left out (coders disagree evenly)"
                               if result.skipped_ties else ""))
    click.echo(f"Use it with: postkit tag INPUT --output OUTPUT --ranker {result.path}")


@code.command("verify")
@store_argument
@click.option("--expect-head", metavar="HASH",
              help="The head printed earlier (by `code verify` or `code progress`) and kept elsewhere: "
                   "then a store rewritten from scratch, or cut short, fails too.")
def code_verify(store, expect_head) -> None:
    """Exit 0 if no decision or review was edited, deleted, inserted or back-dated; 1 naming the first.

    Checks the hash chain over decisions and reviews, its head record and the append-only
    triggers, reading only.

    Example: postkit code verify study/coding.sqlite --expect-head 3f2a…
    """
    from .coding.store import verify_store

    result = verify_store(store, expected_head=expect_head)
    click.echo(result.render())
    if not result.ok:
        sys.exit(1)


@main.command("agreement")
@click.argument("sources", metavar="STORE_OR_SHEETS", nargs=-1, required=True,
                type=click.Path(path_type=Path))
@click.option("--coders", required=True, help="Comma-separated coder names (with sheets: one per sheet, in order).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json", "csv"]), default=None,
              help="Output format (default text). json and csv are machine-readable: every statistic, "
                   "its CI bounds, units and coders, per code and overall.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--csv", "as_csv", is_flag=True, help="Same as --format csv (one row per code and comparison).")
@click.option("--disagreements", default=20, show_default=True, type=click.IntRange(min=0),
              help="How many disagreements to list (text, markdown, json).")
@click.option("--resamples", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Bootstrap resamples of the units for the confidence intervals; 0 leaves them out.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed of the bootstrap: the same data and seed give the same intervals.")
@click.option("--confidence", default=0.95, show_default=True,
              type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
              help="Confidence level of the intervals.")
def agreement_command(sources, coders, fmt, as_json, as_csv, disagreements, resamples, seed, confidence) -> None:
    """Inter-coder agreement: Cohen's kappa, Krippendorff's alpha, Gwet's AC1, PABAK, percent agreement.

    Per code and overall, with interpretation bands, percentile bootstrap confidence
    intervals (over units) and the excerpts coders disagree on; from a store, also each
    coder's agreement with the rule suggestions.

    Example: postkit agreement study/coding.sqlite --coders alice,bob --json > agreement.json
    """
    from .coding.agreement import agreement, render_agreement, suggestion_agreement
    from .coding.store import CodingStore, codings_from_sheets

    chosen = {f for f, on in (("json", as_json), ("csv", as_csv), (fmt, fmt is not None)) if on}
    if len(chosen) > 1:
        raise click.UsageError("choose one output format: --json, --csv or --format")
    fmt = chosen.pop() if chosen else "text"
    boot = {"resamples": resamples, "seed": seed, "confidence": confidence}

    names = [c.strip() for c in coders.split(",") if c.strip()]
    suggestions = None
    if len(sources) == 1 and (sources[0].is_dir() or sources[0].suffix.lower() in (".sqlite", ".db")):
        with CodingStore(sources[0]) as opened:
            codings = opened.codings()
            suggestions = opened.suggestions()
    else:
        codings = codings_from_sheets(list(sources), names)
    report = agreement(codings, coders=names, **boot)
    versus_rules = None
    if suggestions is not None and len(suggestions):
        versus_rules = suggestion_agreement(codings[codings["coder"].isin(names)],
                                            suggestions[["unit_id", "code_id"]], **boot)
    click.echo(render_agreement(report, fmt=fmt, max_disagreements=disagreements, versus_rules=versus_rules),
               nl=False)


# --------------------------------------------------------------------------- disguise


@main.group()
def disguise() -> None:
    """Check that quotes used in papers cannot be traced back to the forum by searching."""


@disguise.command("check")
@click.argument("quotes", metavar="QUOTES", type=click.Path(path_type=Path))
@click.option("--corpus", required=True, type=click.Path(path_type=Path),
              help="The posts an attacker could search: ideally the whole forum, not only the consented part.")
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
              help="One row per quote: source_rank (BM25), dense_rank (passage embeddings), dense (ran / not run), "
                   "longest_shared_run, distinctive_overlap, exact_5gram_hits, verdict.")
@click.option("--index", "--index-dir", "index_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the search index (built once, rebuilt when the corpus changes). Default: a "
                   "private cache, $POSTKIT_CACHE_DIR or ~/.cache/postkit. Never inside a run or review folder: "
                   "the index holds the text of every post.")
@click.option("--top-k", type=click.IntRange(min=1), help="Disguised quotes keep their source outside the top K "
              "results (default from rules/disguise/thresholds.yaml: 20).")
@quiet_option
def disguise_check(quotes, corpus, output, index_dir, top_k, quiet) -> None:
    """Search for each quote like an attacker would and give a verdict: traceable, at risk or disguised.

    QUOTES has quote_id, source_post_id and text (the paraphrase to publish).

    Example: postkit disguise check quotes.csv --corpus forum.parquet --output checked.csv
    """
    import dataclasses

    from .disguise.trace import check_file, load_thresholds, render_summary

    thresholds = load_thresholds()
    if top_k is not None:
        thresholds = dataclasses.replace(thresholds, top_k=top_k)
    counts = check_file(quotes, corpus, output, index_dir=index_dir, thresholds=thresholds)
    if not quiet:
        click.echo(render_summary(counts))
    elif counts.get("dense") == "not run":  # fail closed, and say why even when quiet
        click.echo(f"Dense attacker not run, so no quote is called disguised: {counts['dense_note']}.", err=True)


@disguise.command("suggest")
@click.argument("quotes", metavar="QUOTES", type=click.Path(path_type=Path))
@click.option("--corpus", required=True, type=click.Path(path_type=Path),
              help="The posts an attacker could search: ideally the whole forum, not only the consented part.")
@click.option("--output", "-o", type=click.Path(path_type=Path),
              help="One row per quote with its ranked candidates (JSONL keeps them as lists; CSV as JSON text).")
@click.option("--study", "study_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write a review folder (suggestions.jsonl + index.json) for `postkit review serve`.")
@click.option("--index", "--index-dir", "index_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the search index. Default: a private cache ($POSTKIT_CACHE_DIR or "
                   "~/.cache/postkit), reused across runs. Never inside the review or a run folder: the index "
                   "holds the text of every post.")
@click.option("--candidates", "n_candidates", default=5, show_default=True, type=click.IntRange(min=1),
              help="Candidates kept per quote, best first.")
@click.option("--paraphraser", "python_paraphrasers", multiple=True, metavar="MODULE:FUNCTION",
              help="Also score the paraphrases of this Python callable (text → text or list). Repeatable.")
@click.option("--paraphraser-cmd", "command_paraphrasers", multiple=True, metavar="COMMAND",
              help="Also score the paraphrases of this command (quote on stdin, one candidate per line "
                   "on stdout). Repeatable.")
@click.option("--paraphraser-url", metavar="URL",
              help="Also score the rewrites of a language model on this machine behind an OpenAI-compatible "
                   "chat endpoint, e.g. http://127.0.0.1:11434/v1 (Ollama), :8080/v1 (llama.cpp), :8000/v1 "
                   "(vLLM). The prompt is rules/disguise/paraphraser_prompt.yaml.")
@click.option("--paraphraser-model", metavar="NAME",
              help="The model to ask (default: the server's only model).")
@click.option("--paraphraser-prompt", type=click.Path(dir_okay=False, path_type=Path),
              help="A prompt file of your own (a copy of rules/disguise/paraphraser_prompt.yaml).")
@click.option("--paraphraser-timeout", type=click.FloatRange(min=1), default=120, show_default=True,
              metavar="SECONDS", help="How long to wait for the model's answer to one quote.")
@click.option("--allow-remote", is_flag=True,
              help="Allow a --paraphraser-url on another machine. The quotes are sensitive posts: use only "
                   "when your ethics approval covers sending them there.")
@quiet_option
def disguise_suggest(quotes, corpus, output, study_dir, index_dir, n_candidates, python_paraphrasers,
                     command_paraphrasers, paraphraser_url, paraphraser_model, paraphraser_prompt,
                     paraphraser_timeout, allow_remote, quiet) -> None:
    """Suggest paraphrases that cannot be searched back to the forum, scored for traceability and meaning.

    Candidates swap the words that make the source findable for WordNet synonyms, change
    grammar and word order, and blur identifying details; each is checked like
    `postkit disguise check` and scored for meaning preservation, best first.

    Example: postkit disguise suggest quotes.csv --corpus forum.csv --study review/ --output suggestions.jsonl
    """
    from .disguise.suggest import (
        chat_paraphraser, command_paraphraser, python_paraphraser, render_summary, suggest_file)
    from .disguise.trace import read_quotes

    if paraphraser_url is None and (allow_remote or paraphraser_model or paraphraser_prompt):
        raise PostkitError("--allow-remote, --paraphraser-model and --paraphraser-prompt go with --paraphraser-url",
                           fix="add --paraphraser-url URL or leave them out")
    externals = [python_paraphraser(s) for s in python_paraphrasers]
    externals += [command_paraphraser(c) for c in command_paraphrasers]
    if paraphraser_url is not None:
        model = chat_paraphraser(paraphraser_url, model=paraphraser_model, prompt_path=paraphraser_prompt,
                                 allow_remote=allow_remote, timeout=paraphraser_timeout)
        if not model.run.endpoint.loopback:
            click.echo(f"Warning: the quotes will be sent to {model.run.endpoint.where}, "
                       "which is not this machine (--allow-remote).", err=True)
        externals.append(model)
    total = len(read_quotes(quotes)[1])
    bar = _progress(quiet)
    with _input_progress(quiet, "index", corpus, None) as index_advance, \
            bar("suggest", total=total, unit="quotes") as quote_advance:
        summary = suggest_file(quotes, corpus, output, study_dir=study_dir, index_dir=index_dir,
                               externals=externals, n_candidates=n_candidates,
                               on_index_progress=index_advance, on_quote_progress=quote_advance)
    if not quiet:
        click.echo(render_summary(summary))


@disguise.command("export")
@click.argument("study_dir", metavar="STUDY_DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
              help="The approved quotes with their scores (CSV, JSONL or Parquet).")
def disguise_export(study_dir, output) -> None:
    """Write the approved quotes, re-checked: refuses (writing nothing) if any no longer passes.

    STUDY_DIR is a review folder (`postkit disguise suggest --study`) or a run folder with a
    disguise stage.

    Example: postkit disguise export review/ --output quotes.csv
    """
    from .disguise.study import QuoteStudy, export_approved

    with QuoteStudy.open(study_dir, notify=lambda message: click.echo(message, err=True)) as study:
        counts = export_approved(study, output)
    click.echo(f"Exported {counts['exported']} approved quote(s) to {output}; "
               f"{counts['rejected']} rejected and {counts['pending']} pending of {counts['quotes']}.")


@disguise.command("rank")
@click.argument("store", metavar="STORE", type=click.Path(path_type=Path))
@click.option("--code", "code_id", required=True, help="The code whose excerpts to rank (its codebook id).")
@click.option("--corpus", required=True, type=click.Path(path_type=Path),
              help="The posts an attacker could search: ideally the whole forum, not only the consented part.")
@click.option("--index", "--index-dir", "index_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the search index. Default: a private cache ($POSTKIT_CACHE_DIR or "
                   "~/.cache/postkit). Never inside a run or review folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the ranking as JSON.")
def disguise_rank(store, code_id, corpus, index_dir, as_json) -> None:
    """Choose another exemplar: a code's excerpts, least findable first under both attackers.

    STORE is the study's coding store (coding.sqlite) or a run folder with a tag stage. Each
    excerpt carrying the code is checked as it would be quoted (the shortest span holding the
    code's evidence) against the BM25 search and the semantic (dense) search.

    Example: postkit disguise rank run/ --code peer_support --corpus forum.parquet
    """
    import json

    from .disguise.exemplars import rank_file, render_ranking
    from .io import jsonable

    result = rank_file(store, corpus, code_id, index_dir=index_dir)
    if as_json:
        click.echo(json.dumps(jsonable(result), indent=2, ensure_ascii=False))
    else:
        click.echo(render_ranking(result))


# --------------------------------------------------------------------------- audit


@main.group()
def audit() -> None:
    """Check consent audit logs."""


public_key_option = click.option(
    "--public-key", type=click.Path(path_type=Path),
    help="The data steward's public key (PEM, ssh-ed25519 line or hex), as they gave it to you: "
         "the log must be signed by it. Without it, only the .pub beside the log is checked.")


@audit.command("verify")
@click.argument("log", type=click.Path(path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path),
              help="Also check that this output file is the one the log describes.")
@click.option("--expect-head", help="The head hash recorded elsewhere when the log was made.")
@public_key_option
def audit_verify(log, output, expect_head, public_key) -> None:
    """Exit 0 if the log's hash chain is intact and its signature good, 1 naming the problem.

    Only --public-key (the data steward's key, as you received it from them) proves who
    made the log; without it the .pub beside the log is used, which proves integrity only.

    Example: postkit audit verify audit.jsonl --output kept.parquet --public-key steward.pub
    """
    from .audit import verify_audit

    result = verify_audit(log, output=output, expected_head=expect_head)
    if not result.ok:
        click.echo(f"FAILED: {log}: {result.problem}")
        sys.exit(1)
    signed = _check_signature(log, result.head, public_key)
    extra = " and the output matches" if output else ""
    click.echo(f"OK: {log} is intact ({result.entries:,} entries{extra}) and {signed}; head {result.head}")
    _warn_unauthenticated(log, public_key)


def _check_signature(log: Path, head: str | None, public_key: Path | None) -> str:
    """Verify the log's signature (exit 1 with one line if it fails); returns how it was signed."""
    from .audit import verify_signature

    checked = verify_signature(log, head or "", public_key)
    if not checked.ok:
        click.echo(f"FAILED: {log}: {checked.problem}")
        sys.exit(1)
    if checked.authenticated:
        return f"signed by the given public key {checked.key}"
    return f"its signature matches {checked.key_source} ({checked.key})"


def _warn_unauthenticated(log: Path, public_key: Path | None) -> None:
    if public_key is None:
        from .audit import public_key_path

        click.echo(f"NOT AUTHENTICATED: this shows the log was not altered after it was signed, not who signed it: "
                   f"anyone can re-make a log, sign it with a new key and replace {public_key_path(log).name}. "
                   "Pass --public-key FILE with the data steward's public key, obtained from them directly.")


@audit.command("show")
@click.argument("log", type=click.Path(path_type=Path))
@click.option("--post", "post_ids", multiple=True, metavar="POST_ID",
              help="Show the decision for this post (repeatable).")
@click.option("--reason", "reasons", multiple=True,
              type=click.Choice(REASON_CODES, case_sensitive=False),
              help="List every post excluded or kept for this reason (repeatable).")
@public_key_option
def audit_show(log, post_ids, reasons, public_key) -> None:
    """Explain a log: its run, policy, counts, and why given posts were kept or excluded.

    The log and its signature are verified first; an altered log is reported and nothing
    else is shown. Pass --public-key to check who signed it.

    Example: postkit audit show audit.jsonl --post p0000042 --reason CONFLICT
    """
    from .audit import verify_audit
    from .audit_report import describe_entry, describe_header, select_entries
    from .summary import text_table

    result = verify_audit(log)
    if not result.ok:
        click.echo(f"FAILED: {log}: {result.problem}")
        sys.exit(1)
    assert result.header is not None and result.footer is not None
    signed = _check_signature(log, result.head, public_key)
    click.echo(f"{log}: intact, {result.entries:,} decisions, head {result.head}; {signed}")
    _warn_unauthenticated(log, public_key)
    for line in describe_header(result.header):
        click.echo(f"  {line}")
    counts = result.footer.get("counts", {})
    click.echo(f"  kept {counts.get('kept', 0):,}, excluded {counts.get('excluded', 0):,}; "
               f"output {result.footer.get('output', {}).get('path')} "
               f"sha256 {result.footer.get('output_sha256')}")
    by_reason = counts.get("by_reason", {})
    click.echo(text_table(["reason", "posts"], [[code, by_reason.get(code, 0)] for code in REASON_CODES]))
    found: set[str] = set()
    for entry in select_entries(log, post_ids, reasons):
        if not found:
            click.echo("")
        click.echo(describe_entry(entry))
        found.add(str(entry.get("post_id")))
    unknown = sorted(set(post_ids) - found)
    if unknown:
        click.echo(f"not in this log: {', '.join(unknown)}")


# --------------------------------------------------------------------------- run / convert


@main.group()
def keys() -> None:
    """The data steward's signing key."""


@keys.command("public")
@click.option("--signing-key", type=click.Path(path_type=Path),
              help="Private signing key file (default: signing-ed25519.pem in the key folder, created if missing).")
@click.option("--output", "-o", type=click.Path(path_type=Path),
              help="Write the public key to this file instead of printing it.")
def keys_public(signing_key, output) -> None:
    """Print the public half of your signing key, to send to ethics reviewers yourself.

    Reviewers check every audit log against it (`postkit audit verify LOG --public-key
    FILE`). Send it through a channel of your own (e-mail, the ethics application), never
    only inside a run folder: a forger could replace a key there.

    Example: postkit keys public -o steward.pub
    """
    from .io import write_atomic
    from .signing import resolve_signing_key

    key = resolve_signing_key(signing_key, outputs=[output] if output else [])
    key.persist()
    for note in key.notes:
        _echo_err(note)
    if output:
        write_atomic(output, key.public_pem())
        _echo_err(f"Public key {key.fingerprint} written to {output}")
    else:
        click.echo(key.public_pem().decode("ascii"), nl=False)
        _echo_err(f"Fingerprint: {key.fingerprint}")


@main.command("run")
@click.argument("study_file", metavar="STUDY.toml", type=click.Path(path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path),
              help="Run folder (default: [study] output in the study file).")
@quiet_option
def run(study_file, output, quiet) -> None:
    """Run the stages a study file configures, in order, into one run folder.

    The run folder is locked while the run lasts: a second run into it, or a run while
    `postkit review serve` has it open, stops with a message naming the holder. A run
    stopped by Ctrl+C, SIGTERM or SIGHUP leaves the previous run folder as it was.

    Example: postkit run corpora/demo/study.toml
    """
    from .pipeline import load_study, run_study

    study = load_study(study_file, output)
    echo = (lambda message: None) if quiet else click.echo
    manifest = run_study(study, progress=_progress(quiet), echo=echo, warn=_echo_err)
    if not quiet:
        stages = ", ".join(stage["name"] for stage in manifest["stages"])
        click.echo(f"\nRun folder: {study.output} (stages: {stages}; manifest.json written)")


@main.command("verify")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(path_type=Path))
@public_key_option
@click.option("--inputs", "inputs_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder holding the run's raw inputs, to check them too (found as recorded otherwise).")
@click.option("--require-inputs", is_flag=True, help="Fail when an input cannot be found (default: not checked).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(run_dir, public_key, inputs_dir, require_inputs, as_json) -> None:
    """Recheck a run folder: every hash in its manifest, the audit chain and its signature.

    Exit 0 when nothing changed, 1 naming each changed, missing or edited file. The coding
    store is reported as updated (coders' decisions), not as a failure.

    Example: postkit verify corpora/demo/output --public-key .postkit-demo-steward.pub
    """
    import json as _json

    from .locks import SHARED, PathLock
    from .verify_run import verify_run

    with PathLock(run_dir, mode=SHARED, purpose="postkit verify"):
        result = verify_run(run_dir, public_key=public_key, inputs_dir=inputs_dir, require_inputs=require_inputs)
    click.echo(_json.dumps(result.to_dict(), indent=2) if as_json else result.render())
    if not result.ok:
        sys.exit(1)


@main.command("report")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The HTML file to write (one self-contained page; best outside the run folder).")
@public_key_option
@click.option("--json", "as_json", is_flag=True, help="Also print the report's data as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing unless something is wrong.")
def report(run_dir, output, public_key, as_json, quiet) -> None:
    """Write one HTML page about a run for the ethics reviewer and the researcher.

    Consent funnel, audit verification, de-identification counts, sampling funnel, coding
    progress and agreement, disguise verdicts and the manifest: counts, ids and settings,
    never post text. Opens offline. Exit 0 when every section is fine, 1 when one shows a
    problem (the page is written either way and says what).

    Example: postkit report corpora/demo/output --output corpora/demo/output-report.html
    """
    import json as _json

    from .locks import SHARED, PathLock
    from .report.run_report import build_report

    with PathLock(run_dir, mode=SHARED, purpose="postkit report"):
        result = build_report(run_dir, public_key=public_key)
    result.write(output)
    if as_json:
        click.echo(_json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif not quiet or not result.ok:
        click.echo(f"Report: {output}")
        for section in result.sections:
            click.echo(f"  {section.title:<34} {section.status}")
            for problem in section.problems if section.status == "problem" else ():
                click.echo(f"    !! {problem}")
    if not result.ok:
        sys.exit(1)


@main.command("convert")
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
@column_option
@batch_option
def convert(source, target, columns, batch_size) -> None:
    """Copy a table between CSV, JSONL, Parquet and datasets folders (by extension).

    Example: postkit convert posts.csv posts.parquet
    """
    from .io import OutputSet, open_table

    reader = open_table(source, batch_size=batch_size, column_map=columns)
    with OutputSet(inputs=[source]) as outputs:
        writer = outputs.table(target, schema_hint=reader.schema)
        for frame in reader.batches():
            writer.write(frame)
        writer.set_empty_columns(reader.columns)
    click.echo(f"{source} -> {target}: {writer.rows:,} rows")


# --------------------------------------------------------------------------- review


@main.group()
def review() -> None:
    """The browser review app: disguise quotes for publication, confirm code suggestions."""


@review.command("serve")
@click.argument("study_dir", metavar="STUDY_DIR", type=click.Path(path_type=Path))
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port on 127.0.0.1 (the app is never reachable from other machines).")
@click.option("--reviewers", metavar="NAMES",
              help="Comma-separated names of the people who review, e.g. alice,bob. Each gets a secret "
                   "link; decisions are recorded under the link's name. Names are compared ignoring case, "
                   "width and invisible characters. Default: one reviewer named after your login name.")
@click.option("--no-browser", is_flag=True, help="Do not open a browser tab (it opens only for a single reviewer).")
@click.option("--retrain-every", type=click.IntRange(min=0), metavar="N",
              help="Retrain the study's area ranker in the background after every N coding decisions "
                   "(ranker.json beside the coding store) and re-rank the suggestions of excerpts nobody "
                   "has coded yet; 0 = never. Default: the study's [review] retrain_every, else 25.")
@click.option("--order", type=click.Choice(["sampled", "uncertainty"]),
              help="Excerpt order a coder starts with: as sampled, or the excerpts the ranker is least "
                   "sure of first (coders can switch in the page). Default: the study's [review] order, "
                   "else sampled.")
def review_serve(study_dir, port, reviewers, no_browser, retrain_every, order) -> None:
    """Serve the review app for a study folder on 127.0.0.1 until Ctrl+C.

    Quotes: the candidates with their traceability verdicts, a live check as you edit,
    approve or reject with a note. Coding: accept or reject suggested codes with a memo,
    seeing only your own decisions. Decisions are saved in the study's SQLite store.

    Prints one secret link per reviewer (new links every start; give each person only
    their own): whoever opens a link acts as that reviewer. Without --reviewers there is
    one reviewer, named after your login name, and the browser opens at their link.

    Coders' decisions also teach the study's ranker: after every --retrain-every
    decisions it is retrained in the background, and the page says when.

    Example: postkit review serve study/ --reviewers alice,bob --order uncertainty
    """
    from .disguise.study import QuoteStudy
    from .review.identity import parse_reviewer_list
    from .review.server import ReviewServer, serve

    names = parse_reviewer_list(reviewers) if reviewers is not None else None  # fail before loading models

    def ready(server: ReviewServer) -> None:
        members = list(server.reviewers)
        width = max(len(r.name) for r in members)
        click.echo(f"Reviewing {study_dir} at {server.url}")
        click.echo("Secret links, one per reviewer (valid until the app stops; give each person only their own):")
        for reviewer in members:
            click.echo(f"  {reviewer.name:<{width}}  {server.link(reviewer)}")
        click.echo("Ctrl+C to stop")

    def open_study() -> QuoteStudy:
        study = QuoteStudy.open(study_dir, notify=click.echo)
        click.echo("Loading the language models…")
        study.warm_up()  # before the reviewer's first keystroke, not on it
        return study

    serve(open_study, port, reviewers=names, open_browser=not no_browser, on_ready=ready,
          retrain_every=retrain_every, order=order)
    click.echo("Stopped.")


if __name__ == "__main__":  # pragma: no cover
    main()
