"""The `local` preset: this machine, measured with micro-benchmarks (never with the evaluated GPT models).

* memory bandwidth: STREAM-style copy and triad kernels in numpy (arrays 8x the last-level cache, one chunk
  per thread, best of N, STREAM byte-counting convention), at the requested thread count and at 1 thread
  (`cpu.bandwidth_1t_gbs`); the preset uses **triad** (chosen before any comparison).
* with torch installed (the `[export]` extra):
  - the host cost of one kernel-launching ATen op (`a + b` on 64 elements) = `host_us_per_kernel`;
  - the framework's own kernels streaming from DRAM per dtype (fp32, bf16), at GPT-2-layer sizes, cycling
    through copies that fill 4x the last-level cache = `memory.op_bandwidth_gbs`: `gemv` (`torch.addmm`,
    1024 x 4096 and 1024 x 1024 weights in GPT-2's Conv1D layout: the two widths give the bandwidth and a
    fixed time per call, `memory.op_fixed_us`), `linear` (`F.linear`, the same weight in nn.Linear's
    layout: the LM head), `attention` (SDPA of one query over 1024 keys x 12 heads)
    and `kv_append` (`torch.cat` of a 1023-token K cache and one token, as DynamicCache does);
  - an in-cache GEMV (`F.linear`, 1024 x 1024) per dtype as the compute ceiling;
  - fork/join of one parallel op: an in-cache 2^17-element add at N threads against 1 thread;
  - the stack's Python glue, on a tiny random GPT-2 (d_model 64, vocab 256; its kernels take ~1 us): one
    decode forward call with 1 and with 3 layers gives the glue per layer and per call; `generate()` on the
    1-layer model gives the generate loop's glue per token. The kernel dispatches (counted in the workload)
    are subtracted, so the glue is what the per-kernel cost does not already charge.
Every micro-benchmark reports the best of its rounds (interference only ever adds time, as in STREAM); with
one thread it is timed in process CPU time (preemption cannot inflate it), with more in wall time. The
calibration records when it ran, its clock, the load average before and after, and warns when its rounds
disagree (`spread`). A micro-benchmark runs extra rounds until its best round is confirmed by a second one
within 5 % (`rounds`, `unconfirmed` in the record; a warning names any never confirmed).

The measured preset is cached in `$PIMSIM_CACHE_DIR` (default `~/.cache/pimsim`) as `baseline_local_t<threads>.yaml`;
`pimsim baseline calibrate` re-measures it.
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

from simulator.baselines.presets import BaselinePreset, preset_from_data
from simulator.baselines.stacks import GENERATE_LOOP_KERNELS
from simulator.errors import PimsimError

SPREAD_WARN = 0.25   # a micro-benchmark whose median round is 25 % above its best: the machine was busy
#: The best round is trusted once CONFIRM_COUNT rounds lie within CONFIRM_TOL of it (the floor was reached
#: twice, not one round that happened to dodge or straddle a preemption); until then a micro-benchmark keeps
#: running rounds, up to MAX_ROUNDS_FACTOR x its planned rounds, and is reported as unconfirmed if it never is.
CONFIRM_TOL = 0.05
CONFIRM_COUNT = 2
MAX_ROUNDS_FACTOR = 4

#: The clock of every micro-benchmark. With one thread, process CPU time: the time the benchmark actually ran
#: on a core, which preemption by other processes cannot inflate (sharing the caches and memory bus still
#: can); with more threads, wall time (process time would add up the threads). `measure_local` sets it.
_CLOCK = {"now": time.perf_counter, "name": "perf_counter"}


def _now() -> float:
    return _CLOCK["now"]()


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
                t0 = _now()
                list(pool.map(fn, chunks))
                best = min(best, _now() - t0)
            out[f"{name}_gbs"] = arrays * n * 8 / best / 1e9
    return out


_SPREADS: dict[str, float] = {}
_ROUNDS: dict[str, int] = {}
_UNCONFIRMED: set[str] = set()


def confirmed(samples: list[float]) -> bool:
    """CONFIRM_COUNT rounds within CONFIRM_TOL of the best one."""
    best = min(samples)
    return sum(1 for t in samples if t <= best * (1 + CONFIRM_TOL)) >= CONFIRM_COUNT


def _best_us(fn, n: int = 2000, rounds: int = 25, budget_s: float = 0.002, name: str = "") -> float:
    """Best (minimum) over at least `rounds` of the mean time of `n` calls (n shrunk so a round takes
    ~`budget_s`). The minimum, as STREAM does: interference from other processes only ever adds time; rounds
    are kept short (~2 ms) so that on a shared machine some of them fit between preemptions. Rounds go on
    (up to MAX_ROUNDS_FACTOR x `rounds`) until the best is `confirmed`. The spread (median / best - 1), the
    rounds run and an unconfirmed best are kept under `name` for the calibration record."""
    t0 = _now()
    for _ in range(20):
        fn()
    per_call = (_now() - t0) / 20
    n = max(5, min(n, int(budget_s / max(per_call, 1e-9))))
    samples: list[float] = []
    while len(samples) < rounds or (not confirmed(samples) and len(samples) < MAX_ROUNDS_FACTOR * rounds):
        t0 = _now()
        for _ in range(n):
            fn()
        samples.append((_now() - t0) / n * 1e6)
    if name:
        _SPREADS[name] = round(sorted(samples)[len(samples) // 2] / min(samples) - 1, 3)
        _ROUNDS[name] = len(samples)
        if not confirmed(samples):
            _UNCONFIRMED.add(name)
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

    threads = torch.get_num_threads()
    out: dict = {"torch": str(torch.__version__), "threads": threads}
    with torch.inference_mode():
        x, y = torch.ones(64), torch.ones(64)
        m = _Noop()
        out["kernel_op_us"] = _best_us(lambda: x + y, name="kernel_op")
        out["module_call_us"] = _best_us(lambda: m(x), name="module_call")
        z = torch.ones(4, 16)
        out["host_op_us"] = _best_us(lambda: z.view(16, 4), name="host_op")
        for dtype, tdt in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
            w = torch.randn(1024, 1024).to(tdt)
            v = torch.randn(1, 1024).to(tdt)
            t_us = _best_us(lambda w=w, v=v: F.linear(v, w), n=200, name=f"gemv_{dtype}")
            compute_us = max(t_us - out["kernel_op_us"], 1e-3)
            out[f"gemv_{dtype}_us"] = t_us
            out[f"{dtype}_tflops"] = 2 * 1024 * 1024 / (compute_us * 1e-6) / 1e12
            if dtype != "fp16":  # CPUs without fp16 kernels take seconds here; fp16 falls back to STREAM
                out.update(_op_bandwidths(torch, F, dtype, tdt))
        out["gemv_dram_gbs"] = out["gemv_fp32_dram_gbs"]
        out["fork_join_us"] = _fork_join_us(torch, threads)
    out.update(_stack_glue(torch))
    return out


def _generate_step_us(torch, model, cache, kw: str, runs: int = 5, new: int = 12) -> float:
    """Best time between consecutive generated tokens of `generate()` (a StoppingCriteria stamps each)."""
    import copy

    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Stamp(StoppingCriteria):
        def __init__(self):
            self.t: list[float] = []

        def __call__(self, input_ids, scores, **kwargs):
            self.t.append(_now())
            return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    prompt = torch.zeros(1, cache.get_seq_length() + 1, dtype=torch.long)
    steps = []
    for _ in range(runs):
        stamp = _Stamp()
        model.generate(prompt, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                       stopping_criteria=StoppingCriteriaList([stamp]), **{kw: copy.deepcopy(cache)})
        steps += [(b - a) * 1e6 for a, b in zip(stamp.t, stamp.t[1:])]
    steps.sort()
    _SPREADS["glue_generate"] = round(steps[len(steps) // 2] / steps[0] - 1, 3)
    return steps[0]


#: the stack's kernels at GPT-2-layer sizes, cycling through copies that together fill 4x the last-level
#: cache, so every call streams from DRAM as in a decode step (where each layer's tensors are distinct)
GEMV_SHAPE = (1024, 4096)       # addmm(bias, x[1, K], W[K, N]): GPT-2 Conv1D layout
ATTN_SHAPE = (12, 1024, 64)     # SDPA of one query over (heads, keys, head_dim)


def _cycle_best_us(make, bytes_each: int, name: str) -> tuple[float, int]:
    """Best per-call time (us) of `make()`-built callables, cycled so their data cannot stay cached."""
    copies = max(2, 4 * _llc_bytes() // bytes_each)
    fns = [make() for _ in range(copies)]
    state = {"i": 0}

    def call():
        fns[state["i"] % copies]()
        state["i"] += 1

    return _best_us(call, n=copies, rounds=15, budget_s=0.0, name=name), copies


def _op_bandwidths(torch, F, dtype: str, tdt) -> dict:
    """GB/s of the stack's own GEMV, attention and KV-cache append kernels, streaming from DRAM. The GEMVs
    are timed at two widths (N and N/4, same K): time = fixed per call + bytes / bandwidth gives both."""
    k, n = GEMV_SHAPE
    h, keys, d = ATTN_SHAPE
    es = torch.empty(0, dtype=tdt).element_size()

    def gemv(width):
        def make():
            w, x, b = torch.empty(k, width).uniform_().to(tdt), torch.ones(1, k).to(tdt), torch.zeros(width).to(tdt)
            return lambda: torch.addmm(b, x, w)
        return make

    def linear(width):  # nn.Linear (the LM head): F.linear(x[1, K], W[N, K])
        def make():
            w, x = torch.empty(width, k).uniform_().to(tdt), torch.ones(1, k).to(tdt)
            return lambda: F.linear(x, w)
        return make

    def attention():
        q = torch.randn(1, h, 1, d).to(tdt)
        kv = torch.randn(2, 1, h, keys, d).to(tdt)
        return lambda: F.scaled_dot_product_attention(q, kv[0], kv[1])

    def append():
        old, new = torch.randn(1, h, keys - 1, d).to(tdt), torch.randn(1, h, 1, d).to(tdt)
        return lambda: torch.cat([old, new], dim=-2)

    out = {}
    for cls, make in (("gemv", gemv), ("linear", linear)):
        big, small = k * n * es, k * (n // 4) * es
        t_big, _ = _cycle_best_us(make(n), big, f"{cls}_{dtype}_dram")
        t_small, _ = _cycle_best_us(make(n // 4), small, f"{cls}_{dtype}_dram_small")
        if t_big > t_small:
            bw = (big - small) / ((t_big - t_small) * 1e-6)
            fixed = max(t_small - small / bw * 1e6, 0.0)
        else:  # noise swamped the difference: bandwidth of the big one, no fixed part
            bw, fixed = big / (t_big * 1e-6), 0.0
        out[f"{cls}_{dtype}_dram_gbs"] = bw / 1e9
        out[f"{cls}_{dtype}_fixed_us"] = fixed
    for cls, make, moved in (("attention", attention, 2 * h * keys * d * es),
                             ("kv_append", append, 2 * h * keys * d * es)):
        t_us, _ = _cycle_best_us(make, moved, f"{cls}_{dtype}_dram")
        out[f"{cls}_{dtype}_dram_gbs"] = moved / (t_us * 1e-6) / 1e9
    return out


def _fork_join_us(torch, threads: int) -> float:
    """Fork + join of one parallel op: an in-cache add big enough to be split (2^17 elements) at `threads`
    threads, minus 1/threads of its one-thread time. 0 at one thread."""
    if threads < 2:
        return 0.0
    a, b, c = torch.ones(1 << 17), torch.ones(1 << 17), torch.empty(1 << 17)
    t_n = _best_us(lambda: torch.add(a, b, out=c), n=200, name="fork_join_n")
    torch.set_num_threads(1)
    try:
        t_1 = _best_us(lambda: torch.add(a, b, out=c), n=200, name="fork_join_1")
    finally:
        torch.set_num_threads(threads)
    return max(t_n - t_1 / threads, 0.0)


def _stack_glue(torch) -> dict:
    """Per-layer, per-call and generate-loop host time of HF GPT-2 on a tiny random model (µs, best of N)."""
    try:
        import transformers  # noqa: F401
    except ImportError:
        return {}
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    out = {}
    step = torch.zeros(1, 1, dtype=torch.long)
    times = {}
    for layers in (1, 3):
        cfg = GPT2Config(n_layer=layers, n_embd=64, n_head=2, n_positions=64, vocab_size=256, bos_token_id=0,
                         eos_token_id=0)
        model = GPT2LMHeadModel(cfg).eval()
        kw = "cache" if "cache" in __import__("inspect").signature(model.forward).parameters else "past_key_values"
        with torch.inference_mode():
            cache = model(torch.zeros(1, 8, dtype=torch.long), use_cache=True).past_key_values

            def fwd(model=model, cache=cache, kw=kw):
                model(step, use_cache=True, **{kw: cache})
                _crop_to(cache, 8)

            times[layers] = _best_us(fwd, n=1, rounds=60, budget_s=0.0, name=f"glue_forward_{layers}l")
            if layers == 1:
                out["generate_step_us"] = _generate_step_us(torch, model, cache, kw)
    out["forward_1l_us"], out["forward_3l_us"] = times[1], times[3]
    out["glue_layer_us"] = (times[3] - times[1]) / 2
    out["glue_call_us"] = times[1] - out["glue_layer_us"]
    return out


def numpy_gemv_tflops() -> float:
    w = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    v = np.ones(1024, dtype=np.float32)
    t_us = _best_us(lambda: w @ v, n=200)
    return 2 * 1024 * 1024 / (t_us * 1e-6) / 1e12


def measure_local(threads: int | None = None) -> dict:
    """Run every micro-benchmark (a few seconds) with `threads` threads and return the raw results."""
    threads = threads or _threads()
    _SPREADS.clear()
    _ROUNDS.clear()
    _UNCONFIRMED.clear()
    _CLOCK.update({"now": time.process_time, "name": "process_time"} if threads == 1 else
                  {"now": time.perf_counter, "name": "perf_counter"})
    res = {"host": platform.node(), "cpu": _cpu_name(), "cores": os.cpu_count() or 1, "clock": _CLOCK["name"],
           "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_avg_before": list(os.getloadavg()),
           "load_avg_1m": os.getloadavg()[0]}
    res["stream"] = stream_bandwidth(threads)
    res["stream_1t"] = res["stream"] if threads == 1 else stream_bandwidth(1)
    atoms = torch_atoms(threads)
    if atoms is None:
        res["numpy_fp32_tflops"] = numpy_gemv_tflops()
    else:
        res["torch"] = atoms
    res["load_avg_after"] = list(os.getloadavg())
    res["spread"] = dict(_SPREADS)
    res["rounds"] = dict(_ROUNDS)
    res["unconfirmed"] = sorted(_UNCONFIRMED)
    _CLOCK.update({"now": time.perf_counter, "name": "perf_counter"})
    if _UNCONFIRMED:
        warnings.warn(f"baseline calibrate: no two rounds within {CONFIRM_TOL * 100:.0f} % of the best for "
                      f"{', '.join(sorted(_UNCONFIRMED))} (load {os.getloadavg()[0]:.2f}); their best round is "
                      f"used but may itself be disturbed: recalibrate on a quieter machine", stacklevel=2)
    noisy = {k: v for k, v in _SPREADS.items() if v > SPREAD_WARN}
    if noisy:
        warnings.warn(f"baseline calibrate: rounds disagree (median above best by "
                      f"{', '.join(f'{k} {v * 100:.0f} %' for k, v in sorted(noisy.items()))}; load "
                      f"{os.getloadavg()[0]:.2f}); the best rounds are used", stacklevel=2)
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
        bw = {"value": t["gemv_dram_gbs"], "source": f"{src}: torch addmm GEMV fp32 from DRAM"}
    elif bandwidth == "stream":
        bw = {"value": s["triad_gbs"], "source": f"{src}: numpy STREAM triad, {s['threads']} threads, "
                                                  f"{s['array_mib']} MiB arrays"}
    else:
        raise PimsimError(f"local preset: bandwidth {bandwidth!r}: choose stream or torch_gemv")
    compute: dict = {"efficiency": {"value": 1.0, "source": "the throughputs below are measured (achievable)"}}
    zero = {"value": 0.0, "source": "torch/transformers not installed at calibration: not measured"}
    sw = {k: zero for k in ("host_us_per_kernel", "layer_overhead_us", "token_overhead_us",
                            "generate_overhead_us")}
    sw["device_us_per_kernel"] = {"value": 0.0, "source": "CPU: kernels run on the host; cost in host_us"}
    sw["sync_us"] = {"value": 0.0, "source": "CPU: host and device are the same thread"}
    sw["graph_launch_us"] = {"value": 0.0, "source": "CPU: no graphs"}
    gemv = fixed = None
    if t:
        for dt in ("fp32", "bf16", "fp16"):
            compute[f"{dt}_tflops"] = {"value": t[f"{dt}_tflops"],
                                       "source": f"{src}: in-cache torch F.linear 1x1024 @ 1024x1024 {dt}"}
        what = {"gemv": f"torch.addmm 1x{GEMV_SHAPE[0]} @ {GEMV_SHAPE[0]}x{GEMV_SHAPE[1]}",
                "linear": f"F.linear 1x{GEMV_SHAPE[0]} @ ({GEMV_SHAPE[1]}x{GEMV_SHAPE[0]})^T (nn.Linear, the LM head)",
                "attention": f"SDPA of 1 query over {ATTN_SHAPE[1]} keys x {ATTN_SHAPE[0]} heads (K+V bytes)",
                "kv_append": f"torch.cat of a {ATTN_SHAPE[1] - 1}-token K cache + 1 (bytes read + written)"}
        gemv = {cls: {dt: {"value": t[f"{cls}_{dt}_dram_gbs"],
                           "source": f"{src}: {what[cls]} {dt}, copies cycled through 4x the LLC, {t['threads']} "
                                     f"threads"}
                      for dt in ("fp32", "bf16", "fp16") if f"{cls}_{dt}_dram_gbs" in t}
                for cls in what}
        gemv = {cls: v for cls, v in gemv.items() if v} or None
        fixed = {cls: {dt: {"value": t[f"{cls}_{dt}_fixed_us"],
                            "source": f"{src}: {what[cls]} {dt} at two widths (N and N/4): the per-call part"}
                       for dt in ("fp32", "bf16") if f"{cls}_{dt}_fixed_us" in t}
                 for cls in ("gemv", "linear")}
        fixed = {cls: v for cls, v in fixed.items() if v} or None
        k = t["kernel_op_us"]
        sw["host_us_per_kernel"] = {"value": k, "source": f"{src}: torch eager a+b on 64 elements (best of 9 rounds)"}
        if "glue_layer_us" in t:
            per_layer, per_call = _tiny_kernel_counts()
            sw["layer_overhead_us"] = {
                "value": max(t["glue_layer_us"] - per_layer * k, 0.0),
                "source": f"{src}: tiny GPT-2 decode forward, (3 layers - 1 layer) / 2 = {t['glue_layer_us']:.1f} us "
                          f"minus its {per_layer} kernel dispatches"}
            sw["token_overhead_us"] = {
                "value": max(t["glue_call_us"] - per_call * k, 0.0),
                "source": f"{src}: tiny GPT-2 decode forward, 1 layer - glue of one layer = {t['glue_call_us']:.1f} us "
                          f"minus its {per_call} kernel dispatches"}
            sw["generate_overhead_us"] = {
                "value": max(t["generate_step_us"] - t["forward_1l_us"] - GENERATE_LOOP_KERNELS * k, 0.0),
                "source": f"{src}: tiny GPT-2 generate() per token {t['generate_step_us']:.1f} us - forward "
                          f"{t['forward_1l_us']:.1f} us - {GENERATE_LOOP_KERNELS} loop kernel dispatches"}
    else:
        compute["fp32_tflops"] = {"value": m["numpy_fp32_tflops"], "source": f"{src}: numpy in-cache GEMV"}
    s1 = m.get("stream_1t", s)
    cpu = {
        "cores": {"value": m.get("cores", s["threads"]), "source": f"{src}: os.cpu_count()"},
        "threads": {"value": s["threads"], "source": "the thread count this calibration measured"},
        "bandwidth_1t_gbs": {"value": s1["triad_gbs"], "source": f"{src}: numpy STREAM triad, 1 thread"},
        "fork_join_us": {"value": (t or {}).get("fork_join_us", 0.0),
                         "source": f"{src}: 2^17-element add at {s['threads']} threads - 1/{s['threads']} of "
                                   f"its 1-thread time (0 at 1 thread)"},
    }
    data = {
        "name": "local",
        "kind": "cpu",
        "description": f"this machine: {m.get('cpu', '?')}, {s['threads']} threads, measured {m.get('when', '?')}",
        "memory": {
            "bandwidth_gbs": bw,
            "bandwidth_efficiency": {"value": 1.0, "source": "bandwidth_gbs is measured (achievable)"},
            **({"op_bandwidth_gbs": gemv} if gemv else {}),
            **({"op_fixed_us": fixed} if t and fixed else {}),
        },
        "compute": compute,
        "power": {
            "model": "utilisation",
            "tdp_w": {"value": 7.5 * s["threads"], "low": 4.0 * s["threads"], "high": 12.0 * s["threads"],
                      "source": "[estimate] 7.5 W (4-12 W) per active core incl. its share of uncore and DRAM; "
                                "power is not readable in most VMs (edit or use a profile)"},
            "idle_w": {"value": 2.0 * s["threads"], "low": 1.0 * s["threads"], "high": 4.0 * s["threads"],
                       "source": "[estimate] 2 W (1-4 W) per core idle share"},
        },
        "software": sw,
        "cpu": cpu,
        "measured": m,
    }
    return preset_from_data(data, "local preset (measured)")


def _tiny_kernel_counts() -> tuple[int, int]:
    """Kernels per layer and per forward call outside the layers, as the workload counts them for GPT-2."""
    from simulator.baselines.workload import ModelShape, workload_from_model

    tiny = ModelShape(layers=1, d_model=64, heads=2, head_dim=32, ffn=256, vocab=256, ctx_limit=64, name="tiny")
    wl = workload_from_model(tiny, 9, "fp32", stack="hf-forward")
    return sum(o.kernels for o in wl if o.per_layer), sum(o.kernels for o in wl if not o.per_layer)


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


def _crop_to(cache, keep: int) -> None:
    """Drop the tokens past `keep` (transformers >= 5: negative count; older: absolute length)."""
    try:
        cache.crop(keep - cache.get_seq_length())
    except ValueError:
        cache.crop(keep)
