"""The bad-input corpus (tests/bad_inputs/cases.yaml): every case ends with a non-zero status and one short
message naming the file, field or flag at fault; no traceback, no hang, no memory blow-up, no silent result.

Cases run in-process through `simulator.cli.main(argv)` (start-up costs ~1 s per process; 500 cases would take
minutes), each under a wall-clock alarm and an address-space limit; cases marked `mode: subprocess` run as
real `python -m simulator.cli` processes under `resource.setrlimit`. The `test_row_*` tests name the rows of
issue 12's table: each runs that row's corpus cases plus what needs a real process (closed pipes, Ctrl-C, a
full disk).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from simulator.cli import main

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "bad_inputs"
ROOT = HERE.parent
TIME_LIMIT_S = 60  # per case; the slowest case takes ~1 s
MEMORY_LIMIT = 2 * 2**30  # bytes of address space a case may add (in-process) / use (subprocess: + start-up)
MAX_CHARS, MAX_LINES = 400, 3


def _expand(text: str) -> str:
    """`{huge:TEXT*N}` -> TEXT repeated N times (long or deep inputs without storing them)."""
    return re.sub(r"\{huge:(.*?)\*(\d+)\}", lambda m: m.group(1) * int(m.group(2)), text)


def _load_cases() -> list[dict]:
    data = yaml.safe_load((CORPUS / "cases.yaml").read_text(encoding="utf-8"))
    cases = list(data["cases"])
    for fam in data["families"]:
        for key in fam["keys"]:
            for value in fam["values"]:
                def fill(s, key=key, value=value):
                    return s.replace("{key}", str(key)).replace("{value}", str(value))
                argv = [fill(a) for a in fam["argv"]]
                if fam["id"] == "trace-value":  # the subcommand may be two words
                    argv = argv[0].split() + argv[1:]
                case = {"id": f"{fam['id']}:{key}={value}"[:120], "row": fam["row"], "argv": argv,
                        "expect": fill(fam["expect"]), "files": fam.get("files", {})}
                if "trace" in fam:
                    case["trace"] = {**fam["trace"], "raw": str(value)}
                cases.append(case)
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return cases


CASES = _load_cases()


@pytest.fixture(scope="session")
def good_trace_lines() -> list[str]:
    from simulator.trace import derive_trace, dumps

    return dumps(derive_trace("gpt2-small")).splitlines()


def _edited_trace(lines: list[str], edit: dict) -> str:
    out = list(lines)
    rec = json.loads(out[edit["line"]])
    *parents, last = [_expand(p) if isinstance(p, str) else p for p in edit["path"]]
    node = rec
    for p in parents:
        node = node[p]
    if edit.get("delete"):
        del node[last]
    else:
        node[last] = "@@RAW@@"
    text = json.dumps(rec, sort_keys=True)
    out[edit["line"]] = text.replace('"@@RAW@@"', _expand(edit["raw"])) if not edit.get("delete") else text
    return "\n".join(out) + "\n"


def _prepare(case: dict, folder: Path, good: list[str]) -> None:
    (folder / "ok.isr").write_bytes((CORPUS / "ok.isr").read_bytes())
    (folder / "good.jsonl").write_text("\n".join(good) + "\n")
    (folder / "empty").write_bytes(b"")
    (folder / "afile").write_text("not a directory, not an npz\n")
    (folder / "adir").mkdir()
    for name, text in (case.get("files") or {}).items():
        text = _expand(text)
        try:
            data = text.encode("latin-1")  # \u00ff in the YAML is the byte 0xff
        except UnicodeEncodeError:
            data = text.encode("utf-8")
        (folder / name).write_bytes(data)
    if "trace" in case:
        (folder / "t.jsonl").write_text(_edited_trace(good, case["trace"]))


class _Timeout(BaseException):  # not an Exception: nothing in pimsim may swallow it
    pass


def _alarm(signum, frame):
    raise _Timeout()


def _vm_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * resource.getpagesize()


def run_in_process(argv: list[str]) -> tuple[int, str, str, float]:
    """(status, stdout, stderr, seconds) of `main(argv)` under the time and address-space limits."""
    out, err = io.StringIO(), io.StringIO()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _vm_bytes() + MEMORY_LIMIT
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    old = signal.signal(signal.SIGALRM, _alarm)
    t0 = time.perf_counter()
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        signal.alarm(TIME_LIMIT_S)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(argv)
    except _Timeout:
        status = "timeout"
    finally:
        signal.alarm(0)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, old)
    return status, out.getvalue(), err.getvalue(), time.perf_counter() - t0


def _limits() -> None:  # preexec_fn of a corpus subprocess
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT + 2**30, MEMORY_LIMIT + 2**30))  # + interpreter and numba


def run_subprocess(argv: list[str], cwd: Path, **kw) -> tuple[int, str, str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "simulator.cli", *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=TIME_LIMIT_S, preexec_fn=_limits, env=env, check=False, **kw)
    return proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0


def check_case(case: dict, folder: Path, good: list[str]) -> float:
    _prepare(case, folder, good)
    argv = [_expand(a) for a in case["argv"]]
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        if case.get("mode") == "subprocess":
            status, out, err, secs = run_subprocess(argv, folder)
        else:
            status, out, err, secs = run_in_process(argv)
    finally:
        os.chdir(cwd)
    text = (err + out).strip()
    where = f"{case['id']}: {text[:300]!r}"
    assert status != "timeout", f"{case['id']}: no answer within {TIME_LIMIT_S} s"
    assert status != 0, f"{case['id']}: accepted silently (status 0): {out[:200]!r}"
    assert "Traceback" not in text, where
    assert "out of memory" not in text, where
    lines = [line for line in text.splitlines() if line.strip()]
    assert 1 <= len(lines) <= MAX_LINES, where
    assert all(len(line) <= MAX_CHARS for line in lines), f"{case['id']}: a line is {max(map(len, lines))} chars"
    assert case["expect"].lower() in text.lower(), f"{case['id']}: message does not name {case['expect']!r}: {text!r}"
    return secs


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input_corpus(case, tmp_path, good_trace_lines):
    check_case(case, tmp_path, good_trace_lines)


def test_corpus_covers_every_row_and_is_large():
    rows = {c["row"] for c in CASES}
    assert len(CASES) >= 300
    assert rows >= set(range(1, 15)) - {6}, sorted(rows)  # row 6 (pipes, Ctrl-C, full disk) is test_row_06
    commands = {c["argv"][0] for c in CASES if c["argv"]}
    assert commands >= {"run", "reproduce", "replay", "export-trace", "validate-trace", "baseline", "functional",
                        "sweep", "plot"}


# ------------------------------------------------------------------------------------------ the 15 rows
def _row(n: int, tmp_path: Path, good: list[str]) -> None:
    cases = [c for c in CASES if c["row"] == n]
    assert cases
    for i, case in enumerate(cases):
        folder = tmp_path / str(i)
        folder.mkdir()
        check_case(case, folder, good)


def test_row_01_timing_over_refresh_interval_is_refused_not_a_hang(tmp_path, good_trace_lines):
    _row(1, tmp_path, good_trace_lines)


def test_row_02_huge_context_limit_fails_fast_and_small(tmp_path, good_trace_lines):
    _row(2, tmp_path, good_trace_lines)


def test_row_03_nan_null_huge_int_deep_nesting_in_traces(tmp_path, good_trace_lines):
    _row(3, tmp_path, good_trace_lines)


def test_row_04_tiny_tck_is_a_range_error(tmp_path, good_trace_lines):
    _row(4, tmp_path, good_trace_lines)


def test_row_05_outputs_checked_before_the_simulation(tmp_path, good_trace_lines, monkeypatch):
    _row(5, tmp_path, good_trace_lines)
    from simulator.system import api

    calls = []
    monkeypatch.setattr(api, "simulate", lambda *a, **k: calls.append(1) or {})
    (tmp_path / "f").write_text("x")
    status, _, err, _ = run_in_process(["run", "--out", str(tmp_path / "f" / "sub")])
    assert status == 2 and not calls and "--out" in err  # refused before any simulation


def test_row_05_results_are_written_atomically(tmp_path):
    status, out, _, _ = run_in_process(["run", "--tokens", "1", "--json", "--out", str(tmp_path / "o")])
    assert status == 0
    assert json.loads((tmp_path / "o" / "result.json").read_text()) == json.loads(out)
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["result.json"]  # no temporary file left behind


def test_row_06_closed_stdout_full_disk_and_ctrl_c(tmp_path, monkeypatch):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for extra in (["--json"], []):  # `| head -c 100` and `| head -1`: the reader is gone before we write
        p = subprocess.Popen([sys.executable, "-m", "simulator.cli", "run", "--tokens", "1", *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
        p.stdout.close()
        _, err = p.communicate(timeout=TIME_LIMIT_S)
        assert p.returncode in (0, 141) and b"Traceback" not in err and err.strip() == b"", err
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "simulator.cli", "run", "--tokens", "1", "--json"], stdout=full,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path, timeout=TIME_LIMIT_S,
                              check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "No space left" in proc.stderr
    # Ctrl-C in the engine: one line, status 130 (in-process, raised where the engine runs)
    from simulator.system import engine

    def interrupted(self, contexts, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine.SystemEngine, "run", interrupted)
    status, _, err, _ = run_in_process(["run", "--tokens", "1"])
    assert status == 130 and err.count("\n") == 1 and "interrupted" in err


def test_row_06_ctrl_c_in_a_real_process(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # a user's Ctrl-C reaches a foreground process whose SIGINT is at its default; a job started in the
    # background by a non-interactive shell inherits SIGINT ignored, so reset it in the child
    p = subprocess.Popen([sys.executable, "-m", "simulator.cli", "run", "--model", "gpt2-xl", "--tokens", "400",
                          "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(6)  # past the imports, inside the simulation
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=TIME_LIMIT_S)
    assert p.returncode == 130 and b"Traceback" not in err and err.count(b"\n") == 1, err


def test_row_07_negative_seed_empty_weights_negative_threads(tmp_path, good_trace_lines):
    _row(7, tmp_path, good_trace_lines)


def test_row_08_bool_is_not_an_integer(tmp_path, good_trace_lines):
    _row(8, tmp_path, good_trace_lines)


def test_row_09_infinite_config_values_and_strict_json(tmp_path, good_trace_lines):
    _row(9, tmp_path, good_trace_lines)
    from simulator.cli_support import strict_json
    from simulator.errors import PimsimError

    assert strict_json({"a": float("nan")}, "x") == '{"a": null}'  # undetermined -> null, never NaN
    with pytest.raises(PimsimError, match="a.b"):
        strict_json({"a": {"b": float("inf")}}, "x")


def test_row_10_empty_or_non_arch_yaml(tmp_path, good_trace_lines):
    _row(10, tmp_path, good_trace_lines)


def test_row_11_duplicate_unknown_and_unused_keys(tmp_path, good_trace_lines):
    _row(11, tmp_path, good_trace_lines)


def test_row_12_absurd_sizes_and_empty_names(tmp_path, good_trace_lines):
    _row(12, tmp_path, good_trace_lines)


def test_row_12_gpr_is_a_host_address_bounded_by_64_bits():
    """`WR_GB 64 99999` is not out of range: a GPR operand is a host buffer address in 32-byte units
    (docs/aim-device.md "GPR operands"), so 99999 names byte 3,199,968. The bound is the 64-bit byte
    address: the largest accepted operand is (2^63 - 1) // 32, one more is refused."""
    from simulator.config import load_arch
    from simulator.dram.isa import GPR_MAX, parse_isr
    from simulator.errors import PimsimError

    org = load_arch("pim_gpt").organisation
    assert GPR_MAX == 288230376151711743 and (GPR_MAX + 1) * 32 == 2**63
    for gpr in (0, 99999, GPR_MAX):
        prog = parse_isr(f"AiM WR_GB 64 {gpr} 0x1\nAiM EWADD 1 {gpr} 0\nAiM EOC\n", org, "t.isr")
        assert len(prog.op) == 3
    for line in (f"AiM WR_GB 64 {GPR_MAX + 1} 0x1", f"AiM EWADD 1 0 {GPR_MAX + 1}", "R GPR -1"):
        with pytest.raises(PimsimError, match=r"^t\.isr:1: gpr2?: must be a host buffer address"):
            parse_isr(line + "\nAiM EOC\n", org, "t.isr")


