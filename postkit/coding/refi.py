"""REFI-QDA export: the CMO codebook (``.qdc``) and coded excerpts (``.qdpx``) for QDA tools.

NVivo, ATLAS.ti, MAXQDA and QualCoder all read the REFI-QDA exchange standard (QDA-XML 1.0,
namespaces ``urn:QDA-XML:codebook:1.0`` and ``urn:QDA-XML:project:1.0``):

* ``.qdc`` — a codebook alone: the area → configuration → code hierarchy as nested ``<Code>``
  elements (areas and configurations are grouping codes, ``isCodable="false"``), each with a
  ``<Description>`` holding its definition, include/exclude rules, kind and polarity.
* ``.qdpx`` — a zip with ``project.qde`` at its root and a lowercase ``sources/`` folder holding
  one UTF-8 ``<guid>.txt`` per post.  The project lists the coders as ``<User>``\\ s, embeds the
  codebook, and gives each post a ``<TextSource plainTextPath="internal://<guid>.txt">`` with one
  ``<PlainTextSelection>`` per (excerpt, coder) carrying that coder's **confirmed** codings only
  (latest decision accept/add; rejected codes and unconfirmed suggestions are never exported).
  Memos of exported codings become ``<Note>``\\ s linked from their ``<Coding>`` by ``<NoteRef>``;
  memos on *rejected* codes (why a coder said no: often the most useful memo for the codebook)
  become Notes linked from the post's ``<TextSource>``, named "Memo (rejected …)".

Positions are Unicode code point offsets into the source text, end exclusive (a Python
``text[start:end]``).  Excerpts store the whole post text plus the unit's offsets in it (see
:mod:`postkit.coding.load`); an excerpt without offsets covers its whole text.  Line endings are
normalised to LF (offsets are adjusted to match) and characters XML 1.0 forbids are replaced by
U+FFFD in the XML (the ``.txt`` sources keep them, offsets unchanged).

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
from postkit.io import write_atomic

__all__ = [
    "CODEBOOK_NS",
    "PROJECT_NS",
    "codebook_xml",
    "export_qdc",
    "export_qdpx",
    "project_xml",
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


def _build_project(store: Any, codebook: Any, name: str, origin: str,
                   created_at: datetime | None) -> tuple[bytes, dict[str, bytes], dict[str, int]]:
    ns = PROJECT_NS
    sources, units, problems = _units(store)
    codings = [row for row in store.codings().to_dict("records")]
    for row in codings:
        if bool(row["applied"]) and str(row["unit_id"]) not in units and not any(
                p.startswith(f"unit {str(row['unit_id'])!r}") for p in problems):
            problems.append(f"unit {row['unit_id']!r}: coded by {row['coder']} but not among the excerpts")
    if problems:
        raise PostkitError(f"{len(problems)} excerpt(s) cannot be exported", details=problems,
                           fix="re-load the tagged units (postkit coding load) so texts and offsets match")

    known = code_guids(codebook)
    confirmed = [row for row in codings if bool(row["applied"])]
    coders = sorted({str(row["coder"]) for row in codings})
    users = {coder: guid("user", coder) for coder in coders}

    root = ET.Element("Project", {
        "name": _xml_text(name), "origin": _xml_text(_origin(codebook, origin)),
        "creationDateTime": _timestamp(created_at or datetime.now(UTC)) or "",
    })
    if users:
        users_el = _sub(root, ns, "Users")
        for coder in coders:
            _sub(users_el, ns, "User", guid=users[coder], name=coder)
    unlisted = {str(row["code_id"]) for row in confirmed if str(row["code_id"]) not in known}
    _add_codes(_sub(_sub(root, ns, "CodeBook"), ns, "Codes"), ns, codebook, unlisted)

    # Group confirmed codings: source -> unit -> coder -> [coding rows]
    grouped: dict[tuple[str, str], dict[str, dict[str, list[dict[str, Any]]]]] = {}
    for row in sorted(confirmed, key=lambda r: (str(r["unit_id"]), str(r["coder"]), str(r["code_id"]))):
        key = units[str(row["unit_id"])][0]
        grouped.setdefault(key, {}).setdefault(str(row["unit_id"]), {}).setdefault(str(row["coder"]), []).append(row)

    # Memos on rejected/removed codes: source -> [rows], kept as source-level notes.
    rejected_memos: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in sorted(codings, key=lambda r: (str(r["unit_id"]), str(r["coder"]), str(r["code_id"]))):
        if not bool(row["applied"]) and not _missing(row.get("memo")) and str(row["memo"]).strip():
            rejected_memos.setdefault(units[str(row["unit_id"])][0], []).append(row)

    ids = _source_ids(sources)
    files: dict[str, bytes] = {}
    notes: list[ET.Element] = []
    counts = {"sources": 0, "selections": 0, "codings": 0, "users": len(users), "notes": 0,
              "unlisted_codes": len(unlisted)}
    sources_el = ET.Element("Sources")
    for key in sorted(sources, key=lambda k: ids[k][1]):
        source_guid, source_name = ids[key]
        info = sources[key]
        attrs = {"guid": source_guid, "name": source_name, "plainTextPath": f"internal://{source_guid}.txt"}
        added = _timestamp(info["added_at"])
        if added:
            attrs["creationDateTime"] = added
        src = _sub(sources_el, ns, "TextSource", **attrs)
        if info["forum"]:
            _sub(src, ns, "Description", f"Forum: {info['forum']}")
        files[f"{source_guid}.txt"] = key[1].encode("utf-8")
        counts["sources"] += 1
        for unit_id, by_coder in sorted(grouped.get(key, {}).items(), key=lambda item: (units[item[0]][1:], item[0])):
            _key, start, end = units[unit_id]
            for coder, rows in sorted(by_coder.items()):
                times = [t for t in (_timestamp(r["decided_at"]) for r in rows) if t]
                sel_attrs = {"guid": guid("selection", unit_id, coder), "name": unit_id,
                             "startPosition": str(start), "endPosition": str(end), "creatingUser": users[coder]}
                if times:
                    sel_attrs["creationDateTime"] = min(times)
                selection = _sub(src, ns, "PlainTextSelection", **sel_attrs)
                counts["selections"] += 1
                for row in rows:
                    code_id = str(row["code_id"])
                    when = _timestamp(row["decided_at"])
                    coding_attrs = {"guid": guid("coding", unit_id, coder, code_id), "creatingUser": users[coder]}
                    if when:
                        coding_attrs["creationDateTime"] = when
                    coding = _sub(selection, ns, "Coding", **coding_attrs)
                    _sub(coding, ns, "CodeRef", targetGUID=known.get(code_id) or guid("code", code_id))
                    counts["codings"] += 1
                    memo = None if _missing(row.get("memo")) else str(row["memo"]).strip()
                    if memo:
                        note_guid = guid("note", unit_id, coder, code_id)
                        _sub(coding, ns, "NoteRef", targetGUID=note_guid)
                        note = ET.Element("Note", {
                            "guid": note_guid, "name": _xml_text(f"Memo: {coder} on {unit_id} / {code_id}"),
                            "creatingUser": users[coder], **({"creationDateTime": when} if when else {})})
                        _sub(note, ns, "PlainTextContent", memo)
                        notes.append(note)
                        counts["notes"] += 1
        for row in rejected_memos.get(key, []):
            unit_id, coder, code_id = str(row["unit_id"]), str(row["coder"]), str(row["code_id"])
            when = _timestamp(row["decided_at"])
            note_guid = guid("note-rejected", unit_id, coder, code_id)
            _sub(src, ns, "NoteRef", targetGUID=note_guid)
            note = ET.Element("Note", {
                "guid": note_guid, "name": _xml_text(f"Memo (rejected {code_id}): {coder} on {unit_id}"),
                "creatingUser": users[coder], **({"creationDateTime": when} if when else {})})
            _sub(note, ns, "PlainTextContent", str(row["memo"]).strip())
            notes.append(note)
            counts["notes"] += 1
    if counts["sources"]:
        root.append(sources_el)
    if notes:
        _sub(root, ns, "Notes").extend(notes)
    return _serialise(root, ns), files, counts


def project_xml(store: Any, codebook: Any, *, name: str = "postkit study", origin: str = "postkit",
                created_at: datetime | None = None) -> tuple[bytes, dict[str, bytes]]:
    """``project.qde`` and the source texts (file name ``<guid>.txt`` → UTF-8 bytes)."""
    qde, files, _counts = _build_project(store, codebook, name, origin, created_at)
    return qde, files


def export_qdpx(store: Any, codebook: Any, path: str | Path, *, name: str = "postkit study",
                origin: str = "postkit", created_at: datetime | None = None) -> dict[str, int]:
    """Write a ``.qdpx`` (zip: ``project.qde`` + ``sources/<guid>.txt``) atomically; return counts.

    Counts: sources, selections, codings (confirmed only), users, notes, unlisted_codes
    (codes coders applied that the codebook no longer defines; exported under a
    "Codes not in this codebook" group so no coding is lost).
    """
    qde, files, counts = _build_project(store, codebook, name, origin, created_at)
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
    """Re-read a ``.qdpx`` (for round-trip checks): codes, sources, codings, users and notes.

    * ``codes``: ``{guid, name, parent, codable, description}`` (``parent`` is a GUID or None)
    * ``sources``: ``{guid, name, text, notes}`` (``notes``: GUIDs of source-level notes)
    * ``codings``: ``{guid, source, source_guid, selection, start, end, text, code, user, notes}``
      (``code`` a GUID, ``user`` a name, ``text`` the code-point slice of the source)
    * ``users``: ``{guid, name}``; ``notes``: ``{guid, name, text, user}``
    """
    q = f"{{{PROJECT_NS}}}"
    with zipfile.ZipFile(path) as archive:
        root = ET.fromstring(archive.read("project.qde"))
        texts = {n: archive.read(n).decode("utf-8") for n in archive.namelist() if n.startswith("sources/")}
    users = [{"guid": u.get("guid"), "name": u.get("name")} for u in root.iter(f"{q}User")]
    user_names = {u["guid"]: u["name"] for u in users}
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
    for src in root.iter(f"{q}TextSource"):
        plain = src.get("plainTextPath") or ""
        member = "sources/" + plain.removeprefix("internal://") if plain.startswith("internal://") else plain
        text = texts.get(member)
        if text is None:
            text = src.findtext(f"{q}PlainTextContent") or ""
        sources.append({"guid": src.get("guid"), "name": src.get("name"), "text": text,
                        "notes": [ref.get("targetGUID") for ref in src.findall(f"{q}NoteRef")]})
        for sel in src.findall(f"{q}PlainTextSelection"):
            start, end = int(sel.get("startPosition")), int(sel.get("endPosition"))
            for coding in sel.findall(f"{q}Coding"):
                codings.append({
                    "guid": coding.get("guid"), "source": src.get("name"), "source_guid": src.get("guid"),
                    "selection": sel.get("guid"), "start": start, "end": end, "text": text[start:end],
                    "code": coding.find(f"{q}CodeRef").get("targetGUID"),
                    "user": user_names.get(coding.get("creatingUser") or sel.get("creatingUser")),
                    "notes": [ref.get("targetGUID") for ref in coding.findall(f"{q}NoteRef")],
                })
    notes = [{"guid": n.get("guid"), "name": n.get("name"), "text": n.findtext(f"{q}PlainTextContent"),
              "user": user_names.get(n.get("creatingUser"))} for n in root.iterfind(f"{q}Notes/{q}Note")]
    return {"project": {"name": root.get("name"), "origin": root.get("origin")},
            "codes": codes, "sources": sources, "codings": codings, "users": users, "notes": notes}
