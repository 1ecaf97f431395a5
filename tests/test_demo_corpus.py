"""scripts/make_demo_corpus.py and the demo corpus committed in corpora/demo/.

The generator is a script, not part of the package, so it is imported from its path.
Fresh corpora are small (a few hundred posts in tmp_path); statistics that need more
posts are checked on the committed 3,000-post demo, which is also regenerated here to
prove it still matches the script byte for byte.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make_demo_corpus.py"
DEMO = ROOT / "corpora" / "demo"
DEMO_ARGS = dict(n_posts=3000, seed=2024, fmt="csv")  # README: --posts 3000 --seed 2024 --format csv
FILES = ("posts.csv", "consent.csv", "identifiers.jsonl")
POST_COLUMNS = ["post_id", "forum", "user_id", "thread_id", "text", "created_at"]
CONSENT_COLUMNS = ["user_id", "status", "recorded_at", "forum", "expires_at", "notice_version", "source"]
FORUMS = {"Robin", "Magpie", "Dunnock", "Sparrow", "Starling", "Chaffinch", "Jay"}
ENTITY_TYPES = {"PERSON", "USERNAME", "EMAIL", "PHONE", "POSTCODE", "NHS_NUMBER", "NI_NUMBER", "ADDRESS",
                "LOCATION", "ORG", "DATE", "AGE", "URL"}
THANK_YOU_FOR = re.compile(r"\bthank\s+you\s+for\b", re.IGNORECASE)
AS_OF = datetime(2025, 1, 1, tzinfo=timezone.utc)
# Ofcom's drama ranges as national numbers, written independently of the generator.
DRAMA_NUMBER = re.compile(
    r"07700900\d{3}|01(?:13|14|15|16|17|18|21|31|41|51|61)4960\d{3}|01914980\d{3}"
    r"|02079460\d{3}|02920180\d{3}|01632960\d{3}"
)


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_demo_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def read_posts(folder: Path) -> list[dict[str, str]]:
    with open(folder / "posts.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_consent(folder: Path) -> list[dict[str, str]]:
    with open(folder / "consent.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_spans(folder: Path) -> list[dict]:
    with open(folder / "identifiers.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def all_spans(folder: Path) -> list[dict]:
    return [span for record in read_spans(folder) for span in record["spans"]]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    gen.generate(300, 11, folder, "csv")
    return folder


@pytest.fixture(scope="module")
def demo_posts() -> list[dict[str, str]]:
    return read_posts(DEMO)


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_same_seed_gives_byte_identical_files(tmp_path, fmt):
    gen.generate(300, 5, tmp_path / "a", fmt)
    gen.generate(300, 5, tmp_path / "b", fmt)
    first, second = snapshot(tmp_path / "a"), snapshot(tmp_path / "b")
    assert sorted(first) == sorted([f"posts.{fmt}", "consent.csv", "identifiers.jsonl"])
    assert first == second


def test_different_seed_gives_different_files(tmp_path):
    gen.generate(300, 5, tmp_path / "a", "csv")
    gen.generate(300, 6, tmp_path / "b", "csv")
    first, second = snapshot(tmp_path / "a"), snapshot(tmp_path / "b")
    assert all(first[name] != second[name] for name in FILES)


def test_chunk_size_does_not_change_the_output(tmp_path, monkeypatch):
    gen.generate(300, 5, tmp_path / "a", "csv")
    monkeypatch.setattr(gen, "CHUNK_POSTS", 7)
    gen.generate(300, 5, tmp_path / "b", "csv")
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")


def test_committed_demo_matches_the_documented_command(tmp_path):
    gen.generate(DEMO_ARGS["n_posts"], DEMO_ARGS["seed"], tmp_path, DEMO_ARGS["fmt"])
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (DEMO / name).read_bytes(), (
            f"corpora/demo/{name} is out of date: rerun the command in corpora/demo/README.md"
        )
    assert "make_demo_corpus.py --posts 3000 --seed 2024 --out corpora/demo --format csv" in (
        DEMO / "README.md"
    ).read_text(encoding="utf-8")


def test_formats_hold_the_same_posts(tmp_path):
    import pyarrow.parquet as pq

    for fmt in ("csv", "jsonl", "parquet"):
        gen.generate(200, 3, tmp_path / fmt, fmt)
    rows = read_posts(tmp_path / "csv")
    for row in rows:
        row["user_id"] = row["user_id"] or None  # empty in CSV, null in typed formats
    with open(tmp_path / "jsonl" / "posts.jsonl", encoding="utf-8") as handle:
        assert [json.loads(line) for line in handle] == rows
    table = pq.read_table(tmp_path / "parquet" / "posts.parquet")
    assert table.column_names == POST_COLUMNS
    assert table.to_pylist() == rows


# --------------------------------------------------------------------------- posts


def test_posts_schema(small):
    with open(small / "posts.csv", encoding="utf-8", newline="") as handle:
        assert next(csv.reader(handle)) == POST_COLUMNS
    posts = read_posts(small)
    assert len(posts) == 300
    ids = [p["post_id"] for p in posts]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"p\d{7}", i) for i in ids)
    assert {p["forum"] for p in posts} == FORUMS
    assert all(re.fullmatch(r"u\d{6}", p["user_id"]) for p in posts if p["user_id"])
    assert 1 <= sum(not p["user_id"] for p in posts) <= 5  # deleted accounts
    assert all(re.fullmatch(r"t\d{6}", p["thread_id"]) for p in posts)
    low, high = datetime(2019, 1, 1, tzinfo=timezone.utc), datetime(2024, 7, 1, tzinfo=timezone.utc)
    for post in posts:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", post["created_at"])
        assert low <= datetime.fromisoformat(post["created_at"]) < high


def test_threads_and_forums(demo_posts):
    sizes = Counter(p["forum"] for p in demo_posts)
    assert sizes.most_common(1)[0][0] == "Robin" and min(sizes, key=sizes.get) == "Jay"
    assert sizes["Jay"] > 300
    threads = defaultdict(set)
    for post in demo_posts:
        threads[post["thread_id"]].add(post["forum"])
    assert all(len(forums) == 1 for forums in threads.values())  # a thread lives in one forum
    assert sum(len(ps) > 1 for ps in _group(demo_posts, "thread_id").values()) > len(threads) / 2
    users = _group(demo_posts, "user_id").values()
    forums_per_user = Counter(len({p["forum"] for p in ps}) for ps in users)
    assert forums_per_user[1] > 0.7 * sum(forums_per_user.values())
    assert forums_per_user[2] > 0 and forums_per_user[3] > 0
    times = [p["created_at"] for p in demo_posts]
    assert times == sorted(times)  # post ids follow time


def _group(rows: list[dict[str, str]], key: str) -> dict[str, list[dict[str, str]]]:
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        if row[key]:
            groups[row[key]].append(row)
    return groups


def test_text_is_varied(demo_posts):
    texts = [p["text"] for p in demo_posts]
    words = sorted(len(t.split()) for t in texts)
    assert words[0] >= 3 and words[-1] <= 400
    assert 35 <= words[len(words) // 2] <= 70
    assert sum(w > 200 for w in words) > 20  # a long tail
    assert len(set(texts)) > 0.9 * len(texts)
    assert sum("\n" in t for t in texts) > 100
    assert sum("’" in t for t in texts) > 100 and sum("'" in t for t in texts) > 100
    assert sum(bool(re.search(r"[\U0001F300-\U0001FAFF\u2764]", t)) for t in texts) > 100


def test_thank_you_for_share_and_length(demo_posts, small):
    for posts in (demo_posts, read_posts(small)):
        hits = [p["text"] for p in posts if THANK_YOU_FOR.search(p["text"])]
        assert 0.15 <= len(hits) / len(posts) <= 0.30
        assert sum(len(t.split()) > 30 for t in hits) > len(hits) / 2
    texts = [p["text"] for p in demo_posts]
    for variant in ("Thank you\nfor", "THANK YOU FOR", "thank  you for"):
        assert any(variant in t for t in texts), variant
    for decoy in ("thanks for", "thank u for", "thankyou for", "thank you, for", "thank you formally"):
        assert any(decoy in t.lower() for t in texts), decoy
        assert not THANK_YOU_FOR.search(decoy)


# --------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize("where", ["small", "demo"])
def test_identifier_offsets_match_the_text(where, small):
    folder = small if where == "small" else DEMO
    text = {p["post_id"]: p["text"] for p in read_posts(folder)}
    records = read_spans(folder)
    assert len({r["post_id"] for r in records}) == len(records)
    assert 0.2 <= len(records) / len(text) <= 0.4
    for record in records:
        assert record["spans"]
        post = text[record["post_id"]]
        end = 0
        for span in record["spans"]:
            assert set(span) == {"start", "end", "entity_type", "text"}
            assert span["entity_type"] in ENTITY_TYPES
            assert end <= span["start"] < span["end"] <= len(post)  # sorted, no overlaps
            assert post[span["start"]:span["end"]] == span["text"]
            end = span["end"]


def test_demo_has_every_entity_type():
    counts = Counter(span["entity_type"] for span in all_spans(DEMO))
    assert set(counts) == ENTITY_TYPES
    assert all(n >= 10 for n in counts.values()), counts


def test_word_names_appear_as_names_and_as_words(demo_posts):
    names = {s["text"] for s in all_spans(DEMO) if s["entity_type"] == "PERSON"}
    assert {"Hope", "Will", "Grace"} & names
    assert any(n.islower() for n in names)  # "my sister sarah"
    texts = " ".join(p["text"] for p in demo_posts)
    for decoy in ("I hope", "I will", "feeling blue", "116 123", "85258", "NHS 111", "999"):
        assert decoy in texts, decoy


def _national(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("440"):  # +44 (0)7700 …
        return digits[2:]
    return "0" + digits[2:] if digits.startswith("44") else digits


def _nhs_ok(value: str) -> bool:
    digits = [int(d) for d in re.sub(r"\D", "", value)]
    if len(digits) != 10:
        return False
    check = 11 - sum(d * (10 - i) for i, d in enumerate(digits[:9])) % 11
    check = 0 if check == 11 else check
    return check != 10 and check == digits[9]


@pytest.mark.parametrize("where", ["small", "demo"])
def test_identifier_values_are_fictitious_and_well_formed(where, small):
    spans = all_spans(small if where == "small" else DEMO)
    by_type = defaultdict(list)
    for span in spans:
        by_type[span["entity_type"]].append(span["text"])
    for phone in by_type["PHONE"]:
        assert DRAMA_NUMBER.fullmatch(_national(phone)), phone
    for number in by_type["NHS_NUMBER"]:
        assert re.fullmatch(r"\d{3}[ -]?\d{3}[ -]?\d{4}", number) and _nhs_ok(number), number
    for email in by_type["EMAIL"]:
        plain = re.sub(r"\s*(?:\[at\]|\(at\)|\bat\b)\s*", "@", email)
        plain = re.sub(r"\s*(?:\[dot\]|\bdot\b)\s*", ".", plain)
        assert re.fullmatch(r"[\w.]+@example\.(?:com|org|net)", plain, re.IGNORECASE), email
    for url in by_type["URL"]:
        assert re.search(r"(?:^|[/.])example\.(?:com|org|net)(?:/|$)", url), url
    for ni in by_type["NI_NUMBER"]:
        compact = ni.replace(" ", "").upper()
        assert re.fullmatch(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]", compact), ni
        assert compact[:2] not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
    for postcode in by_type["POSTCODE"]:
        assert re.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]?(?: ?\d[A-Z]{2})?", postcode.upper()), postcode
    if where == "demo":
        assert len({_national(p)[:5] for p in by_type["PHONE"]}) > 3  # mobiles and landlines
        assert any(not re.search(r"\d \d", p) for p in by_type["PHONE"])  # some unspaced
        assert any("[at]" in e or " at " in e or "(at)" in e for e in by_type["EMAIL"])


# --------------------------------------------------------------------------- consent


@pytest.mark.parametrize("where", ["small", "demo"])
def test_consent_records_are_well_formed(where, small):
    folder = small if where == "small" else DEMO
    with open(folder / "consent.csv", encoding="utf-8", newline="") as handle:
        assert next(csv.reader(handle)) == CONSENT_COLUMNS
    rows = read_consent(folder)
    for row in rows:
        assert row["status"].strip().lower().replace("-", "_") in {"opt_in", "opt_out", "withdrawn"}
        assert re.fullmatch(r"u\d{6}", row["user_id"].strip())
        recorded = parse_time(row["recorded_at"])
        if row["expires_at"]:
            assert parse_time(row["expires_at"]) >= recorded
        assert row["forum"] in {"", "*"} or row["forum"].strip().capitalize() in FORUMS
        assert row["notice_version"] and row["source"]
    if where == "demo":
        spellings = {row["status"] for row in rows}
        assert {"opt_in", "Opt-In", "OPT_OUT", "opt-out", "withdrawn", "Withdrawn"} <= spellings
        assert any(row["user_id"] != row["user_id"].strip() for row in rows)
        stamps = [row["recorded_at"] for row in rows]
        assert any(s.endswith("Z") for s in stamps) and any(s.endswith("+01:00") for s in stamps)
        assert any(datetime.fromisoformat(s).tzinfo is None for s in stamps)
        assert any(parse_time(s) > AS_OF for s in stamps)
        assert {row["forum"] for row in rows} >= {"", "*", "Robin"}
        assert [parse_time(s) for s in stamps] != sorted(parse_time(s) for s in stamps)  # shuffled


def _decide(records: list[dict[str, str]], forum: str) -> str:
    """The demo study's policy (latest applicable record at the as-of time), written out here."""
    applicable = [r for r in records
                  if r["forum"].strip() in ("", "*") or r["forum"].strip().lower() == forum.lower()]
    if not applicable:
        return "NO_RECORD"
    past = [r for r in applicable if parse_time(r["recorded_at"]) <= AS_OF]
    if not past:
        return "NOT_YET"
    latest = max(parse_time(r["recorded_at"]) for r in past)
    statuses = {r["status"].strip().lower().replace("-", "_")
                for r in past if parse_time(r["recorded_at"]) == latest}
    if len(statuses) > 1:
        return "CONFLICT"
    status = statuses.pop()
    if status == "opt_in":
        expiries = [parse_time(r["expires_at"]) for r in past
                    if r["expires_at"] and parse_time(r["recorded_at"]) == latest]
        return "EXPIRED" if expiries and min(expiries) <= AS_OF else "OPTED_IN"
    return {"opt_out": "OPTED_OUT", "withdrawn": "WITHDRAWN"}[status]


