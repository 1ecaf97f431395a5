"""Recheck a run folder against its manifest: is everything still what the run wrote?

An ethics reviewer receives a run folder, sometimes months after the run. The manifest
records the sha256 of every input and every stage's output files, and the consent stage's
signed audit log records which posts were kept and why. This module rechecks all of it in
one pass and names each file that changed, went missing, or was added, so a reviewer does
not have to know which hash lives where.

Two things are expected to change after a run and are reported, not failed:

* the coding store (``tag/coding.sqlite``): coders' and reviewers' decisions are written
  into it after the run (its SQLite side files, ``-wal``/``-shm``, may sit beside it);
* raw inputs a reviewer was not given (they hold posts of people who did not opt in):
  an input that cannot be found is "not checked", unless the caller requires inputs.
  An input that is found and differs is a failure.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import PostkitError
from .hashing import sha256_path
from .locks import LOCK_SUFFIX
from .pipeline import MANIFEST

# File labels whose content legitimately changes after the run (see the module docstring).
_UPDATED_AFTER_RUN = {"store"}
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

OK, CHANGED, MISSING, UPDATED, NOT_CHECKED, ADDED = (
    "ok", "changed", "missing", "updated after the run", "not checked", "added")
_FAILING = {CHANGED, MISSING}


@dataclass
class Check:
    """One recheck: what was checked (``what``), where, and its status."""

    what: str
    path: str
    status: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status in _FAILING


@dataclass
class RunCheck:
    """Everything :func:`verify_run` rechecked; ``ok`` is False when anything changed or went missing."""

    run_dir: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(check.failed for check in self.checks)

    @property
    def problems(self) -> list[Check]:
        return [check for check in self.checks if check.failed]

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": self.run_dir, "ok": self.ok,
                "checks": [{**asdict(check), "failed": check.failed} for check in self.checks]}

    def render(self) -> str:
        counts: dict[str, int] = {}
        for check in self.checks:
            counts[check.status] = counts.get(check.status, 0) + 1
        lines = [f"{'OK' if self.ok else 'FAILED'}: {self.run_dir}: "
                 + ", ".join(f"{n} {status}" for status, n in counts.items())]
        for check in self.checks:
            if check.status != OK:
                mark = "!!" if check.failed else "--"
                lines.append(f"  {mark} {check.what}: {check.path}: {check.status}"
                             + (f" ({check.detail})" if check.detail else ""))
        return "\n".join(lines)


def _load_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / MANIFEST
    if not run_dir.is_dir():
        raise PostkitError("run folder not found", path=run_dir,
                           fix="give the folder `postkit run` wrote (it holds manifest.json)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PostkitError("no manifest.json in this folder, so it is not a postkit run folder", path=run_dir,
                           fix="give the folder `postkit run` wrote") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise PostkitError("manifest.json is not valid JSON (it was edited or damaged)", path=path, row=line,
                           fix="restore the run folder from its original copy") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("stages"), list):
        raise PostkitError("manifest.json has no list of stages (it was edited or damaged)", path=path,
                           fix="restore the run folder from its original copy")
    return manifest


def _input_candidates(manifest: dict[str, Any], name: str, recorded: str, inputs_dir: Path | None) -> list[Path]:
    """Where an input may be now: as recorded (relative to where the run was started), beside
    the study file as the study names it, or in a folder the reviewer names."""
    candidates = [Path(recorded)]
    study_path = manifest.get("study", {}).get("path")
    named = manifest.get("config", {}).get("inputs", {}).get(name)
    if study_path and named:
        candidates.append(Path(study_path).parent / named)
    if inputs_dir is not None:
        candidates.append(inputs_dir / Path(recorded).name)
    return candidates


def _check_inputs(manifest: dict[str, Any], inputs_dir: Path | None, require_inputs: bool) -> list[Check]:
    checks = []
    for name, record in (manifest.get("inputs") or {}).items():
        found = next((p for p in _input_candidates(manifest, name, str(record.get("path", "")), inputs_dir)
                      if p.exists()), None)
        if found is None:
            status = MISSING if require_inputs else NOT_CHECKED
            checks.append(Check(f"input {name}", str(record.get("path")), status,
                                "not found here; pass --inputs DIR to check it"))
            continue
        same = sha256_path(found) == record.get("sha256")
        checks.append(Check(f"input {name}", str(found), OK if same else CHANGED,
                            "" if same else "its sha256 differs from the one the run recorded"))
    return checks


def _recorded_files(manifest: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(stage or "run", label, record) of every file the manifest records a hash for."""
    recorded = [(str(stage.get("name")), label, record)
                for stage in manifest["stages"] for label, record in (stage.get("files") or {}).items()]
    recorded += [("run", label, record) for label, record in (manifest.get("files") or {}).items()]
    return recorded


