"""REFI-QDA export: schema validity, round trip through read_qdpx, encoding and zip layout, and
what survives QualCoder's importer (modelled in tests/qualcoder_import.py)."""

from __future__ import annotations

import re
import zipfile
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from postkit.coding import refi
from postkit.coding.codebook import load_codebook
from postkit.coding.store import CodingStore
from postkit.errors import PostkitError
from qualcoder_import import import_qdpx as qualcoder_import

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Post p1: an emoji (one code point, two UTF-16 units, four UTF-8 bytes) before the excerpts.
P1 = "🎉 Bonjour à tous! The forum is très active 😊 and well organised. I felt less alone."
U1 = "The forum is très active 😊 and well organised."
U2 = "I felt less alone."
P2 = "Ça va — 日本語 <ok> & \"fine\""
P3 = "line one\r\nline two"
P4 = "Nobody confirmed anything here."


def _xsd_dir() -> Path | None:
    for candidate in (Path(__file__).resolve().parents[2] / "shared" / "data" / "refi-qda",
                      Path("/work/shared/data/refi-qda")):
        if (candidate / "Project.xsd").exists() and (candidate / "Codebook.xsd").exists():
            return candidate
    return None


def _schema(name: str):
    folder = _xsd_dir()
    if folder is None:
        pytest.skip("REFI-QDA XSDs not found at <repo>/../shared/data/refi-qda or /work/shared/data/refi-qda")
    etree = pytest.importorskip("lxml.etree")
    return etree, etree.XMLSchema(etree.parse(str(folder / name)))


@pytest.fixture(scope="module")
def codebook():
    return load_codebook()


@pytest.fixture(scope="module")
def code_ids(codebook):
    ids = [code.id for _, _, code in codebook.codes()]
    return ids[0], ids[1], ids[5]


@pytest.fixture
def store(tmp_path, code_ids):
    c1, c2, c3 = code_ids
    s = CodingStore(tmp_path / "coding.sqlite")
    u1_start = P1.index(U1)
    s.add_excerpts([
        {"unit_id": "p1-s1", "post_id": "p1", "forum": "Robin", "text": P1,
         "start": u1_start, "end": u1_start + len(U1)},
        {"unit_id": "p1-s2", "post_id": "p1", "forum": "Robin", "text": P1,
         "start": P1.index(U2), "end": P1.index(U2) + len(U2)},
        {"unit_id": "p2", "post_id": "p2", "forum": "Jay", "text": P2},  # no offsets: whole post
        {"unit_id": "p3-s2", "post_id": "p3", "forum": "Jay", "text": P3, "start": 10, "end": 18},
        {"unit_id": "p4", "post_id": "p4", "forum": "Jay", "text": P4, "start": 0, "end": len(P4)},
    ])
    s.add_suggestions([{"unit_id": "p4", "code_id": c3, "score": 0.9},
                       {"unit_id": "p1-s2", "code_id": c3, "score": 0.7}], codebook_version="v-test")
    t = lambda minute: datetime(2024, 5, 1, 10, minute)
    s.decide("p1-s1", c1, "alice", "accept", memo='Clear <cue> & "quote" ✓', at=t(1))
    s.decide("p1-s1", c2, "Bérénice", "add", at=t(2))
    s.decide("p1-s2", c3, "alice", "reject", memo="no, just venting", at=t(3))
    s.decide("p1-s2", c1, "Bérénice", "accept", at=t(4))
    s.decide("p1-s2", c1, "Bérénice", "reject", memo="changed my mind", at=t(5))  # latest: not applied
    s.decide("p1-s2", c2, "Bérénice", "accept", memo="multi\nline memo", at=t(6))
    s.decide("p2", c2, "alice", "add", memo="whole post", at=t(7))
    s.decide("p3-s2", c1, "Bérénice", "accept", at=t(8))
    yield s
    s.close()


@pytest.fixture
def qdpx(tmp_path, store, codebook):
    path = tmp_path / "study.qdpx"
    counts = refi.export_qdpx(store, codebook, path, name="Test & <study>")
    return path, counts


# ---------------------------------------------------------------------------- schemas

