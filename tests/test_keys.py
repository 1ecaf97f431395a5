"""Pseudonym keys: refused when weak, saved only when a run succeeds, kept in an owner-only folder."""

from __future__ import annotations

import json
import os
import secrets

import pytest
from click.testing import CliRunner

from conftest import AS_OF, POSTS_CSV, TEST_KEY
from postkit.cli import main
from postkit.errors import PostkitError
from postkit.pseudonym import KEY_ENV, check_key_strength, prepare_key_dir, resolve_key
from postkit.signing import DEFAULT_SIGNING_KEY

HOW = "secrets.token_hex(32)"

WEAK = {
    "passwordpassword": "passwordpassword",
    "17 zero bytes (hex)": "00" * 17,
    "one repeated letter": "a" * 40,
    "one repeated byte (hex)": "0f" * 32,
    "short repeating pattern": "xyz123" * 4,
    "long repeating pattern": "k3Yq!x9Zr2Lm" * 2,
    "alphabet": "abcdefghijklmnopqrstuvwxyz",
    "counting bytes (hex)": bytes(range(20)).hex(),
    "mostly one byte": "xxxxxxxxxxxxxxx0123456789",
}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def filter_args(corpus, out, *extra):
    return ["consent", "filter", corpus["posts"], "--consent", corpus["consent"], "--output", out / "kept.csv",
            "--audit", out / "audit.jsonl", "--as-of", AS_OF, *extra]


@pytest.mark.parametrize("name", list(WEAK))
def test_weak_keys_are_refused_with_how_to_make_one_and_never_shown(name, monkeypatch):
    monkeypatch.setenv(KEY_ENV, WEAK[name])
    with pytest.raises(PostkitError) as caught:
        resolve_key(None)
    message = str(caught.value)
    assert "does not look random" in message and HOW in message and f"${KEY_ENV}" in message
    assert WEAK[name][:8] not in message


def test_short_keys_are_refused_saying_how_long(monkeypatch):
    monkeypatch.setenv(KEY_ENV, secrets.token_hex(15))
    with pytest.raises(PostkitError, match="too short \\(15 bytes; at least 16 random bytes") as caught:
        resolve_key(None)
    assert HOW in str(caught.value)


def test_random_keys_are_accepted():
    for _ in range(3000):
        check_key_strength(secrets.token_bytes(16), "test")
    for _ in range(300):
        check_key_strength(secrets.token_urlsafe(24).encode(), "test")  # random text, not hex
    check_key_strength(bytes.fromhex(TEST_KEY), "conftest")


def test_weak_key_file_is_refused_through_the_cli(corpus, tmp_path):
    key_file = tmp_path / "weak.key"
    key_file.write_text("passwordpassword\n")
    result = invoke(*filter_args(corpus, tmp_path / "out", "--key-file", key_file))
    assert result.exit_code == 1 and "does not look random" in result.stderr and HOW in result.stderr
    assert "passwordpassword" not in result.output + result.stderr
    assert not (tmp_path / "out").exists()


def test_a_binary_key_file_error_shows_none_of_its_bytes(corpus, tmp_path):
    key_file = tmp_path / "binary.key"
    key_file.write_bytes(b"\xff\xfe\x9a" + secrets.token_bytes(29))
    result = invoke(*filter_args(corpus, tmp_path / "out", "--key-file", key_file))
    assert result.exit_code == 1 and "key file is not text" in result.stderr
    assert "0xff" not in result.stderr and "position" not in result.stderr


# --------------------------------------------------------------------------- when keys are saved


def test_consent_filter_saves_a_new_key_only_when_the_run_succeeds(corpus, tmp_path, monkeypatch, private_keys):
    monkeypatch.delenv(KEY_ENV)
    good_posts = corpus["posts"].read_text()
    corpus["posts"].write_text(POSTS_CSV + "p01,Robin,u_in,again,2021-03-01T00:00:00Z,0\n")  # duplicate post id
    failed = invoke(*filter_args(corpus, tmp_path / "bad"))
    assert failed.exit_code == 1 and "Generated a new pseudonym key" not in failed.stderr
    assert list(private_keys.iterdir()) == []  # neither a pseudonym key nor a signing key
    corpus["posts"].write_text(good_posts)
    ok = invoke(*filter_args(corpus, tmp_path / "good"))
    assert ok.exit_code == 0
    [key] = private_keys.glob("pseudonym-*.key")
    assert f"Generated a new pseudonym key: {key}" in ok.stderr
    assert key.stat().st_mode & 0o777 == 0o600


def test_consent_filter_with_a_missing_input_saves_no_key(corpus, tmp_path, monkeypatch, private_keys):
    monkeypatch.delenv(KEY_ENV)
    corpus["consent"].unlink()
    assert invoke(*filter_args(corpus, tmp_path / "out")).exit_code == 1
    assert list(private_keys.iterdir()) == []


