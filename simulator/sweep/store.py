"""The result store of a sweep directory: an SQLite ledger of finished points, and its CSV/Parquet export.

    DIR/sweep.sqlite   results (one row per point key, committed the moment the point finishes),
                       plan (the points of the last sweep run into DIR, in order), meta
    DIR/results.csv    every finished point of the plan (rewritten atomically after each commit)
    DIR/results.parquet the same table, written at the end of a run when pyarrow is installed

Only the runner process writes; a lock file keeps a second runner out of the same directory. SQLite's
journal makes each commit atomic, so killing the runner at any moment loses no finished point.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.errors import PimsimError
from simulator.sweep.points import Point

SCHEMA = "pimsim-sweep/1"
DB_NAME = "sweep.sqlite"
CSV_NAME = "results.csv"
PARQUET_NAME = "results.parquet"

#: leading columns of the result table, in order; axis columns, config values and result fields follow
LEAD_COLUMNS = ("sweep_schema", "sweep", "point", "key", "status", "error")
RUN_COLUMNS = ("model", "trace", "context", "tokens", "mapping", "overlap", "gpu", "cpu", "baseline_dtype",
               "baseline_stack", "baseline_threads", "energy_variant", "arch", "overrides")
ID_COLUMNS = ("config_hash", "trace_hash", "code_version", "runner_wall_s")
DERIVED_COLUMNS = ("tokens_per_s", "tokens_per_j")


@dataclass(frozen=True)
class Outcome:
    """What running one point produced: a result object, or a one-line error."""

    status: str  # "ok" | "error"
    result: Mapping[str, Any] | None = None
    error: str | None = None
    wall_s: float = 0.0


def _json(obj: Any) -> str:
    def default(o: Any) -> Any:
        item = getattr(o, "item", None)  # numpy scalars
        if callable(item):
            return item()
        tolist = getattr(o, "tolist", None)
        if callable(tolist):
            return tolist()
        return str(o)

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=default)


class ResultStore:
    """One sweep directory. Use as a context manager; it holds the directory's lock while open."""

    def __init__(self, directory: str | Path, *, lock: bool = True):
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PimsimError(f"{self.dir}: cannot create the sweep directory ({exc.strerror})") from None
        self._lock_fd: int | None = None
        if lock:
            fd = os.open(self.dir / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise PimsimError(f"{self.dir}: another pimsim sweep is running in this directory") from None
            self._lock_fd = fd
        self.db = sqlite3.connect(self.dir / DB_NAME, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS results (
                key TEXT PRIMARY KEY, status TEXT NOT NULL, error TEXT, result TEXT, request TEXT NOT NULL,
                config_hash TEXT, trace_hash TEXT, code_version TEXT, wall_s REAL, finished_at REAL);
            CREATE TABLE IF NOT EXISTS plan (
                position INTEGER PRIMARY KEY, key TEXT NOT NULL, point TEXT NOT NULL);
        """)
        row = self.db.execute("SELECT v FROM meta WHERE k='schema'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA,))
        elif row[0] != SCHEMA:
            raise PimsimError(f"{self.dir / DB_NAME}: result store schema {row[0]}, this pimsim reads {SCHEMA}")

    # ---------------------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        self.db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --------------------------------------------------------------------------------------------------- plan
    def set_plan(self, sweep: str, columns: list[str], config_keys: list[str], points: Iterable[Point]) -> None:
        """Record the points of the sweep being run (replacing the previous plan), in one transaction."""
        rows = [(p.index, p.key, _json(point_record(p))) for p in points]
        with self._tx():
            self.db.execute("DELETE FROM plan")
            self.db.executemany("INSERT INTO plan VALUES (?, ?, ?)", rows)
            for k, v in (("sweep", sweep), ("columns", _json(columns)), ("config_keys", _json(config_keys))):
                self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, v))

    def meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT v FROM meta WHERE k=?", (key,)).fetchone()
        if row is None:
            return default
        return row[0] if key in ("sweep", "schema") else json.loads(row[0])

    # ------------------------------------------------------------------------------------------------ results
    def finished(self) -> dict[str, str]:
        """key -> status of every point in the store."""
        return dict(self.db.execute("SELECT key, status FROM results").fetchall())

    def commit(self, point: Point, outcome: Outcome, code_version: str) -> None:
        """Record one finished point. Atomic: after it returns the point survives any crash of the runner."""
        with self._tx():
            self.db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (point.key, outcome.status, outcome.error,
                 _json(outcome.result) if outcome.result is not None else None,
                 _json(point.request.to_dict()), point.config_hash, point.trace_hash,
                 code_version, outcome.wall_s, time.time()))

    def _tx(self):
        return _Transaction(self.db)

    # ------------------------------------------------------------------------------------------------- export
    def records(self) -> list[dict[str, Any]]:
        """Finished points of the plan, in plan order: plan record + status, error, result (nested)."""
        out = []
        query = """SELECT plan.point, results.status, results.error, results.result, results.code_version,
                          results.wall_s
                   FROM plan JOIN results ON plan.key = results.key ORDER BY plan.position"""
        for point, status, error, result, code, wall in self.db.execute(query):
            rec = json.loads(point)
            rec.update(status=status, error=error, result=json.loads(result) if result else None,
                       code_version=code, wall_s=wall)
            out.append(rec)
        return out

    def plan_size(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM plan").fetchone()[0]


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def point_record(p: Point) -> dict[str, Any]:
    req = p.request
    return {
        "point": p.index, "key": p.key, "labels": [[k, v] for k, v in p.labels], "model": p.model,
        "trace": req.trace, **req.options(), "arch": req.arch, "overrides": list(req.set),
        "config_hash": p.config_hash, "trace_hash": p.trace_hash, "config": [[k, v] for k, v in p.config_values],
    }


# --------------------------------------------------------------------------------------------------- the table

def _flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v
    return out


def _per(x: Any) -> float | None:
    return 1.0 / x if isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 else None


def table(store: ResultStore) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows) of the result table: one flat row per finished point of the plan, in plan order."""
    sweep = store.meta("sweep", "")
    axis_cols = list(store.meta("columns", []))
    rows: list[dict[str, Any]] = []
    cfg_cols: list[str] = []
    result_cols: set[str] = set()
    for rec in store.records():
        row: dict[str, Any] = {"sweep_schema": SCHEMA, "sweep": sweep, "point": rec["point"], "key": rec["key"],
                               "status": rec["status"], "error": rec["error"]}
        row.update({k: v for k, v in rec["labels"]})
        for col in RUN_COLUMNS:
            row[col] = rec.get(col) if col != "overrides" else ";".join(rec["overrides"])
        for k, v in rec["config"]:
            row[f"cfg.{k}"] = v
            if f"cfg.{k}" not in cfg_cols:
                cfg_cols.append(f"cfg.{k}")
        row.update(config_hash=rec["config_hash"], trace_hash=rec["trace_hash"], code_version=rec["code_version"],
                   runner_wall_s=rec["wall_s"])
        result = rec["result"] or {}
        flat = _flatten(result)
        for k, v in flat.items():
            col = k if k not in row else f"result.{k}"
            if col.startswith("result.") and row.get(k) == v:
                continue  # the result repeats what the plan says (model, config_hash, ...)
            row[col] = v
            result_cols.add(col)
        if rec["status"] == "ok":
            row["tokens_per_s"] = _per(flat.get("per_token_latency_s"))
            row["tokens_per_j"] = _per(flat.get("energy_per_token_j"))
        rows.append(row)
    columns = list(LEAD_COLUMNS) + [c for c in axis_cols if c not in RUN_COLUMNS] + list(RUN_COLUMNS) + cfg_cols \
        + list(ID_COLUMNS) + list(DERIVED_COLUMNS) + sorted(result_cols - set(DERIVED_COLUMNS))
    return list(dict.fromkeys(columns)), rows


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    if isinstance(v, (list, tuple, dict)):
        return _json(v)
    return str(v)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_csv(store: ResultStore) -> Path:
    columns, rows = table(store)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([_cell(row.get(c)) for c in columns])
    path = store.dir / CSV_NAME
    _atomic_write(path, buf.getvalue().encode())
    return path


def write_parquet(store: ResultStore) -> Path | None:
    """The same table as Parquet (schema version in the file metadata); None when pyarrow is missing."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    columns, rows = table(store)
    arrays = {}
    for c in columns:
        vals = [row.get(c) for row in rows]
        kinds = {type(v) for v in vals if v is not None}
        if kinds <= {int}:
            arrays[c] = pa.array(vals, type=pa.int64())
        elif kinds <= {int, float}:
            arrays[c] = pa.array([None if v is None else float(v) for v in vals], type=pa.float64())
        elif kinds <= {bool}:
            arrays[c] = pa.array(vals, type=pa.bool_())
        else:
            arrays[c] = pa.array([None if v is None else _cell(v) for v in vals], type=pa.string())
    tbl = pa.table(arrays).replace_schema_metadata({"sweep_schema": SCHEMA})
    path = store.dir / PARQUET_NAME
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(tbl, tmp)
    os.replace(tmp, path)
    return path


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
