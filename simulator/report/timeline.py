"""Gantt chart of one token's resource timeline (the Chrome trace-event JSON of `pimsim run --timeline`).

    data = plot_timeline("token.json", "token.png")

One row per resource (PIM channels, their links, the ASIC units), one bar per span, coloured by operator
class of the span's name (layer prefix and sub-step stripped). Built on matplotlib's Agg canvas, no pyplot.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from simulator.errors import PimsimError
from simulator.report.plots import PlotData, Series


def _operator(name: str) -> str:
    """'layer3.attn.kv_append.2' -> 'attn.kv_append'; 'lm_head.out' -> 'lm_head'."""
    name = re.sub(r"^layer\d+\.", "", name)
    name = re.sub(r"(\.\d+|\.out|\.self)$", "", name)
    return name


def load_trace_events(path: str) -> tuple[list[str], list[tuple[str, str, float, float]]]:
    try:
        doc = json.loads(Path(path).read_text())
        events = doc["traceEvents"]
        names = {e["tid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("tid")}
        spans = [(names[e["tid"]], e["name"], float(e["ts"]), float(e["dur"])) for e in events if e.get("ph") == "X"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PimsimError(f"{path}: not a timeline written by `pimsim run --timeline` ({exc}); "
                          "write one with pimsim run --timeline FILE") from None
    order = sorted(names.items())
    return [n for _, n in order], spans


def plot_timeline(path: str, out: str) -> PlotData:
    resources, spans = load_trace_events(path)
    ops = sorted({_operator(n) for _, n, _, _ in spans})
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    colour = {op: cmap(i % 20) for i, op in enumerate(ops)}
    fig = Figure(figsize=(12, 0.35 * len(resources) + 2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    row = {r: i for i, r in enumerate(resources)}
    series = []
    for r in resources:
        mine = [(n, a, d) for rr, n, a, d in spans if rr == r]
        for op in ops:
            bars = [(a, d) for n, a, d in mine if _operator(n) == op]
            if bars:
                ax.broken_barh(bars, (row[r] - 0.4, 0.8), facecolors=colour[op], linewidth=0)
        series.append(Series("timeline", r, tuple(n for n, _, _ in mine), tuple(d for _, _, d in mine)))
    ax.set_yticks(range(len(resources)), labels=resources)
    ax.invert_yaxis()
    ax.set_xlabel("time in the token (us)")
    title = "one token: resource timeline (PIM channels, links, ASIC units)"
    ax.set_title(title)
    handles = [matplotlib.patches.Patch(color=colour[o], label=o) for o in ops]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=110)
    except (OSError, ValueError) as exc:
        raise PimsimError(f"-o {out}: cannot write the figure ({exc}); give a writable .png, .pdf or .svg") from None
    return PlotData("timeline", title, str(path), tuple(series), len(spans), (), ())
