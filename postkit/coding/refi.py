"""REFI-QDA export: the CMO codebook (``.qdc``) and coded excerpts (``.qdpx``) for QDA tools.

NVivo, ATLAS.ti, MAXQDA and QualCoder all read the REFI-QDA exchange standard (QDA-XML 1.0,
namespaces ``urn:QDA-XML:codebook:1.0`` and ``urn:QDA-XML:project:1.0``):

* ``.qdc`` — a codebook alone: the area → configuration → code hierarchy as nested ``<Code>``
  elements (areas and configurations are grouping codes, ``isCodable="false"``), each with a
  ``<Description>`` holding its definition, include/exclude rules, kind and polarity.
* ``.qdpx`` — a zip with ``project.qde`` at its root and a lowercase ``sources/`` folder holding
  one UTF-8 ``<guid>.txt`` per post.  The project lists the coders (and whoever exported) as
  ``<User>``\\ s, embeds the codebook, and gives each post a
  ``<TextSource plainTextPath="internal://<guid>.txt" creatingUser=…>`` holding one
  ``<PlainTextSelection>`` per **confirmed** coding (a coder's latest decision accept/add on a
  unit; rejected codes and unconfirmed suggestions are never exported).

Where the memos go, so that importers do not drop them (QualCoder's ``refi.py`` importer reads a
coding memo only from ``PlainTextSelection/Description`` and a post-level note only from a
``<Note>`` that holds a ``<PlainTextSelection>`` and is referenced by the source's ``<NoteRef>``;
MAXQDA writes and reads its coding comments the same way):

* a coding's memo is the ``<Description>`` of its own selection (one selection per coding, as
  QualCoder and MAXQDA export, so each memo stays with its code), and also a ``<Note>`` linked by
  the ``<Coding>``'s ``<NoteRef>`` (the standard's link, carrying author and time);
* memos on *rejected* codes (why a coder said no: often the most useful memo for the codebook)
  become one ``<Note>`` per coder and excerpt span, referenced from the post's ``<TextSource>``
  and holding a ``<PlainTextSelection>`` over the excerpt — an annotation in QualCoder.  The text
  names the rejected code ("Rejected CODE name: memo").

The post's forum and date are REFI-QDA variables: ``<Variables>`` declares ``Forum`` (Text) and
``Date`` (Date, the UTC day the post was written) and every ``<TextSource>`` carries its
``<VariableValue>``\\ s — source-level variables (document variables in MAXQDA, file attributes
in QualCoder), so coders can filter by forum.  The store knows each excerpt's forum; dates come
from the posts table passed as ``posts`` (``post_id``, ``created_at``), since the store keeps none.

Positions are Unicode **code point** offsets into the source text, end exclusive (a Python
``text[start:end]``), which is what the standard's "character positions" means and what
QualCoder uses (it slices the Python string it reads from the ``.txt``).  An emoji outside the
Basic Multilingual Plane counts as one position, not two UTF-16 units or four UTF-8 bytes; a
tool that counted UTF-16 units would place selections after such an emoji one unit early.
Excerpts store the whole post text plus the unit's offsets in it (see :mod:`postkit.coding.load`);
an excerpt without offsets covers its whole text.  Line endings are normalised to LF (offsets are
adjusted to match) and characters XML 1.0 forbids are replaced by U+FFFD in the XML (the ``.txt``
sources keep them, offsets unchanged).

GUIDs are deterministic (UUID 5 over a fixed namespace and the code id, coder name, post id …),
so exporting the same study twice gives the same GUIDs and a QDA tool can merge re-exports.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from postkit.errors import PostkitError
from postkit.io import open_table, write_atomic

__all__ = [
    "CODEBOOK_NS",
    "PROJECT_NS",
    "codebook_xml",
    "export_qdc",
    "export_qdpx",
    "project_xml",
    "read_post_variables",
    "read_qdpx",
]

CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
PROJECT_NS = "urn:QDA-XML:project:1.0"
# Fixed namespace for every postkit GUID; never change it, or re-exports stop matching.
GUID_NAMESPACE = uuid.UUID("6f1d2c5e-3b7a-5e0c-9a4f-2d8e1b7c4a90")
UNLISTED_CODES = "Codes not in this codebook"

_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
# Characters XML 1.0 cannot carry at all (not even escaped).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def guid(kind: str, *parts: str) -> str:
    """A stable GUID (lowercase 8-4-4-4-12, as the REFI-QDA GUIDType pattern requires)."""
    return str(uuid.uuid5(GUID_NAMESPACE, "\x1f".join((kind, *parts))))


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _xml_text(value: Any) -> str:
    """Text safe to put into XML 1.0: LF line endings, forbidden characters replaced."""
    return _XML_INVALID.sub("\ufffd", _lf("" if value is None else str(value)))


def _sub(parent: ET.Element, ns: str, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    # Tags stay unqualified while building; the root carries ``xmlns`` (ElementTree cannot
    # combine default_namespace with unqualified attribute names).
    element = ET.SubElement(parent, tag, {k: _xml_text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _xml_text(text)
    return element


def _serialise(root: ET.Element, ns: str) -> bytes:
    root.set("xmlns", ns)
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return _XML_DECLARATION + body.encode("utf-8") + b"\n"


def _timestamp(value: Any) -> str | None:
    """An xsd:dateTime in UTC (``2024-05-01T10:00:00Z``), or None if unreadable."""
    if value is None:
        return None
    if isinstance(value, datetime):
        at = value
    else:
        try:
            at = datetime.fromisoformat(str(value).strip())  # 3.11+ reads a trailing Z
        except ValueError:
            return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------- codebook

def _code_description(code: Any) -> str:
    return (f"{code.definition}\n\nInclude: {code.include}\nExclude: {code.exclude}\n"
            f"Kind: {code.kind.replace('_', ' ')}; polarity: {code.polarity}")


def _configuration_description(conf: Any) -> str:
    source = f"\nSource: {conf.source}" if conf.source else ""
    return f"{conf.summary}\n\nPolarity: {conf.polarity} configuration{source}"


def code_guids(codebook: Any) -> dict[str, str]:
    """GUID of every code id (areas and configurations included) in the codebook."""
    out: dict[str, str] = {}
    for area in codebook.areas:
        out[area.id] = guid("area", area.id)
        for conf in area.configurations:
            out[conf.id] = guid("configuration", conf.id)
            for code in conf.codes:
                out[code.id] = guid("code", code.id)
    return out


def _add_codes(codes: ET.Element, ns: str, codebook: Any, unlisted: Iterable[str] = ()) -> None:
    for area in codebook.areas:
        a = _sub(codes, ns, "Code", guid=guid("area", area.id), name=area.name, isCodable="false")
        _sub(a, ns, "Description", f"{area.definition}\n\nArea id: {area.id}")
        for conf in area.configurations:
            c = _sub(a, ns, "Code", guid=guid("configuration", conf.id), name=f"{conf.id} {conf.name}",
                     isCodable="false")
            _sub(c, ns, "Description", _configuration_description(conf))
            for code in conf.codes:
                k = _sub(c, ns, "Code", guid=guid("code", code.id), name=f"{code.id} {code.name}",
                         isCodable="true")
                _sub(k, ns, "Description", _code_description(code))
    unlisted = sorted(set(unlisted))
    if unlisted:
        holder = _sub(codes, ns, "Code", guid=guid("unlisted"), name=UNLISTED_CODES, isCodable="false")
        _sub(holder, ns, "Description",
             f"Codes coders applied that codebook version {codebook.version} does not define "
             f"(renamed or removed since).")
        for code_id in unlisted:
            _sub(holder, ns, "Code", guid=guid("code", code_id), name=code_id, isCodable="true")


def _origin(codebook: Any, origin: str) -> str:
    return f"{origin}; codebook {codebook.name} v{codebook.version} sha256:{codebook.version_hash[:12]}"


def codebook_xml(codebook: Any, *, origin: str = "postkit") -> bytes:
    """The REFI-QDA codebook (``.qdc``) document for ``codebook``, as UTF-8 bytes."""
    root = ET.Element("CodeBook", {"origin": _xml_text(_origin(codebook, origin))})
    _add_codes(_sub(root, CODEBOOK_NS, "Codes"), CODEBOOK_NS, codebook)
    return _serialise(root, CODEBOOK_NS)


def export_qdc(codebook: Any, path: str | Path, *, origin: str = "postkit") -> None:
    """Write the ``.qdc`` codebook file atomically."""
    write_atomic(path, codebook_xml(codebook, origin=origin))


# ---------------------------------------------------------------------------- project

def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return value is pd.NA or value is pd.NaT


def _lf_offset(text: str, position: int) -> int:
    """Where ``position`` in ``text`` lands once CRLF/CR become LF."""
    return position - text[:position].count("\r\n")


def _units(store: Any) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, tuple[tuple[str, str], int, int]],
                               list[str]]:
    """Sources keyed by (post_id, text) and each unit's (source key, start, end) in LF text."""
    sources: dict[tuple[str, str], dict[str, Any]] = {}
    units: dict[str, tuple[tuple[str, str], int, int]] = {}
    problems: list[str] = []
    for row in store.excerpts().to_dict("records"):
        unit_id = str(row["unit_id"])
        raw = "" if _missing(row.get("text")) else str(row["text"])
        post_id = unit_id if _missing(row.get("post_id")) else str(row["post_id"])
        start = None if _missing(row.get("start")) else int(row["start"])
        end = None if _missing(row.get("end")) else int(row["end"])
        if start is None or end is None:
            start, end = 0, len(raw)  # no offsets: the excerpt is the whole post
        elif not 0 <= start <= end <= len(raw):
            problems.append(f"unit {unit_id!r}: offsets {start}-{end} fall outside its text "
                            f"({len(raw)} characters)")
            continue
        text = _lf(raw)
        key = (post_id, text)
        if key not in sources:
            sources[key] = {"post_id": post_id, "forum": None if _missing(row.get("forum")) else str(row["forum"]),
                            "added_at": row.get("added_at")}
        units[unit_id] = (key, _lf_offset(raw, start), _lf_offset(raw, end))
    return sources, units, problems


