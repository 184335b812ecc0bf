"""`pimsim sweep SPEC --out DIR` runs a sweep (resumable); `pimsim plot DIR --kind KIND -o FILE` draws it."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from simulator.cli_support import (
    float_in,
    int_in,
    non_empty,
    output_dir,
    output_file,
    strict_json,
)
from simulator.errors import PimsimError
from simulator.sweep.points import MAX_POINTS

#: the kinds of `simulator.report.plots.KINDS`, repeated so `pimsim --help` need not import matplotlib
PLOT_KINDS = ("energy-efficiency", "speedup", "breakdown", "pareto", "context", "timeline")


def register(subparsers: Any) -> None:
    sw = subparsers.add_parser(
        "sweep", help="run a sweep spec over many configs (resumable; local processes or a Dask cluster)",
        description="Run every point of a sweep spec (arch_configs/sweeps/*_sweep.yaml) into the result store "
                    "in DIR. Finished points are committed at once; rerunning the same command skips them. "
                    "Exit status 1 when some point failed (its one-line error is in DIR/results.csv).")
    sw.add_argument("spec", type=non_empty, help="sweep spec YAML (a path, or the name of a shipped spec)")
    sw.add_argument("--out", required=True, type=non_empty, metavar="DIR", help="result directory (created if missing)")
    sw.add_argument("--workers", type=int_in(1, 1024), default=None, metavar="N",
                    help="local worker processes (default: CPU count); ignored with --scheduler")
    sw.add_argument("--scheduler", type=non_empty, metavar="ADDRESS", default=None,
                    help="run on a Dask distributed cluster, e.g. tcp://127.0.0.1:8786 (needs pimsim[sweep])")
    sw.add_argument("--retry-failed", action="store_true", help="run points that failed before again")
    sw.add_argument("--timeout", type=float_in(0, 7 * 86400, lo_open=True), default=None, metavar="SECONDS",
                    help="give up on a point after this (at most a week)")
    sw.add_argument("--max-points", type=int_in(1, 10_000_000), default=MAX_POINTS, metavar="N",
                    help=f"refuse a grid larger than this, also with --dry-run (default {MAX_POINTS})")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.add_argument("--dry-run", action="store_true", help="list the points (and which are done) without running")
    sw.add_argument("--point-function", type=non_empty, metavar="MODULE:NAME", default=None,
                    help="simulate points with this function instead of simulator.system.api:run_point")
    sw.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    sw.set_defaults(func=_sweep)

    pl = subparsers.add_parser(
        "plot", help="plot sweep results (energy efficiency, speedup, breakdown, Pareto front, context)",
        description="Draw a figure from the results in a sweep directory (or a results.csv).")
    pl.add_argument("dir", type=non_empty, help="sweep result directory (or its results.csv); --kind timeline: the "
                                                "JSON file of pimsim run --timeline")
    pl.add_argument("--kind", required=True, choices=PLOT_KINDS)
    pl.add_argument("-o", "--output", required=True, type=non_empty, metavar="FILE", help="figure file (.png, .pdf or .svg)")
    pl.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE",
                    help="plot only rows with this value (repeatable), e.g. --where context=128")
    pl.add_argument("--group-by", action="append", default=None, metavar="COLUMN",
                    help="one line per value of this column (repeatable; default: the columns that vary)")
    pl.add_argument("--by", choices=("component", "op"), default="component", help="breakdown: by component or op")
    pl.add_argument("--json", action="store_true", help="print what was drawn as JSON")
    pl.set_defaults(func=_plot)


def _sweep(args: argparse.Namespace) -> int:
    from simulator.sweep.runner import dry_run, run_sweep

    if args.dry_run:
        lines = dry_run(args.spec, args.out, point_fn=args.point_function, max_points=args.max_points)
        for line in lines:
            print(line)
        invalid = sum(1 for line in lines[:-1] if line.split()[2:3] == ["invalid"])
        if invalid:
            print(f"pimsim: {invalid} point(s) have an invalid config (reason in parentheses above)", file=sys.stderr)
            return 1
        return 0
    output_dir(args.out, "--out")
    summary = run_sweep(args.spec, args.out, workers=args.workers, scheduler=args.scheduler,
                        point_fn=args.point_function, retry_failed=args.retry_failed,
                        progress=not args.no_progress and not args.json, timeout_s=args.timeout,
                        max_points=args.max_points)
    if args.json:
        doc = {k: (str(v) if isinstance(v, Path) else v) for k, v in summary.__dict__.items()}
        print(strict_json(doc, "the sweep summary", sort_keys=True))
    else:
        print(f"sweep {summary.name}: {summary.points} points, {summary.ok} ok, {summary.failed} failed "
              f"({summary.already_done} already done, {summary.ran} run now) -> {summary.csv}")
    if summary.not_in_plan:
        print(f"pimsim: note: {summary.not_in_plan} point(s) of earlier versions of this sweep stay in "
              f"{args.out}/sweep.sqlite but are not in this spec's table", file=sys.stderr)
    if summary.failed:
        print(f"pimsim: {summary.failed} point(s) failed; their errors are in the 'error' column of {summary.csv}",
              file=sys.stderr)
        return 1
    return 0


def load_results(path: str | Path) -> tuple[list[dict[str, Any]], list[str], str]:
    """(rows, axis columns, sweep name) from a sweep directory (its store) or a results.csv."""
    from simulator.sweep.store import (
        CSV_NAME,
        DB_NAME,
        LEAD_COLUMNS,
        RUN_COLUMNS,
        ResultStore,
        read_csv,
        table,
    )

    p = Path(path)
    if p.is_dir() and (p / DB_NAME).is_file():
        with ResultStore(p, lock=False) as store:
            _, rows = table(store)
            return rows, list(store.meta("columns", [])), str(store.meta("sweep", ""))
    csv_path = p / CSV_NAME if p.is_dir() else p
    if not csv_path.is_file():
        raise PimsimError(f"{path}: no sweep results here (expected {DB_NAME} or {CSV_NAME})")
    rows = read_csv(csv_path)
    header = list(rows[0]) if rows else []
    start = len(LEAD_COLUMNS)
    stop = header.index(RUN_COLUMNS[0]) if RUN_COLUMNS[0] in header else start
    return rows, header[start:stop], str(rows[0].get("sweep", "")) if rows else ""


def _plot(args: argparse.Namespace) -> int:
    from simulator.report.plots import plot

    out = output_file(args.output, "-o/--output")  # before reading and drawing
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise PimsimError(f"-o/--output {out}: unknown figure format {out.suffix or '(none)'}; use .png, .pdf or .svg")
    if args.kind == "timeline":
        from simulator.report.timeline import plot_timeline

        data = plot_timeline(args.dir, out)
        print(f"{out}: {data.title} ({data.points} spans)")
        return 0
    where = {}
    for item in args.where:
        if "=" not in item:
            raise PimsimError(f"--where {item}: expected COLUMN=VALUE, e.g. context=128")
        k, v = item.split("=", 1)
        where[k.strip()] = v.strip()
    rows, axis_columns, sweep = load_results(args.dir)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=out.suffix, dir=out.parent)  # drawn, then renamed
    os.close(fd)
    try:
        data = plot(rows, args.kind, tmp, axis_columns=axis_columns, where=where, group_by=args.group_by,
                    by=args.by, sweep=sweep or None)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    if args.json:
        print(strict_json({"kind": data.kind, "file": args.output, "title": data.title, "caption": data.caption,
                          "points": data.points, "series": [s.__dict__ for s in data.series]},
                         "the plot summary", sort_keys=True, default=list))
    else:
        print(f"{args.output}: {data.title} ({data.points} points)")
    return 0
