"""Kills, stopping signals and concurrent writers never leave data behind or lose work.

Stopping signals (SIGTERM, SIGHUP, Ctrl+C) unwind a command and its temporary files
are removed; what SIGKILL leaves is removed by the next writer of the same output;
outputs and their logs are published so that a new output never sits beside an old
log; and a second writer of an output or a run folder stops with a clear message.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import AS_OF, snapshot
from postkit.cli import main
from postkit.errors import PostkitError
from postkit.io import OutputSet, read_table, stale_temps, write_table
from postkit.locks import EXCLUSIVE, SHARED, PathLock, lock_file_for
from postkit.signals import stop_on_signals

ROOT = Path(__file__).resolve().parents[1]
FRAME = pd.DataFrame({"post_id": ["p1", "p2"], "text": ["one", "two"]})


def leftovers(folder: Path) -> list[str]:
    """postkit's temporary, moved-aside and lock files anywhere under ``folder``."""
    return sorted(p.name for p in folder.rglob("*")
                  if p.name.endswith((".tmp-postkit", ".tmp-postkit.arrow", ".old-postkit", ".lock-postkit")))


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# --------------------------------------------------------------------------- stale temporary files


def test_a_writer_removes_what_killed_writers_of_its_output_left(tmp_path):
    out = tmp_path / "out.csv"
    ours = [".out.csv.ab12cd34.tmp-postkit", ".out.csv.q_x9z0y1.tmp-postkit",  # older tempfile names
            ".out.csv.ab12cd34.tmp-postkit.arrow", ".out.csv.old-postkit"]
    theirs = [".out.csv.bak.ab12cd34.tmp-postkit", ".other.csv.ab12cd34.tmp-postkit", "notes.txt",
              ".out.csv.toolongname.tmp-postkit"]
    for name in ours + theirs:
        (tmp_path / name).write_text("10 MB of kept posts with raw user ids")
    (tmp_path / ".out.csv.ffff0000.tmp-postkit").mkdir()  # a datasets writer's temporary folder
    (tmp_path / ".out.csv.ffff0000.tmp-postkit" / "data.arrow").write_text("x")
    write_table(FRAME, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(theirs + ["out.csv"])
    assert read_table(out)["post_id"].tolist() == ["p1", "p2"]


def test_stale_files_of_a_locked_output_are_left_alone(tmp_path):
    """They may be a live writer's: only the lock holder may remove them."""
    out = tmp_path / "out.parquet"
    live = tmp_path / ".out.parquet.0123abcd.tmp-postkit"
    live.write_text("being written")
    with PathLock(out, purpose="postkit consent filter"):
        with pytest.raises(PostkitError, match=r"out\.parquet: in use by postkit consent filter \(pid \d+"):
            write_table(FRAME, out)
    assert live.read_text() == "being written" and not out.exists()
    assert stale_temps(out) == [live]


# --------------------------------------------------------------------------- publishing output and log together


def _old_outputs(tmp_path: Path) -> tuple[Path, Path]:
    out, log = tmp_path / "kept.parquet", tmp_path / "audit.jsonl"
    write_table(FRAME.head(1), out)
    log.write_text("old log\n")
    return out, log


def _write_new(out: Path, log: Path) -> None:
    with OutputSet() as outputs:
        outputs.table(out).write(FRAME)
        _, log_temp = outputs.file(log)
        log_temp.write_text("new log\n")


def _state(out: Path, log: Path) -> tuple[str, str]:
    output = "missing" if not out.exists() else ("new" if len(read_table(out)) == 2 else "old")
    audit = "missing" if not log.exists() else log.read_text().split()[0]
    return output, audit


def test_a_kill_at_any_moment_of_a_commit_never_leaves_a_new_output_beside_an_old_log(tmp_path, monkeypatch):
    """SIGKILL cannot be caught: the state after each rename is what a kill there would leave."""
    out, log = _old_outputs(tmp_path)
    real_replace = os.replace
    states = []

    def replace_and_look(src, dst):
        real_replace(src, dst)
        states.append(_state(out, log))

    monkeypatch.setattr("os.replace", replace_and_look)
    _write_new(out, log)
    assert states[-1] == ("new", "new") and len(states) == 4  # two moved aside, two renamed in
    for output, audit in states:
        assert not (audit == "old" and output != "old"), states
        assert not (audit == "new" and output != "new"), states  # a log present describes its output


@pytest.mark.parametrize("failing_call", [1, 2, 3, 4])
def test_a_failed_rename_puts_the_old_output_and_log_back(tmp_path, monkeypatch, failing_call):
    out, log = _old_outputs(tmp_path)
    real_replace = os.replace
    calls = []

    def fail_once(src, dst):
        calls.append(dst)
        if len(calls) == failing_call:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr("os.replace", fail_once)
    with pytest.raises(OSError):
        _write_new(out, log)
    assert _state(out, log) == ("old", "old")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.jsonl", "kept.parquet"]  # no temp, aside or lock


def _in_own_process(code: str) -> str:
    """Run ``code`` in a fresh single-threaded Python and return what it printed.

    Tests that send a signal to their own process run this way: inside pytest, threads left
    by other tests can take a process-directed signal, so its Python handler may run only
    after the block under test, and a stray Stopped would end the whole session."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_stopping_signal_during_a_commit_waits_until_every_output_is_in_place(tmp_path):
    out, log = _old_outputs(tmp_path)
    printed = _in_own_process(f"""
        import os, signal
        from pathlib import Path
        import pandas as pd
        from postkit.io import OutputSet
        from postkit.signals import Stopped, stop_on_signals
        out, log = Path({str(out)!r}), Path({str(log)!r})
        real_replace = os.replace
        def replace_with_a_signal(src, dst):
            os.kill(os.getpid(), signal.SIGTERM)  # arrives between renames
            real_replace(src, dst)
        os.replace = replace_with_a_signal
        try:
            with stop_on_signals():
                with OutputSet() as outputs:
                    outputs.table(out).write(pd.DataFrame({{"post_id": ["p1", "p2"], "text": ["one", "two"]}}))
                    _, log_temp = outputs.file(log)
                    log_temp.write_text("new log\\n")
            print("not stopped")
        except Stopped as stopped:
            print(stopped.signum, stopped.exit_code)
    """)
    assert printed == f"{int(signal.SIGTERM)} 143"
    assert _state(out, log) == ("new", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.jsonl", "kept.parquet"]


def test_publishing_a_folder_is_not_cut_in_half_by_a_signal(tmp_path):
    """The run folder: between moving the old one aside and renaming the new one in."""
    final, temp = tmp_path / "run", tmp_path / ".run.0000abcd.tmp-postkit"
    for folder, text in ((final, "old"), (temp, "new")):
        folder.mkdir()
        (folder / "manifest.json").write_text(text)
    printed = _in_own_process(f"""
        import os, signal
        from pathlib import Path
        from postkit.io import publish
        from postkit.signals import Stopped, stop_on_signals
        real_replace = os.replace
        os.replace = lambda s, d: (os.kill(os.getpid(), signal.SIGINT), real_replace(s, d))
        try:
            with stop_on_signals():
                publish(Path({str(temp)!r}), Path({str(final)!r}))
            print("not stopped")
        except Stopped as stopped:
            print(stopped.signum)
    """)
    assert printed == str(int(signal.SIGINT))
    assert (final / "manifest.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


# --------------------------------------------------------------------------- signal handling


def test_deferred_signals_take_effect_when_the_block_ends():
    printed = _in_own_process("""
        import os, signal
        from postkit.signals import Stopped, deferred, stop_on_signals
        reached = []
        with stop_on_signals():
            try:
                with deferred():
                    os.kill(os.getpid(), signal.SIGHUP)
                    reached.append("after the signal")
                reached.append("never")
            except Stopped as stopped:
                print(reached, stopped.exit_code)
    """)
    assert printed == "['after the signal'] 129"


def test_handlers_are_restored_and_ignored_signals_stay_ignored():
    before_term = signal.getsignal(signal.SIGTERM)
    previous_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not before_term
        assert signal.getsignal(signal.SIGTERM) is before_term
    finally:
        signal.signal(signal.SIGHUP, previous_hup)


def test_forked_workers_die_quietly_on_sigterm():
    """A multiprocessing pool (de-identification) terminates its forked workers with SIGTERM."""
    import multiprocessing

    with stop_on_signals():
        worker = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
        worker.start()
        time.sleep(0.2)
        worker.terminate()
        worker.join(10)
    assert worker.exitcode == -signal.SIGTERM  # killed by the signal, not a traceback and exit 1


# --------------------------------------------------------------------------- locks, in process


STUDY = f"""\
[study]
name = "locks"

[inputs]
posts = "posts.csv"
consent = "consent.csv"

[pipeline]
stages = ["consent"]

[consent]
as_of = "{AS_OF}"
"""


def study_file(folder: Path) -> Path:
    path = folder / "study.toml"
    path.write_text(STUDY)
    return path


@pytest.mark.parametrize("holder, mode", [("postkit run", EXCLUSIVE), ("postkit review serve", SHARED)])
def test_a_run_into_a_locked_run_folder_stops_and_changes_nothing(corpus, tmp_path, holder, mode):
    study, out = study_file(corpus["folder"]), tmp_path / "run"
    assert invoke("run", study, "--output", out).exit_code == 0
    before = snapshot(out)
    with PathLock(out, mode=mode, purpose=holder):
        result = invoke("run", study, "--output", out)
    assert result.exit_code == 1
    assert f"in use by {holder} (pid {os.getpid()}" in result.stderr and len(result.stderr.splitlines()) == 1
    assert snapshot(out) == before and leftovers(tmp_path) == []


def test_consent_filter_into_an_output_being_written_stops(corpus, tmp_path):
    out = tmp_path / "kept.parquet"
    with PathLock(out, purpose="postkit consent filter"):
        result = invoke("consent", "filter", corpus["posts"], "--consent", corpus["consent"], "--output", out,
                        "--audit", tmp_path / "audit.jsonl", "--as-of", AS_OF)
    assert result.exit_code == 1 and "in use by postkit consent filter" in result.stderr
    assert not out.exists() and not (tmp_path / "audit.jsonl").exists()


def test_decisions_made_during_a_run_stop_it_before_the_old_folder_is_replaced(corpus, tmp_path, monkeypatch):
    """A writer that ignores the lock (an older postkit, a script) records a decision mid-run."""
    from postkit import pipeline

    study, out = study_file(corpus["folder"]), tmp_path / "run"
    assert invoke("run", study, "--output", out).exit_code == 0
    store = out / "tag" / "coding.sqlite"
    store.parent.mkdir()
    with sqlite3.connect(store) as conn:
        conn.execute("CREATE TABLE decisions (unit_id TEXT, coder TEXT)")
    consent_stage = pipeline.STAGES["consent"]

    def consent_then_a_decision(context, config):
        result = consent_stage(context, config)
        with sqlite3.connect(store) as conn:
            conn.execute("INSERT INTO decisions VALUES ('u1', 'amy')")
        return result

    monkeypatch.setitem(pipeline.STAGES, "consent", consent_then_a_decision)
    result = invoke("run", study, "--output", out)
    assert result.exit_code == 1 and "1 coder/reviewer decision(s)" in result.stderr
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT coder FROM decisions").fetchall() == [("amy",)]
    assert leftovers(tmp_path) == []


def test_a_run_folder_left_aside_by_a_killed_run_is_restored(corpus, tmp_path):
    """Killed between moving the old run folder aside and renaming the new one in."""
    study, out = study_file(corpus["folder"]), tmp_path / "run"
    assert invoke("run", study, "--output", out).exit_code == 0
    before = snapshot(out)
    os.replace(out, tmp_path / ".run.old-postkit")
    (tmp_path / ".run.1234abcd.tmp-postkit" / "consent").mkdir(parents=True)  # the new, half-built one
    corpus["consent"].write_text(corpus["consent"].read_text() + "u_z,maybe,2021-01-01,,,,\n")
    result = invoke("run", study, "--output", out)
    assert result.exit_code == 1 and "unknown status" in result.stderr
    assert "Restored the previous run folder" in result.output
    assert snapshot(out) == before and leftovers(tmp_path) == []


# --------------------------------------------------------------------------- real processes, real signals


def big_corpus(folder: Path, rows: int = 150_000) -> dict[str, Path]:
    """A multi-MB corpus everyone consented to: filtering it takes a few seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    posts, consent = folder / "posts.csv", folder / "consent.csv"
    words = "thank you all for listening as it really helped me get through the week " * 2
    with open(posts, "w", encoding="utf-8") as handle:
        handle.write("post_id,forum,user_id,text,created_at\n")
        handle.writelines(f"p{i},Robin,u{i % 997},{words}{i},2021-02-01T10:00:00Z\n" for i in range(rows))
    with open(consent, "w", encoding="utf-8") as handle:
        handle.write("user_id,status,recorded_at\n")
        handle.writelines(f"u{i},opt_in,2020-01-01T00:00:00Z\n" for i in range(997))
    (folder / "study.toml").write_text(STUDY)
    return {"posts": posts, "consent": consent, "study": folder / "study.toml"}


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> dict[str, Path]:
    return big_corpus(tmp_path_factory.mktemp("big"))


def start(*args, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "postkit.cli", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_filter(big: dict[str, Path], out: Path, cwd: Path) -> subprocess.Popen:
    return start("consent", "filter", big["posts"], "--consent", big["consent"], "--output", out,
                 "--audit", out.with_name("audit.jsonl"), "--as-of", AS_OF, "--batch-size", "5000", "-q",
                 cwd=cwd)


def wait_for_temp(process: subprocess.Popen, folder: Path, timeout: float = 60) -> list[Path]:
    """Wait until the process has a temporary file in ``folder`` (it is mid-run), and return them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in folder.glob(".*") if p.name.endswith(".tmp-postkit")]
        if found:
            return found
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("no temporary file appeared")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stopped_consent_filter_removes_its_temporary_files(big, tmp_path, signum):
    out = tmp_path / "out" / "kept.parquet"
    process = start_filter(big, out, tmp_path)
    wait_for_temp(process, out.parent)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum
    assert f"stopped by {signal.Signals(signum).name}" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in out.parent.iterdir()) == []  # no output, no log, no temp, no lock


@pytest.mark.slow
def test_what_sigkill_leaves_is_removed_by_the_next_run(big, corpus, tmp_path):
    out = tmp_path / "out" / "kept.parquet"
    process = start_filter(big, out, tmp_path)
    wait_for_temp(process, out.parent)
    time.sleep(0.3)  # let it write some kept posts
    process.kill()
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert [p for p in out.parent.iterdir() if p.name.endswith(".tmp-postkit")]  # the kill left data behind
    result = invoke("consent", "filter", corpus["posts"], "--consent", corpus["consent"], "--output", out,
                    "--audit", out.with_name("audit.jsonl"), "--as-of", AS_OF)
    assert result.exit_code == 0, result.stderr
    assert leftovers(tmp_path) == [] and read_table(out)["post_id"].tolist() == ["p01", "p09", "p11"]


@pytest.mark.slow
def test_what_sigkill_leaves_beside_a_run_folder_is_removed_by_the_next_run(big, corpus, tmp_path):
    out = tmp_path / "run"
    process = start("run", big["study"], "--output", out, "-q", cwd=tmp_path)
    wait_for_temp(process, tmp_path)
    time.sleep(0.5)
    process.kill()
    process.communicate(timeout=60)
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".tmp-postkit")]
    result = invoke("run", study_file(corpus["folder"]), "--output", out)
    assert result.exit_code == 0, result.stderr
    assert "Removed 1 temporary file(s)" in result.output and leftovers(tmp_path) == []


@pytest.mark.slow
def test_a_stopped_run_keeps_the_previous_run_folder(big, corpus, tmp_path):
    out = tmp_path / "run"
    assert invoke("run", study_file(corpus["folder"]), "--output", out).exit_code == 0
    before = snapshot(out)
    process = start("run", big["study"], "--output", out, "-q", cwd=tmp_path)
    wait_for_temp(process, tmp_path)
    process.terminate()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143 and "stopped by SIGTERM" in stderr
    assert snapshot(out) == before and leftovers(tmp_path) == []


@pytest.mark.slow
def test_two_simultaneous_runs_into_one_folder_only_one_succeeds(big, tmp_path):
    out = tmp_path / "run"
    first = start("run", big["study"], "--output", out, "-q", cwd=tmp_path)
    wait_for_temp(first, tmp_path)
    second = start("run", big["study"], "--output", out, "-q", cwd=tmp_path)
    _, second_err = second.communicate(timeout=120)
    _, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err
    assert second.returncode == 1
    assert f"in use by postkit run (pid {first.pid} on " in second_err and len(second_err.splitlines()) == 1
    assert len(read_table(out / "consent" / "posts.parquet")) == 150_000 and leftovers(tmp_path) == []


@pytest.mark.slow
def test_two_simultaneous_filters_into_one_output_only_one_succeeds(big, tmp_path):
    out = tmp_path / "out" / "kept.parquet"
    first = start_filter(big, out, tmp_path)
    wait_for_temp(first, out.parent)
    second = start_filter(big, out, tmp_path)
    _, second_err = second.communicate(timeout=120)
    _, first_err = first.communicate(timeout=120)
    assert (first.returncode, second.returncode) == (0, 1), first_err + second_err
    assert f"in use by postkit consent filter (pid {first.pid} on " in second_err
    assert {"kept.parquet", "audit.jsonl"} <= {p.name for p in out.parent.iterdir()}
    assert leftovers(out.parent) == [] and not lock_file_for(out).exists()
