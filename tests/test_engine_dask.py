"""The engine layer: consent and sampling on Dask give the local run's results exactly.

The partitioned code paths are tested twice: on the local engine (always; it runs the
same partition functions in this process) and on a Dask LocalCluster (threads, no worker
processes, to stay fast; skipped when the ``dask`` extra is absent). The audit log a
partitioned run writes (one chain per partition under a signed Merkle root) must verify,
and every kind of damage must be named by partition and line.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from postkit.audit import read_audit, verify_audit, verify_signature
from postkit.audit_merkle import PartitionedAuditWriter, PartitionHead, encode_partition, leaf_data, merkle_root
from postkit.cli import main
from postkit.consent_filter import filter_consent_files
from postkit.engine import LocalEngine, TreeReducer, get_engine
from postkit.engine.consent_stage import filter_consent_partitioned, first_duplicate, id_fingerprints
from postkit.errors import PostkitError
from postkit.pseudonym import resolve_key
from postkit.sample import sample_file
from postkit.timestamps import parse_timestamp

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "corpora" / "demo"
AS_OF = parse_timestamp("2025-01-01T00:00:00Z")
NOW = parse_timestamp("2025-06-01T00:00:00Z")
CHAIN_FIELDS = ("hash", "prev", "seq", "part", "type")

try:
    import distributed  # noqa: F401

    HAVE_DASK = True
except ImportError:
    HAVE_DASK = False
needs_dask = pytest.mark.skipif(not HAVE_DASK, reason="the dask extra is not installed (pip install 'postkit[dask]')")


@pytest.fixture(scope="module")
def dask_engine():
    """One in-process LocalCluster (1 worker, 2 threads) for the whole module."""
    if not HAVE_DASK:
        pytest.skip("the dask extra is not installed")
    engine = get_engine("dask", workers=1, threads_per_worker=2, processes=False)
    yield engine
    engine.close()


@pytest.fixture
def frozen_now(monkeypatch):
    """Both runs judge later withdrawals up to the same moment."""
    import postkit.consent_filter as local_module
    import postkit.engine.consent_stage as stage_module

    monkeypatch.setattr(local_module, "now_utc", lambda: NOW)
    monkeypatch.setattr(stage_module, "now_utc", lambda: NOW)


def decisions(log: Path) -> list[dict]:
    """Every entry of a log without its chaining fields: what was decided for each post."""
    return [{k: v for k, v in line.items() if k not in CHAIN_FIELDS}
            for line in read_audit(log) if line["type"] == "entry"]


def run_both(tmp_path: Path, engine, posts: Path, consent: Path, out_ext: str = "csv", batch_size: int = 400):
    key = resolve_key(None)
    local = filter_consent_files(posts, consent, tmp_path / f"kept_local.{out_ext}", tmp_path / "local.jsonl", key,
                                 as_of=AS_OF, batch_size=batch_size)
    parted = filter_consent_files(posts, consent, tmp_path / f"kept_engine.{out_ext}", tmp_path / "engine.jsonl",
                                  key, as_of=AS_OF, batch_size=batch_size, engine=engine)
    return local, parted


def assert_same_consent(tmp_path: Path, local, parted, out_ext: str = "csv") -> None:
    assert (tmp_path / f"kept_local.{out_ext}").read_bytes() == (tmp_path / f"kept_engine.{out_ext}").read_bytes()
    assert local.counts.as_dict() == parted.counts.as_dict()
    assert local.unmatched_forums == parted.unmatched_forums
    assert decisions(tmp_path / "local.jsonl") == decisions(tmp_path / "engine.jsonl")
    result = verify_audit(tmp_path / "engine.jsonl", output=tmp_path / f"kept_engine.{out_ext}")
    assert result.ok, result.problem
    assert result.head == parted.audit_head and result.entries == local.counts.total
    assert verify_signature(tmp_path / "engine.jsonl", result.head).ok


# --------------------------------------------------------------------------- pure pieces


def test_tree_reducer_keeps_order_and_groups(monkeypatch):
    calls = []

    def concat(items):
        calls.append(len(items))
        return [x for item in items for x in item]

    reducer = TreeReducer(concat, split_every=3)
    for i in range(10):
        reducer.add([i])
    assert reducer.result() == list(range(10))
    assert max(calls) <= 3
    assert TreeReducer(concat).result() is None


def test_merkle_root_is_rfc6962():
    leaves = [b"a", b"b", b"c"]
    h = lambda data: hashlib.sha256(data).digest()  # noqa: E731
    ab = h(b"\x01" + h(b"\x00a") + h(b"\x00b"))
    assert merkle_root(leaves) == h(b"\x01" + ab + h(b"\x00c")).hex()
    assert merkle_root([b"a"]) == h(b"\x00a").hex()
    assert merkle_root([]) == hashlib.sha256(b"").hexdigest()


def test_first_duplicate_is_the_earliest_repeat_in_input_order():
    import numpy as np

    ids = [np.array(["a", "b", "c"], dtype=object), np.array(["d", "c", "a"], dtype=object)]
    rows = [np.array([1, 2, 3]), np.array([4, 5, 6])]
    assert first_duplicate([id_fingerprints(i) for i in ids], rows) == (3, 5)
    assert first_duplicate([id_fingerprints(ids[0])], [rows[0]]) is None


def test_policy_parcel_travels_and_decides_alike(corpus):
    import pickle

    from postkit.consent import ConsentPolicy, parse_consent_records
    from postkit.engine.consent_stage import PolicyParcel

    records = parse_consent_records(pd.read_csv(corpus["consent"], dtype=str, keep_default_na=False))
    here = ConsentPolicy(records, AS_OF, withdrawals_until=NOW)
    there = pickle.loads(pickle.dumps(PolicyParcel(records, AS_OF, NOW))).policy()
    for user in ("u_in", "u_out", "u_wd", "u_cf", "u_ny", "u_ex", "u_forum", "nobody"):
        for forum in ("Robin", "Jay"):
            assert here.decide(user, forum) == there.decide(user, forum)


def test_missing_extra_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(PostkitError, match=r"pip install 'postkit\[dask\]'"):
        get_engine("dask")


def test_scheduler_needs_the_dask_engine(corpus, tmp_path):
    result = CliRunner().invoke(main, ["consent", "filter", str(corpus["posts"]), "--consent", str(corpus["consent"]),
                                       "-o", str(tmp_path / "k.csv"), "--audit", str(tmp_path / "a.jsonl"),
                                       "--scheduler", "tcp://127.0.0.1:1"])
    assert result.exit_code == 1
    assert "--scheduler and --workers need --engine dask" in result.output
    assert not (tmp_path / "k.csv").exists()


# --------------------------------------------------------------------------- consent, partitioned


@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_partitioned_consent_equals_local_on_every_outcome(corpus, tmp_path, frozen_now, batch_size):
    local, parted = run_both(tmp_path, _Partitioned(), corpus["posts"], corpus["consent"],
                             batch_size=batch_size)
    assert_same_consent(tmp_path, local, parted)
    header = next(read_audit(tmp_path / "engine.jsonl"))
    assert header["audit_layout"]["name"] == "partition-merkle"


class _Partitioned(LocalEngine):
    """The local engine under another name: runs the partitioned code path in this process."""

    name = "partitioned-local"


def test_partitioned_consent_equals_local_on_the_demo_corpus(tmp_path, frozen_now):
    local, parted = run_both(tmp_path, _Partitioned(), DEMO / "posts.csv", DEMO / "consent.csv", batch_size=250)
    assert_same_consent(tmp_path, local, parted)
    footer = list(read_audit(tmp_path / "engine.jsonl"))[-1]
    assert len(footer["partitions"]) == 12  # 3,000 posts in partitions of 250


def test_partitioned_consent_reads_parquet_and_jsonl_alike(tmp_path, frozen_now):
    frame = pd.read_csv(DEMO / "posts.csv", dtype=str, keep_default_na=False)
    frame.loc[5, "user_id"] = None  # a null cell: decided cell by cell, as locally
    for ext in ("parquet", "jsonl"):
        folder = tmp_path / ext
        folder.mkdir()
        posts = folder / f"posts.{ext}"
        frame.to_parquet(posts) if ext == "parquet" else frame.to_json(posts, orient="records", lines=True)
        local, parted = run_both(folder, _Partitioned(), posts, DEMO / "consent.csv", out_ext=ext, batch_size=700)
        assert_same_consent(folder, local, parted, out_ext=ext)


def test_duplicate_post_ids_across_partitions_stop_the_run_like_locally(tmp_path, corpus):
    text = corpus["posts"].read_text(encoding="utf-8").replace("p10,Jay", "p02,Jay")  # p02 again, 2 batches later
    posts = tmp_path / "posts.csv"
    posts.write_text(text, encoding="utf-8")
    key = resolve_key(None)
    errors = []
    for engine, name in ((None, "local"), (_Partitioned(), "engine")):
        with pytest.raises(PostkitError) as caught:
            filter_consent_files(posts, corpus["consent"], tmp_path / f"{name}.csv", tmp_path / f"{name}.jsonl", key,
                                 as_of=AS_OF, batch_size=3, engine=engine)
        errors.append(caught.value)
        assert not (tmp_path / f"{name}.csv").exists() and not (tmp_path / f"{name}.jsonl").exists()
    assert errors[0].row == errors[1].row == 10  # p10 (record 10) repeats record 2
    assert errors[0].message == errors[1].message
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no scratch left behind


# --------------------------------------------------------------------------- the Merkle audit log


@pytest.fixture
def merkle_log(tmp_path, corpus, frozen_now) -> Path:
    filter_consent_files(corpus["posts"], corpus["consent"], tmp_path / "kept.csv", tmp_path / "audit.jsonl",
                         resolve_key(None), as_of=AS_OF, batch_size=4, engine=_Partitioned())
    return tmp_path / "audit.jsonl"  # header, partitions 0 (lines 2-5), 1 (6-9), 2 (10-12), footer (13)


def lines_of(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def write_lines(log: Path, objs: list[dict]) -> None:
    log.write_text("".join(json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
                           for o in objs), encoding="utf-8")


def rehash(obj: dict) -> dict:
    body = {k: v for k, v in obj.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {**body, "hash": hashlib.sha256(text.encode("utf-8")).hexdigest()}


def test_merkle_log_layout(merkle_log):
    objs = lines_of(merkle_log)
    assert [o["type"] for o in objs] == ["header"] + ["entry"] * 11 + ["footer"]
    assert [o.get("part") for o in objs[1:-1]] == [0] * 4 + [1] * 4 + [2] * 3
    footer = objs[-1]
    heads = [PartitionHead(i, p["entries"], p["head"]) for i, p in enumerate(footer["partitions"])]
    assert footer["merkle_root"] == merkle_root([leaf_data(h.partition, h.entries, h.head) for h in heads])
    assert footer["prev"] == footer["merkle_root"]
    assert objs[1]["prev"] == objs[5]["prev"] == objs[9]["prev"] == objs[0]["hash"]


def test_cli_verifies_a_merkle_log(merkle_log):
    result = CliRunner().invoke(main, ["audit", "verify", str(merkle_log), "--output",
                                       str(merkle_log.parent / "kept.csv")])
    assert result.exit_code == 0, result.output
    assert "OK:" in result.output and "11 entries" in result.output


def test_audit_show_reads_a_merkle_log(merkle_log):
    result = CliRunner().invoke(main, ["audit", "show", str(merkle_log), "--post", "p07", "--reason", "CONFLICT"])
    assert result.exit_code == 0, result.output
    assert "11 decisions" in result.output
    assert "p07  Robin" in result.output and "excluded EXPIRED" in result.output
    assert "excluded CONFLICT" in result.output


def test_an_edited_entry_is_named_by_partition_and_line(merkle_log):
    objs = lines_of(merkle_log)
    objs[6]["reason"] = "OPTED_IN"  # line 7: the second entry of partition 1
    write_lines(merkle_log, objs)
    result = verify_audit(merkle_log)
    assert not result.ok and result.line == 7
    assert result.problem.startswith("partition 1, line 7: entry was modified")
    cli = CliRunner().invoke(main, ["audit", "verify", str(merkle_log)])
    assert cli.exit_code == 1 and "partition 1, line 7" in cli.output


def test_an_edited_and_rehashed_entry_is_caught_by_the_next_line(merkle_log):
    objs = lines_of(merkle_log)
    objs[6] = rehash({**objs[6], "reason": "OPTED_IN"})
    write_lines(merkle_log, objs)
    result = verify_audit(merkle_log)
    assert not result.ok and result.line == 8
    assert result.problem.startswith("partition 1, line 8: prev does not match the hash of line 7")


def test_a_deleted_entry_is_named(merkle_log):
    objs = lines_of(merkle_log)
    del objs[10]  # line 11: second entry of partition 2
    write_lines(merkle_log, objs)
    result = verify_audit(merkle_log)
    assert not result.ok and result.line == 11
    assert "partition 2, line 11: expected seq 1 in partition 2, found 2" in result.problem


def test_a_rechained_partition_is_named_by_the_footer_table(merkle_log):
    objs = lines_of(merkle_log)
    objs[5] = rehash({**objs[5], "reason": "OPTED_IN"})  # first line of partition 1, re-chained to the end
    for i in range(6, 9):
        objs[i] = rehash({**objs[i], "prev": objs[i - 1]["hash"]})
    write_lines(merkle_log, objs)
    result = verify_audit(merkle_log)
    assert not result.ok
    assert result.problem.startswith("partition 1 (lines 6–9): its chain has 4 entries ending in")


def test_a_rewritten_footer_fails_the_root_or_the_signature(merkle_log):
    objs = lines_of(merkle_log)
    objs[5] = rehash({**objs[5], "reason": "OPTED_IN"})
    for i in range(6, 9):
        objs[i] = rehash({**objs[i], "prev": objs[i - 1]["hash"]})
    table = objs[-1]["partitions"]
    table[1]["head"] = objs[8]["hash"]
    objs[-1] = rehash({**objs[-1], "partitions": table})
    write_lines(merkle_log, objs)
    result = verify_audit(merkle_log)
    assert not result.ok and "Merkle root is not the root of the partition heads" in result.problem
    heads = [PartitionHead(i, p["entries"], p["head"]) for i, p in enumerate(table)]
    root = merkle_root([leaf_data(h.partition, h.entries, h.head) for h in heads])
    objs[-1] = rehash({**objs[-1], "merkle_root": root, "prev": root})
    write_lines(merkle_log, objs)
    result = verify_audit(merkle_log)
    assert result.ok  # a wholly consistent forgery: only the signature catches it
    assert not verify_signature(merkle_log, result.head).ok


def test_swapped_partitions_are_named(merkle_log):
    objs = lines_of(merkle_log)
    objs[1:5], objs[5:9] = objs[5:9], objs[1:5]
    write_lines(merkle_log, objs)
    result = verify_audit(merkle_log)
    assert not result.ok and result.line == 6
    assert "partition 0, line 6: comes after partition 1" in result.problem


def test_a_truncated_merkle_log_is_named(merkle_log):
    objs = lines_of(merkle_log)
    write_lines(merkle_log, objs[:-1])
    result = verify_audit(merkle_log)
    assert not result.ok and "log ends without a footer" in result.problem


def test_empty_partitions_and_the_writer_contract(tmp_path):
    import io

    handle = io.BytesIO()
    writer = PartitionedAuditWriter(handle, {"note": "x"})
    text, head = encode_partition([{"row": 1}], 0, writer.header_hash)
    part = tmp_path / "p0"
    part.write_text(text, encoding="utf-8")
    writer.append(head, part)
    writer.append(PartitionHead(1, 0, writer.header_hash), None)  # an empty partition writes no lines
    with pytest.raises(ValueError):
        writer.append(PartitionHead(3, 0, writer.header_hash), None)  # out of order
    writer.close({"counts": {}})
    log = tmp_path / "log.jsonl"
    log.write_bytes(handle.getvalue())
    result = verify_audit(log)
    assert result.ok and result.entries == 1


# --------------------------------------------------------------------------- sampling, partitioned


def sample_both(tmp_path: Path, engine, source: Path, **settings):
    outputs = []
    for name, runner in (("local", None), ("engine", engine)):
        out = tmp_path / f"sample_{name}.csv"
        result = sample_file(source, out, engine=runner, manifest_path=tmp_path / f"{name}.json",
                             labels=("posts", "sample"), **settings)
        manifest = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
        manifest.pop("created_at")
        outputs.append((out.read_bytes(), manifest, result.eligible_word_counts, result.render()))
    assert outputs[0] == outputs[1]
    return outputs[0]


@pytest.mark.parametrize("batch_size,by", [(1000, ("forum",)), (137, ("forum", "year")), (5000, ())])
def test_partitioned_sample_equals_local(tmp_path, batch_size, by):
    data, manifest, _, _ = sample_both(tmp_path, _Partitioned(), DEMO / "posts.csv", per_stratum=7, min_words=30,
                                       seed="2024", by=by, phrases=["thank you for", "thanks for"],
                                       batch_size=batch_size)
    assert manifest["totals"]["sampled"] > 0


def test_partitioned_sample_refuses_duplicate_eligible_ids(tmp_path):
    frame = pd.read_csv(DEMO / "posts.csv", dtype=str, keep_default_na=False)
    sample_file(DEMO / "posts.csv", tmp_path / "all.csv", per_stratum=10_000)  # every eligible post
    chosen = set(pd.read_csv(tmp_path / "all.csv", dtype=str)["post_id"])
    eligible = frame[frame["post_id"].isin(chosen)]
    frame.loc[eligible.index[-1], "post_id"] = frame.loc[eligible.index[0], "post_id"]
    posts = tmp_path / "posts.csv"
    frame.to_csv(posts, index=False)
    with pytest.raises(PostkitError, match="duplicate post_id") as caught:
        sample_file(posts, tmp_path / "s.csv", engine=_Partitioned(), batch_size=300, per_stratum=5)
    assert caught.value.row == int(eligible.index[-1]) + 1
    assert not (tmp_path / "s.csv").exists()


# --------------------------------------------------------------------------- on Dask


@needs_dask
def test_dask_consent_equals_local_on_the_demo_corpus(tmp_path, frozen_now, dask_engine):
    local, parted = run_both(tmp_path, dask_engine, DEMO / "posts.csv", DEMO / "consent.csv", batch_size=400)
    assert_same_consent(tmp_path, local, parted)


@needs_dask
def test_dask_log_is_the_partitioned_local_log_byte_for_byte(tmp_path, frozen_now, dask_engine):
    """Same inputs, time, keys and partition size: the same log and signed root on any engine."""
    key = resolve_key(None)
    for name, engine in (("here", _Partitioned()), ("dask", dask_engine)):
        (tmp_path / name).mkdir()
        filter_consent_files(DEMO / "posts.csv", DEMO / "consent.csv", tmp_path / name / "kept.parquet",
                             tmp_path / name / "audit.jsonl", key, as_of=AS_OF, batch_size=500, engine=engine)
    for file in ("kept.parquet", "audit.jsonl", "audit.jsonl.sig"):
        assert (tmp_path / "here" / file).read_bytes() == (tmp_path / "dask" / file).read_bytes()
    assert verify_audit(tmp_path / "dask" / "audit.jsonl").ok


@needs_dask
def test_dask_sample_equals_local_on_the_demo_corpus(tmp_path, dask_engine):
    sample_both(tmp_path, dask_engine, DEMO / "posts.csv", per_stratum=20, min_words=30, seed="7",
                by=("forum",), phrases=["thank you for"], batch_size=300)


@needs_dask
def test_dask_engine_describes_itself(dask_engine):
    assert "1 worker, 2 threads on a LocalCluster" == dask_engine.describe()


@needs_dask
def test_unreachable_scheduler_is_one_clear_error():
    with pytest.raises(PostkitError, match="cannot reach the Dask scheduler"):
        get_engine("dask", scheduler="tcp://127.0.0.1:9")


@needs_dask
@pytest.mark.slow
def test_cli_on_a_dask_local_cluster(tmp_path):
    """The real CLI with worker processes: same kept file and sample as --engine local."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outputs = {}
    for engine in ("local", "dask"):
        out = tmp_path / engine
        out.mkdir()
        base = [sys.executable, "-m", "postkit"]
        extra = ["--engine", engine] + (["--workers", "2"] if engine == "dask" else [])
        consent = subprocess.run(base + ["consent", "filter", str(DEMO / "posts.csv"), "--consent",
                                         str(DEMO / "consent.csv"), "-o", str(out / "kept.parquet"), "--audit",
                                         str(out / "audit.jsonl"), "--as-of", "2025-01-01", "--batch-size", "500",
                                         "--ignore-later-withdrawals"] + extra,
                                 env=env, capture_output=True, text=True, timeout=300)
        assert consent.returncode == 0, consent.stderr
        sample = subprocess.run(base + ["sample", str(out / "kept.parquet"), "-o", str(out / "sample.csv"),
                                        "--per-forum", "5", "--batch-size", "300"] + extra,
                                env=env, capture_output=True, text=True, timeout=300)
        assert sample.returncode == 0, sample.stderr
        if engine == "dask":
            assert "Dask: 2 workers" in consent.stderr and "Sample:" in sample.stdout
        verify = subprocess.run(base + ["audit", "verify", str(out / "audit.jsonl"), "--output",
                                        str(out / "kept.parquet")], env=env, capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout
        outputs[engine] = ((out / "kept.parquet").read_bytes(), (out / "sample.csv").read_bytes())
    assert outputs["local"] == outputs["dask"]