def _check_stage_files(run_dir: Path, manifest: dict[str, Any]) -> tuple[list[Check], set[Path]]:
    checks, known = [], {run_dir / MANIFEST}
    for stage_name, label, record in _recorded_files(manifest):
        rel = str(record.get("path", ""))
        path = run_dir / rel
        known.add(path)
        what = f"{stage_name} {label}"
        if not path.exists():
            checks.append(Check(what, rel, MISSING, "the run wrote it; it is gone"))
        elif sha256_path(path) == record.get("sha256"):
            checks.append(Check(what, rel, OK))
        elif label in _UPDATED_AFTER_RUN:
            checks.append(Check(what, rel, UPDATED, "coders' and reviewers' decisions are stored here"))
        else:
            checks.append(Check(what, rel, CHANGED, "its sha256 differs from the manifest"))
        if label in _UPDATED_AFTER_RUN:
            known.update(path.with_name(path.name + suffix) for suffix in _SQLITE_SIDE_FILES)
    return checks, known


def _check_audit(run_dir: Path, manifest: dict[str, Any], public_key: Path | None) -> list[Check]:
    from .audit import verify_audit, verify_signature

    checks = []
    for stage in manifest["stages"]:
        files = stage.get("files") or {}
        if "audit" not in files:
            continue
        log = run_dir / files["audit"]["path"]
        output = run_dir / files["posts"]["path"] if "posts" in files else None
        if not log.exists():
            continue  # already reported missing with the stage's files
        if output is not None and not output.exists():
            output = None
        result = verify_audit(log, output=output, expected_head=stage.get("audit_head"))
        rel = log.relative_to(run_dir).as_posix()
        if not result.ok:
            where = f"line {result.line}: " if result.line else ""
            checks.append(Check("audit chain", rel, CHANGED, f"{where}{result.problem}"))
            continue
        checks.append(Check("audit chain", rel, OK, f"{result.entries:,} entries, head {result.head}"))
        signed = verify_signature(log, result.head or "", public_key)
        if not signed.ok:
            checks.append(Check("audit signature", rel + ".sig", CHANGED, signed.problem or "bad signature"))
        elif signed.authenticated:
            checks.append(Check("audit signature", rel + ".sig", OK, f"signed by the given key {signed.key}"))
        else:
            checks.append(Check("audit signature", rel + ".sig", OK,
                                f"matches the .pub beside the log ({signed.key}); give --public-key to "
                                "check who signed it"))
    return checks


def _added_files(run_dir: Path, known: set[Path]) -> list[Check]:
    return [Check("file", path.relative_to(run_dir).as_posix(), ADDED, "not written by the run")
            for path in sorted(p for p in run_dir.rglob("*") if p.is_file())
            if path not in known and not path.name.endswith(LOCK_SUFFIX)]


def verify_run(run_dir: str | Path, *, public_key: str | Path | None = None, inputs_dir: str | Path | None = None,
               require_inputs: bool = False) -> RunCheck:
    """Recheck every hash the run's manifest records, the consent audit chain and its signature.

    ``public_key`` is the data steward's published key (without it the signature is
    checked against the ``.pub`` in the folder, which proves integrity, not authorship).
    ``inputs_dir`` is where the reviewer keeps the raw inputs, when they have them.
    Raises :class:`PostkitError` when the folder is not a run folder.
    """
    run_dir = Path(run_dir)
    manifest = _load_manifest(run_dir)
    result = RunCheck(str(run_dir))
    result.checks += _check_inputs(manifest, Path(inputs_dir) if inputs_dir else None, require_inputs)
    stage_checks, known = _check_stage_files(run_dir, manifest)
    result.checks += stage_checks
    result.checks += _check_audit(run_dir, manifest, Path(public_key) if public_key else None)
    result.checks += _added_files(run_dir, known)
    return result
