"""Run a sweep: expand the spec, skip finished points, run the rest in fresh processes, commit each result.

    summary = run_sweep("arch_configs/sweeps/channels_banks_sweep.yaml", "out/cb", workers=2)

Locally, each point runs in a fresh child process (forked from a clean, pre-imported `forkserver`), at most
`workers` at a time; with `scheduler=ADDRESS` the same points run as tasks on a Dask cluster. Every
finished point is committed to `DIR/sweep.sqlite` at once and `DIR/results.csv` is rewritten, so killing the
runner loses nothing that finished and rerunning the same command continues where it stopped. A point that
fails records its one-line error and the sweep goes on (`retry_failed=True` runs failed points again).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.cli_support import Progress
from simulator.errors import PimsimError
from simulator.sweep.isolate import (
    DEFAULT_POINT_FN,
    PointFn,
    ProcessTracker,
    fn_ref,
    resolve_fn,
    run_in_fresh_process,
)
from simulator.sweep.points import MAX_POINTS, Point, code_version, expand
from simulator.sweep.spec import SweepSpec, load_spec
from simulator.sweep.store import Outcome, ResultStore, write_csv, write_parquet


@dataclass(frozen=True)
class SweepSummary:
    name: str
    out_dir: Path
    points: int  # points in the plan (after filters)
    already_done: int  # finished before this run (skipped)
    ran: int  # run by this run
    ok: int  # finished without error, in the whole table
    failed: int  # finished with an error, in the whole table
    csv: Path
    parquet: Path | None
    code_version: str
    not_in_plan: int = 0  # points in the store from earlier plans of this sweep, kept but not in the table


def _local(items: Sequence[tuple[Point, dict[str, Any]]], fn: PointFn, workers: int,
           timeout_s: float | None) -> Iterator[tuple[Point, Outcome]]:
    ctx = multiprocessing.get_context("forkserver")
    preload = ["simulator.sweep.isolate"]
    module = getattr(fn, "__module__", None)
    if module and module != "__main__":
        preload.append(module)
    ctx.set_forkserver_preload(preload)
    tracker = ProcessTracker()
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="pimsim-sweep")
    pending: dict[Future, Point] = {}
    try:
        for point, request in items:
            pending[pool.submit(run_in_fresh_process, ctx, fn, request, timeout_s, tracker)] = point
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: pending[f].index):
                yield pending.pop(fut), fut.result()
    finally:
        if pending:  # interrupted: stop the children still running, run nothing more
            tracker.terminate_all()
            for fut in pending:
                fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def run_sweep(spec: SweepSpec | str | Path, out_dir: str | Path, *, workers: int | None = None,
              scheduler: str | None = None, point_fn: PointFn | str | None = None, retry_failed: bool = False,
              progress: bool = True, timeout_s: float | None = None, spec_dir: Path | None = None,
              on_commit: Callable[[Point, Outcome], None] | None = None,
              max_points: int = MAX_POINTS) -> SweepSummary:
    """Run every unfinished point of `spec` into the result store in `out_dir`; see the module docstring.

    `point_fn` is the function that simulates one point (default `simulator.system.api.run_point`, imported
    lazily), given as a callable or as `"module:name"`; with a Dask `scheduler` it must be importable there.
    """
    if not isinstance(spec, SweepSpec):
        spec, file = load_spec(spec)
        spec_dir = file.parent
    if point_fn is None or isinstance(point_fn, str):
        ref = point_fn or DEFAULT_POINT_FN
        fn = resolve_fn(ref) if scheduler is None else None
    else:
        fn, ref = point_fn, fn_ref(point_fn)
    code = code_version(None if ref == DEFAULT_POINT_FN else ref)
    if workers is not None and workers < 1:
        raise PimsimError(f"--workers must be at least 1, got {workers}")
    if timeout_s is not None and not timeout_s > 0:
        raise PimsimError(f"--timeout must be a positive number of seconds, got {timeout_s}")
    points = expand(spec, spec_dir, code, max_points=max_points)
    workers = workers or os.cpu_count() or 1

    with ResultStore(out_dir) as store:
        check_same_sweep(store, spec.name)
        store.set_plan(spec.name, spec.columns(), spec.config_keys(), points)
        finished = store.finished()
        already = {p.key for p in points if p.key in finished and (finished[p.key] == "ok" or not retry_failed)}
        todo: dict[str, Point] = {}  # one run per key, even if two points of the plan share it
        for p in points:
            if p.key not in already:
                todo.setdefault(p.key, p)
        failed = sum(1 for k in already if finished[k] == "error")
        for p in [p for p in todo.values() if p.error is not None]:  # configs that do not validate: no run
            store.commit(p, Outcome("error", error=p.error), code)
            failed += 1
            del todo[p.key]
        write_csv(store)
        unique = len({p.key for p in points})
        bar = Progress(unique, spec.name, progress, initial=unique - len(todo), unit="pt")
        items = [(p, p.request.to_dict()) for p in todo.values()]
        ran = 0
        try:
            if scheduler:
                from simulator.sweep.dask_backend import run_on_dask

                stream = run_on_dask(scheduler, ref, items, timeout_s)
            else:
                stream = _local(items, fn, workers, timeout_s)
            for point, outcome in stream:
                store.commit(point, outcome, code)
                write_csv(store)
                ran += 1
                failed += outcome.status != "ok"
                bar(failed=failed) if failed else bar()
                if on_commit is not None:
                    on_commit(point, outcome)
        finally:
            bar.close()
        csv_path = write_csv(store)
        parquet = write_parquet(store)
        statuses = store.finished()
    return SweepSummary(
        name=spec.name, out_dir=Path(out_dir), points=len(points),
        already_done=sum(1 for p in points if p.key in already), ran=ran,
        ok=sum(1 for p in points if statuses.get(p.key) == "ok"),
        failed=sum(1 for p in points if statuses.get(p.key) == "error"),
        csv=csv_path, parquet=parquet, code_version=code,
        not_in_plan=len(set(statuses) - {p.key for p in points}))


def check_same_sweep(store: ResultStore, name: str) -> None:
    """Refuse to mix two different sweeps in one directory (a grown or edited spec of the same sweep is fine)."""
    previous = store.meta("sweep")
    if previous and previous != name:
        raise PimsimError(f"{store.dir}: holds the results of sweep {previous!r}, not {name!r}; give a new --out "
                          "directory (results of different sweeps are not mixed)")

def dry_run(spec: SweepSpec | str | Path, out_dir: str | Path | None = None, *,
            point_fn: PointFn | str | None = None, spec_dir: Path | None = None,
            max_points: int = MAX_POINTS) -> list[str]:
    """One line per point: index, key, state (todo / ok / error / invalid) and its axis labels."""
    from simulator.sweep.store import DB_NAME

    if not isinstance(spec, SweepSpec):
        spec, file = load_spec(spec)
        spec_dir = file.parent
    ref = point_fn if isinstance(point_fn, str) or point_fn is None else fn_ref(point_fn)
    points = expand(spec, spec_dir, code_version(None if ref in (None, DEFAULT_POINT_FN) else ref),
                    max_points=max_points)
    finished: dict[str, str] = {}
    if out_dir is not None and (Path(out_dir) / DB_NAME).is_file():
        with ResultStore(out_dir, lock=False) as store:
            check_same_sweep(store, spec.name)
            finished = store.finished()
    lines = []
    for p in points:
        state = finished.get(p.key) or ("invalid" if p.error else "todo")
        labels = " ".join(f"{k}={v}" for k, v in (("model", p.model),) + p.labels)
        lines.append(f"{p.index:5d} {p.key} {state:7s} {labels}" + (f"  ({p.error})" if p.error else ""))
    lines.append(f"{len(points)} points, {sum(1 for p in points if p.key in finished)} finished")
    return lines
