"""Signed audit logs: the steward's Ed25519 key, signature files, and the forgeries they stop.

The forger in :func:`forge` is the attack from issue 11: flip a WITHDRAWN decision to
kept, add the post to the output, recompute counts, output hash and the whole chain with
postkit's own public functions. The chain then verifies; only the signature, checked
against the public key the reviewer holds, catches it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import AS_OF, POSTS_CSV
from postkit.audit import (
    AuditWriter,
    line_hash,
    public_key_path,
    sign_head,
    signature_path,
    verify_audit,
    verify_signature,
)
from postkit.cli import main
from postkit.errors import PostkitError
from postkit.hashing import sha256_path
from postkit.signing import (
    DEFAULT_SIGNING_KEY,
    SigningKey,
    fingerprint,
    load_public_key,
    load_signing_key,
    resolve_signing_key,
)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def write_private(path, key: Ed25519PrivateKey, mode: int = 0o600, fmt=serialization.PrivateFormat.PKCS8,
                  encryption=None):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, fmt,
                                       encryption or serialization.NoEncryption()))
    os.chmod(path, mode)
    return path


@pytest.fixture
def steward(tmp_path):
    """The steward's key file, and the reviewer's copy of its public key (kept apart from any run)."""
    folder = tmp_path / "steward"
    folder.mkdir(mode=0o700)
    private = Ed25519PrivateKey.generate()
    key_file = write_private(folder / "steward.pem", private)
    reviewer = tmp_path / "reviewer"
    reviewer.mkdir()
    public = reviewer / "steward.pub"
    public.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    return {"key": key_file, "public": public}


def consent_run(corpus, out, *extra):
    return run("consent", "filter", corpus["posts"], "--consent", corpus["consent"], "--output", out / "kept.csv",
               "--audit", out / "audit.jsonl", "--as-of", AS_OF, *extra)


# --------------------------------------------------------------------------- the key


def test_default_key_is_made_once_after_the_run_and_reused(private_keys):
    key = resolve_signing_key()
    path = private_keys / DEFAULT_SIGNING_KEY
    assert key.generated and key.origin == path.resolve() and not path.exists()  # in memory until persisted
    key.persist()
    key.persist()  # idempotent
    assert path.stat().st_mode & 0o777 == 0o600 and private_keys.stat().st_mode & 0o777 == 0o700
    assert any("Created your signing key" in note for note in key.notes)
    again = resolve_signing_key()
    assert not again.generated and again.fingerprint == key.fingerprint
    again.persist()  # a loaded key is never rewritten
    assert load_signing_key(path).fingerprint == key.fingerprint


def test_new_key_folder_is_created_owner_only(tmp_path, monkeypatch):
    folder = tmp_path / "config" / "postkit" / "keys"
    monkeypatch.setenv("POSTKIT_KEY_DIR", str(folder))
    old = os.umask(0o022)
    try:
        resolve_signing_key().persist()
    finally:
        os.umask(old)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / DEFAULT_SIGNING_KEY).stat().st_mode & 0o777 == 0o600


def test_two_runs_creating_the_key_at_once_never_overwrite_it(private_keys):
    first, second = resolve_signing_key(), resolve_signing_key()
    first.persist()
    with pytest.raises(PostkitError, match="at the same time"):
        second.persist()
    assert load_signing_key(private_keys / DEFAULT_SIGNING_KEY).fingerprint == first.fingerprint
    assert [p.name for p in private_keys.iterdir()] == [DEFAULT_SIGNING_KEY]  # no temp file left


def test_an_open_key_folder_is_tightened_with_a_note(private_keys):
    resolve_signing_key().persist()
    os.chmod(private_keys, 0o755)
    key = resolve_signing_key()
    assert private_keys.stat().st_mode & 0o777 == 0o700
    assert any("open to other users (mode 0755)" in note and "0700" in note for note in key.notes)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_can_access_is_refused_like_ssh(tmp_path, mode):
    path = write_private(tmp_path / "steward.pem", Ed25519PrivateKey.generate(), mode=mode)
    with pytest.raises(PostkitError, match=f"accessible to other users \\(mode {mode:04o}\\)") as caught:
        load_signing_key(path)
    assert f"chmod 600 {path}" in str(caught.value)


def test_key_file_formats(tmp_path):
    private = Ed25519PrivateKey.generate()
    expected = fingerprint(private.public_key())
    pem = write_private(tmp_path / "a.pem", private)
    ssh = write_private(tmp_path / "b", private, fmt=serialization.PrivateFormat.OpenSSH)
    raw = tmp_path / "c.hex"
    raw.write_text(private.private_bytes_raw().hex() + "\n")
    os.chmod(raw, 0o600)
    for path in (pem, ssh, raw):
        assert load_signing_key(path).fingerprint == expected


def test_unusable_key_files_are_refused_without_showing_them(tmp_path):
    private = Ed25519PrivateKey.generate()
    secret_hex = private.private_bytes_raw().hex()
    encrypted = write_private(tmp_path / "enc.pem", private,
                              encryption=serialization.BestAvailableEncryption(b"correct horse"))
    rsa_key = tmp_path / "rsa.pem"
    rsa_key.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(rsa_key, 0o600)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot base64 " + secret_hex + "\n-----END PRIVATE KEY-----\n")
    os.chmod(garbage, 0o600)
    short = tmp_path / "short"
    short.write_text(secret_hex[:40])
    os.chmod(short, 0o600)
    cases = {encrypted: "encrypted", rsa_key: "not an Ed25519 key", garbage: "not a valid private key",
             short: "not a signing key file", tmp_path / "missing.pem": "not found"}
    for path, words in cases.items():
        with pytest.raises(PostkitError, match=words) as caught:
            load_signing_key(path)
        assert secret_hex[:16] not in str(caught.value) and str(path) in str(caught.value)


def test_public_key_formats(tmp_path):
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    forms = {
        "k.pub": public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "k.ssh": public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        + b" steward@host\n",
        "k.hex": public.public_bytes_raw().hex().encode() + b"\n",
    }
    for name, data in forms.items():
        (tmp_path / name).write_bytes(data)
        assert fingerprint(load_public_key(tmp_path / name)) == fingerprint(public)
    write_private(tmp_path / "private.pem", private)
    with pytest.raises(PostkitError, match="private key, not a public key"):
        load_public_key(tmp_path / "private.pem")
    (tmp_path / "junk.pub").write_text("hello")
    with pytest.raises(PostkitError, match="not a public key file"):
        load_public_key(tmp_path / "junk.pub")


def test_fingerprint_is_the_sha256_of_the_der_public_key():
    import hashlib

    public = Ed25519PrivateKey.generate().public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert fingerprint(public) == "sha256:" + hashlib.sha256(der).hexdigest()


def test_signing_key_folder_next_to_the_output_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTKIT_KEY_DIR", str(tmp_path / "out"))
    with pytest.raises(PostkitError, match="next to the output"):
        resolve_signing_key(outputs=[tmp_path / "out" / "audit.jsonl"])


# --------------------------------------------------------------------------- signing a run


def test_consent_filter_signs_the_log_and_publishes_the_public_key(corpus, tmp_path, steward):
    out = tmp_path / "out"
    result = consent_run(corpus, out, "--signing-key", steward["key"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["audit.jsonl", "audit.jsonl.sig", "audit.pub", "kept.csv"]
    assert (out / "audit.pub").read_bytes() == steward["public"].read_bytes()
    document = json.loads((out / "audit.jsonl.sig").read_text())
    head = verify_audit(out / "audit.jsonl").head
    assert document["head"] == head and document["key"] == fingerprint(load_public_key(steward["public"]))
    assert f"Signature:  {out / 'audit.jsonl.sig'}" in result.output and "--public-key" in result.output
    verified = run("audit", "verify", out / "audit.jsonl", "--output", out / "kept.csv",
                   "--public-key", steward["public"])
    assert verified.exit_code == 0 and "signed by the given public key sha256:" in verified.output
    assert "NOT AUTHENTICATED" not in verified.output


def test_first_run_creates_the_default_key_and_later_runs_reuse_it(corpus, tmp_path, private_keys):
    first = consent_run(corpus, tmp_path / "one")
    assert first.exit_code == 0
    key_file = private_keys / DEFAULT_SIGNING_KEY
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert f"Created your signing key {key_file.resolve()}" in first.stderr
    second = consent_run(corpus, tmp_path / "two")
    assert second.exit_code == 0 and "Created your signing key" not in second.stderr
    assert (tmp_path / "one" / "audit.pub").read_bytes() == (tmp_path / "two" / "audit.pub").read_bytes()


def test_a_run_that_fails_on_its_inputs_creates_no_signing_key(corpus, tmp_path, private_keys):
    corpus["posts"].write_text(POSTS_CSV + "p01,Robin,u_in,again,2021-03-01T00:00:00Z,0\n")  # duplicate post id
    result = CliRunner().invoke(main, [str(a) for a in ["consent", "filter", corpus["posts"], "--consent",
                                                        corpus["consent"], "--output", tmp_path / "out" / "k.csv",
                                                        "--audit", tmp_path / "out" / "a.jsonl", "--as-of", AS_OF]])
    assert result.exit_code == 1
    assert not (private_keys / DEFAULT_SIGNING_KEY).exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_bad_signing_key_option_stops_before_anything_is_written(corpus, tmp_path, steward):
    os.chmod(steward["key"], 0o644)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["consent", "filter", str(corpus["posts"]), "--consent", str(corpus["consent"]),
                                       "--output", str(out / "kept.csv"), "--audit", str(out / "audit.jsonl"),
                                       "--as-of", AS_OF, "--signing-key", str(steward["key"])])
    assert result.exit_code == 1 and "chmod 600" in result.stderr and "Traceback" not in result.output
    assert not out.exists()


# --------------------------------------------------------------------------- verify


def test_verify_without_public_key_says_it_proves_integrity_only(corpus, tmp_path, steward):
    out = tmp_path / "out"
    assert consent_run(corpus, out, "--signing-key", steward["key"]).exit_code == 0
    result = run("audit", "verify", out / "audit.jsonl")
    assert result.exit_code == 0
    assert "its signature matches" in result.output and "audit.pub" in result.output
    assert "NOT AUTHENTICATED" in result.output and "--public-key" in result.output
    shown = run("audit", "show", out / "audit.jsonl", "--public-key", steward["public"], "--post", "p03")
    assert shown.exit_code == 0 and "signed by the given public key" in shown.output
    assert "excluded WITHDRAWN" in shown.output
    unauthenticated = run("audit", "show", out / "audit.jsonl")
    assert unauthenticated.exit_code == 0 and "NOT AUTHENTICATED" in unauthenticated.output


@pytest.mark.parametrize("damage, words", [
    ("delete_sig", "no signature: audit.jsonl.sig is missing"),
    ("flip_sig", "signature does not match"),
    ("garble_sig", "malformed"),
    ("other_key", "signed by another key"),
])
def test_verify_and_show_fail_on_a_missing_or_wrong_signature(corpus, tmp_path, steward, damage, words):
    out = tmp_path / "out"
    assert consent_run(corpus, out, "--signing-key", steward["key"]).exit_code == 0
    log, sig = out / "audit.jsonl", out / "audit.jsonl.sig"
    public = steward["public"]
    if damage == "delete_sig":
        sig.unlink()
    elif damage == "flip_sig":
        document = json.loads(sig.read_text())
        raw = bytearray(base64.b64decode(document["signature"]))
        raw[5] ^= 1
        document["signature"] = base64.b64encode(bytes(raw)).decode()
        sig.write_text(json.dumps(document))
    elif damage == "garble_sig":
        sig.write_text("{not json")
    else:
        public = tmp_path / "other.pub"
        public.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    for command in ("verify", "show"):
        result = run("audit", command, log, "--public-key", public)
        assert result.exit_code == 1, (command, result.output)
        assert result.output.count("\n") == 1 and result.output.startswith(f"FAILED: {log}: ")
        assert words in result.output


def test_verify_without_public_key_fails_when_the_pub_is_missing_or_does_not_match(corpus, tmp_path, steward):
    out = tmp_path / "out"
    assert consent_run(corpus, out, "--signing-key", steward["key"]).exit_code == 0
    pub = out / "audit.pub"
    pub.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    result = run("audit", "verify", out / "audit.jsonl")
    assert result.exit_code == 1 and "but audit.pub beside it is" in result.output
    pub.unlink()
    result = run("audit", "verify", out / "audit.jsonl")
    assert result.exit_code == 1 and "no public key: audit.pub is missing" in result.output


def forge(out, post_id: str = "p03") -> None:
    """Flip a WITHDRAWN decision to kept, add the post to the output, recompute counts, output hash and chain."""
    log, kept = out / "audit.jsonl", out / "kept.csv"
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    row = next(line for line in POSTS_CSV.splitlines() if line.startswith(post_id + ","))
    kept.write_text(kept.read_text(encoding="utf-8") + row + "\n", encoding="utf-8")
    footer = lines[-1]
    counts = footer["counts"]
    for line in lines:
        if line.get("post_id") == post_id:
            assert line["reason"] == "WITHDRAWN"
            forum = line["forum"]
            line["decision"], line["reason"], line["records"] = "kept", "OPTED_IN", []
    counts["kept"] += 1
    counts["excluded"] -= 1
    counts["by_reason"]["WITHDRAWN"] -= 1
    counts["by_reason"]["OPTED_IN"] += 1
    counts["by_forum"][forum]["kept"] += 1
    counts["by_forum"][forum]["excluded"] -= 1
    footer["output"]["sha256"] = footer["output_sha256"] = sha256_path(kept)
    prev = "0" * 64
    text = []
    for line in lines:
        line["prev"] = prev
        line["hash"] = prev = line_hash(line)
        text.append(json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    log.write_text("\n".join(text) + "\n", encoding="utf-8")


def test_a_remade_log_fails_against_the_stewards_public_key(corpus, tmp_path, steward):
    out = tmp_path / "out"
    assert consent_run(corpus, out, "--signing-key", steward["key"]).exit_code == 0
    log, kept = out / "audit.jsonl", out / "kept.csv"
    forge(out)
    chain = verify_audit(log, output=kept)
    assert chain.ok  # the forgery is a perfect chain: only the signature can tell
    result = run("audit", "verify", log, "--output", kept, "--public-key", steward["public"])
    assert result.exit_code == 1 and "re-made or changed after it was signed" in result.output
    assert run("audit", "verify", log, "--output", kept).exit_code == 1  # the old .sig does not fit either

    # The forger re-signs with a key of their own and replaces the .pub beside the log.
    forger = SigningKey(Ed25519PrivateKey.generate(), tmp_path / "forger.pem")
    signature_path(log).write_text(sign_head(forger, chain.head))
    public_key_path(log).write_bytes(forger.public_pem())
    result = run("audit", "verify", log, "--output", kept, "--public-key", steward["public"])
    assert result.exit_code == 1 and "signed by another key" in result.output
    fooled = run("audit", "verify", log, "--output", kept)  # the .pub beside the log vouches for itself…
    assert fooled.exit_code == 0 and "NOT AUTHENTICATED" in fooled.output  # …and verify says so

    # Claiming the steward's fingerprint while signing with another key fails too: the fingerprint is signed.
    document = json.loads(signature_path(log).read_text())
    document["key"] = fingerprint(load_public_key(steward["public"]))
    signature_path(log).write_text(json.dumps(document))
    result = run("audit", "verify", log, "--output", kept, "--public-key", steward["public"])
    assert result.exit_code == 1 and "signature does not match" in result.output


def test_verify_signature_library(tmp_path):
    log = tmp_path / "audit.jsonl"
    with open(log, "wb") as handle:
        head = AuditWriter(handle, {"run": 1}).close({"output_sha256": "0" * 64})
    key = SigningKey(Ed25519PrivateKey.generate(), tmp_path / "k.pem")
    assert not verify_signature(log, head).ok  # unsigned
    signature_path(log).write_text(sign_head(key, head))
    public_key_path(log).write_bytes(key.public_pem())
    beside = verify_signature(log, head)
    assert beside.ok and not beside.authenticated and beside.key == key.fingerprint
    given = verify_signature(log, head, public_key_path(log))
    assert given.ok and given.authenticated
    assert not verify_signature(log, "f" * 64, public_key_path(log)).ok  # another head


@pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("jq")), reason="needs openssl and jq")
def test_a_reviewer_can_check_the_signature_with_openssl_and_jq(corpus, tmp_path, steward):
    """The README's commands, run as written (they need no postkit)."""
    out = tmp_path / "out"
    assert consent_run(corpus, out, "--signing-key", steward["key"]).exit_code == 0
    script = f"""set -e
cd {out}
jq -cjS 'del(.signature)' audit.jsonl.sig > signed.msg
jq -r .signature audit.jsonl.sig | base64 -d > signature.bin
openssl pkeyutl -verify -pubin -inkey {steward['public']} -rawin -in signed.msg -sigfile signature.bin
test "$(jq -r .head audit.jsonl.sig)" = "$(tail -n 1 audit.jsonl | jq -r .hash)"
echo "sha256:$(openssl pkey -pubin -in {steward['public']} -outform DER | sha256sum | cut -d' ' -f1)"
"""
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Signature Verified Successfully" in done.stdout
    assert json.loads((out / "audit.jsonl.sig").read_text())["key"] in done.stdout


