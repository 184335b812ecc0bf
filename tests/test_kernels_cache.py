"""The Numba kernels are compiled with cache=True: a second process loads them from the cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, numpy as np
from simulator.kernels import gemv_bf16, f32_to_bf16
from simulator.kernels.mac_bf16 import gemv_bf16_kernel
W = f32_to_bf16(np.ones((4, 32), np.float32)); x = f32_to_bf16(np.ones(32, np.float32))
y = gemv_bf16(W, x)
print(json.dumps({"y": y.tolist(), "hits": sum(gemv_bf16_kernel.stats.cache_hits.values()),
                  "misses": sum(gemv_bf16_kernel.stats.cache_misses.values())}))
"""


def _run() -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_loads_from_cache():
    _run()  # populate the cache (a no-op when an earlier run already did)
    second = _run()
    assert second["y"] == [32.0] * 4
    assert second["hits"] >= 1 and second["misses"] == 0
