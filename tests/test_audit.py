"""The hash-chained audit log: what the writer produces, and every tampering the verifier names.

The fixture log has 22 lines: the header (line 1), 20 entries (lines 2-21, seq 1-20) and
the footer (line 22). Hashes are recomputed here with plain ``json.dumps`` + ``hashlib``,
as a reviewer without postkit would, so the tests also pin the documented format.
"""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from postkit.audit import GENESIS, AuditWriter, read_audit, verify_audit
from postkit.errors import PostkitError
from postkit.hashing import sha256_path

HEADER = {
    "postkit_version": "0.1.0",
    "as_of": "2025-01-01T00:00:00Z",
    "created_at": "2025-01-02T03:04:05Z",
    "policy": "opt-in",
    "inputs": {"posts": {"path": "posts.csv", "sha256": "a" * 64}},
    "key_id": "k1",
}


def entry(i: int) -> dict:
    kept = i % 3 != 0
    return {
        "row": i,
        "post_id": f"p{i:02d}",
        "forum": "Robin",
        "user": f"u_{i:04x}",
        "decision": "kept" if kept else "excluded",
        "reason": "opted_in" if kept else "no_consent",
        "records": [{"row": i, "status": "opt_in", "source": "signup_form"}] if kept else [],
    }


def canonical(obj: dict) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def spec_hash(obj: dict) -> str:
    return hashlib.sha256(canonical({k: v for k, v in obj.items() if k != "hash"}).encode()).hexdigest()


def rehash(obj: dict) -> bytes:
    """What a careful forger does: recompute the edited line's own hash."""
    obj["hash"] = spec_hash(obj)
    return canonical(obj).encode() + b"\n"


@pytest.fixture
def log(tmp_path):
    output = tmp_path / "kept.csv"
    output.write_text("post_id,text\np01,hello\n")
    path = tmp_path / "audit.jsonl"
    with open(path, "wb") as handle:
        writer = AuditWriter(handle, HEADER)
        writer.write_entry(entry(1))
        writer.write_entries(entry(i) for i in range(2, 21))
        assert writer.entries == 20
        head = writer.close({"counts": {"kept": 14, "excluded": 6},
                             "output": {"path": output.name}, "output_sha256": sha256_path(output)})
    return path, head, output


