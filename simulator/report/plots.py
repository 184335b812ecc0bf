"""Figures of sweep results: energy efficiency, speedup, latency breakdown, Pareto front, context scaling.

    fig, data = make_figure(rows, "energy-efficiency", axis_columns=["channels", "banks"])
    save_figure(fig, "ee.png")

`rows` are flat result-table rows (`simulator.sweep.store.table`, or `results.csv` read back): dotted column
names such as `per_token_latency_s`, `speedup.gpu`, `breakdown.by_component.pim`, `cfg.channels`. Only rows
with `status == ok` are drawn. Each figure says its units in the title and axes, and its caption line names
the sweep, the config hashes and the trace hashes it shows. `PlotData` returns what was drawn (series of
numbers and labels) so a caller or a test can check a figure without reading pixels. Figures are built on
matplotlib's Agg canvas without pyplot, so importing this module changes no global backend.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from simulator.errors import PimsimError

KINDS = ("energy-efficiency", "speedup", "breakdown", "pareto", "context")

#: columns that identify what a row ran (candidates for grouping lines), besides the sweep's axis columns
_RUN_COLUMNS = ("model", "trace", "context", "tokens", "mapping", "overlap", "gpu", "cpu", "baseline_dtype",
               "energy_variant")
_X_COLUMNS = {"energy-efficiency": "cfg.channels", "context": "context"}


@dataclass(frozen=True)
class Series:
    """One drawn line, bar set or scatter: `panel` names the subplot, `x` the categories or positions."""

    panel: str
    label: str
    x: tuple[Any, ...]
    y: tuple[float, ...]


@dataclass(frozen=True)
class PlotData:
    kind: str
    title: str
    caption: str
    series: tuple[Series, ...]
    points: int  # rows drawn
    config_hashes: tuple[str, ...]
    trace_hashes: tuple[str, ...]

    def series_by_label(self, panel: str | None = None) -> dict[str, Series]:
        return {s.label: s for s in self.series if panel is None or s.panel == panel}


# ------------------------------------------------------------------------------------------------- helpers

def _num(v: Any) -> float | None:
    if v is None or v == "" or isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _norm(v: Any) -> Any:
    """CSV strings back to numbers where they are numbers, so '16' and 16 group together."""
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return v
        return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f
    return v


def _short(h: Any) -> str:
    s = str(h or "")
    return s.split(":", 1)[-1][:12] if s else "?"


def _hash_list(values: Iterable[Any], limit: int = 3) -> tuple[tuple[str, ...], str]:
    uniq = list(OrderedDict.fromkeys(_short(v) for v in values))
    text = ", ".join(uniq[:limit]) + (f" (+{len(uniq) - limit} more)" if len(uniq) > limit else "")
    return tuple(uniq), text


def _require(rows: Sequence[Mapping[str, Any]], column: str, why: str) -> None:
    if not any(_num(r.get(column)) is not None for r in rows):
        raise PimsimError(f"no result has {column} ({why}); run the sweep with a simulator that reports it")


def _gmean(values: Sequence[float]) -> float:
    vals = [v for v in values if v is not None and v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else float("nan")


def ok_rows(rows: Iterable[Mapping[str, Any]], where: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows that finished without error and match every `where` column=value."""
    out = []
    for r in rows:
        if str(r.get("status", "ok")) != "ok":
            continue
        if where and any(str(_norm(r.get(k))) != str(_norm(v)) for k, v in where.items()):
            continue
        out.append({k: _norm(v) for k, v in r.items()})
    return out


