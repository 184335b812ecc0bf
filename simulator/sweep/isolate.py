"""Run one point in a fresh process, so no cache or state leaks from one point into the next.

Two ways, one result type (`Outcome`):
- `run_in_fresh_process`: a child forked from a clean `forkserver` process that has already imported the
  simulator (fast start; used by the local runner);
- `run_in_subprocess`: a new interpreter (`python -m simulator.sweep.isolate`, request on stdin, result on
  stdout; used on Dask workers, whose daemonic processes may not fork children of their own).
A point function takes the request dict and returns a JSON-able dict; a `PimsimError` or any other
exception becomes the point's one-line error, and a child that dies is reported with its exit code.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait as mp_wait
from typing import Any

from simulator.errors import PimsimError
from simulator.sweep.store import Outcome

DEFAULT_POINT_FN = "simulator.system.api:run_point"

PointFn = Callable[[dict[str, Any]], dict[str, Any]]


def one_line(text: str, limit: int = 500) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, PimsimError):
        return one_line(str(exc))
    return one_line(f"{type(exc).__name__}: {exc}")


def fn_ref(fn: PointFn) -> str:
    """`module:qualname` of an importable function (how a function is named to a fresh interpreter)."""
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not name or "<" in name or module == "__main__":
        raise PimsimError(f"point function {fn!r} must be a top-level function of an importable module")
    return f"{module}:{name}"


def resolve_fn(ref: str) -> PointFn:
    """Import `module:name`."""
    if ":" not in ref:
        raise PimsimError(f"point function {ref!r}: expected MODULE:NAME, e.g. {DEFAULT_POINT_FN}")
    module_name, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise PimsimError(f"point function {ref!r}: cannot import {module_name} ({one_line(str(exc))})") from None
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise PimsimError(f"point function {ref!r}: {module_name} has no {attr}")
    if not callable(obj):
        raise PimsimError(f"point function {ref!r} is not callable")
    return obj


def call_point(fn: PointFn, request: dict[str, Any]) -> Outcome:
    """Run `fn(request)` here, turning every failure into a one-line error."""
    t0 = time.perf_counter()
    try:
        result = fn(dict(request))
        if not isinstance(result, dict):
            raise PimsimError(f"point function returned {type(result).__name__}, expected a dict")
        json.dumps(result, default=_jsonable)  # fail here, not in the store
        return Outcome("ok", result=result, wall_s=time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - any failure of a point is that point's error
        return Outcome("error", error=describe_error(exc), wall_s=time.perf_counter() - t0)


def _jsonable(o: Any) -> Any:
    for attr in ("item", "tolist"):
        f = getattr(o, attr, None)
        if callable(f):
            return f()
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


# ------------------------------------------------------------------------------------ forked fresh process

def _child(fn: PointFn, request: dict[str, Any], env: dict[str, str], conn: Any) -> None:
    # the forkserver's environment is the one it started with; give the point the runner's current one
    os.environ.clear()
    os.environ.update(env)
    outcome = call_point(fn, request)
    try:
        conn.send(outcome)
    finally:
        conn.close()


# multiprocessing is not thread-safe here: `Process.start()` polls every other live child (`_cleanup`), and
# two threads reading one child's forkserver sentinel at once lose its exit code (it reads as 255). Start,
# join and liveness checks therefore take this lock; the blocking wait for a child's end happens outside it.
_MP_LOCK = threading.Lock()


class ProcessTracker:
    """The live children of a runner, so an interrupted run can stop them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[Any] = set()
        self.stopping = False

    def add(self, p: Any) -> None:
        with self._lock:
            self._procs.add(p)

    def discard(self, p: Any) -> None:
        with self._lock:
            self._procs.discard(p)

    def terminate_all(self) -> None:
        with self._lock:
            self.stopping = True
            procs = list(self._procs)
        with _MP_LOCK:
            for p in procs:
                if p.is_alive():
                    p.terminate()


def run_in_fresh_process(ctx: Any, fn: PointFn, request: dict[str, Any], timeout_s: float | None = None,
                         tracker: ProcessTracker | None = None) -> Outcome:
    """Run one point in a new child of `ctx` (a multiprocessing context), waiting at most `timeout_s`."""
    t0 = time.perf_counter()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, request, dict(os.environ), send), daemon=True,
                       name="pimsim-point")
    if tracker is not None:
        if tracker.stopping:
            return Outcome("error", error="interrupted")
        tracker.add(proc)
    try:
        with _MP_LOCK:
            proc.start()
        send.close()
        died = False
        try:
            if recv.poll(timeout_s):
                outcome = recv.recv()
            else:
                with _MP_LOCK:
                    proc.kill()
                outcome = Outcome("error", error=f"timed out after {timeout_s:g} s")
        except EOFError:
            died = True
        mp_wait([proc.sentinel])  # the child has ended and its exit code can be read
        with _MP_LOCK:
            proc.join()
        if died:
            outcome = Outcome("error", error=f"worker process died (exit code {proc.exitcode})")
        wall = time.perf_counter() - t0
        return Outcome(outcome.status, result=outcome.result, error=outcome.error, wall_s=wall)
    finally:
        recv.close()
        if tracker is not None:
            tracker.discard(proc)


# ------------------------------------------------------------------------------------- fresh interpreter

_RESULT_MARK = "PIMSIM-RESULT "


def run_in_subprocess(ref: str, request: dict[str, Any], timeout_s: float | None = None) -> Outcome:
    """Run one point in a new interpreter; its import path is this process's `sys.path`."""
    t0 = time.perf_counter()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    payload = json.dumps({"fn": ref, "request": request})
    try:
        proc = subprocess.run([sys.executable, "-m", "simulator.sweep.isolate"], input=payload, text=True,
                              capture_output=True, env=env, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return Outcome("error", error=f"timed out after {timeout_s:g} s", wall_s=time.perf_counter() - t0)
    wall = time.perf_counter() - t0
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_RESULT_MARK):
            data = json.loads(line[len(_RESULT_MARK):])
            return Outcome(data["status"], result=data.get("result"), error=data.get("error"), wall_s=wall)
    tail = f": {one_line(proc.stderr.strip().splitlines()[-1])}" if proc.stderr.strip() else ""
    return Outcome("error", error=f"worker process died (exit code {proc.returncode}){tail}", wall_s=wall)


def _main() -> int:
    data = json.loads(sys.stdin.read())
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever the point prints goes to stderr; stdout carries only the result line
    try:
        fn = resolve_fn(data["fn"])
    except PimsimError as err:
        outcome = Outcome("error", error=str(err))
    else:
        outcome = call_point(fn, data["request"])
    doc = {"status": outcome.status, "result": outcome.result, "error": outcome.error}
    out.write(_RESULT_MARK + json.dumps(doc, sort_keys=True, default=_jsonable) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
