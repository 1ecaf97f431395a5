"""REFI-QDA export: schema validity, round trip through read_qdpx, encoding and zip layout."""

from __future__ import annotations

import re
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from postkit.coding import refi
from postkit.coding.codebook import load_codebook
from postkit.coding.store import CodingStore
from postkit.errors import PostkitError

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


def test_memos_become_notes_linked_from_codings(qdpx):
    data = refi.read_qdpx(qdpx[0])
    notes = {n["guid"]: n for n in data["notes"]}
    assert sorted(n["text"] for n in notes.values()) == sorted(
        ['Clear <cue> & "quote" ✓', "multi\nline memo", "whole post", "no, just venting", "changed my mind"])
    linked = {c["text"]: [notes[g]["text"] for g in c["notes"]] for c in data["codings"] if c["notes"]}
    assert linked[U1] == ['Clear <cue> & "quote" ✓']
    assert linked[P2] == ["whole post"]
    assert notes[next(g for c in data["codings"] if c["text"] == U2 for g in c["notes"])]["user"] == "Bérénice"
    # memos on rejected codes are kept too, as notes on the post (no coding carries them)
    coding_notes = {g for c in data["codings"] for g in c["notes"]}
    rejected = {n["text"]: n for n in notes.values() if n["guid"] not in coding_notes}
    assert sorted(rejected) == ["changed my mind", "no, just venting"]
    assert rejected["no, just venting"]["user"] == "alice"
    p1 = next(src for src in data["sources"] if src["name"] == "p1")
    assert sorted(notes[g]["text"] for g in p1["notes"]) == ["changed my mind", "no, just venting"]
    assert qdpx[1]["notes"] == 5


def test_both_coders_are_users(qdpx):
    data = refi.read_qdpx(qdpx[0])
    assert {u["name"] for u in data["users"]} == {"alice", "Bérénice"}
    assert len(data["users"]) == 2
    assert all(GUID_RE.match(u["guid"]) for u in data["users"])


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