def test_qdc_validates_against_codebook_xsd(codebook):
    etree, schema = _schema("Codebook.xsd")
    doc = etree.fromstring(refi.codebook_xml(codebook))
    assert schema.validate(doc), schema.error_log


def test_project_validates_against_project_xsd(qdpx):
    etree, schema = _schema("Project.xsd")
    with zipfile.ZipFile(qdpx[0]) as archive:
        doc = etree.fromstring(archive.read("project.qde"))
    assert schema.validate(doc), schema.error_log


def test_project_with_forbidden_characters_still_validates(tmp_path, store, codebook, code_ids):
    etree, schema = _schema("Project.xsd")
    store.decide("p4", code_ids[0], "carol\x07", "accept", memo="bell\x07 and \x0b tab")
    qde, _files = refi.project_xml(store, codebook, name="nul\x00 name")
    assert schema.validate(etree.fromstring(qde)), schema.error_log


# ---------------------------------------------------------------------------- round trip

def test_only_confirmed_codings_with_right_code_and_user(qdpx, codebook, code_ids):
    c1, c2, c3 = code_ids
    data = refi.read_qdpx(qdpx[0])
    guids = refi.code_guids(codebook)
    got = {(c["text"], c["code"], c["user"]) for c in data["codings"]}
    assert got == {
        (U1, guids[c1], "alice"),
        (U1, guids[c2], "Bérénice"),
        (U2, guids[c2], "Bérénice"),
        (P2, guids[c2], "alice"),
        ("line two", guids[c1], "Bérénice"),
    }
    # rejected (alice c3 on p1-s2), changed-to-reject (Bérénice c1 on p1-s2) and the
    # unconfirmed suggestion (c3 on p4) are absent
    assert (U2, guids[c3], "alice") not in got
    assert (U2, guids[c1], "Bérénice") not in got
    assert all(c["code"] != guids[c3] for c in data["codings"])
    assert qdpx[1]["codings"] == 5


def test_offsets_are_code_points(qdpx):
    data = refi.read_qdpx(qdpx[0])
    p1 = next(s for s in data["sources"] if s["name"] == "p1")
    assert p1["text"] == P1
    coding = next(c for c in data["codings"] if c["source"] == "p1" and c["text"] == U1)
    assert coding["start"] == P1.index(U1)  # code points
    assert coding["start"] != len(P1[:P1.index(U1)].encode("utf-16-le")) // 2  # not UTF-16 units
    assert coding["start"] != len(P1[:P1.index(U1)].encode("utf-8"))  # not bytes
    assert p1["text"][coding["start"]:coding["end"]] == U1
    for c in data["codings"]:
        source = next(s for s in data["sources"] if s["guid"] == c["source_guid"])
        assert source["text"][c["start"]:c["end"]] == c["text"]


def test_whole_post_and_crlf_sources(qdpx):
    data = refi.read_qdpx(qdpx[0])
    whole = next(c for c in data["codings"] if c["source"] == "p2")
    assert (whole["start"], whole["end"], whole["text"]) == (0, len(P2), P2)
    p3 = next(s for s in data["sources"] if s["name"] == "p3")
    assert p3["text"] == "line one\nline two"  # LF only; offsets shifted to match
    assert next(c for c in data["codings"] if c["source"] == "p3")["text"] == "line two"


def test_every_post_is_a_source_even_uncoded(qdpx):
    data = refi.read_qdpx(qdpx[0])
    assert sorted(s["name"] for s in data["sources"]) == ["p1", "p2", "p3", "p4"]
    assert qdpx[1]["sources"] == 4


