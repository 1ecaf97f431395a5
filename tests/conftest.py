"""Shared fixtures: a tiny corpus covering every consent outcome, and a private key setup."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

TEST_KEY = "842cd62cb9d3e96211b1cc849b82767b9a185b56402225745bb3da7d633122b7"  # random-looking: weak keys are refused

POSTS_CSV = textwrap.dedent(
    """\
    post_id,forum,user_id,text,created_at,likes
    p01,Robin,u_in,"Thank you for listening, it helped.",2021-02-01T10:00:00Z,3
    p02,Robin,u_out,I had a rough day,2021-02-02T10:00:00Z,0
    p03,Magpie,u_wd,Old post from before I withdrew,2020-01-01T10:00:00Z,1
    p04,Magpie,u_none,Nobody asked me,2021-02-03T10:00:00Z,
    p05,Jay,u_cf,Mixed signals,2021-02-04T10:00:00Z,2
    p06,Jay,u_ny,Too early,2021-02-05T10:00:00Z,0
    p07,Robin,u_ex,"Expired, sadly",2021-02-06T10:00:00Z,5
    p08,Robin,,deleted account,2021-02-07T10:00:00Z,0
    p09,Magpie,u_in,"Second post
    over two lines",2021-02-08T10:00:00Z,7
    p10,Jay,u_forum,Only Robin was ok,2021-02-09T10:00:00Z,0
    p11,Robin,u_forum,Robin is fine,2021-02-10T10:00:00Z,0
    """
)

CONSENT_CSV = textwrap.dedent(
    """\
    user_id,status,recorded_at,forum,expires_at,notice_version,source
    u_in,opt_in,2020-05-01T09:00:00Z,,,v1,signup_form
    u_out,Opt-Out,2020-05-01T09:00:00Z,*,,v1,settings_page
    u_wd,opt_in,2019-05-01T09:00:00Z,,,v1,signup_form
    u_wd,withdrawn,2023-05-01T10:00:00+01:00,,,v2,email_reply
    u_cf,opt_in,2022-01-01T00:00:00Z,,,v2,signup_form
    u_cf,opt_out,2022-01-01T00:00:00Z,,,v2,moderator
     u_ny ,opt_in,2025-06-01T00:00:00,,,v2,signup_form
    u_ex,OPT_IN,2021-01-01T00:00:00Z,,2024-06-01T00:00:00Z,v2,signup_form
    u_forum,opt_in,2021-01-01T00:00:00Z,Robin,,v2,settings_page
    """
)

EXPECTED_REASONS = {  # noqa: E501
    "p01": "OPTED_IN", "p02": "OPTED_OUT", "p03": "WITHDRAWN", "p04": "NO_RECORD", "p05": "CONFLICT",
    "p06": "NOT_YET", "p07": "EXPIRED", "p08": "INVALID_POST", "p09": "OPTED_IN", "p10": "NO_RECORD",
    "p11": "OPTED_IN",
}
AS_OF = "2025-01-01T00:00:00Z"


@pytest.fixture(autouse=True)
def private_keys(tmp_path_factory, monkeypatch):
    """No test reads the developer's real key or writes keys into their home folder."""
    key_dir = tmp_path_factory.mktemp("keys")
    monkeypatch.setenv("POSTKIT_KEY_DIR", str(key_dir))
    monkeypatch.setenv("POSTKIT_PSEUDONYM_KEY", TEST_KEY)
    return key_dir


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """No test writes search indexes into the developer's ~/.cache (one cache per test session)."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("postkit-cache")
        patch.setenv("POSTKIT_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture
def corpus(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    posts = folder / "posts.csv"
    consent = folder / "consent.csv"
    posts.write_text(POSTS_CSV, encoding="utf-8")
    consent.write_text(CONSENT_CSV, encoding="utf-8")
    return {"posts": posts, "consent": consent, "folder": folder}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under a folder, to prove inputs were not touched."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
