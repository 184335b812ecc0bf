"""The `local` preset: this machine, measured with micro-benchmarks (never with the GPT workload itself).

* memory bandwidth: STREAM-style copy and triad kernels in numpy (arrays 8x the last-level cache, one chunk
  per thread, best of N, STREAM byte-counting convention); the preset uses **triad** (chosen before any
  comparison: of the STREAM kernels it is the closest to a read-mostly GEMV).
* with torch installed (the `[export]` extra): the host cost of one kernel-launching ATen op (`a + b` on
  64 elements), of one `nn.Module.__call__` and of one view op, and an in-cache GEMV (`F.linear`, 1024 x
  1024) per dtype as the compute ceiling. Without torch the compute ceiling is a numpy fp32 GEMV and the
  software overheads are 0 (the preset then models bandwidth only; `docs/baselines.md`).
Per-layer framework time = modules/layer x module call + host ops/layer x view op, with the counts read from
transformers 5.x `modeling_gpt2.py` (MODULES_PER_LAYER, HOST_OPS_PER_LAYER below).

The measured preset is cached in `$PIMSIM_CACHE_DIR` (default `~/.cache/pimsim`) as `baseline_local_t<threads>.yaml`;
`pimsim baseline calibrate` re-measures it.
"""

from __future__ import annotations

import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

from simulator.baselines.presets import BaselinePreset, preset_from_data
from simulator.errors import PimsimError

# Counted in transformers 5.x modeling_gpt2.py (GPT2Block.forward, GPT2Attention.forward, GPT2MLP.forward,
# Conv1D.forward, sdpa_attention_forward): module calls: block, ln_1, attn, c_attn, c_proj, resid_dropout,
# ln_2, mlp, c_fc, act, mlp.c_proj, mlp.dropout = 12. Non-kernel tensor/Python ops: split, 3 view + 3
# transpose, 4 Conv1D x (size arithmetic + 2 views), cache update bookkeeping (~3), attention-interface
# lookup, sdpa wrapper (causal flag, transpose, ~3), output reshape = ~24 [estimate of the glue].
MODULES_PER_LAYER = 12
HOST_OPS_PER_LAYER = 24
# Once per forward call: GPT2LMHeadModel, GPT2Model, wte, wpe, drop, ln_f, lm_head = 7 modules; position
# ids, cache length, causal-mask construction, output objects ~ 40 host ops [estimate].
MODULES_PER_TOKEN = 7
HOST_OPS_PER_TOKEN = 40


def cache_dir() -> Path:
    return Path(os.environ.get("PIMSIM_CACHE_DIR") or Path.home() / ".cache" / "pimsim")


def _threads() -> int:
    try:
        import torch

        return max(1, torch.get_num_threads())
    except ImportError:
        return max(1, os.cpu_count() or 1)


def _llc_bytes() -> int:
    try:
        best = 0
        for idx in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
            size = (idx / "size").read_text().strip()
            mult = {"K": 1024, "M": 1024 ** 2}.get(size[-1], 1)
            best = max(best, int(size.rstrip("KM")) * mult)
        return best or 32 * 1024 ** 2
    except (OSError, ValueError):
        return 32 * 1024 ** 2


