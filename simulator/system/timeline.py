"""One token's resource timeline (PIM channels, their links, the ASIC's units) as Chrome trace-event JSON.

The file is a JSON object {"traceEvents": [...], "displayTimeUnit": "ns"}: one complete event ("ph": "X")
per span, timestamps and durations in microseconds (the format's unit), one thread per resource, named by
metadata events. Perfetto (ui.perfetto.dev) and chrome://tracing open it.
"""

from __future__ import annotations

import json

from simulator.cli_support import output_file, write_atomic


def resources(tl: dict) -> list[str]:
    """Every resource of the timeline, in display order."""
    ch = [f"pim.ch{c}" for c in range(tl["channels"])] + [f"link.ch{c}" for c in range(tl["channels"])]
    return ch + [f"asic.{u}" for u in tl["units"]]


def chrome_trace(tl: dict, tck_ns: float) -> dict:
    names = resources(tl)
    tid = {r: i + 1 for i, r in enumerate(names)}
    ev = [{"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "pimsim token"}}]
    ev += [{"name": "thread_name", "ph": "M", "pid": 1, "tid": tid[r], "args": {"name": r}} for r in names]
    us = tck_ns * 1e-3
    for res, name, a, b in tl["spans"]:
        ev.append({"name": name, "cat": res.split(".")[0], "ph": "X", "pid": 1, "tid": tid[res],
                   "ts": round(float(a) * us, 6), "dur": round(max(0.0, float(b) - float(a)) * us, 6)})
    return {"traceEvents": ev, "displayTimeUnit": "ns"}


def check_writable(path: str) -> None:
    output_file(path, "--timeline")


def write_chrome_trace(tl: dict, path: str, tck_ns: float) -> None:
    write_atomic(path, json.dumps(chrome_trace(tl, tck_ns)) + "\n")
