"""What QualCoder's REFI-QDA project importer would make of a ``.qdpx``: a test re-implementation.

QualCoder (https://github.com/ccbogel/QualCoder) imports REFI-QDA projects in
``src/qualcoder/refi.py``, class ``RefiImport`` (read at commit c3204641e0a9, August 2026).
This module re-implements the *reading logic* of the parts that matter for postkit's export,
so a test can check that codes, sources, codings (with positions), memos and variables survive
the import.  It was written from reading that code, not copied from it (QualCoder is LGPL);
the Qt dialogs, media/PDF sources, file copies into the project folder and AI indexing are left
out.  Functions mirrored (QualCoder name → here):

* ``import_project`` → :func:`import_qdpx` (order of passes; namespace version taken from the
  tags of the root's children; ``project.qde`` or any other ``*.qde``; ``sources``/``Sources``)
* ``parse_project_tag`` (``origin`` must be present: QualCoder calls ``.upper()`` on it)
* ``parse_users``, ``sub_codes`` (categories = ``isCodable="false"``; a duplicate name reuses
  the existing row, and a duplicate *code* name is then missing from the guid → code map),
  ``parse_variables``, ``parse_links``, ``parse_notes_for_plaintextselection_link``
* ``parse_cases_for_file_variables`` / ``parse_case_for_file_variables``,
  ``fill_file_attribute_values`` (unnamed Cases with one SourceRef = file variables)
* ``parse_sources`` / ``name_creating_user_create_date_source_path_helper`` /
  ``load_text_source`` (UTF-8 read in text mode, i.e. universal newlines; the ``\\r\\n`` check on
  the first line; positions are Python ``str`` indices = code points)
* ``load_codings_for_text`` (the selection's ``Description`` is the memo of every ``Coding`` in
  it; ``CodeRef`` is taken as the coding's *first child*; a selection without a ``Coding`` is an
  annotation)
* ``parse_variable_value`` (VariableValue inside a source → file attribute; value elements
  matched in namespace 1.0 only, text stripped)
* ``parse_notes`` / ``insert_annotation`` (a Note referenced by a source's ``NoteRef`` becomes an
  annotation only if it holds ``PlainTextContent`` and a ``PlainTextSelection``; otherwise it is
  silently dropped; a Note without ``creationDateTime`` or ``modifiedDateTime`` makes QualCoder
  fail; Notes with a ``plainTextPath`` and a name are journals)

Rows go into an in-memory SQLite database with QualCoder's own tables and UNIQUE constraints
(from ``src/qualcoder/__main__.py``), because those constraints are where an import loses or
fails: integrity errors QualCoder catches are recorded in ``messages``; those it does not catch
(annotation, attribute, journal inserts) propagate, as the real import would stop there.
Named Cases and Sets are not mirrored: an export containing them raises ``NotImplementedError``
so this helper is extended before such an export is trusted.
"""

from __future__ import annotations

import io
import sqlite3
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

# QualCoder's tables (subset of columns used by the importer), with their UNIQUE constraints.
_SCHEMA = """
CREATE TABLE source (id integer primary key, name text, fulltext text, mediapath text, memo text,
                     owner text, date text, unique(name));
CREATE TABLE code_cat (catid integer primary key, name text, owner text, date text, memo text,
                       supercatid integer, unique(name));
CREATE TABLE code_name (cid integer primary key, name text, memo text, catid integer, owner text,
                        date text, color text, supercid integer, unique(name));
CREATE TABLE code_text (ctid integer primary key, cid integer, fid integer, seltext text, pos0 integer,
                        pos1 integer, owner text, date text, memo text, unique(cid,fid,pos0,pos1,owner));
CREATE TABLE annotation (anid integer primary key, fid integer, pos0 integer, pos1 integer, memo text,
                         owner text, date text, unique(fid,pos0,pos1,owner));
CREATE TABLE attribute_type (name text primary key, date text, owner text, memo text, caseOrFile text,
                             valuetype text);
CREATE TABLE attribute (attrid integer primary key, name text, attr_type text, value text, id integer,
                        date text, owner text, unique(name,attr_type,id));
CREATE TABLE journal (jid integer primary key, name text, jentry text, date text, owner text, unique(name));
CREATE TABLE project (memo text);
INSERT INTO project VALUES ('');
"""