def stream_bandwidth(threads: int | None = None, repeats: int = 5, array_bytes: int | None = None) -> dict:
    """STREAM copy (c = a: 2 arrays) and triad (a = b + s*c: 3 arrays, done as two numpy passes whose real
    traffic, 5 arrays, is what we count) in GB/s, best of `repeats`, `threads` chunks in parallel."""
    threads = threads or _threads()
    n = (array_bytes or max(8 * _llc_bytes(), 64 * 1024 ** 2)) // 8
    n -= n % threads
    a, b, c = (np.full(n, v, dtype=np.float64) for v in (1.0, 2.0, 0.5))
    chunks = [slice(i * n // threads, (i + 1) * n // threads) for i in range(threads)]

    def copy(s):
        np.copyto(c[s], a[s])

    def triad(s):
        np.multiply(c[s], 3.0, out=a[s])
        np.add(a[s], b[s], out=a[s])

    out = {"threads": threads, "array_mib": round(n * 8 / 2 ** 20, 1)}
    with ThreadPoolExecutor(threads) as pool:
        for name, fn, arrays in (("copy", copy, 2), ("triad", triad, 5)):
            best = float("inf")
            for _ in range(repeats + 1):  # first pass warms pages
                t0 = time.perf_counter()
                list(pool.map(fn, chunks))
                best = min(best, time.perf_counter() - t0)
            out[f"{name}_gbs"] = arrays * n * 8 / best / 1e9
    return out


def _best_us(fn, n: int = 2000, rounds: int = 9, budget_s: float = 0.03) -> float:
    """Best (minimum) over `rounds` of the mean time of `n` calls (n shrunk so a round takes ~`budget_s`).
    The minimum, as STREAM does: interference from other processes only ever adds time."""
    t0 = time.perf_counter()
    for _ in range(20):
        fn()
    per_call = (time.perf_counter() - t0) / 20
    n = max(5, min(n, int(budget_s / max(per_call, 1e-9))))
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n * 1e6)
    return min(samples)


def torch_atoms(threads: int | None = None) -> dict | None:
    """Host costs (µs) of PyTorch eager building blocks and in-cache GEMV throughput (TFLOP/s) per dtype."""
    try:
        import torch
    except ImportError:
        return None
    import torch.nn.functional as F

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _torch_atoms(torch, F)
    finally:
        torch.set_num_threads(before)


def _torch_atoms(torch, F) -> dict:
    class _Noop(torch.nn.Module):
        def forward(self, x):
            return x

    out: dict = {"torch": str(torch.__version__), "threads": torch.get_num_threads()}
    with torch.inference_mode():
        x, y = torch.ones(64), torch.ones(64)
        m = _Noop()
        out["kernel_op_us"] = _best_us(lambda: x + y)
        out["module_call_us"] = _best_us(lambda: m(x))
        z = torch.ones(4, 16)
        out["host_op_us"] = _best_us(lambda: z.view(16, 4))
        for dtype, tdt in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
            w = torch.randn(1024, 1024).to(tdt)
            v = torch.randn(1, 1024).to(tdt)
            t_us = _best_us(lambda: F.linear(v, w), n=200)
            compute_us = max(t_us - out["kernel_op_us"], 1e-3)
            out[f"gemv_{dtype}_us"] = t_us
            out[f"{dtype}_tflops"] = 2 * 1024 * 1024 / (compute_us * 1e-6) / 1e12
        # the framework's own GEMV streaming a 256 MiB fp32 matrix from DRAM (informational; the preset uses
        # STREAM unless asked for `bandwidth="torch_gemv"`)
        w = torch.empty(8192, 8192).uniform_()
        v = torch.ones(1, 8192)
        t_us = _best_us(lambda: F.linear(v, w), n=5, rounds=5, budget_s=0.0)
        out["gemv_dram_gbs"] = w.numel() * 4 / (t_us * 1e-6) / 1e9
    return out


def numpy_gemv_tflops() -> float:
    w = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    v = np.ones(1024, dtype=np.float32)
    t_us = _best_us(lambda: w @ v, n=200)
    return 2 * 1024 * 1024 / (t_us * 1e-6) / 1e12


def measure_local(threads: int | None = None) -> dict:
    """Run every micro-benchmark (a few seconds) with `threads` threads and return the raw results."""
    threads = threads or _threads()
    res = {"host": platform.node(), "cpu": _cpu_name(), "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "load_avg_1m": os.getloadavg()[0]}
    res["stream"] = stream_bandwidth(threads)
    atoms = torch_atoms(threads)
    if atoms is None:
        res["numpy_fp32_tflops"] = numpy_gemv_tflops()
    else:
        res["torch"] = atoms
    return res


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def preset_from_measurements(m: dict, bandwidth: str = "stream") -> BaselinePreset:
    """Build the `local` preset from `measure_local()` results (pure function: testable without timing).

    `bandwidth="stream"` (default) uses the numpy STREAM triad; `"torch_gemv"` the framework's own GEMV
    streaming from DRAM (available when torch was installed at calibration)."""
    s = m["stream"]
    src = f"measured on {m.get('cpu', '?')} ({m.get('when', '?')}) by pimsim baseline calibrate"
    t = m.get("torch")
    if bandwidth == "torch_gemv":
        if not t or "gemv_dram_gbs" not in t:
            raise PimsimError("local preset: bandwidth torch_gemv needs a calibration made with torch installed")
        bw = {"value": t["gemv_dram_gbs"], "source": f"{src}: torch F.linear 1x8192 @ 8192x8192 fp32 from DRAM"}
    elif bandwidth == "stream":
        bw = {"value": s["triad_gbs"], "source": f"{src}: numpy STREAM triad, {s['threads']} threads, "
                                                  f"{s['array_mib']} MiB arrays"}
    else:
        raise PimsimError(f"local preset: bandwidth {bandwidth!r}: choose stream or torch_gemv")
    compute: dict = {"efficiency": {"value": 1.0, "source": "the throughputs below are measured (achievable)"}}
    if t:
        for dt in ("fp32", "bf16", "fp16"):
            compute[f"{dt}_tflops"] = {"value": t[f"{dt}_tflops"],
                                       "source": f"{src}: in-cache torch F.linear 1x1024 @ 1024x1024 {dt}"}
        k, mod, host = t["kernel_op_us"], t["module_call_us"], t["host_op_us"]
        sw = {
            "host_us_per_kernel": {"value": k, "source": f"{src}: torch eager a+b on 64 elements (best of 9 rounds)"},
            "device_us_per_kernel": {"value": 0.0, "source": "CPU: kernels run on the host; cost in host_us"},
            "layer_overhead_us": {"value": MODULES_PER_LAYER * mod + HOST_OPS_PER_LAYER * host,
                                  "source": f"{MODULES_PER_LAYER} module calls x {mod:.2f} us + "
                                            f"{HOST_OPS_PER_LAYER} host ops x {host:.2f} us ({src}; counts from "
                                            f"transformers modeling_gpt2.py)"},
            "token_overhead_us": {"value": MODULES_PER_TOKEN * mod + HOST_OPS_PER_TOKEN * host,
                                  "source": f"{MODULES_PER_TOKEN} module calls + {HOST_OPS_PER_TOKEN} host ops "
                                            f"[estimate of the counts], atoms {src}"},
        }
    else:
        compute["fp32_tflops"] = {"value": m["numpy_fp32_tflops"], "source": f"{src}: numpy in-cache GEMV"}
        zero = {"value": 0.0, "source": "torch not installed: software overheads not measured"}
        sw = {k: zero for k in ("host_us_per_kernel", "device_us_per_kernel", "layer_overhead_us",
                                "token_overhead_us")}
    data = {
        "name": "local",
        "kind": "cpu",
        "description": f"this machine: {m.get('cpu', '?')}, {s['threads']} threads, measured {m.get('when', '?')}",
        "memory": {
            "bandwidth_gbs": bw,
            "bandwidth_efficiency": {"value": 1.0, "source": "bandwidth_gbs is measured (achievable)"},
        },
        "compute": compute,
        "power": {
            "model": "utilisation",
            "tdp_w": {"value": 7.5 * s["threads"], "source": "[estimate] 7.5 W per active core incl. its "
                      "share of uncore and DRAM; power is not readable in most VMs (edit or use a profile)"},
            "idle_w": {"value": 2.0 * s["threads"], "source": "[estimate] 2 W per core idle share"},
        },
        "software": sw,
        "measured": m,
    }
    return preset_from_data(data, "local preset (measured)")


def local_preset(threads: int | None = None, remeasure: bool = False) -> BaselinePreset:
    """The cached local preset for `threads` threads (default: torch's), measuring (a few seconds) when there
    is none or `remeasure`."""
    threads = threads or _threads()
    path = cache_dir() / f"baseline_local_t{threads}.yaml"
    if path.is_file() and not remeasure:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            return preset_from_data(data, str(path))
        except (OSError, yaml.YAMLError):
            raise PimsimError(f"{path}: unreadable cached local preset; run `pimsim baseline calibrate`") from None
    preset = preset_from_measurements(measure_local(threads))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(preset.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    except OSError:
        pass  # a read-only home: use the measurement without caching
    return preset