def test_memos_become_notes_linked_from_codings(qdpx, codebook, code_ids):
    data = refi.read_qdpx(qdpx[0])
    notes = {n["guid"]: n for n in data["notes"]}
    c1_name = next(f"{c.id} {c.name}" for _a, _c, c in codebook.codes() if c.id == code_ids[0])
    c3_name = next(f"{c.id} {c.name}" for _a, _c, c in codebook.codes() if c.id == code_ids[2])
    assert sorted(n["text"] for n in notes.values()) == sorted(
        ['Clear <cue> & "quote" ✓', "multi\nline memo", "whole post", f"Rejected {c3_name}: no, just venting",
         f"Rejected {c1_name}: changed my mind"])
    linked = {c["text"]: [notes[g]["text"] for g in c["notes"]] for c in data["codings"] if c["notes"]}
    assert linked[U1] == ['Clear <cue> & "quote" ✓']
    assert linked[P2] == ["whole post"]
    assert notes[next(g for c in data["codings"] if c["text"] == U2 for g in c["notes"])]["user"] == "Bérénice"
    # memos on rejected codes are kept too, as notes on the post (no coding carries them)
    coding_notes = {g for c in data["codings"] for g in c["notes"]}
    rejected = {n["text"].split(": ", 1)[1]: n for n in notes.values() if n["guid"] not in coding_notes}
    assert sorted(rejected) == ["changed my mind", "no, just venting"]
    assert rejected["no, just venting"]["user"] == "alice"
    # each holds the excerpt's span, so importers that need a selection (QualCoder) keep it
    assert (rejected["no, just venting"]["start"], rejected["no, just venting"]["end"]) == (
        P1.index(U2), P1.index(U2) + len(U2))
    p1 = next(src for src in data["sources"] if src["name"] == "p1")
    assert sorted(notes[g]["text"].split(": ", 1)[1] for g in p1["notes"]) == ["changed my mind", "no, just venting"]
    # coding memos are also the Description of the coding's own selection
    memos = {(c["text"], c["user"]): c["memo"] for c in data["codings"]}
    assert memos[(U1, "alice")] == 'Clear <cue> & "quote" ✓' and memos[(U1, "Bérénice")] is None
    assert memos[(U2, "Bérénice")] == "multi\nline memo"
    assert len({c["selection"] for c in data["codings"]}) == len(data["codings"])
    assert qdpx[1]["notes"] == 5 and qdpx[1]["memos"] == 3 and qdpx[1]["rejected_memos"] == 2


def test_coders_and_exporter_are_users(qdpx):
    data = refi.read_qdpx(qdpx[0])
    # coders sorted, then whoever exported
    assert [u["name"] for u in data["users"]] == ["Bérénice", "alice", refi.DEFAULT_EXPORTER]
    assert all(GUID_RE.match(u["guid"]) for u in data["users"])
    assert qdpx[1]["coders"] == 2 and qdpx[1]["users"] == 3


def test_hierarchy_is_nested_area_configuration_code(qdpx, codebook):
    data = refi.read_qdpx(qdpx[0])
    by_guid = {c["guid"]: c for c in data["codes"]}
    guids = refi.code_guids(codebook)
    for area, conf, code in codebook.codes():
        node = by_guid[guids[code.id]]
        assert node["name"] == f"{code.id} {code.name}" and node["codable"]
        assert code.definition in node["description"] and code.exclude in node["description"]
        assert node["parent"] == guids[conf.id]
        assert by_guid[guids[conf.id]]["parent"] == guids[area.id]
        assert by_guid[guids[area.id]]["parent"] is None
        assert not by_guid[guids[conf.id]]["codable"] and not by_guid[guids[area.id]]["codable"]
    assert len(data["codes"]) == len(guids)


def test_project_name_escaped(qdpx):
    assert refi.read_qdpx(qdpx[0])["project"]["name"] == "Test & <study>"


def test_code_not_in_codebook_is_kept_under_a_group(tmp_path, store, codebook):
    store.decide("p4", "OLD-C9", "alice", "accept")
    path = tmp_path / "x.qdpx"
    counts = refi.export_qdpx(store, codebook, path)
    data = refi.read_qdpx(path)
    group = next(c for c in data["codes"] if c["name"] == refi.UNLISTED_CODES)
    old = next(c for c in data["codes"] if c["name"] == "OLD-C9")
    assert old["parent"] == group["guid"] and counts["unlisted_codes"] == 1
    assert any(c["code"] == old["guid"] and c["text"] == P4 for c in data["codings"])


def test_offsets_outside_text_are_refused(tmp_path, codebook):
    s = CodingStore(tmp_path / "bad.sqlite")
    s.add_excerpts([{"unit_id": "u", "post_id": "p", "text": "short", "start": 2, "end": 40}])
    with pytest.raises(PostkitError, match="cannot be exported"):
        refi.project_xml(s, codebook)
    s.close()


# ---------------------------------------------------------------------------- files