def test_a_signing_key_file_beside_the_output_is_refused(corpus, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    key_file = write_private(out / "steward.pem", Ed25519PrivateKey.generate())
    result = CliRunner().invoke(main, ["consent", "filter", str(corpus["posts"]), "--consent", str(corpus["consent"]),
                                       "--output", str(out / "kept.csv"), "--audit", str(out / "audit.jsonl"),
                                       "--as-of", AS_OF, "--signing-key", str(key_file)])
    assert result.exit_code == 1 and "next to the output" in result.stderr
    assert [p.name for p in out.iterdir()] == ["steward.pem"]


def test_keys_public_gives_the_key_reviewers_verify_against(corpus, tmp_path, private_keys):
    """A steward can hand reviewers their public key before (or after) the first run; logs
    signed later verify against exactly that key."""
    exported = tmp_path / "steward.pub"
    result = run("keys", "public", "-o", exported)
    assert result.exit_code == 0 and "Created your signing key" in result.stderr
    assert (private_keys / DEFAULT_SIGNING_KEY).stat().st_mode & 0o777 == 0o600
    printed = run("keys", "public")
    assert printed.stdout.encode() == exported.read_bytes() and "Created" not in printed.stderr
    assert fingerprint(load_public_key(exported)) in printed.stderr
    assert consent_run(corpus, tmp_path / "run").exit_code == 0
    verified = run("audit", "verify", tmp_path / "run" / "audit.jsonl", "--public-key", exported)
    assert verified.exit_code == 0 and "signed by the given public key" in verified.output