def test_row_13_cli_ranges_and_grid_limits(tmp_path, good_trace_lines):
    _row(13, tmp_path, good_trace_lines)


def test_row_14_messages_are_short_and_name_the_file(tmp_path, good_trace_lines):
    _row(14, tmp_path, good_trace_lines)
    status, out, err, _ = run_in_process([])
    assert status == 2 and out == "" and err.startswith("usage: pimsim")


def test_row_15_a_different_sweep_is_refused_in_an_existing_out(tmp_path, monkeypatch):
    from simulator.sweep.runner import run_sweep

    monkeypatch.setenv("PIMSIM_CODE_VERSION", "test-pinned")
    monkeypatch.syspath_prepend(str(HERE))
    a = tmp_path / "a.yaml"
    a.write_text("name: a\nmodels: [gpt2-small]\nrun: {context: 8, tokens: 1}\n")
    b = tmp_path / "b.yaml"
    b.write_text("name: b\nmodels: [gpt2-medium]\nrun: {context: 8, tokens: 1}\n")
    out = tmp_path / "out"
    run_sweep(a, out, workers=1, point_fn="test_sweep_support:fake_point", progress=False)
    before = (out / "results.csv").read_bytes()
    for extra in (["--dry-run"], ["--point-function", "test_sweep_support:fake_point"]):
        status, _, err, _ = run_in_process(["sweep", str(b), "--out", str(out), *extra])
        assert status == 2 and "holds the results of sweep 'a'" in err and err.count("\n") == 1
    assert (out / "results.csv").read_bytes() == before  # nothing mixed in