def _check_text(data: bytes) -> None:
    assert not data.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in data
    data.decode("utf-8")


def test_utf8_no_bom_lf_and_declaration(tmp_path, qdpx, codebook):
    refi.export_qdc(codebook, tmp_path / "cmo.qdc")
    qdc = (tmp_path / "cmo.qdc").read_bytes()
    _check_text(qdc)
    assert qdc.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<CodeBook')
    with zipfile.ZipFile(qdpx[0]) as archive:
        qde = archive.read("project.qde")
        _check_text(qde)
        assert qde.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Project')
        for name in archive.namelist():
            _check_text(archive.read(name))


def test_zip_layout(qdpx):
    with zipfile.ZipFile(qdpx[0]) as archive:
        names = archive.namelist()
        qde = archive.read("project.qde").decode("utf-8")
    assert names[0] == "project.qde"
    others = names[1:]
    assert others and all(re.fullmatch(r"sources/[0-9a-f-]{36}\.txt", n) for n in others)
    for name in others:
        assert f'plainTextPath="internal://{name.removeprefix("sources/")}"' in qde


def test_all_guids_match_pattern_and_are_stable(tmp_path, store, codebook):
    first, second = tmp_path / "a.qdpx", tmp_path / "b.qdpx"
    refi.export_qdpx(store, codebook, first)
    refi.export_qdpx(store, codebook, second)

    def guids(path: Path) -> list[str]:
        with zipfile.ZipFile(path) as archive:
            return re.findall(r'(?:guid|targetGUID|creatingUser)="([^"]+)"', archive.read("project.qde").decode())

    a, b = guids(first), guids(second)
    assert a == b and len(a) > 50
    assert all(GUID_RE.match(g) for g in a)
    assert refi.codebook_xml(codebook) == refi.codebook_xml(codebook)
    assert len(set(refi.code_guids(codebook).values())) == len(refi.code_guids(codebook))


