"""The CMO codebook: load, validate, hash and render ``rules/cmo_codebook.yaml``.

Researchers edit the YAML by hand, so validation reports *every* problem at once, each
with its location (``areas[1].configurations[0].codes[3] (UA-C4)``), rather than failing
on the first one: one edit-and-check round instead of many. The content hash
(:attr:`Codebook.version_hash`) lets each suggestion record which codebook made it,
independent of comments and formatting.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..errors import PostkitError

KINDS = ("context", "mechanism_resource", "mechanism_response", "outcome")
CONFIGURATION_POLARITIES = ("positive", "negative")
CODE_POLARITIES = ("positive", "negative", "neutral")
NEGATIONS = ("flip", "block", "ignore")

# Required and optional keys per level; unknown keys are errors so typos
# ("exlude", "cue") are caught rather than silently ignored.
_TOP_REQUIRED = ("version", "name", "description", "areas")
_TOP_OPTIONAL = ("polarity_lexicon",)
_AREA_REQUIRED = ("id", "name", "definition", "configurations")
_AREA_OPTIONAL = ("lexicon",)
_LEXICON_REQUIRED = ("report_as",)
_LEXICON_OPTIONAL = ("phrases", "patterns")
_POLARITY_LEXICON_KEYS = ("positive", "negative")
_CONF_REQUIRED = ("id", "name", "polarity", "summary", "codes")
_CONF_OPTIONAL = ("source",)
_CODE_REQUIRED = ("id", "kind", "name", "definition", "include", "exclude", "polarity", "cues")
_CUES_KEYS = ("phrases", "patterns", "negation")

_FIX = "edit the codebook YAML (see the comments at its top for the schema)"


@dataclass(frozen=True)
class Cues:
    """Surface cues that *suggest* a code to a human coder; they never decide it."""

    phrases: tuple[str, ...]
    patterns: tuple[tuple[dict[str, Any], ...], ...]
    negation: str  # flip | block | ignore


@dataclass(frozen=True)
class Code:
    """One codable element of a CMO configuration (a context, resource, response or outcome)."""

    id: str
    kind: str
    name: str
    definition: str
    include: str
    exclude: str
    polarity: str
    cues: Cues
    area_id: str
    configuration_id: str


@dataclass(frozen=True)
class Configuration:
    """A context-mechanism-outcome chain, positive or negative, within one area."""

    id: str
    name: str
    polarity: str
    summary: str
    codes: tuple[Code, ...]
    source: str | None = None


@dataclass(frozen=True)
class Lexicon:
    """Weak, area-level vocabulary: words that point to a theory area but to no one code.

    The tagger uses it as a low-scoring fallback so a post in an area's vocabulary still
    gets an area suggestion. Such a suggestion is reported as the code ``report_as`` names
    for the post's polarity (e.g. ``{"positive": "SE-C4", "negative": "SE-C17"}``).
    """

    phrases: tuple[str, ...]
    patterns: tuple[tuple[dict[str, Any], ...], ...]
    report_as: dict[str, str]


@dataclass(frozen=True)
class PolarityLexicon:
    """General positive/negative outcome words (with negation handling in the tagger), used to
    give area-lexicon suggestions a direction."""

    positive: Cues
    negative: Cues


@dataclass(frozen=True)
class Area:
    """A theory area (e.g. ``self_efficacy``) holding its positive and negative configurations."""

    id: str
    name: str
    definition: str
    configurations: tuple[Configuration, ...]
    lexicon: Lexicon | None = None


@dataclass(frozen=True)
class Codebook:
    """The whole validated codebook plus the hash suggestions record."""

    version: str
    name: str
    description: str
    areas: tuple[Area, ...]
    version_hash: str
    path: Path | None
    raw: dict[str, Any]
    polarity_lexicon: PolarityLexicon | None = None

    def codes(self) -> Iterator[tuple[Area, Configuration, Code]]:
        """Every code in file order, with the area and configuration it belongs to."""
        for area in self.areas:
            for conf in area.configurations:
                for code in conf.codes:
                    yield area, conf, code

    def code(self, code_id: str) -> Code:
        """The code with this id; a :class:`PostkitError` naming close ids otherwise."""
        for _, _, code in self.codes():
            if code.id == code_id:
                return code
        known = [c.id for _, _, c in self.codes()]
        prefix = code_id.split("-")[0]
        near = [k for k in known if k.startswith(prefix)][:8]
        raise PostkitError(f"unknown code id '{code_id}'", path=self.path,
                           fix=f"use one of: {', '.join(near or known[:8])} …")

    def configuration(self, configuration_id: str) -> Configuration:
        """The configuration with this id (e.g. ``CMO3`` or ``SE-CMO2``)."""
        for area in self.areas:
            for conf in area.configurations:
                if conf.id == configuration_id:
                    return conf
        raise PostkitError(f"unknown configuration id '{configuration_id}'", path=self.path)

    def to_dict(self) -> dict[str, Any]:
        """The parsed content (as in the YAML) plus the hash, e.g. for JSON export."""
        data = json.loads(json.dumps(self.raw))
        data["version_hash"] = self.version_hash
        return data


def default_codebook_path() -> Path:
    """The packaged ``cmo_codebook.yaml`` (installed ``postkit/rules`` or the checkout's ``rules/``)."""
    from ..deid.rules import rules_root

    return rules_root() / "cmo_codebook.yaml"


def content_hash(raw: Any) -> str:
    """sha256 of the canonical JSON of the parsed YAML: comments and layout do not count."""
    canonical = json.dumps(raw, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def load_codebook(path: str | Path | None = None) -> Codebook:
    """Read, validate and hash a codebook (default: the packaged one).

    Raises :class:`PostkitError` for a missing file, invalid YAML (with its line number)
    or any schema problem (all problems listed in ``details``).
    """
    file = Path(path) if path is not None else default_codebook_path()
    if not file.exists():
        raise PostkitError("codebook not found", path=file,
                           fix="pass the path to a cmo_codebook.yaml, or reinstall postkit")
    text = file.read_text(encoding="utf-8")
    return parse_codebook(text, path=file)


def parse_codebook(text: str, path: str | Path | None = None) -> Codebook:
    """Validate and build a :class:`Codebook` from YAML text (``path`` only labels errors)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        message = f"invalid YAML at {where}{problem}".replace("\n", " ")
        raise PostkitError(message, path=path,
                           fix="check indentation and quoting on that line (or the line before)") from None
    problems = validate(raw)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise PostkitError(f"invalid codebook: {first}{more}", path=path, fix=_FIX, details=problems)
    return _build(raw, Path(path) if path is not None else None)


# ---------------------------------------------------------------------------- validation

@lru_cache(maxsize=1)
def _blank_vocab() -> Any:
    """A blank English vocab for pattern validation: no model needed, loaded once."""
    import spacy

    return spacy.blank("en").vocab


def _check_pattern(pattern: Any) -> str | None:
    """None if spaCy's Matcher accepts the pattern, else its complaint in one line."""
    from spacy.matcher import Matcher

    if not isinstance(pattern, list) or not pattern or not all(isinstance(t, dict) for t in pattern):
        return "must be a non-empty list of token dicts, e.g. [{LEMMA: \"relate\"}, {LOWER: \"to\"}]"
    matcher = Matcher(_blank_vocab(), validate=True)
    try:
        matcher.add("check", [pattern])
    except Exception as exc:  # spaCy raises MatchPatternError/ValueError/KeyError variants
        text = " ".join(str(exc).split())
        text = re.sub(r"^Invalid token patterns for matcher rule '\w+'\s*(Pattern \d+:\s*)?", "", text)
        return text[:300]
    return None


def _text_ok(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def validate(raw: Any) -> list[str]:
    """Every schema problem in a parsed codebook, each prefixed with its location."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        return ["top level: must be a mapping with version, name, description and areas"]

    def need(obj: dict[str, Any], keys: tuple[str, ...], optional: tuple[str, ...], where: str) -> None:
        for key in keys:
            if key not in obj or obj[key] is None or (isinstance(obj[key], str) and not obj[key].strip()):
                problems.append(f"{where}: missing required field '{key}'")
        for key in obj:
            if key not in keys and key not in optional:
                problems.append(f"{where}: unknown field '{key}' (allowed: {', '.join(keys + optional)})")

    need(raw, _TOP_REQUIRED, _TOP_OPTIONAL, "top level")
    seen: dict[str, str] = {}

    def unique(value: Any, where: str) -> None:
        if not _text_ok(value):
            if value is not None:
                problems.append(f"{where}: id must be a non-empty string")
            return
        if value in seen:
            problems.append(f"{where}: duplicate id '{value}' (first used at {seen[value]})")
        else:
            seen[value] = where

    for ai, area, a_where in _children(raw, "areas", "", problems):
        need(area, _AREA_REQUIRED, _AREA_OPTIONAL, a_where)
        unique(area.get("id"), a_where)
        area_codes: dict[str, Any] = {}
        for ci, conf, c_where in _children(area, "configurations", f"areas[{ai}].", problems, a_where):
            need(conf, _CONF_REQUIRED, _CONF_OPTIONAL, c_where)
            unique(conf.get("id"), c_where)
            if conf.get("polarity") is not None and conf.get("polarity") not in CONFIGURATION_POLARITIES:
                problems.append(f"{c_where}: unknown polarity '{conf.get('polarity')}' "
                                f"(use {' | '.join(CONFIGURATION_POLARITIES)})")
            for _, code, k_where in _children(conf, "codes", f"areas[{ai}].configurations[{ci}].", problems,
                                              c_where):
                _validate_code(code, k_where, need, unique, problems)
                if _text_ok(code.get("id")):
                    area_codes[code["id"]] = code.get("polarity")
        if "lexicon" in area:
            _validate_lexicon(area["lexicon"], f"{a_where}.lexicon", area_codes, need, problems)
    if "polarity_lexicon" in raw:
        _validate_polarity_lexicon(raw["polarity_lexicon"], problems)
    return problems


def _validate_cue_lists(obj: dict[str, Any], where: str, problems: list[str], required: bool = True) -> None:
    """``phrases`` (unique lowercase strings) and ``patterns`` (valid spaCy Matcher patterns)."""
    phrases = obj.get("phrases") or []
    patterns = obj.get("patterns") or []
    if not isinstance(phrases, list):
        problems.append(f"{where}.phrases: must be a list of strings")
        phrases = []
    if not isinstance(patterns, list):
        problems.append(f"{where}.patterns: must be a list of token patterns")
        patterns = []
    if required and not phrases and not patterns:
        problems.append(f"{where}: empty cue lists (give at least one phrase or pattern)")
    seen_phrases: set[str] = set()
    for pi, phrase in enumerate(phrases):
        p_where = f"{where}.phrases[{pi}]"
        if not _text_ok(phrase):
            problems.append(f"{p_where}: must be a non-empty string")
        elif phrase != phrase.lower():
            problems.append(f"{p_where}: '{phrase}' must be lowercase (matching is case-insensitive)")
        elif phrase in seen_phrases:
            problems.append(f"{p_where}: repeated phrase '{phrase}'")
        else:
            seen_phrases.add(phrase)
    for pi, pattern in enumerate(patterns):
        complaint = _check_pattern(pattern)
        if complaint:
            problems.append(f"{where}.patterns[{pi}]: invalid spaCy Matcher pattern: {complaint}")


def _validate_lexicon(lexicon: Any, where: str, area_codes: dict[str, Any], need: Any,
                      problems: list[str]) -> None:
    """An area's weak vocabulary: cue lists plus the codes its suggestions are reported as."""
    if not isinstance(lexicon, dict):
        problems.append(f"{where}: must be a mapping with report_as, phrases and patterns")
        return
    need(lexicon, _LEXICON_REQUIRED, _LEXICON_OPTIONAL, where)
    _validate_cue_lists(lexicon, where, problems)
    report_as = lexicon.get("report_as")
    if report_as is None:
        return
    if not isinstance(report_as, dict) or set(report_as) != set(CONFIGURATION_POLARITIES):
        problems.append(f"{where}.report_as: must map positive and negative to code ids of this area")
        return
    for polarity, code_id in report_as.items():
        if code_id not in area_codes:
            problems.append(f"{where}.report_as.{polarity}: '{code_id}' is not a code of this area")
        elif area_codes[code_id] != polarity:
            problems.append(f"{where}.report_as.{polarity}: code '{code_id}' has polarity "
                            f"'{area_codes[code_id]}', not '{polarity}'")


def _validate_polarity_lexicon(lexicon: Any, problems: list[str]) -> None:
    where = "polarity_lexicon"
    if not isinstance(lexicon, dict):
        problems.append(f"{where}: must be a mapping with positive and negative cue lists")
        return
    for key in lexicon:
        if key not in _POLARITY_LEXICON_KEYS:
            problems.append(f"{where}: unknown field '{key}' (allowed: positive, negative)")
    for key in _POLARITY_LEXICON_KEYS:
        part = lexicon.get(key)
        if not isinstance(part, dict):
            problems.append(f"{where}.{key}: must be a mapping with phrases and/or patterns")
            continue
        for field in part:
            if field not in ("phrases", "patterns"):
                problems.append(f"{where}.{key}: unknown field '{field}' (allowed: phrases, patterns)")
        _validate_cue_lists(part, f"{where}.{key}", problems)


def _children(parent: dict[str, Any], key: str, prefix: str, problems: list[str],
              parent_where: str | None = None) -> Iterator[tuple[int, dict[str, Any], str]]:
    """The mappings of a list field, each with its location ("areas[1].configurations[0] (CMO3)").

    The same checks apply at every level of the hierarchy: the list, if present, must be
    non-empty, and each item a mapping; problems are collected, not raised, so a
    researcher sees them all at once.
    """
    items = parent.get(key)
    if items is not None and (not isinstance(items, list) or not items):
        subject = f"{parent_where}: {key}" if parent_where else f"{key}:"
        problems.append(f"{subject} must be a non-empty list")
        return
    for index, item in enumerate(items or []):
        where = f"{prefix}{key}[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be a mapping")
            continue
        yield index, item, where + (f" ({item.get('id')})" if item.get("id") else "")


def _validate_code(code: dict[str, Any], where: str, need: Any, unique: Any, problems: list[str]) -> None:
    need(code, _CODE_REQUIRED, (), where)
    unique(code.get("id"), where)
    if code.get("kind") is not None and code.get("kind") not in KINDS:
        problems.append(f"{where}: unknown kind '{code.get('kind')}' (use {' | '.join(KINDS)})")
    if code.get("polarity") is not None and code.get("polarity") not in CODE_POLARITIES:
        problems.append(f"{where}: unknown polarity '{code.get('polarity')}' (use {' | '.join(CODE_POLARITIES)})")
    cues = code.get("cues")
    if cues is None:
        return
    if not isinstance(cues, dict):
        problems.append(f"{where}.cues: must be a mapping with phrases, patterns and negation")
        return
    for key in cues:
        if key not in _CUES_KEYS:
            problems.append(f"{where}.cues: unknown field '{key}' (allowed: {', '.join(_CUES_KEYS)})")
    negation = cues.get("negation")
    if negation is None:
        problems.append(f"{where}.cues: missing required field 'negation' ({' | '.join(NEGATIONS)})")
    elif negation not in NEGATIONS:
        problems.append(f"{where}.cues: unknown negation '{negation}' (use {' | '.join(NEGATIONS)})")
    _validate_cue_lists(cues, f"{where}.cues", problems)


# ---------------------------------------------------------------------------- building

def _build(raw: dict[str, Any], path: Path | None) -> Codebook:
    areas = []
    for area in raw["areas"]:
        confs = []
        for conf in area["configurations"]:
            codes = tuple(
                Code(
                    id=c["id"], kind=c["kind"], name=c["name"], definition=str(c["definition"]).strip(),
                    include=str(c["include"]).strip(), exclude=str(c["exclude"]).strip(),
                    polarity=c["polarity"],
                    cues=Cues(
                        phrases=tuple(c["cues"].get("phrases") or ()),
                        patterns=tuple(tuple(p) for p in (c["cues"].get("patterns") or ())),
                        negation=c["cues"]["negation"],
                    ),
                    area_id=area["id"], configuration_id=conf["id"],
                )
                for c in conf["codes"]
            )
            confs.append(Configuration(conf["id"], conf["name"], conf["polarity"],
                                       str(conf["summary"]).strip(), codes, conf.get("source")))
        lexicon = None
        if area.get("lexicon"):
            lex = area["lexicon"]
            lexicon = Lexicon(phrases=tuple(lex.get("phrases") or ()),
                              patterns=tuple(tuple(p) for p in (lex.get("patterns") or ())),
                              report_as=dict(lex["report_as"]))
        areas.append(Area(area["id"], area["name"], str(area["definition"]).strip(), tuple(confs), lexicon))
    polarity_lexicon = None
    if raw.get("polarity_lexicon"):
        pl = raw["polarity_lexicon"]
        polarity_lexicon = PolarityLexicon(*(
            Cues(phrases=tuple(pl[k].get("phrases") or ()),
                 patterns=tuple(tuple(p) for p in (pl[k].get("patterns") or ())), negation="flip")
            for k in _POLARITY_LEXICON_KEYS))
    return Codebook(
        version=str(raw["version"]), name=str(raw["name"]), description=str(raw["description"]).strip(),
        areas=tuple(areas), version_hash=content_hash(raw), path=path, raw=raw,
        polarity_lexicon=polarity_lexicon,
    )


# ---------------------------------------------------------------------------- rendering

def _cue_preview(cues: Cues, limit: int) -> str:
    shown = ", ".join(f'"{p}"' for p in cues.phrases[:limit])
    extra = len(cues.phrases) - limit
    if extra > 0:
        shown += f", … (+{extra} more)"
    if cues.patterns:
        shown += f"; {len(cues.patterns)} pattern(s)"
    return f"{shown}; negation: {cues.negation}"


def _lexicon_preview(lexicon: Lexicon, limit: int) -> str:
    shown = ", ".join(f'"{p}"' for p in lexicon.phrases[:limit])
    extra = len(lexicon.phrases) - limit
    if extra > 0:
        shown += f", … (+{extra} more)"
    if lexicon.patterns:
        shown += f"; {len(lexicon.patterns)} pattern(s)"
    return shown


def render_codebook(codebook: Codebook, fmt: str = "text", cue_limit: int = 5) -> str:
    """A readable area → configuration → code hierarchy for ``postkit codebook show``.

    ``text`` is for terminals; ``markdown`` for sharing with the research team.
    """
    if fmt not in ("text", "markdown"):
        raise PostkitError(f"unknown format '{fmt}'", fix="use text or markdown")
    n_codes = sum(1 for _ in codebook.codes())
    n_confs = sum(len(a.configurations) for a in codebook.areas)
    head = (f"version {codebook.version} · {len(codebook.areas)} areas · {n_confs} configurations · "
            f"{n_codes} codes · sha256 {codebook.version_hash[:12]}")
    lines: list[str] = []
    if fmt == "markdown":
        lines += [f"# {codebook.name}", "", f"_{head}_", "", codebook.description, ""]
        for area in codebook.areas:
            lines += [f"## {area.name} (`{area.id}`)", "", area.definition, ""]
            if area.lexicon:
                report = f"{area.lexicon.report_as['positive']} / {area.lexicon.report_as['negative']}"
                lines += [f"_Area lexicon (weak fallback cues, reported as {report}): "
                          + f"{_lexicon_preview(area.lexicon, cue_limit)}_", ""]
            for conf in area.configurations:
                source = f", {conf.source}" if conf.source else ""
                lines += [f"### {conf.id} — {conf.name} ({conf.polarity}{source})", "", conf.summary, ""]
                for code in conf.codes:
                    lines += [
                        f"- **{code.id}** {code.name} — _{code.kind}, {code.polarity}_",
                        f"  - Definition: {code.definition}",
                        f"  - Include: {code.include}",
                        f"  - Exclude: {code.exclude}",
                        f"  - Cues: {_cue_preview(code.cues, cue_limit)}",
                    ]
                lines.append("")
    else:
        lines += [codebook.name, head, "", codebook.description, ""]
        for area in codebook.areas:
            lines += [f"{area.name} [{area.id}]", f"  {area.definition}"]
            if area.lexicon:
                report = f"{area.lexicon.report_as['positive']} / {area.lexicon.report_as['negative']}"
                lines += [f"  area lexicon (weak fallback, reported as {report}): "
                          + _lexicon_preview(area.lexicon, cue_limit)]
            lines.append("")
            for conf in area.configurations:
                source = f", {conf.source}" if conf.source else ""
                lines += [f"  {conf.id}  {conf.name}  ({conf.polarity}{source})", f"    {conf.summary}"]
                for code in conf.codes:
                    lines += [
                        f"    {code.id:<7} {code.kind:<18} {code.polarity:<8} {code.name}",
                        f"        definition: {code.definition}",
                        f"        include:    {code.include}",
                        f"        exclude:    {code.exclude}",
                        f"        cues:       {_cue_preview(code.cues, cue_limit)}",
                    ]
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"