def _varying(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    out = []
    for c in columns:
        if c in exclude or c in out:
            continue
        if len({str(r.get(c)) for r in rows}) > 1:
            out.append(c)
    return out


def _label(row: Mapping[str, Any], cols: Sequence[str]) -> str:
    if not cols:
        return str(row.get("model", "all"))
    if len(cols) == 1 and cols[0] == "model":
        return str(row.get("model"))
    parts = []
    for c in cols:
        name = {"cfg.banks_per_channel": "banks/ch", "cfg.channels": "channels"}.get(c, c)
        parts.append(str(row.get(c)) if c == "model" else f"{name}={row.get(c)}")
    return ", ".join(parts)


def _groups(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> "OrderedDict[str, list[dict[str, Any]]]":
    groups: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for r in rows:
        groups.setdefault(_label(r, cols), []).append(r)
    return groups


def _new_figure(ncols: int, width: float = 6.0, height: float = 4.2) -> Figure:
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _caption(rows: Sequence[Mapping[str, Any]], sweep: str | None) -> tuple[str, tuple, tuple]:
    cfgs, cfg_text = _hash_list(r.get("config_hash") for r in rows)
    trs, tr_text = _hash_list(r.get("trace_hash") for r in rows)
    name = sweep or (str(rows[0].get("sweep")) if rows and rows[0].get("sweep") else "results")
    schema = rows[0].get("sweep_schema", "") if rows else ""
    caption = f"sweep {name} · {len(rows)} points · config {cfg_text} · trace {tr_text}" + \
        (f" · {schema}" if schema else "")
    return caption, cfgs, trs


def _baseline_name(rows: Sequence[Mapping[str, Any]], which: str) -> str:
    names = {str(r.get(f"baselines.{which}.name") or r.get(which) or "") for r in rows} - {"", "None"}
    return "/".join(sorted(names)) if names else which.upper()


# --------------------------------------------------------------------------------------------------- kinds

def _energy_efficiency(fig: Figure, rows: list[dict[str, Any]], group_cols: list[str]) -> list[Series]:
    _require(rows, "cfg.channels", "the channel count of each point")
    _require(rows, "tokens_per_j", "energy per token")
    has_speedup = any(_num(r.get("speedup.gpu")) is not None for r in rows)
    ax1, ax2 = fig.subplots(1, 2)
    right = ("speedup.gpu", f"speedup over {_baseline_name(rows, 'gpu')} GPU (×)") if has_speedup \
        else ("tokens_per_s", "throughput (tokens/s)")
    series = []
    for label, grp in _groups(rows, group_cols).items():
        grp = sorted(grp, key=lambda r: _num(r.get("cfg.channels")) or 0)
        xs = tuple(int(_num(r["cfg.channels"]) or 0) for r in grp)
        for ax, col, panel in ((ax1, "tokens_per_j", "tokens_per_j"), (ax2, right[0], right[0])):
            ys = tuple(_num(r.get(col)) or float("nan") for r in grp)
            ax.plot(xs, ys, marker="o", label=label)
            series.append(Series(panel, label, xs, ys))
    for ax, ylabel in ((ax1, "energy efficiency (tokens/J)"), (ax2, right[1])):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("PIM channels")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, title=", ".join(group_cols) or None, title_fontsize=8)
        xs_all = sorted({int(_num(r["cfg.channels"]) or 0) for r in rows})
        ax.set_xticks(xs_all, [str(x) for x in xs_all])
    ax1.set_title("Energy efficiency vs channels (tokens/J)")
    ax2.set_title("Speedup vs channels (×)" if has_speedup else "Throughput vs channels (tokens/s)")
    return series


def _speedup(fig: Figure, rows: list[dict[str, Any]], _group_cols: list[str]) -> list[Series]:
    _require(rows, "speedup.gpu", "speedup over the GPU baseline")
    models = list(OrderedDict.fromkeys(str(r.get("model")) for r in rows))
    gpu, cpu = _baseline_name(rows, "gpu"), _baseline_name(rows, "cpu")
    ax1, ax2 = fig.subplots(1, 2)
    series = []
    cats = models + (["geomean"] if len(models) > 1 else [])
    width = 0.38
    for ax, metric, title, ylabel in (
            (ax1, "speedup", "Speedup over GPU and CPU (×, log scale)", "speedup (×)"),
            (ax2, "energy_efficiency_gain", "Energy-efficiency gain over GPU and CPU (×, log scale)",
             "energy efficiency gain (tokens/J ratio, ×)")):
        for i, (which, name) in enumerate((("gpu", gpu), ("cpu", cpu))):
            col = f"{metric}.{which}"
            per_model = [_gmean([_num(r.get(col)) for r in rows if str(r.get("model")) == m]) for m in models]
            ys = per_model + ([_gmean(per_model)] if len(models) > 1 else [])
            pos = [j + (i - 0.5) * width for j in range(len(cats))]
            bars = ax.bar(pos, ys, width, label=f"vs {name} ({which.upper()})")
            ax.bar_label(bars, labels=[f"{y:.3g}" if math.isfinite(y) else "" for y in ys], fontsize=6, padding=1)
            series.append(Series(metric, f"vs {which}", tuple(cats), tuple(ys)))
        ax.set_yscale("log")
        ys_all = [y for s in series if s.panel == metric for y in s.y if math.isfinite(y) and y > 0]
        ax.set_ylim(min(0.5, min(ys_all, default=1.0) / 2), max(max(ys_all, default=1.0), 1.0) * 6)
        ax.set_xticks(range(len(cats)), cats, rotation=30, ha="right", fontsize=8)
        ax.axhline(1.0, color="0.4", lw=0.8, ls="--")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8, loc="upper left", ncols=2)
        ax.grid(True, axis="y", alpha=0.3)
    return series