def test_atomic_write_leaves_no_temp_files(tmp_path, store, codebook, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    refi.export_qdc(codebook, out / "cmo.qdc")
    refi.export_qdpx(store, codebook, out / "study.qdpx")
    assert sorted(p.name for p in out.iterdir()) == ["cmo.qdc", "study.qdpx"]
    before = (out / "study.qdpx").read_bytes()

    def boom(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)  # the rename in postkit.io.publish
    with pytest.raises(OSError):
        refi.export_qdpx(store, codebook, out / "study.qdpx")
    assert sorted(p.name for p in out.iterdir()) == ["cmo.qdc", "study.qdpx"]
    assert (out / "study.qdpx").read_bytes() == before


# ---------------------------------------------------------------------------- QualCoder-style import
# tests/qualcoder_import.py re-implements how QualCoder's importer (src/qualcoder/refi.py) reads a
# .qdpx: what it cannot read there is lost in the hand-off.


# Astral emoji (one code point, two UTF-16 units), a skin-tone modifier and a ZWJ family before the unit.
P5 = "👍🏽 Thanks 👨‍👩‍👧 all! Reading your replies 🙏 made me feel less alone 💙."
U5 = "Reading your replies 🙏 made me feel less alone 💙."
POSTS = pd.DataFrame({"post_id": ["p1", "p2", "p3", "p4", "p5", "other"],
                      "forum": ["Robin", "Jay", "Jay", "Jay", "Sparrow", "Jay"],
                      "created_at": ["2024-03-01T23:30:00-02:00", "2024-03-02T10:00:00Z", "2024-03-03",
                                     "", "2024-03-05T08:00:00Z", "not read"]})


@pytest.fixture
def imported(tmp_path, store, codebook, code_ids):
    store.add_excerpts([{"unit_id": "p5-s2", "post_id": "p5", "forum": "Sparrow", "text": P5,
                         "start": P5.index(U5), "end": P5.index(U5) + len(U5)}])
    store.decide("p5-s2", code_ids[0], "alice", "accept", memo="helped 🙏", at=datetime(2024, 5, 1, 11))
    store.decide("p5-s2", code_ids[2], "alice", "reject", memo="not 💙 enough", at=datetime(2024, 5, 1, 11, 1))
    store.decide("p5-s2", code_ids[1], "alice", "reject", memo="nor this", at=datetime(2024, 5, 1, 11, 2))
    path = tmp_path / "qc.qdpx"
    counts = refi.export_qdpx(store, codebook, path, posts=POSTS[POSTS.post_id != "other"],
                              exported_by="Steward Sam")
    return qualcoder_import(path), counts, path


def test_qualcoder_import_keeps_every_code_and_coding(imported, codebook, code_ids):
    project, counts, _path = imported
    names = {r["name"] for r in project.rows("SELECT name FROM code_name")}
    assert names == {f"{code.id} {code.name}" for _a, _c, code in codebook.codes()}
    categories = {r["name"] for r in project.rows("SELECT name FROM code_cat")}
    assert {area.name for area in codebook.areas} <= categories
    rows = project.rows("SELECT c.name AS code, s.name AS source, t.seltext, t.owner FROM code_text t "
                        "JOIN code_name c ON c.cid = t.cid JOIN source s ON s.id = t.fid")
    got = {(r["source"], r["seltext"], r["code"].split(" ")[0], r["owner"]) for r in rows}
    c1, c2, _c3 = code_ids
    assert got == {("p1", U1, c1, "alice"), ("p1", U1, c2, "Bérénice"), ("p1", U2, c2, "Bérénice"),
                   ("p2", P2, c2, "alice"), ("p3", "line two", c1, "Bérénice"), ("p5", U5, c1, "alice")}
    assert len(rows) == counts["codings"] == 6 and not project.messages
    assert not project.rows("SELECT * FROM code_text WHERE cid IS NULL")


def test_qualcoder_import_keeps_every_memo(imported, codebook, code_ids):
    project, counts, path = imported
    memos = {(r["seltext"], r["owner"], r["memo"]) for r in project.rows("SELECT * FROM code_text WHERE memo != ''")}
    assert memos == {(U1, "alice", 'Clear <cue> & "quote" ✓'), (U2, "Bérénice", "multi\nline memo"),
                     (P2, "alice", "whole post"), (U5, "alice", "helped 🙏")}
    # memos on rejected codes arrive as annotations on the excerpt's span, one per coder and span
    annotations = project.rows("SELECT a.*, s.fulltext FROM annotation a JOIN source s ON s.id = a.fid")
    by_owner = {(r["owner"], r["fulltext"][r["pos0"]:r["pos1"]]): r["memo"] for r in annotations}
    assert set(by_owner) == {("alice", U2), ("Bérénice", U2), ("alice", U5)}
    assert by_owner[("alice", U2)].endswith(": no, just venting")
    assert by_owner[("Bérénice", U2)].endswith(": changed my mind")
    assert "not 💙 enough" in by_owner[("alice", U5)] and "nor this" in by_owner[("alice", U5)]
    assert all(by_owner[k].startswith("Rejected ") for k in by_owner)
    # Every note the importer skipped is a coding memo it already has from the selection
    skipped = {n["guid"]: n["text"] for n in refi.read_qdpx(path)["notes"] if n["guid"] in project.dropped_notes}
    assert sorted(skipped.values()) == sorted(m for _t, _o, m in memos)
    assert counts["memos"] == 4 and counts["rejected_memos"] == 4


def test_qualcoder_import_keeps_forum_and_date_variables(imported):
    project, counts, _path = imported
    types = {r["name"]: (r["caseOrFile"], r["valuetype"]) for r in project.rows("SELECT * FROM attribute_type")}
    assert types == {"Forum": ("file", "character"), "Date": ("file", "character")}
    values = {(r["source"], r["name"]): r["value"] for r in project.rows(
        "SELECT s.name AS source, a.name, a.value FROM attribute a JOIN source s ON s.id = a.id "
        "WHERE a.attr_type = 'file'")}
    assert values == {("p1", "Forum"): "Robin", ("p1", "Date"): "2024-03-02",  # 23:30 at UTC-2 is the 2nd in UTC
                      ("p2", "Forum"): "Jay", ("p2", "Date"): "2024-03-02",
                      ("p3", "Forum"): "Jay", ("p3", "Date"): "2024-03-03",
                      ("p4", "Forum"): "Jay",  # empty created_at: no date, nothing invented
                      ("p5", "Forum"): "Sparrow", ("p5", "Date"): "2024-03-05"}
    assert counts["sources_with_forum"] == 5 and counts["sources_with_date"] == 4


def test_qualcoder_import_sources_created_by_the_exporter(imported):
    project, _counts, _path = imported
    sources = project.rows("SELECT name, owner, fulltext, memo FROM source ORDER BY name")
    assert [r["name"] for r in sources] == ["p1", "p2", "p3", "p4", "p5"]
    assert {r["owner"] for r in sources} == {"Steward Sam"}
    assert [u["name"] for u in project.users][-1] == "Steward Sam"
    assert next(r for r in sources if r["name"] == "p5")["fulltext"] == P5


def test_qualcoder_positions_land_on_the_same_text_despite_emoji(imported):
    project, _counts, path = imported
    exported = {c["guid"]: c for c in refi.read_qdpx(path)["codings"]}
    p5 = next(r for r in project.rows("SELECT * FROM code_text t JOIN source s ON s.id = t.fid WHERE s.name = 'p5'"))
    assert p5["seltext"] == U5 == p5["fulltext"][p5["pos0"]:p5["pos1"]]
    assert p5["pos0"] == P5.index(U5)  # code points: UTF-16 would count 5 more units before the excerpt
    assert len(P5[:p5["pos0"]].encode("utf-16-le")) // 2 != p5["pos0"]
    for row in project.rows("SELECT t.*, s.fulltext FROM code_text t JOIN source s ON s.id = t.fid"):
        assert row["fulltext"][row["pos0"]:row["pos1"]] == row["seltext"]
    imported_texts = {r["seltext"] for r in project.rows("SELECT seltext FROM code_text")}
    assert {c["text"] for c in exported.values()} == imported_texts


def test_qualcoder_helper_sees_the_old_layout_lose_memos(tmp_path, codebook):
    """The importer model is not lenient: memos only in Coding NoteRefs and in source Notes without
    a selection (the layout before this export change) are not imported."""
    ns = refi.PROJECT_NS
    user, code, src, n1, n2 = (refi.guid("t", str(i)) for i in range(5))
    qde = f"""<?xml version="1.0" encoding="UTF-8"?>
<Project xmlns="{ns}" name="old" origin="postkit"><Users><User guid="{user}" name="alice"/></Users>
<CodeBook><Codes><Code guid="{code}" name="C1" isCodable="true"/></Codes></CodeBook>
<Sources><TextSource guid="{src}" name="p1" plainTextPath="internal://{src}.txt">
<PlainTextSelection guid="{refi.guid('t', 'sel')}" startPosition="0" endPosition="5" creatingUser="{user}">
<Coding guid="{refi.guid('t', 'cod')}" creatingUser="{user}"><CodeRef targetGUID="{code}"/><NoteRef targetGUID="{n1}"/></Coding>
</PlainTextSelection><NoteRef targetGUID="{n2}"/></TextSource></Sources>
<Notes><Note guid="{n1}" name="m1" creationDateTime="2024-05-01T10:00:00Z"><PlainTextContent>coding memo</PlainTextContent></Note>
<Note guid="{n2}" name="m2" creationDateTime="2024-05-01T10:00:00Z"><PlainTextContent>post memo</PlainTextContent></Note></Notes>
</Project>"""
    path = tmp_path / "old.qdpx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.qde", qde)
        archive.writestr(f"sources/{src}.txt", "hello world")
    project = qualcoder_import(path)
    assert [(r["seltext"], r["memo"]) for r in project.rows("SELECT * FROM code_text")] == [("hello", "")]
    assert project.rows("SELECT * FROM annotation") == []
    assert sorted(project.dropped_notes) == sorted([n1, n2])