_NOW = "2000-01-01 00:00:00"  # QualCoder uses the import time; fixed here so results compare
_VALUE_TAGS_1_0 = {f"{{urn:QDA-XML:project:1.0}}{kind}Value"
                   for kind in ("Integer", "Text", "Date", "Float", "DateTime", "Boolean")}


@dataclass
class QualCoderProject:
    """The imported project: the database plus what the importer reported or skipped."""

    conn: sqlite3.Connection
    software_name: str
    users: list[dict[str, str]]
    messages: list[str] = field(default_factory=list)
    dropped_notes: list[str] = field(default_factory=list)

    def rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()


def _qc_date(value: str) -> str:
    return value.replace("T", " ").replace("Z", "")


class _Importer:
    def __init__(self, archive: zipfile.ZipFile, codername: str) -> None:
        self.archive = archive
        self.codername = codername
        self.ns = "1.0"
        self.users: list[dict[str, str]] = []
        self.codes: list[dict[str, Any]] = []
        self.variables: list[dict[str, Any]] = []
        self.links: list[dict[str, Any]] = []
        self.annotations: list[dict[str, str]] = []
        self.sources: list[dict[str, Any]] = []
        self.file_vars: list[dict[str, Any]] = []
        self.prefix = 0
        self.messages: list[str] = []
        self.dropped: list[str] = []
        self.conn = sqlite3.connect(":memory:")
        self.conn.row_factory = sqlite3.Row
        self.conn.executescript(_SCHEMA)
        top = {PurePosixPath(n).parts[0] for n in archive.namelist() if n}
        self.sources_dir = "sources" if "sources" in top else "Sources"
        self.software_name = ""

    def tag(self, name: str) -> str:
        return f"{{urn:QDA-XML:project:{self.ns}}}{name}"

    def read_member(self, internal_path: str) -> bytes:
        # QualCoder: folder + "/sources" + path.split('internal:/')[1]  (which starts with "/")
        return self.archive.read(self.sources_dir + internal_path.split("internal:/")[1])

    def user_name(self, element: ET.Element) -> str:
        wanted = element.get("creatingUser") or element.get("modifyingUser")
        name = "default"
        for user in self.users:
            if user["guid"] == wanted:
                name = user["name"]
        return name

    # -- project
    def run(self, root: ET.Element) -> None:
        for child in root:
            if "{urn:QDA-XML:project:" in child.tag:
                self.ns = child.tag.split("{urn:QDA-XML:project:")[1].split("}")[0]
        self.software_name = root.get("origin")
        if self.software_name is None:
            raise AttributeError("QualCoder parse_project_tag: Project has no origin (None.upper())")
        children = list(root)
        for c in children:
            if c.tag == self.tag("Users"):
                for el in c:
                    self.users.append({"name": el.get("name"), "guid": el.get("guid")})
            if c.tag == self.tag("CodeBook"):
                for code in list(c)[0]:
                    self.sub_codes(code, None, None)
            if c.tag == self.tag("Variables"):
                self.parse_variables(c)
            if c.tag == self.tag("Description"):
                self.conn.execute("UPDATE project SET memo = ?", (c.text or "",))
            if c.tag == self.tag("Links"):
                for el in c:
                    self.links.append({"GUID": el.get("guid"), "originGUID": el.get("originGUID"),
                                       "targetGUID": el.get("targetGUID")})
            if c.tag in (self.tag("Sets"),):
                raise NotImplementedError("Sets are not mirrored from QualCoder's importer")
        for c in children:
            if c.tag == self.tag("Notes"):
                self.note_texts_for_links(c)
        for c in children:
            if c.tag == self.tag("Cases"):
                for case in c:
                    if case.get("name") is not None:
                        raise NotImplementedError("named Cases are not mirrored from QualCoder's importer")
                    self.case_file_variables(case)
        for c in children:
            if c.tag == self.tag("Sources"):
                for el in c:
                    if el.tag != self.tag("TextSource"):
                        raise NotImplementedError(f"{el.tag} is not mirrored from QualCoder's importer")
                    self.load_text_source(el)
        for c in children:
            if c.tag == self.tag("Notes"):
                self.parse_notes(c)
        for source in self.sources:
            for var in self.file_vars:
                if var["file_guid"] == source["guid"]:
                    self.conn.execute("INSERT INTO attribute (name, attr_type, value, id, date, owner)"
                                      " VALUES (?, 'file', ?, ?, ?, ?)",
                                      (var.get("name"), var["value"], source["id"], _NOW, self.codername))

    # -- codes
    def sub_codes(self, element: ET.Element, cat_id: int | None, super_cid: int | None) -> None:
        description = ""
        for el in element:
            if el.tag == self.tag("Description"):
                description = el.text
        children = [el for el in element if el.tag == self.tag("Code")]
        name = element.get("name")
        if element.get("isCodable") == "false":
            catid = None
            if name is not None:
                try:
                    catid = self.conn.execute(
                        "INSERT INTO code_cat (name, memo, owner, date, supercatid) VALUES (?, ?, '', ?, ?)",
                        (name, description, _NOW, cat_id)).lastrowid
                except sqlite3.IntegrityError:
                    row = self.conn.execute("SELECT catid FROM code_cat WHERE name = ?", (name,)).fetchone()
                    catid = None if row is None else row[0]
            for child in children:
                self.sub_codes(child, catid, None)
            return
        cid = None
        if name is not None:
            try:
                cid = self.conn.execute(
                    "INSERT INTO code_name (name, memo, owner, date, catid, color, supercid)"
                    " VALUES (?, ?, '', ?, ?, ?, ?)",
                    (name, description, _NOW, None if super_cid is not None else cat_id,
                     element.get("color"), super_cid)).lastrowid
                self.codes.append({"guid": element.get("guid"), "cid": cid})
            except sqlite3.IntegrityError:
                row = self.conn.execute("SELECT cid FROM code_name WHERE name = ?", (name,)).fetchone()
                cid = None if row is None else row[0]
        for child in children:
            self.sub_codes(child, None, cid)

    # -- variables
    def parse_variables(self, element: ET.Element) -> None:
        for el in element:
            name = el.get("name")
            kind = el.get("typeOfVariable")
            valuetype = {"Text": "character", "Boolean": "character", "Date": "character",
                         "DateTime": "character", "Integer": "numeric", "Float": "numeric"}.get(kind, kind)
            memo = ""
            for child in el:  # QualCoder keeps the text of the last child, whatever its tag
                memo = child.text
            variable = {"name": name, "guid": el.get("guid"), "id": None, "memo": memo, "valuetype": valuetype}
            try:
                variable["id"] = self.conn.execute(
                    "INSERT INTO attribute_type (name, date, owner, memo, caseOrFile, valuetype)"
                    " VALUES (?, ?, ?, ?, 'file', ?)", (name, _NOW, self.codername, memo, valuetype)).lastrowid
            except sqlite3.IntegrityError:
                self.messages.append(f"Variable name already exists: {name}")
            self.variables.append(variable)

    def variable_name(self, guid: str | None) -> str | None:
        for variable in self.variables:
            if variable["guid"] == guid:
                return variable["name"]
        return None

    def case_file_variables(self, case: ET.Element) -> None:
        refs = [el.get("targetGUID") for el in case if el.tag == self.tag("SourceRef")]
        if len(refs) != 1 or refs[0] is None:
            return
        for el in case:
            if el.tag != self.tag("VariableValue"):
                continue
            var_guid, value = None, None
            for child in el:
                value = None
                if child.tag == self.tag("VariableRef"):
                    var_guid = child.get("targetGUID")
                if child.tag in {self.tag(f"{k}Value") for k in ("Text", "Boolean", "Integer", "Float",
                                                                   "Date", "DateTime")}:
                    value = child.text
            self.file_vars.append({"file_guid": refs[0], "var_guid": var_guid, "value": value,
                                   "name": self.variable_name(var_guid)})

    # -- sources
    def load_text_source(self, element: ET.Element) -> None:
        name = element.get("name")
        owner = self.user_name(element)
        date = element.get("creationDateTime") or element.get("modifiedDateTime") or "2000-01-01T00:00:00Z"
        date = _qc_date(date)
        path = element.get("path")
        if path is not None and not path.startswith("internal://"):
            raise NotImplementedError("relative and absolute source paths are not mirrored")
        internal = element.get("plainTextPath") if path is None else path
        if internal is None:
            raise AttributeError("QualCoder: TextSource has neither path nor plainTextPath (None.split)")
        for source in self.sources:
            if source["name"] == name:
                self.prefix += 1
                name = f"{self.prefix}_{name}"
                break
        memo = ""
        for el in element:
            if el.tag == self.tag("Description"):
                memo = el.text
        data = self.read_member(internal)
        add_ending, i = False, 0
        while i < len(data) and data[i:i + 1] != b"\n":  # the first line only
            if data[i:i + 1] == b"\r":
                if data[i + 1:i + 2] == b"\n":
                    add_ending = True
                i += 2
                continue
            i += 1
        if "ATLAS" in self.software_name:
            add_ending = False
        fulltext = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace").read()
        if add_ending:
            fulltext = fulltext.replace("\n", "\n ")
        fid = self.conn.execute("INSERT INTO source (name, fulltext, memo, owner, date) VALUES (?, ?, ?, ?, ?)",
                                (name, fulltext, memo, owner, date)).lastrowid
        source = {"name": name, "id": fid, "fulltext": fulltext, "guid": element.get("guid")}
        self.sources.append(source)
        for el in element:
            if el.tag == self.tag("PlainTextSelection"):
                self.load_codings_for_text(source, el)
        for el in element:
            if el.tag == self.tag("NoteRef"):
                self.annotations.append({"NoteRef": el.get("targetGUID"), "TextSource": source["guid"]})
        for el in element:
            if el.tag == self.tag("VariableValue"):
                self.parse_variable_value(el, fid, owner)

    def parse_variable_value(self, element: ET.Element, fid: int, owner: str) -> None:
        name, value = "", ""
        for el in element:
            if el.tag == self.tag("VariableRef"):
                name = self.variable_name(el.get("targetGUID")) or ""
        for el in element:
            if el.tag in _VALUE_TAGS_1_0 and el.text is not None:
                value = el.text.strip()
        self.conn.execute("INSERT INTO attribute (name, attr_type, value, id, date, owner)"
                          " VALUES (?, 'file', ?, ?, ?, ?)", (name, value, fid, _NOW, owner))

    def load_codings_for_text(self, source: dict[str, Any], element: ET.Element) -> None:
        pos0, pos1 = int(element.get("startPosition")), int(element.get("endPosition"))
        date = _qc_date(element.get("creationDateTime") or element.get("modifiedDateTime")
                        or "2000-01-01T00:00:00Z")
        owner = self.user_name(element)
        seltext = source["fulltext"][pos0:pos1]
        memo = ""
        for el in element:
            if el.tag == self.tag("Description") and el.text is not None:
                memo = el.text
        annotation = True
        for el in element:
            if el.tag != self.tag("Coding"):
                continue
            annotation = False
            code_ref = list(el)[0]
            cid = None
            for code in self.codes:
                if code["guid"] == code_ref.get("targetGUID"):
                    cid = code["cid"]
            try:
                self.conn.execute("INSERT INTO code_text (cid, fid, seltext, pos0, pos1, owner, memo, date)"
                                  " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                  (cid, source["id"], seltext, pos0, pos1, owner, memo, date))
            except sqlite3.IntegrityError:
                self.messages.append(f"Duplicated text coding for code and coder: cid {cid} fid {source['id']}")
        if annotation:
            if memo == "":
                for link in self.links:
                    if link["targetGUID"] == element.get("guid"):
                        memo = link.get("text", memo)
            self.conn.execute("INSERT INTO annotation (fid, pos0, pos1, memo, owner, date) VALUES (?, ?, ?, ?, ?, ?)",
                              (source["id"], pos0, pos1, memo, owner, date))

    # -- notes
    def note_texts_for_links(self, notes: ET.Element) -> None:
        for el in notes:
            path = el.get("plainTextPath")
            if path is None or "internal:/" not in path:
                continue
            text = self.read_member(path).decode("utf-8", errors="replace")
            for link in self.links:
                if link["originGUID"] == el.get("guid"):
                    link["text"] = text

    def parse_notes(self, notes: ET.Element) -> None:
        for el in notes:
            name = el.get("name")
            date = el.get("creationDateTime") or el.get("modifiedDateTime")
            if date is None:
                raise AttributeError("QualCoder parse_notes: Note without a date (None.replace)")
            date = _qc_date(date)
            owner = self.user_name(el)
            annotation = False
            for ann in self.annotations:
                if ann["NoteRef"] == el.get("guid"):
                    annotation = True
                    self.insert_annotation(ann["TextSource"], el)
                    break
            for link in self.links:
                if link["targetGUID"] == el.get("guid") and link.get("text"):
                    annotation = True
            if el.get("plainTextPath") is not None and not annotation and name != "":
                text = self.read_member(el.get("plainTextPath")).decode("utf-8", errors="replace")
                if self.conn.execute("SELECT 1 FROM journal WHERE name = ?", (name,)).fetchone():
                    raise TypeError("QualCoder parse_notes: duplicate journal name (randint(100-999))")
                self.conn.execute("INSERT INTO journal (name, jentry, owner, date) VALUES (?, ?, ?, ?)",
                                  (name, text, owner, date))
            elif not annotation:
                self.dropped.append(el.get("guid"))

    def insert_annotation(self, source_guid: str, element: ET.Element) -> None:
        owner = None
        for attr in ("modifyingUser", "creatingUser"):
            if owner is None:
                for user in self.users:
                    if user["guid"] == element.get(attr):
                        owner = user["name"]
        owner = owner or self.codername
        date = element.get("modifiedDateTime")
        date = _NOW if date is None else _qc_date(date)
        memo, pos0, pos1 = "", None, None
        for el in element:
            if el.tag == self.tag("PlainTextContent"):
                memo = el.text
            if el.tag == self.tag("PlainTextSelection"):
                pos0, pos1 = el.get("startPosition"), el.get("endPosition")
        fid = None
        for source in self.sources:
            if source["guid"] == source_guid:
                fid = source["id"]
        if pos0 is None or pos1 is None or memo is None or fid is None:
            self.dropped.append(element.get("guid"))
            return
        self.conn.execute("INSERT INTO annotation (fid, pos0, pos1, memo, owner, date) VALUES (?, ?, ?, ?, ?, ?)",
                          (fid, int(pos0), int(pos1), memo, owner, date))


def import_qdpx(path: str | Path, *, codername: str = "default") -> QualCoderProject:
    """Import ``path`` the way QualCoder's ``RefiImport.import_project`` reads it."""
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if "/" not in n]
        qde = "project.qde"
        for name in names:
            if name.endswith(".qde"):
                qde = name
        importer = _Importer(archive, codername)
        importer.run(ET.fromstring(archive.read(qde)))
    importer.conn.commit()
    return QualCoderProject(importer.conn, importer.software_name, importer.users, importer.messages,
                            importer.dropped)
