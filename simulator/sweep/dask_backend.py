"""Run sweep points on a Dask distributed cluster (the `[sweep]` extra: `dask[distributed]`).

Each point is one Dask task that runs the point in a fresh interpreter on the worker
(`isolate.run_in_subprocess`), so a long-lived worker carries no state from one point to the next.
Workers need pimsim installed and the sweep's arch and trace files at the same paths (a shared file system).
The client, here, commits each result to the store as it arrives.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from simulator.errors import PimsimError
from simulator.sweep.isolate import describe_error, run_in_subprocess
from simulator.sweep.points import Point
from simulator.sweep.store import Outcome

CONNECT_TIMEOUT = "20s"


def _client(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise PimsimError("--scheduler needs Dask: pip install 'pimsim[sweep]' (dask[distributed])") from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise PimsimError(f"cannot connect to the Dask scheduler at {address}: {describe_error(exc)}") from None


def run_on_dask(address: str, ref: str, items: Sequence[tuple[Point, dict[str, Any]]],
                timeout_s: float | None = None) -> Iterator[tuple[Point, Outcome]]:
    """Submit every point, then yield (point, outcome) in completion order."""
    from distributed import as_completed

    client = _client(address)
    futures: dict[Any, Point] = {}
    try:
        for point, request in items:
            fut = client.submit(run_in_subprocess, ref, request, timeout_s, pure=False,
                                key=f"pimsim-point-{point.key}-{id(futures):x}-{len(futures)}")
            futures[fut] = point
        for fut in as_completed(list(futures), loop=client.loop):
            point = futures.pop(fut)
            try:
                outcome = fut.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker or task is this point's error
                outcome = Outcome("error", error=f"dask task failed: {describe_error(exc)}")
            yield point, outcome
    finally:
        if futures:
            client.cancel(list(futures))
        client.close()