def test_exporter_user_is_stable_and_named(tmp_path, store, codebook):
    first = refi.read_qdpx(_export(tmp_path / "a.qdpx", store, codebook, exported_by="Sam"))
    second = refi.read_qdpx(_export(tmp_path / "b.qdpx", store, codebook, exported_by=" Sam "))
    assert first["users"] == second["users"] and first["project"]["user"] == "Sam"
    assert {s["user"] for s in first["sources"]} == {"Sam"}
    default = refi.read_qdpx(_export(tmp_path / "c.qdpx", store, codebook))
    assert {s["user"] for s in default["sources"]} == {refi.DEFAULT_EXPORTER}
    with pytest.raises(PostkitError, match="exporter's name is empty"):
        refi.project_xml(store, codebook, exported_by="  ")


def _export(path: Path, store, codebook, **kwargs) -> Path:
    refi.export_qdpx(store, codebook, path, **kwargs)
    return path


def test_project_with_variables_validates(tmp_path, store, codebook):
    etree, schema = _schema("Project.xsd")
    qde, _files = refi.project_xml(store, codebook, posts=POSTS, exported_by="Sam")
    assert b"<VariableValue>" in qde and b"<DateValue>2024-03-02</DateValue>" in qde
    assert schema.validate(etree.fromstring(qde)), schema.error_log