def _breakdown(fig: Figure, rows: list[dict[str, Any]], group_cols: list[str], by: str = "component") -> \
        list[Series]:
    prefix = f"breakdown.by_{by}."
    parts = list(OrderedDict.fromkeys(k[len(prefix):] for r in rows for k in r if k.startswith(prefix)))
    if not parts:
        raise PimsimError(f"no result has a {prefix[:-1]} breakdown; choose --by component or --by op")
    ax = fig.subplots(1, 1)
    labels = [_label(r, group_cols) for r in rows]
    if len(set(labels)) < len(labels):
        labels = [f"#{r.get('point')} {lab}" for r, lab in zip(rows, labels)]
    bottoms = [0.0] * len(rows)
    series = []
    for part in parts:
        ys = []
        for r in rows:  # breakdowns are per token (mean over the run's tokens), in seconds
            ys.append((_num(r.get(prefix + part)) or 0.0) * 1e3)
        ax.bar(range(len(rows)), ys, 0.7, bottom=bottoms, label=part)
        bottoms = [b + y for b, y in zip(bottoms, ys)]
        series.append(Series(by, part, tuple(labels), tuple(ys)))
    ax.set_xticks(range(len(rows)), labels, rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("latency per token (ms)")
    ax.set_title(f"Latency breakdown by {by} (ms per generated token)")
    ax.legend(fontsize=8, ncols=min(4, len(parts)))
    ax.grid(True, axis="y", alpha=0.3)
    return series


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats in both coordinates (both maximised), by ascending x."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front, best_y = [], -math.inf
    for i in order:
        if points[i][1] > best_y:
            front.append(i)
            best_y = points[i][1]
    return sorted(front, key=lambda i: points[i][0])


def _pareto(fig: Figure, rows: list[dict[str, Any]], group_cols: list[str]) -> list[Series]:
    _require(rows, "tokens_per_s", "per-token latency")
    _require(rows, "tokens_per_j", "energy per token")
    rows = [r for r in rows if _num(r.get("tokens_per_s")) and _num(r.get("tokens_per_j"))]
    ax = fig.subplots(1, 1)
    series = []
    colour_col = ["model"] if len({r.get("model") for r in rows}) > 1 else []
    for label, grp in _groups(rows, colour_col).items():
        xs = tuple(_num(r["tokens_per_s"]) for r in grp)
        ys = tuple(_num(r["tokens_per_j"]) for r in grp)
        ax.scatter(xs, ys, s=18, alpha=0.7, label=label)
        series.append(Series("all", label, xs, ys))
    # one front per model: configurations compete on the same workload, not across workloads
    detail = [c for c in group_cols if c != "model"]
    for label, grp in _groups(rows, colour_col).items():
        pts = [(_num(r["tokens_per_s"]), _num(r["tokens_per_j"])) for r in grp]
        front = pareto_front(pts)  # type: ignore[arg-type]
        fx, fy = tuple(pts[i][0] for i in front), tuple(pts[i][1] for i in front)
        ax.plot(fx, fy, color="black", lw=1.0, ls="--", marker="D", ms=5,
                label="Pareto front" if not any(s.panel == "front" for s in series) else None)
        for i in front[:12]:
            ax.annotate(_label(grp[i], detail) if detail else label, pts[i], fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
        series.append(Series("front", label if colour_col else "Pareto front", fx, fy))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("throughput (tokens/s)")
    ax.set_ylabel("energy efficiency (tokens/J)")
    ax.set_title("Pareto front: throughput (tokens/s) vs efficiency (tokens/J)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return series


def _context(fig: Figure, rows: list[dict[str, Any]], group_cols: list[str]) -> list[Series]:
    _require(rows, "per_token_latency_s", "per-token latency")
    if len({r.get("context") for r in rows}) < 2:
        raise PimsimError("a context plot needs results at two or more context lengths (an axis over context)")
    ax = fig.subplots(1, 1)
    series = []
    for label, grp in _groups(rows, group_cols).items():
        grp = sorted(grp, key=lambda r: _num(r.get("context")) or 0)
        xs = tuple(int(_num(r["context"]) or 0) for r in grp)
        ys = tuple((_num(r.get("per_token_latency_s")) or float("nan")) * 1e3 for r in grp)
        ax.plot(xs, ys, marker="o", label=label)
        series.append(Series("latency", label, xs, ys))
    ax.set_xscale("log", base=2)
    ctxs = sorted({int(_num(r["context"]) or 0) for r in rows})
    ax.set_xticks(ctxs, [str(c) for c in ctxs])
    ax.set_xlabel("context length at start (tokens)")
    ax.set_ylabel("latency per generated token (ms)")
    ax.set_title("Per-token latency vs context length (ms)")
    ax.legend(fontsize=8, title=", ".join(group_cols) or None, title_fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return series


# ------------------------------------------------------------------------------------------------- public

def make_figure(rows: Iterable[Mapping[str, Any]], kind: str, *, axis_columns: Sequence[str] = (),
                where: Mapping[str, Any] | None = None, group_by: Sequence[str] | None = None,
                by: str = "component", sweep: str | None = None) -> tuple[Figure, PlotData]:
    """Draw `kind` from result rows. `group_by` columns name the lines (default: the columns that vary)."""
    if kind not in KINDS:
        raise PimsimError(f"unknown plot kind {kind!r}; choose one of: {', '.join(KINDS)}")
    data = ok_rows(rows, where)
    if not data:
        raise PimsimError("no finished point without error to plot" + (" matches --where" if where else ""))
    candidates = ["model"] + [c for c in axis_columns if c != "model"] + [c for c in _RUN_COLUMNS if c != "model"]
    if group_by is None:
        x_col = _X_COLUMNS.get(kind)
        group_cols = _varying(data, candidates, exclude=[x_col or "", "trace"])
        if x_col:  # a column that only relabels the x values (an axis over channels) is no line of its own
            n_x = len({str(r.get(x_col)) for r in data})
            group_cols = [c for c in group_cols if len({(str(r.get(c)), str(r.get(x_col))) for r in data}) > n_x]
    else:
        missing = [c for c in group_by if all(c not in r for r in data)]
        if missing:
            raise PimsimError(f"--group-by {missing[0]}: no such column in the results")
        group_cols = list(group_by)
    caption, cfgs, trs = _caption(data, sweep)
    ncols = 2 if kind in ("energy-efficiency", "speedup") else 1
    width = {"breakdown": max(8.0, 0.45 * len(data) + 2), "energy-efficiency": 6.0, "speedup": 6.0}.get(kind, 8.0)
    fig = _new_figure(ncols, width=max(width, 0.062 * len(caption) / ncols))
    fig.supxlabel(caption, fontsize=7, color="0.35")
    draw = {"energy-efficiency": _energy_efficiency, "speedup": _speedup, "pareto": _pareto, "context": _context}
    series = _breakdown(fig, data, group_cols, by) if kind == "breakdown" else draw[kind](fig, data, group_cols)
    title = " | ".join(ax.get_title() for ax in fig.axes)
    return fig, PlotData(kind=kind, title=title, caption=caption, series=tuple(series), points=len(data),
                         config_hashes=cfgs, trace_hashes=trs)


def save_figure(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise PimsimError(f"{path}: the figure file must end in .png, .pdf or .svg")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, metadata={"Creator": "pimsim"} if path.suffix.lower() != ".png" else None)
    return path


def plot(rows: Iterable[Mapping[str, Any]], kind: str, out: str | Path, **options: Any) -> PlotData:
    """make_figure + save_figure; returns what was drawn."""
    fig, data = make_figure(rows, kind, **options)
    save_figure(fig, out)
    return data