def test_demo_covers_every_consent_outcome(demo_posts):
    records = defaultdict(list)
    for row in read_consent(DEMO):
        records[row["user_id"].strip()].append(row)
    outcomes = Counter(
        _decide(records.get(p["user_id"], []), p["forum"]) if p["user_id"] else "INVALID_POST"
        for p in demo_posts
    )
    expected = {"OPTED_IN", "OPTED_OUT", "WITHDRAWN", "CONFLICT", "NOT_YET", "EXPIRED", "NO_RECORD",
                "INVALID_POST"}
    assert set(outcomes) == expected
    assert all(n >= 5 for n in outcomes.values()), outcomes
    assert 0.4 < outcomes["OPTED_IN"] / len(demo_posts) < 0.7


# --------------------------------------------------------------------------- command line


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "corpus"
    done = run_script("--posts", "120", "--seed", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and "120 posts" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # no temp files left behind
    before = snapshot(out)

    refused = run_script("--posts", "150", "--seed", "2", "--out", str(out))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "--force" in refused.stderr
    assert snapshot(out) == before

    # Any one existing output is enough to refuse.
    (out / "posts.csv").unlink()
    assert run_script("--posts", "150", "--seed", "2", "--out", str(out)).returncode == 2
    assert not (out / "posts.csv").exists()

    forced = run_script("--posts", "150", "--seed", "2", "--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(read_posts(out)) == 150


def test_users_option_and_default(tmp_path):
    summary = gen.generate(200, 4, tmp_path / "a", "csv", n_users=60)
    assert summary["users"] == 60
    assert all(int(p["user_id"][1:]) <= 60 for p in read_posts(tmp_path / "a") if p["user_id"])
    assert gen.default_users(60_000) == 10_000 and gen.default_users(10) == 50


def test_generator_helpers():
    assert gen.nhs_number_valid("943 476 5919") and not gen.nhs_number_valid("943 476 5918")
    assert gen.in_bst(int(datetime(2023, 7, 1, tzinfo=timezone.utc).timestamp()))
    assert not gen.in_bst(int(datetime(2023, 12, 1, tzinfo=timezone.utc).timestamp()))
    assert set(gen.ENTITY_TYPES) == ENTITY_TYPES