def test_posts_table_from_a_file(tmp_path, store, codebook):
    posts = tmp_path / "posts.csv"
    POSTS[POSTS.post_id != "other"].to_csv(posts, index=False)
    data = refi.read_qdpx(_export(tmp_path / "f.qdpx", store, codebook, posts=posts))
    assert {s["name"]: s["variables"].get("Date") for s in data["sources"]} == {
        "p1": "2024-03-02", "p2": "2024-03-02", "p3": "2024-03-03", "p4": None}
    assert {v["name"]: v["type"] for v in data["variables"]} == {"Forum": "Text", "Date": "Date"}


def test_bad_posts_tables_are_refused(tmp_path, store, codebook):
    bad_date = POSTS.copy()
    bad_date.loc[bad_date.post_id == "p2", "created_at"] = "yesterday"
    with pytest.raises(PostkitError, match=r"row 2, column 'created_at'") as caught:
        refi.project_xml(store, codebook, posts=bad_date)
    assert "yesterday" not in str(caught.value)
    twice = pd.concat([POSTS, POSTS.iloc[[0]].assign(created_at="2020-01-01")], ignore_index=True)
    with pytest.raises(PostkitError, match="same post_id as row 1"):
        refi.project_xml(store, codebook, posts=twice)
    other_forum = POSTS.assign(forum=["Magpie"] + list(POSTS.forum[1:]))
    with pytest.raises(PostkitError, match="forum in the posts table differs"):
        refi.project_xml(store, codebook, posts=other_forum)
    with pytest.raises(PostkitError, match="created_at"):
        refi.project_xml(store, codebook, posts=POSTS.drop(columns="created_at"))
    # rows for posts the store does not hold are not read at all ("other" has an unreadable date)
    refi.project_xml(store, codebook, posts=POSTS)


def test_rejected_memos_of_one_coder_on_one_span_are_one_annotation(tmp_path, store, codebook, code_ids):
    store.decide("p4", code_ids[0], "alice", "reject", memo="first")
    store.decide("p4", code_ids[1], "alice", "reject", memo="second")
    project = qualcoder_import(_export(tmp_path / "r.qdpx", store, codebook))
    memos = [r["memo"] for r in project.rows(
        "SELECT a.memo FROM annotation a JOIN source s ON s.id = a.fid WHERE s.name = 'p4'")]
    assert len(memos) == 1 and "first" in memos[0] and "second" in memos[0]


def test_cli_export_qdpx_with_posts_and_exporter(tmp_path, store):
    from click.testing import CliRunner

    from postkit.cli import main

    posts = tmp_path / "posts.jsonl"
    POSTS[POSTS.post_id.isin(["p1", "p2"])].to_json(posts, orient="records", lines=True)
    out = tmp_path / "cli.qdpx"
    result = CliRunner().invoke(main, ["export", "qdpx", str(store.path), "--output", str(out), "--posts", str(posts),
                                       "--exported-by", "Steward Sam"])
    assert result.exit_code == 0, result.output
    assert "by 2 coder(s)" in result.output and "3 coding memos, 2 memos on rejected codes" in result.output
    assert "2 source(s) have no Date" in result.output
    data = refi.read_qdpx(out)
    assert {s["user"] for s in data["sources"]} == {"Steward Sam"}
    assert {s["name"]: s["variables"].get("Date") for s in data["sources"]}["p1"] == "2024-03-02"