def _source_ids(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
    """(guid, name) per source: the post id, disambiguated when one post has several texts."""
    by_post: dict[str, list[tuple[str, str]]] = {}
    for key in keys:
        by_post.setdefault(key[0], []).append(key)
    out = {}
    for post_id, group in by_post.items():
        if len(group) == 1:
            out[group[0]] = (guid("source", post_id), post_id)
            continue
        for key in group:
            digest = hashlib.sha256(key[1].encode("utf-8")).hexdigest()[:8]
            out[key] = (guid("source", post_id, digest), f"{post_id} ({digest})")
    return out


# Variables every source can carry: key in the per-post values -> (name, REFI type, description).
_VARIABLES = {
    "forum": ("Forum", "Text", "Forum the post was written in."),
    "date": ("Date", "Date", "Day the post was written (UTC), from the posts table's created_at."),
}
_VALUE_ELEMENT = {"Text": "TextValue", "Date": "DateValue"}
DEFAULT_EXPORTER = "postkit"


def read_post_variables(posts: str | Path | pd.DataFrame, post_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """Forum and UTC day (``YYYY-MM-DD``) of each wanted post, from a posts table.

    The coding store keeps neither post dates nor always the forum, so the export reads them from
    the table the posts came from (the sample or tagged file: ``post_id``, ``created_at``, optional
    ``forum``).  Fails closed: a date that cannot be read, or one post id with two different
    dates or forums, stops the export (naming row and column) instead of exporting a wrong value.
    Posts absent from the table simply get no values.
    """
    wanted = set(post_ids)
    where = "the posts table" if isinstance(posts, pd.DataFrame) else Path(posts)
    if isinstance(posts, pd.DataFrame):
        missing = [c for c in ("post_id", "created_at") if c not in posts.columns]
        if missing:
            raise PostkitError(f"missing column(s) {', '.join(missing)}", path=None,
                               fix="pass a table with post_id and created_at")
        frames = [posts.reset_index(drop=True)]
    else:
        reader = open_table(posts, required=("post_id", "created_at"))
        frames = reader.batches()
    out: dict[str, dict[str, str]] = {}
    first_row: dict[str, int] = {}
    for frame in frames:
        has_forum = "forum" in frame.columns
        for position, record in enumerate(frame.to_dict("records")):
            row = int(frame.index[position]) + 1
            if _missing(record.get("post_id")):
                continue
            post_id = str(record["post_id"]).strip()
            if post_id not in wanted:
                continue
            values: dict[str, str] = {}
            raw = record.get("created_at")
            if not _missing(raw) and str(raw).strip():
                stamp = _timestamp(raw)
                if stamp is None:
                    raise PostkitError("created_at is not a date and time", path=where, row=row,
                                       column="created_at", fix="use ISO 8601, e.g. 2024-05-01T10:00:00Z")
                values["date"] = stamp[:10]
            if has_forum and not _missing(record.get("forum")) and str(record["forum"]).strip():
                values["forum"] = str(record["forum"]).strip()
            if post_id in out:
                if out[post_id] != values:
                    raise PostkitError(f"the same post_id as row {first_row[post_id]} has a different "
                                       f"created_at or forum", path=where, row=row, column="post_id",
                                       fix="pass the posts table the coded sample was drawn from")
                continue
            out[post_id] = values
            first_row[post_id] = row
    return out


def _time_or(value: Any, fallback: str) -> str:
    return _timestamp(value) or fallback


def _build_project(store: Any, codebook: Any, name: str, origin: str, created_at: datetime | None,
                   exported_by: str | None = None,
                   posts: str | Path | pd.DataFrame | None = None) -> tuple[bytes, dict[str, bytes], dict[str, int]]:
    ns = PROJECT_NS
    sources, units, problems = _units(store)
    codings = [row for row in store.codings().to_dict("records")]
    for row in codings:
        if str(row["unit_id"]) not in units and not any(
                p.startswith(f"unit {str(row['unit_id'])!r}") for p in problems):
            if bool(row["applied"]) or (not _missing(row.get("memo")) and str(row["memo"]).strip()):
                problems.append(f"unit {row['unit_id']!r}: coded by {row['coder']} but not among the excerpts")
    if problems:
        raise PostkitError(f"{len(problems)} excerpt(s) cannot be exported", details=problems,
                           fix="re-load the tagged units (postkit coding load) so texts and offsets match")
    exporter = DEFAULT_EXPORTER if exported_by is None else str(exported_by).strip()
    if not exporter:
        raise PostkitError("the exporter's name is empty", fix="pass the data steward's or coder's name")

    known = code_guids(codebook)
    code_names = {code.id: f"{code.id} {code.name}" for _a, _c, code in codebook.codes()}
    confirmed = [row for row in codings if bool(row["applied"])]
    coders = sorted({str(row["coder"]) for row in codings})
    # Coders first (QualCoder makes the first user its current coder), then whoever exported.
    users = {person: guid("user", person) for person in [*coders, exporter]}
    project_time = _timestamp(created_at or datetime.now(UTC)) or ""

    root = ET.Element("Project", {
        "name": _xml_text(name), "origin": _xml_text(_origin(codebook, origin)),
        "creatingUserGUID": users[exporter], "creationDateTime": project_time,
    })
    users_el = _sub(root, ns, "Users")
    for person in users:
        _sub(users_el, ns, "User", guid=users[person], name=person)
    unlisted = {str(row["code_id"]) for row in confirmed if str(row["code_id"]) not in known}
    _add_codes(_sub(_sub(root, ns, "CodeBook"), ns, "Codes"), ns, codebook, unlisted)

    # Forum (from the store, else the posts table) and date (posts table) per post.
    post_values: dict[str, dict[str, str]] = {}
    if posts is not None:
        post_values = read_post_variables(posts, {info["post_id"] for info in sources.values()})
    source_values: dict[tuple[str, str], dict[str, str]] = {}
    for key, info in sources.items():
        from_table = post_values.get(info["post_id"], {})
        values = dict(from_table)
        if info["forum"]:
            if "forum" in from_table and from_table["forum"] != info["forum"]:
                raise PostkitError("a post's forum in the posts table differs from the coding store's",
                                   path=None if isinstance(posts, pd.DataFrame) else posts, column="forum",
                                   fix="pass the posts table the coded sample was drawn from")
            values["forum"] = info["forum"]
        source_values[key] = values
    variable_guids = {key: guid("variable", key) for key in _VARIABLES}
    used = [key for key in _VARIABLES if any(key in v for v in source_values.values())]
    if used:
        variables_el = _sub(root, ns, "Variables")
        for key in used:
            label, kind, description = _VARIABLES[key]
            variable = _sub(variables_el, ns, "Variable", guid=variable_guids[key], name=label, typeOfVariable=kind)
            _sub(variable, ns, "Description", description)

    # Confirmed codings per source, and rejected-code memos per (source, span, coder).
    by_source: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in confirmed:
        by_source.setdefault(units[str(row["unit_id"])][0], []).append(row)
    rejected: dict[tuple[str, str], dict[tuple[int, int, str], list[dict[str, Any]]]] = {}
    for row in codings:
        if not bool(row["applied"]) and not _missing(row.get("memo")) and str(row["memo"]).strip():
            key, start, end = units[str(row["unit_id"])]
            rejected.setdefault(key, {}).setdefault((start, end, str(row["coder"])), []).append(row)

    ids = _source_ids(sources)
    files: dict[str, bytes] = {}
    notes: list[ET.Element] = []
    counts = {"sources": 0, "selections": 0, "codings": 0, "users": len(users), "coders": len(coders), "notes": 0,
              "unlisted_codes": len(unlisted), "memos": 0, "rejected_memos": 0,
              "sources_with_forum": 0, "sources_with_date": 0}

    def note(note_guid: str, title: str, author: str, when: str, text: str) -> ET.Element:
        # creationDateTime always set: QualCoder's importer fails on a Note without one.
        element = ET.Element("Note", {"guid": note_guid, "name": _xml_text(title), "creatingUser": users[author],
                                      "creationDateTime": when, "modifyingUser": users[author],
                                      "modifiedDateTime": when})
        _sub(element, ns, "PlainTextContent", text)
        notes.append(element)
        counts["notes"] += 1
        return element

    sources_el = ET.Element("Sources")
    for key in sorted(sources, key=lambda k: ids[k][1]):
        source_guid, source_name = ids[key]
        info = sources[key]
        attrs = {"guid": source_guid, "name": source_name, "plainTextPath": f"internal://{source_guid}.txt",
                 "creatingUser": users[exporter],
                 "creationDateTime": _time_or(info["added_at"], project_time)}
        src = _sub(sources_el, ns, "TextSource", **attrs)
        if info["forum"]:
            _sub(src, ns, "Description", f"Forum: {info['forum']}")
        files[f"{source_guid}.txt"] = key[1].encode("utf-8")
        counts["sources"] += 1
        rows = sorted(by_source.get(key, []), key=lambda r: (units[str(r["unit_id"])][1:], str(r["unit_id"]),
                                                                  str(r["coder"]), str(r["code_id"])))
        for row in rows:
            unit_id, coder, code_id = str(row["unit_id"]), str(row["coder"]), str(row["code_id"])
            _key, start, end = units[unit_id]
            when = _time_or(row["decided_at"], project_time)
            memo = None if _missing(row.get("memo")) else str(row["memo"]).strip()
            selection = _sub(src, ns, "PlainTextSelection", guid=guid("selection", unit_id, coder, code_id),
                             name=unit_id, startPosition=str(start), endPosition=str(end),
                             creatingUser=users[coder], creationDateTime=when)
            if memo:
                _sub(selection, ns, "Description", memo)  # where QualCoder and MAXQDA read coding memos
            counts["selections"] += 1
            coding = _sub(selection, ns, "Coding", guid=guid("coding", unit_id, coder, code_id),
                          creatingUser=users[coder], creationDateTime=when)
            _sub(coding, ns, "CodeRef", targetGUID=known.get(code_id) or guid("code", code_id))
            counts["codings"] += 1
            if memo:
                note_guid = guid("note", unit_id, coder, code_id)
                _sub(coding, ns, "NoteRef", targetGUID=note_guid)
                note(note_guid, f"Memo: {coder} on {unit_id} / {code_id}", coder, when, memo)
                counts["memos"] += 1
        for (start, end, coder), group in sorted(rejected.get(key, {}).items()):
            group = sorted(group, key=lambda r: (str(r["unit_id"]), str(r["code_id"])))
            unit_ids = sorted({str(r["unit_id"]) for r in group})
            note_guid = guid("note-rejected", source_guid, str(start), str(end), coder)
            _sub(src, ns, "NoteRef", targetGUID=note_guid)
            text = "\n\n".join(
                f"Rejected {code_names.get(str(r['code_id']), str(r['code_id']))}: {str(r['memo']).strip()}"
                for r in group)
            when = max(_time_or(r["decided_at"], project_time) for r in group)
            codes_text = ", ".join(str(r["code_id"]) for r in group)
            element = note(note_guid, f"Memo (rejected {codes_text}): {coder} on {', '.join(unit_ids)}",
                           coder, when, text)
            # The span the memo is about: QualCoder imports a source Note only when it holds one.
            _sub(element, ns, "PlainTextSelection",
                 guid=guid("note-selection", source_guid, str(start), str(end), coder),
                 name=", ".join(unit_ids), startPosition=str(start), endPosition=str(end),
                 creatingUser=users[coder], creationDateTime=when)
            counts["rejected_memos"] += len(group)
        for variable in used:
            value = source_values[key].get(variable)
            if value is None:
                continue
            holder = _sub(src, ns, "VariableValue")
            _sub(holder, ns, "VariableRef", targetGUID=variable_guids[variable])
            _sub(holder, ns, _VALUE_ELEMENT[_VARIABLES[variable][1]], value)
            counts[f"sources_with_{variable}"] += 1
    if counts["sources"]:
        root.append(sources_el)
    if notes:
        _sub(root, ns, "Notes").extend(notes)
    return _serialise(root, ns), files, counts


def project_xml(store: Any, codebook: Any, *, name: str = "postkit study", origin: str = "postkit",
                created_at: datetime | None = None, exported_by: str | None = None,
                posts: str | Path | pd.DataFrame | None = None) -> tuple[bytes, dict[str, bytes]]:
    """``project.qde`` and the source texts (file name ``<guid>.txt`` → UTF-8 bytes)."""
    qde, files, _counts = _build_project(store, codebook, name, origin, created_at, exported_by, posts)
    return qde, files


def export_qdpx(store: Any, codebook: Any, path: str | Path, *, name: str = "postkit study",
                origin: str = "postkit", created_at: datetime | None = None, exported_by: str | None = None,
                posts: str | Path | pd.DataFrame | None = None) -> dict[str, int]:
    """Write a ``.qdpx`` (zip: ``project.qde`` + ``sources/<guid>.txt``) atomically; return counts.

    ``exported_by`` names the person handing the project off (data steward or coder; default
    "postkit"): a ``<User>`` recorded as every source's ``creatingUser``.  ``posts`` is the posts
    table (path or DataFrame with ``post_id``, ``created_at``, optional ``forum``) that supplies
    the ``Date`` variable; see :func:`read_post_variables`.

    Counts: sources, selections, codings (confirmed only), users (coders + exporter), coders,
    notes, memos (on codings),
    rejected_memos, sources_with_forum, sources_with_date, unlisted_codes (codes coders applied
    that the codebook no longer defines; exported under a "Codes not in this codebook" group so
    no coding is lost).
    """
    qde, files, counts = _build_project(store, codebook, name, origin, created_at, exported_by, posts)
    buffer = io.BytesIO()
    stamp = datetime.now().timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in [("project.qde", qde)] + [(f"sources/{n}", b) for n, b in sorted(files.items())]:
            info = zipfile.ZipInfo(member, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    write_atomic(path, buffer.getvalue())
    return counts


# ---------------------------------------------------------------------------- reading back

def read_qdpx(path: str | Path) -> dict[str, Any]:
    """Re-read a ``.qdpx`` (for round-trip checks): codes, sources, codings, users, notes, variables.

    * ``codes``: ``{guid, name, parent, codable, description}`` (``parent`` is a GUID or None)
    * ``sources``: ``{guid, name, text, notes, user, variables}`` (``notes``: GUIDs of source-level
      notes; ``user``: the creating user's name; ``variables``: variable name → value)
    * ``codings``: ``{guid, source, source_guid, selection, start, end, text, code, user, notes, memo}``
      (``code`` a GUID, ``user`` a name, ``text`` the code-point slice of the source, ``memo`` the
      selection's Description or None)
    * ``users``: ``{guid, name}``; ``notes``: ``{guid, name, text, user, start, end}`` (``start``/``end``
      of the selection a note holds, or None); ``variables``: ``{guid, name, type}``
    """
    q = f"{{{PROJECT_NS}}}"
    with zipfile.ZipFile(path) as archive:
        root = ET.fromstring(archive.read("project.qde"))
        texts = {n: archive.read(n).decode("utf-8") for n in archive.namelist() if n.startswith("sources/")}
    users = [{"guid": u.get("guid"), "name": u.get("name")} for u in root.iter(f"{q}User")]
    user_names = {u["guid"]: u["name"] for u in users}
    variables = [{"guid": v.get("guid"), "name": v.get("name"), "type": v.get("typeOfVariable")}
                 for v in root.iterfind(f"{q}Variables/{q}Variable")]
    variable_names = {v["guid"]: v["name"] for v in variables}
    codes: list[dict[str, Any]] = []

    def walk(element: ET.Element, parent: str | None) -> None:
        for code in element.findall(f"{q}Code"):
            codes.append({"guid": code.get("guid"), "name": code.get("name"), "parent": parent,
                          "codable": code.get("isCodable") == "true",
                          "description": code.findtext(f"{q}Description")})
            walk(code, code.get("guid"))

    codes_el = root.find(f"{q}CodeBook/{q}Codes")
    if codes_el is not None:
        walk(codes_el, None)
    sources, codings = [], []
    for src in root.iterfind(f"{q}Sources/{q}TextSource"):
        plain = src.get("plainTextPath") or ""
        member = "sources/" + plain.removeprefix("internal://") if plain.startswith("internal://") else plain
        text = texts.get(member)
        if text is None:
            text = src.findtext(f"{q}PlainTextContent") or ""
        values = {}
        for value in src.findall(f"{q}VariableValue"):
            ref = value.find(f"{q}VariableRef")
            content = [child.text for child in value if child.tag != f"{q}VariableRef"]
            values[variable_names.get(ref.get("targetGUID"))] = content[0] if content else None
        sources.append({"guid": src.get("guid"), "name": src.get("name"), "text": text,
                        "notes": [ref.get("targetGUID") for ref in src.findall(f"{q}NoteRef")],
                        "user": user_names.get(src.get("creatingUser")), "variables": values})
        for sel in src.findall(f"{q}PlainTextSelection"):
            start, end = int(sel.get("startPosition")), int(sel.get("endPosition"))
            for coding in sel.findall(f"{q}Coding"):
                codings.append({
                    "guid": coding.get("guid"), "source": src.get("name"), "source_guid": src.get("guid"),
                    "selection": sel.get("guid"), "start": start, "end": end, "text": text[start:end],
                    "code": coding.find(f"{q}CodeRef").get("targetGUID"),
                    "user": user_names.get(coding.get("creatingUser") or sel.get("creatingUser")),
                    "notes": [ref.get("targetGUID") for ref in coding.findall(f"{q}NoteRef")],
                    "memo": sel.findtext(f"{q}Description"),
                })
    notes = []
    for n in root.iterfind(f"{q}Notes/{q}Note"):
        sel = n.find(f"{q}PlainTextSelection")
        notes.append({"guid": n.get("guid"), "name": n.get("name"), "text": n.findtext(f"{q}PlainTextContent"),
                      "user": user_names.get(n.get("creatingUser")),
                      "start": None if sel is None else int(sel.get("startPosition")),
                      "end": None if sel is None else int(sel.get("endPosition"))})
    return {"project": {"name": root.get("name"), "origin": root.get("origin"),
                        "user": user_names.get(root.get("creatingUserGUID"))},
            "codes": codes, "sources": sources, "codings": codings, "users": users, "notes": notes,
            "variables": variables}