def lines(path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def rewrite(path, new_lines) -> None:
    path.write_bytes(b"".join(new_lines))


def assert_bad(path, line: int, *words: str, **kwargs) -> None:
    result = verify_audit(path, **kwargs)
    assert not result.ok and result.head is None
    assert result.line == line, result.problem
    for word in words:
        assert word in result.problem


# --------------------------------------------------------------------------- intact


def test_intact_log_verifies(log):
    path, head, output = log
    result = verify_audit(path, output=output, expected_head=head)
    assert result.ok and result.problem is None and result.line is None
    assert result.head == head and result.entries == 20
    assert result.header["key_id"] == "k1" and result.footer["entries"] == 20


def test_lines_follow_the_documented_format(log):
    path, head, _ = log
    objs = [json.loads(raw) for raw in lines(path)]
    assert len(objs) == 22
    assert [o["type"] for o in objs] == ["header"] + ["entry"] * 20 + ["footer"]
    assert [o["seq"] for o in objs] == list(range(22))
    prev = GENESIS
    for raw, obj in zip(lines(path), objs):
        assert raw == canonical(obj).encode() + b"\n"
        assert obj["prev"] == prev and obj["hash"] == spec_hash(obj)
        prev = obj["hash"]
    assert objs[-1]["hash"] == head
    assert objs[1]["post_id"] == "p01" and objs[1]["decision"] == "kept"
    assert [o["type"] for o in read_audit(path)] == [o["type"] for o in objs]


def test_text_handle_and_non_ascii_are_written_as_utf8(tmp_path):
    fields = {"post_id": "p1", "forum": "Café ☕", "user": None}
    binary = io.BytesIO()
    text = io.StringIO(newline="\n")
    heads = []
    for handle in (binary, text):
        writer = AuditWriter(handle, HEADER)
        writer.write_entries([fields])
        heads.append(writer.close({}))
    assert heads[0] == heads[1]
    assert binary.getvalue() == text.getvalue().encode("utf-8")
    assert "Café ☕".encode() in binary.getvalue()  # raw UTF-8, not \u escapes
    path = tmp_path / "audit.jsonl"
    path.write_bytes(binary.getvalue())
    assert verify_audit(path).ok


# --------------------------------------------------------------------------- writer rules


def test_writer_refuses_reserved_fields_and_writes_after_close():
    with pytest.raises(ValueError, match="seq"):
        AuditWriter(io.BytesIO(), {"seq": 3})
    writer = AuditWriter(io.BytesIO(), HEADER)
    for bad in ({"hash": "x"}, {"type": "footer"}, {"prev": GENESIS}):
        with pytest.raises(ValueError, match="must not set"):
            writer.write_entry(bad)
    with pytest.raises(ValueError, match="entries"):
        writer.close({"entries": 99})
    writer.close({})
    with pytest.raises(ValueError, match="closed"):
        writer.write_entry(entry(1))
    with pytest.raises(ValueError, match="closed"):
        writer.close({})


def test_refused_entry_keeps_the_lines_before_it_valid(tmp_path):
    path = tmp_path / "audit.jsonl"
    with open(path, "wb") as handle:
        writer = AuditWriter(handle, HEADER)
        with pytest.raises(TypeError):
            writer.write_entries([entry(1), entry(2), {"post_id": object()}, entry(4)])
        with pytest.raises(ValueError):
            writer.write_entries([entry(3), {"post_id": float("nan")}])
        head = writer.close({})
    result = verify_audit(path)
    assert result.ok and result.entries == 3 and result.head == head


# --------------------------------------------------------------------------- tampering


def test_edited_entry(log):
    path, _, _ = log
    rows = lines(path)
    assert b'"decision":"kept"' in rows[7]  # line 8: entry 7
    rows[7] = rows[7].replace(b'"decision":"kept"', b'"decision":"excluded"')
    rewrite(path, rows)
    assert_bad(path, 8, "line 8: entry was modified (its hash does not match its content)")


def test_edited_entry_with_its_hash_recomputed(log):
    path, _, _ = log
    rows = lines(path)
    obj = json.loads(rows[7])
    obj["decision"] = "excluded"
    rows[7] = rehash(obj)
    rewrite(path, rows)
    assert_bad(path, 9, "line 9:", "line 8 was changed", "removed or inserted")


def test_deleted_entry(log):
    path, _, _ = log
    rows = lines(path)
    del rows[9]  # line 10
    rewrite(path, rows)
    assert_bad(path, 10, "line 10: expected seq 9, found 10", "deleted or reordered")


def test_deleted_header(log):
    path, _, _ = log
    rewrite(path, lines(path)[1:])
    assert_bad(path, 1, "line 1: expected the header, found an entry")


def test_inserted_duplicate_line(log):
    path, _, _ = log
    rows = lines(path)
    rows.insert(10, rows[9])  # line 10 again, as line 11
    rewrite(path, rows)
    assert_bad(path, 11, "line 11: expected seq 10, found 9", "inserted")


def test_swapped_lines(log):
    path, _, _ = log
    rows = lines(path)
    rows[4], rows[5] = rows[5], rows[4]  # lines 5 and 6
    rewrite(path, rows)
    assert_bad(path, 5, "line 5: expected seq 4, found 5", "reordered")


def test_footer_dropped(log):
    path, _, _ = log
    rewrite(path, lines(path)[:-1])
    assert_bad(path, 22, "line 22: log ends without a footer — it was truncated")


def test_cut_in_the_middle_of_a_line(log):
    path, _, _ = log
    data = path.read_bytes()
    rows = lines(path)
    cut = sum(len(r) for r in rows[:14]) + len(rows[14]) // 2  # half of line 15
    path.write_bytes(data[:cut])
    assert_bad(path, 15, "line 15: log ends without a footer — it was truncated")


def test_cut_just_before_the_last_newline_is_still_intact(log):
    path, head, _ = log
    path.write_bytes(path.read_bytes()[:-1])
    result = verify_audit(path, expected_head=head)
    assert result.ok and result.entries == 20


def test_line_after_the_footer(log):
    path, _, _ = log
    rows = lines(path)
    rewrite(path, rows + [rows[5]])
    assert_bad(path, 23, "line 23: text after the footer")


def test_blank_line(log):
    path, _, _ = log
    rows = lines(path)
    rows.insert(3, b"\n")
    rewrite(path, rows)
    assert_bad(path, 4, "line 4: blank line")


def test_invalid_json_line(log):
    path, _, _ = log
    rows = lines(path)
    rows[2] = b'{"type": "entry", oops\n'
    rewrite(path, rows)
    assert_bad(path, 3, "line 3: not valid JSON")


def test_footer_count_wrong(log):
    path, _, _ = log
    rows = lines(path)
    footer = json.loads(rows[-1])
    footer["entries"] = 19
    rows[-1] = rehash(footer)
    rewrite(path, rows)
    assert_bad(path, 22, "line 22: the footer counts 19 entries, but the log has 20")


def test_footer_edited_without_rehash(log):
    path, _, _ = log
    rows = lines(path)
    rows[-1] = rows[-1].replace(b'"entries":20', b'"entries":21')
    rewrite(path, rows)
    assert_bad(path, 22, "line 22: footer was modified")


def test_reformatted_line(log):
    path, _, _ = log
    rows = lines(path)
    rows[5] = json.dumps(json.loads(rows[5]), sort_keys=True).encode() + b"\n"  # same content, spaces
    rewrite(path, rows)
    assert_bad(path, 6, "line 6: content intact but not written as canonical JSON")


def test_windows_line_endings(log):
    path, _, _ = log
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert_bad(path, 1, "line 1:", "canonical", "CRLF")


def test_output_mismatch(log):
    path, head, output = log
    output.write_text("post_id,text\np01,hello\np02,smuggled in\n")
    result = verify_audit(path, output=output, expected_head=head)
    assert not result.ok and result.line == 22
    assert result.problem == (f"output file does not match the log: sha256 {sha256_path(output)} "
                              f"expected {result.footer['output_sha256']}")


def test_expected_head_mismatch(log):
    path, _, _ = log
    assert_bad(path, 22, "head hash", "not the expected", expected_head="f" * 64)


def test_rewritten_chain_passes_alone_but_not_against_the_recorded_head(log):
    """A forger who recomputes every hash after an edit is caught only by the head."""
    path, head, _ = log
    prev, rows = GENESIS, []
    for raw in lines(path):
        obj = json.loads(raw)
        if obj.get("post_id") == "p03":
            obj["decision"] = "kept"
        obj["prev"] = prev
        rows.append(rehash(obj))
        prev = obj["hash"]
    rewrite(path, rows)
    assert verify_audit(path).ok
    assert_bad(path, 22, "not the expected", expected_head=head)


# --------------------------------------------------------------------------- usage errors


def test_empty_file(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"")
    assert_bad(path, 1, "line 1: the file is empty")


def test_missing_files_are_usage_errors(log, tmp_path):
    path, _, _ = log
    with pytest.raises(PostkitError, match="audit log not found"):
        verify_audit(tmp_path / "nope.jsonl")
    with pytest.raises(PostkitError, match="is a folder"):
        verify_audit(tmp_path)
    with pytest.raises(PostkitError, match="output file not found"):
        verify_audit(path, output=tmp_path / "nope.csv")


def test_signature_file_is_checkable_without_postkit(log):
    """The documented format: one canonical JSON line; the signed message is that object minus
    ``signature``, covering the head and the key's fingerprint (recomputed here by hand)."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from postkit.audit import public_key_path, sign_head, signature_path
    from postkit.signing import SigningKey

    path, head, _ = log
    key = SigningKey(Ed25519PrivateKey.generate(), path.parent / "k.pem")
    text = sign_head(key, head)
    assert text.endswith("\n") and text.count("\n") == 1
    document = json.loads(text)
    assert canonical(document) + "\n" == text
    der = key.public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert document == {"algorithm": "ed25519", "head": head, "key": "sha256:" + hashlib.sha256(der).hexdigest(),
                         "purpose": "postkit audit log", "signature": document["signature"], "version": 1}
    message = canonical({k: v for k, v in document.items() if k != "signature"}).encode()
    key.public.verify(base64.b64decode(document["signature"]), message)  # raises if wrong
    assert signature_path(path).name == "audit.jsonl.sig" and public_key_path(path).name == "audit.pub"
    # Signing leaves the log itself exactly as before: it still ends with its footer.
    assert verify_audit(path).ok and json.loads(lines(path)[-1])["type"] == "footer"