def test_a_subcommand_with_a_missing_extra_is_listed_and_names_the_extra(monkeypatch, capsys):
    import importlib

    from simulator import cli

    real = importlib.import_module

    def fake(name, *a, **k):
        if name == "simulator.sweep.cli_commands":
            raise ModuleNotFoundError("No module named 'dask'", name="dask")
        return real(name, *a, **k)

    monkeypatch.setattr(cli.importlib, "import_module", fake)
    assert cli.main(["--help"]) == 0
    assert "sweep" in capsys.readouterr().out
    assert cli.main(["sweep", "x.yaml", "--out", "o"]) == 2
    assert "pimsim[sweep]" in capsys.readouterr().err


@pytest.mark.parametrize("tty,enabled,shown", [(True, True, True), (False, True, False), (True, False, False)])
def test_progress_bar_only_on_a_terminal_and_not_with_json(monkeypatch, tty, enabled, shown):
    from simulator.cli_support import Progress

    stream = io.StringIO()
    stream.isatty = lambda: tty
    monkeypatch.setattr(sys, "stderr", stream)
    bar = Progress(3, "t", enabled)
    assert (bar.bar is not None) == shown
    for _ in range(3):
        bar()
    bar.close()
    assert stream.getvalue() == ""  # work shorter than two seconds draws nothing
