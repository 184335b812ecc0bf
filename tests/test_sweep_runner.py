"""The sweep runner and result store: fresh processes, failures recorded, resume after SIGKILL, CLI, export."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from simulator.cli import main
from simulator.errors import PimsimError
from simulator.sweep.runner import dry_run, run_sweep
from simulator.sweep.store import SCHEMA, ResultStore, read_csv

TESTS = Path(__file__).resolve().parent
FAKE = "test_sweep_support:fake_point"
VOLATILE = ("runner_wall_s", "wall_s")  # wall-clock columns: the only ones allowed to differ between runs


def write_spec(folder: Path, name: str = "t", **extra) -> Path:
    data = {"name": name, "models": ["gpt2-small", "gpt2-medium"], "run": {"context": 128, "tokens": 2},
            "axes": [{"key": "organisation.channels", "values": [4, 8, 16]}]}
    data.update(extra)
    path = folder / f"{name}_sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def stable_table(path: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in read_csv(path)]


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture(autouse=True)
def pinned(monkeypatch):
    # other work on the tree must not change point keys between the two halves of a test
    monkeypatch.setenv("PIMSIM_CODE_VERSION", "test-pinned")
    monkeypatch.delenv("PIMSIM_FAKE_SLEEP", raising=False)
    monkeypatch.delenv("PIMSIM_FAKE_LOG", raising=False)


def test_run_records_results_and_errors_then_skips_finished(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("PIMSIM_FAKE_LOG", str(log))
    spec = write_spec(tmp_path, axes=[{"key": "organisation.channels", "values": [4, 8]},
                                      {"key": "organisation.queue_depth", "values": [33, 1, 2]}])
    out = tmp_path / "out"
    s = run_sweep(spec, out, workers=2, point_fn=FAKE, progress=False)
    assert (s.points, s.ran, s.ok, s.failed, s.already_done) == (12, 12, 4, 8, 0)
    rows = read_csv(out / "results.csv")
    assert [int(r["point"]) for r in rows] == list(range(12))
    assert {r["sweep_schema"] for r in rows} == {SCHEMA}
    by_depth = {d: [r for r in rows if r["queue_depth"] == d] for d in ("33", "1", "2")}
    assert all(r["status"] == "ok" and float(r["latency_s"]) > 0 for r in by_depth["33"])
    assert {r["error"] for r in by_depth["1"]} == {"fake: queue_depth=1 is too shallow for this point"}
    assert {r["error"] for r in by_depth["2"]} == {"worker process died (exit code 3)"}
    assert len(calls(log)) == 12
    # fresh process per point: the fake's os._exit killed only its own point
    first = stable_table(out / "results.csv")

    s2 = run_sweep(spec, out, workers=2, point_fn=FAKE, progress=False)
    assert (s2.ran, s2.already_done, s2.ok, s2.failed) == (0, 12, 4, 8)
    assert len(calls(log)) == 12  # nothing recomputed
    assert stable_table(out / "results.csv") == first

    s3 = run_sweep(spec, out, workers=2, point_fn=FAKE, progress=False, retry_failed=True)
    assert (s3.ran, s3.already_done) == (8, 4)
    assert (out / "results.parquet").is_file() == _has_pyarrow()


def _has_pyarrow() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def test_growing_the_sweep_reuses_finished_points(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("PIMSIM_FAKE_LOG", str(log))
    out = tmp_path / "out"
    run_sweep(write_spec(tmp_path), out, workers=2, point_fn=FAKE, progress=False)
    assert len(calls(log)) == 6
    bigger = write_spec(tmp_path, axes=[{"key": "organisation.channels", "values": [4, 8, 16, 32]}])
    s = run_sweep(bigger, out, workers=2, point_fn=FAKE, progress=False)
    assert (s.points, s.already_done, s.ran) == (8, 6, 2)
    assert len(read_csv(out / "results.csv")) == 8
    # a smaller spec: the table holds the current plan only; the store keeps everything
    small = write_spec(tmp_path, models=["gpt2-small"], axes=[{"key": "organisation.channels", "values": [8]}])
    s = run_sweep(small, out, workers=1, point_fn=FAKE, progress=False)
    assert (s.points, s.ran) == (1, 0)
    assert [r["cfg.channels"] for r in read_csv(out / "results.csv")] == ["8"]
    with ResultStore(out, lock=False) as store:
        assert len(store.finished()) == 8


def test_invalid_config_points_fail_without_running(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("PIMSIM_FAKE_LOG", str(log))
    spec = write_spec(tmp_path, models=["gpt2-small"], axes=[{"key": "organisation.channels", "values": [8, 99]}])
    s = run_sweep(spec, tmp_path / "out", workers=1, point_fn=FAKE, progress=False)
    assert (s.ok, s.failed, len(calls(log))) == (1, 1, 1)
    bad = read_csv(tmp_path / "out" / "results.csv")[1]
    assert bad["status"] == "error" and "organisation.channels" in bad["error"]


def test_csv_columns_are_stable_and_ordered(tmp_path):
    spec = write_spec(tmp_path)
    run_sweep(spec, tmp_path / "a", workers=2, point_fn=FAKE, progress=False)
    run_sweep(spec, tmp_path / "b", workers=1, point_fn=FAKE, progress=False)
    head_a = (tmp_path / "a" / "results.csv").read_text().splitlines()[0].split(",")
    head_b = (tmp_path / "b" / "results.csv").read_text().splitlines()[0].split(",")
    assert head_a == head_b
    assert head_a[:7] == ["sweep_schema", "sweep", "point", "key", "status", "error", "channels"]
    assert head_a.index("model") < head_a.index("cfg.channels") < head_a.index("config_hash") \
        < head_a.index("tokens_per_s") < head_a.index("latency_s")
    assert stable_table(tmp_path / "a" / "results.csv") == stable_table(tmp_path / "b" / "results.csv")
    if _has_pyarrow():
        import pyarrow.parquet as pq

        tbl = pq.read_table(tmp_path / "a" / "results.parquet")
        assert tbl.column_names == head_a
        assert tbl.schema.metadata[b"sweep_schema"] == SCHEMA.encode()
        assert tbl.num_rows == 6


def test_a_second_runner_on_the_same_directory_is_refused(tmp_path):
    with ResultStore(tmp_path / "out"):
        with pytest.raises(PimsimError, match="another pimsim sweep is running"):
            run_sweep(write_spec(tmp_path), tmp_path / "out", point_fn=FAKE, progress=False)


def test_bad_point_function_is_a_one_line_error(tmp_path):
    with pytest.raises(PimsimError, match="cannot import"):
        run_sweep(write_spec(tmp_path), tmp_path / "out", point_fn="no_such_module:f", progress=False)
    with pytest.raises(PimsimError, match="MODULE:NAME"):
        run_sweep(write_spec(tmp_path), tmp_path / "out", point_fn="nocolon", progress=False)


def _runner_cmd(spec: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "simulator.cli", "sweep", str(spec), "--out", str(out), "--workers", "2",
            "--point-function", FAKE, "--no-progress"]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def _finished_rows(out: Path) -> list[tuple]:
    db = out / "sweep.sqlite"
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute("SELECT key, request FROM results WHERE status='ok'").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def test_sigkill_then_rerun_loses_and_recomputes_nothing(tmp_path):
    spec = write_spec(tmp_path, axes=[{"key": "organisation.channels", "values": [4, 8, 16, 32, 48, 62]}])
    out = tmp_path / "out"
    log1, log2 = tmp_path / "run1.log", tmp_path / "run2.log"
    proc = subprocess.Popen(_runner_cmd(spec, out), env=_env(PIMSIM_FAKE_SLEEP="0.25", PIMSIM_FAKE_LOG=str(log1),
                                                              PIMSIM_CODE_VERSION="test-pinned"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(_finished_rows(out)) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = _finished_rows(out)
    assert 3 <= len(done_before) < 12, "the runner should have been killed mid-sweep"
    csv_rows = [r for r in read_csv(out / "results.csv") if r["status"] == "ok"]
    assert len(csv_rows) >= len(done_before) - 1  # the CSV trails the ledger by at most the point in flight

    rerun = subprocess.run(_runner_cmd(spec, out), env=_env(PIMSIM_FAKE_LOG=str(log2),
                                                             PIMSIM_CODE_VERSION="test-pinned"),
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(done_before)} already done" in rerun.stdout
    recomputed = {(c["model"], tuple(c["set"])) for c in calls(log2)}
    finished = {(json.loads(req)["model"], tuple(json.loads(req)["set"])) for _, req in done_before}
    assert not recomputed & finished, "a point finished before the kill was computed again"
    assert len(calls(log2)) == 12 - len(done_before)

    reference = tmp_path / "reference"
    clean = subprocess.run(_runner_cmd(spec, reference), env=_env(PIMSIM_CODE_VERSION="test-pinned"),
                           capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stderr
    assert stable_table(out / "results.csv") == stable_table(reference / "results.csv")
    assert len(read_csv(out / "results.csv")) == 12


def test_cli_sweep_json_dry_run_and_exit_status(tmp_path, capsys):
    spec = write_spec(tmp_path, axes=[{"key": "organisation.queue_depth", "values": [33, 1]}])
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--dry-run", "--point-function", FAKE]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "4 points, 0 finished" and " todo " in lines[0]
    assert main(["sweep", str(spec), "--out", str(out), "--point-function", FAKE, "--no-progress", "--json",
                 "--workers", "2"]) == 1  # a point failed
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert (doc["ok"], doc["failed"], doc["points"]) == (2, 2, 4)
    assert "2 point(s) failed" in captured.err
    assert main(["sweep", str(spec), "--out", str(out), "--dry-run", "--point-function", FAKE]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "4 points, 4 finished"
    assert main(["sweep", str(tmp_path / "nope.yaml"), "--out", str(out)]) == 2
    assert "sweep spec not found" in capsys.readouterr().err
    assert dry_run(spec, None, point_fn=FAKE)[-1] == "4 points, 0 finished"


def test_real_points(tmp_path):
    """2 real tiny points through the real simulator (simulator.system.api.run_point)."""
    spec = write_spec(tmp_path, models=["gpt2-small"], run={"context": 128, "tokens": 2},
                      axes=[{"key": "organisation.channels", "values": [8, 16]}])
    s = run_sweep(spec, tmp_path / "out", workers=2, progress=False)
    assert (s.ok, s.failed) == (2, 0), read_csv(tmp_path / "out" / "results.csv")[0]["error"]
    r8, r16 = read_csv(tmp_path / "out" / "results.csv")
    assert float(r16["per_token_latency_s"]) < float(r8["per_token_latency_s"])
    assert float(r8["energy_per_token_j"]) > 0 and float(r8["speedup.gpu"]) > 0
    header = list(r8)
    # the plan's config and trace hashes are the ones the simulator reports (else a result.* column appears)
    assert "result.config_hash" not in header and "result.trace_hash" not in header


def test_timeout_kills_a_slow_point(tmp_path, monkeypatch):
    monkeypatch.setenv("PIMSIM_FAKE_SLEEP", "30")
    spec = write_spec(tmp_path, models=["gpt2-small"], axes=[{"key": "organisation.channels", "values": [8]}])
    t0 = time.monotonic()
    s = run_sweep(spec, tmp_path / "out", workers=1, point_fn=FAKE, progress=False, timeout_s=0.5)
    assert time.monotonic() - t0 < 20
    assert s.failed == 1
    assert read_csv(tmp_path / "out" / "results.csv")[0]["error"] == "timed out after 0.5 s"