def test_deid_with_invalid_input_saves_no_key(tmp_path, monkeypatch, private_keys):
    monkeypatch.delenv(KEY_ENV)
    source = tmp_path / "posts.csv"
    source.write_text("post_id,forum,user_id,body\np1,Robin,u1,hello\n")  # no text column
    result = invoke("deid", source, "--output", tmp_path / "deid.csv", "--processes", 1)
    assert result.exit_code == 1 and "missing column 'text'" in result.stderr
    assert list(private_keys.iterdir()) == []


@pytest.mark.slow
def test_deid_saves_a_new_key_after_a_successful_run(tmp_path, monkeypatch, private_keys):
    monkeypatch.delenv(KEY_ENV)
    source = tmp_path / "posts.csv"
    source.write_text("post_id,forum,user_id,text\np1,Robin,u1,hello there\n")
    result = invoke("deid", source, "--output", tmp_path / "deid.csv", "--processes", 1)
    assert result.exit_code == 0, result.output
    [key] = private_keys.glob("pseudonym-*.key")
    assert f"Generated a new pseudonym key: {key}" in result.stderr


STUDY = """\
[study]
name = "keys"
format = "csv"

[inputs]
posts = "posts.csv"
consent = "consent.csv"

[pipeline]
stages = {stages}

[consent]
as_of = "2025-01-01T00:00:00Z"
"""


def test_postkit_run_saves_a_new_key_only_when_the_whole_run_succeeds(corpus, tmp_path, monkeypatch, private_keys):
    monkeypatch.delenv(KEY_ENV)
    study = corpus["folder"] / "study.toml"
    # The deid stage fails on its input after the consent stage has succeeded.
    study.write_text(STUDY.format(stages='["consent", "deid"]') + '\n[deid]\ntext_columns = ["nope"]\n')
    failed = invoke("run", study, "--output", tmp_path / "run")
    assert failed.exit_code == 1 and "nope" in failed.stderr
    assert list(private_keys.glob("pseudonym-*.key")) == []
    assert "Generated a new pseudonym key" not in failed.output + failed.stderr
    study.write_text(STUDY.format(stages='["consent"]'))
    ok = invoke("run", study, "--output", tmp_path / "run")
    assert ok.exit_code == 0, ok.output + ok.stderr
    [key] = private_keys.glob("pseudonym-*.key")
    assert f"Generated a new pseudonym key: {key}" in ok.output


def test_postkit_run_signs_with_the_study_signing_key(corpus, tmp_path, private_keys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    key_file = corpus["folder"] / "steward.pem"
    key_file.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    key_file.chmod(0o600)
    public = tmp_path / "steward.pub"
    public.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    study = corpus["folder"] / "study.toml"
    study.write_text(STUDY.format(stages='["consent"]') + 'signing_key = "steward.pem"\n')
    out = tmp_path / "run"
    result = invoke("run", study, "--output", out)
    assert result.exit_code == 0, result.output + result.stderr
    assert not (private_keys / DEFAULT_SIGNING_KEY).exists()  # the study's key, not the default one
    stage = json.loads((out / "manifest.json").read_text())["stages"][0]
    assert set(stage["files"]) >= {"audit", "signature", "public_key"}
    assert stage["signing_key"].startswith("sha256:")
    assert f"Signature:  {out / 'consent' / 'audit.jsonl.sig'}" in result.output
    verified = invoke("audit", "verify", out / "consent" / "audit.jsonl", "--output", out / "consent" / "posts.csv",
                      "--public-key", public)
    assert verified.exit_code == 0 and "signed by the given public key" in verified.output


# --------------------------------------------------------------------------- the key folder


def test_a_new_key_folder_is_0700_whatever_the_umask(corpus, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    folder = tmp_path / "home" / ".config" / "postkit" / "keys"
    monkeypatch.setenv("POSTKIT_KEY_DIR", str(folder))
    old = os.umask(0o022)
    try:
        assert invoke(*filter_args(corpus, tmp_path / "out")).exit_code == 0
    finally:
        os.umask(old)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir())


def test_an_existing_open_key_folder_is_tightened_and_the_user_told(corpus, tmp_path, monkeypatch, private_keys):
    monkeypatch.delenv(KEY_ENV)
    os.chmod(private_keys, 0o755)
    result = invoke(*filter_args(corpus, tmp_path / "out"))
    assert result.exit_code == 0
    assert private_keys.stat().st_mode & 0o777 == 0o700
    assert f"Key folder {private_keys.resolve()} was open to other users (mode 0755)" in result.stderr


def test_prepare_key_dir_leaves_a_private_folder_alone(tmp_path):
    folder = tmp_path / "keys"
    assert prepare_key_dir(folder) == [] and folder.stat().st_mode & 0o777 == 0o700
    assert prepare_key_dir(folder) == []
