"""Event-driven baselines in SimPy: one decode token as a host thread, a device (GPU stream or CPU threads)
and the synchronisation points of the stack (docs/baselines.md, "Event model").

GPU: the host thread walks the token's kernels in program order; per kernel it spends the dispatch cost
(`software.host_us_per_kernel` for PyTorch eager, `software.launch_us` for a C++ loop such as
FasterTransformer's; 0 when a CUDA graph launches them) and puts the kernel into the stream, a
launch queue of `software.launch_queue_depth` kernels (the host blocks when it is full). The device takes
kernels in order and runs each for its roofline time plus `software.device_us_per_kernel`. Python glue
runs on the host between kernels (per forward call before the first, per layer before each layer's first
kernel, the generate loop after the forward). Each token ends with a synchronisation: the host waits until
the stream has drained, then pays `software.sync_us` (reading the argmax / stop flag back). A kernel marked
`sync` (a blocking host-to-device copy inside the step, e.g. transformers 4.x GPT-2's per-layer mask value)
drains the stream the same way before the host goes on.

CPU: the main thread dispatches each kernel (`software.host_us_per_kernel`) and then runs it: a kernel big
enough for PyTorch to parallelise (PARALLEL_BYTES) forks `threads` workers that each run 1/threads of it
and joins them (`cpu.fork_join_us` x log2(threads)); smaller kernels run on the main thread alone.

Limit cases (tests/test_baselines_events.py): a GPU whose host or device side costs nothing gives exactly
the other side's time, i.e. today's closed form max(host, device); uniform kernels give the pipeline
formula exactly and max(host, device) + one kernel in general; a CPU with one thread gives exactly
host + device.

Per-kernel times are computed once per op (`KernelPlan`); only ops whose bytes depend on the context
(attention, KV cache) differ between tokens of a generation.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import simpy

from simulator.baselines.presets import BaselinePreset
from simulator.baselines.stacks import GENERATE_LOOP_KERNELS, Stack
from simulator.baselines.workload import BaselineOp
from simulator.errors import PimsimError

US = 1e-6
#: PyTorch's at::internal::GRAIN_SIZE is 32768 elements: elementwise kernels smaller than that run on one
#: thread. We apply it to a kernel's bytes at 4 bytes per element (GEMVs are always big enough here).
PARALLEL_BYTES = 32768 * 4


@dataclass(frozen=True)
class Kernel:
    name: str
    kind: str
    host_s: float            # host dispatch cost
    device_s: float          # device time: roofline share + fixed per-kernel time
    parallel: bool = False   # CPU: forked over the threads
    layer_start: bool = False
    memory_bound: bool = True
    fixed_s: float = 0.0     # the part of device_s that is the fixed per-kernel time
    sync: bool = False       # GPU: after queueing it, the host waits for the stream to drain (+ sync_us)
    launched: bool = True    # False: work fused into a neighbour kernel (an op with kernels=0), no launch


@dataclass
class TokenTimeline:
    latency_s: float
    host_busy_s: float = 0.0       # host dispatch + Python glue (excl. waiting)
    device_busy_s: float = 0.0     # kernels running (CPU: main thread or workers running kernels)
    sync_s: float = 0.0
    events: list[tuple[str, str, float, float]] = field(default_factory=list)  # (lane, name, start, end)


#: op kinds whose time a measured `memory.op_bandwidth_gbs` class gives. Weight-carrying ops are "gemv"
#: (GPT-2's Conv1D: addmm with a [in, out] weight), except the LM head, an nn.Linear ([out, in] weight:
#: another GEMV kernel, "linear").
OP_CLASS = {"attn_score": "attention", "softmax": "attention", "attn_value": "attention", "kv_append": "kv_append",
            "lm_head": "linear"}


def op_class(op: BaselineOp) -> str:
    if op.weight_bytes > 0 and op.kind != "lm_head":
        return "gemv"
    return OP_CLASS.get(op.kind, "stream")


@dataclass(frozen=True)
class Rates:
    """Achievable rates of a preset at a thread count (the CPU thread model; a GPU has one setting)."""

    bw: dict[str, float]          # bytes/s per op class ("stream", "gemv", ...), all threads
    serial_bw: dict[str, float]   # one thread (CPU); = bw on a GPU
    threads: int
    fork_join_s: float
    fixed_s: dict[str, float] = field(default_factory=dict)  # measured fixed time per call, per op class

    @property
    def stream_bw(self) -> float:
        return self.bw["stream"]


def rates(preset: BaselinePreset, dtype: str, threads: int | None) -> Rates:
    m = preset.memory
    bw_all = m.bandwidth_gbs.value * 1e9 * m.bandwidth_efficiency.value
    measured = {cls: per[dtype].value * 1e9 for cls, per in (m.op_bandwidth_gbs or {}).items() if dtype in per}
    fixed = {cls: per[dtype].value * US for cls, per in (m.op_fixed_us or {}).items() if dtype in per}
    if preset.kind == "gpu":
        if threads not in (None, 1):
            raise PimsimError(f"--threads {threads}: a thread count applies to CPU presets only ({preset.name} is a GPU)")
        bw = {"stream": bw_all, **measured}
        return Rates(bw, bw, 1, 0.0, fixed)
    cpu = preset.cpu
    t0 = int(cpu.threads.value)
    t = t0 if threads is None else threads
    if not isinstance(t, int) or t < 1:
        raise PimsimError(f"--threads {threads!r}: must be a positive integer")
    cores = int(cpu.cores.value)
    if t > cores:
        raise PimsimError(f"--threads {t}: {preset.name} has {cores} cores; the thread model does not cover "
                          f"oversubscription (use at most {cores})")
    bw1 = min(cpu.bandwidth_1t_gbs.value * 1e9, bw_all)

    def stream(n: int) -> float:  # bandwidth model: each thread adds its own misses in flight, up to the socket
        return min(n * bw1, bw_all)

    # a measured op bandwidth belongs to the preset's own thread count: scale it with the model
    every = {"stream": stream(t), **{c: v * stream(t) / stream(t0) for c, v in measured.items()}}
    one = {"stream": stream(1), **{c: v * stream(1) / stream(t0) for c, v in measured.items()}}
    fj = cpu.fork_join_us.value * US * math.log2(t) if t > 1 else 0.0
    return Rates(every, one, t, fj, fixed)


def host_dispatch_s(preset: BaselinePreset, stack: Stack) -> float:
    """Host time per launched kernel: PyTorch eager dispatch (`host_us_per_kernel`), a C++ launch
    (`launch_us`), or nothing when a CUDA graph launches the token."""
    sw = preset.software
    if stack.gpu_only and preset.kind != "gpu":
        raise PimsimError(f"--stack {stack.name}: a CUDA library, so GPU presets only ({preset.name} is a CPU; "
                          f"use --stack optimized for a CPU without framework glue)")
    if stack.dispatch == "eager":
        return sw.host_us_per_kernel.value * US
    if stack.dispatch == "native":
        if sw.launch_us is None:
            raise PimsimError(f"--stack {stack.name}: baseline preset {preset.name} has no software.launch_us "
                              f"(host time of one C++ kernel launch); add it with its source (docs/baselines.md)")
        return sw.launch_us.value * US
    return 0.0


def kernel_plan(preset: BaselinePreset, stack: Stack, workload: list[BaselineOp],
                threads: int | None = None) -> list[Kernel]:
    """The kernels of one token in program order (per-layer ops repeated per layer), with their costs."""
    if not workload:
        raise PimsimError("baseline predict: the workload has no ops")
    sw = preset.software
    dtype = workload[0].dtype
    r = rates(preset, dtype, threads)
    cpu = preset.kind == "cpu"
    host_k = host_dispatch_s(preset, stack)
    fixed = sw.device_us_per_kernel.value * US
    cache: dict[BaselineOp, list[Kernel]] = {}

    def peak(op: BaselineOp, n_threads: int) -> float:
        p = preset.compute.tflops(op.dtype).value * 1e12 * preset.compute.efficiency.value
        if cpu:  # the preset's throughput is for its default thread count: scale per thread
            p = p / int(preset.cpu.threads.value) * n_threads
        return p

    def kernels_of(op: BaselineOp) -> list[Kernel]:
        if op in cache:
            return cache[op]
        parallel = cpu and r.threads > 1 and op.bytes >= PARALLEL_BYTES
        n = r.threads if parallel else 1
        table = r.serial_bw if cpu and not parallel else r.bw
        cls = op_class(op)
        bw = table.get(cls, table["stream"])
        mem, comp = op.bytes / bw + r.fixed_s.get(cls, 0.0) * max(op.kernels, 1), op.flops / peak(op, n)
        roof = max(mem, comp)
        k = max(op.kernels, 1)
        fix = fixed if op.kernels else 0.0
        out = [Kernel(op.name, op.kind, host_k if op.kernels else 0.0, roof / k + fix, parallel,
                      memory_bound=mem >= comp, fixed_s=fix, sync=bool(op.syncs) and i == k - 1,
                      launched=op.kernels > 0)
               for i in range(k)]
        cache[op] = out
        return out

    layers = max((o.count for o in workload if o.per_layer), default=0)
    pre = [o for o in workload if not o.per_layer and o.kind == "embedding"]
    layer_ops = [o for o in workload if o.per_layer]
    post = [o for o in workload if not o.per_layer and o.kind != "embedding"]
    plan: list[Kernel] = [k for o in pre for k in kernels_of(o)]
    for _ in range(layers):
        first = True
        for o in layer_ops:
            for k in kernels_of(o):
                if first:
                    k = dataclasses.replace(k, layer_start=True)
                    first = False
                plan.append(k)
    plan += [k for o in post for k in kernels_of(o)]
    # (a fused op, kernels == 0, is one zero-host-cost kernel carrying its roofline time)
    if stack.generate_loop:
        # argmax reads the logits; the other loop kernels touch a handful of elements (their cost is fixed)
        logits = next((o.activation_bytes for o in workload if o.kind == "lm_head"), 0)
        argmax_s = logits / (r.serial_bw["stream"] if cpu else r.stream_bw)
        plan.append(Kernel("generate_loop.argmax", "generate_loop", host_k, argmax_s + fixed, fixed_s=fixed))
        plan += [Kernel("generate_loop", "generate_loop", host_k, fixed, fixed_s=fixed)] * (GENERATE_LOOP_KERNELS - 1)
    return plan


def simulate_token(preset: BaselinePreset, stack: Stack, plan: list[Kernel], *, threads: int | None = None,
                   dtype: str = "fp32", timeline: bool = False, equal_split: bool = True) -> TokenTimeline:
    """Run one token's plan through SimPy; the result's latency ends when the host has synchronised.

    `equal_split`: a parallel CPU kernel is split into equal chunks, so its workers all finish together;
    the join then waits exactly one chunk time, and one timeout stands for the `threads` worker processes
    (exact: tests run both ways and compare). A timeline always runs the worker processes."""
    sw = preset.software
    framework = stack.framework
    layer_s = sw.layer_overhead_us.value * US if framework else 0.0
    call_s = sw.token_overhead_us.value * US if framework else 0.0
    gen_s = sw.generate_overhead_us.value * US if stack.generate_loop else 0.0
    graph_s = sw.graph_launch_us.value * US if stack.dispatch == "graph" else 0.0
    if preset.kind == "cpu":
        return _cpu_token(plan, call_s, layer_s, gen_s, graph_s, rates(preset, dtype, threads), timeline,
                          equal_split)
    depth = int(sw.launch_queue_depth.value)
    return _gpu_token(plan, call_s, layer_s, gen_s, graph_s, sw.sync_us.value * US, depth, timeline)


def _busy(env, ev, lane: str, name: str, dt: float):
    """A SimPy process step: `lane` is busy with `name` for `dt` seconds (recorded in `ev` when kept)."""
    if dt > 0:
        if ev is not None:
            ev.append((lane, name, env.now, env.now + dt))
        yield env.timeout(dt)


def _gpu_token(plan, call_s, layer_s, gen_s, graph_s, sync_s, depth, timeline) -> TokenTimeline:
    env = simpy.Environment()
    stream = simpy.Store(env, capacity=depth)
    out = TokenTimeline(0.0)
    ev = out.events if timeline else None

    def busy(lane, name, dt):
        return _busy(env, ev, lane, name, dt)

    def drain(name):
        """The host waits until the device has run everything queued so far, then reads back."""
        marker = env.event()
        yield stream.put(marker)
        yield marker
        yield from busy("host", name, sync_s)

    def host():
        yield from busy("host", "forward call", call_s)
        yield from busy("host", "graph launch", graph_s)
        for k in plan:
            if k.layer_start:
                yield from busy("host", "layer glue", layer_s)
            if k.kind == "generate_loop" and k.name == "generate_loop.argmax":
                yield from busy("host", "generate loop", gen_s)
            yield from busy("host", k.name, k.host_s)
            yield stream.put(k)
            if k.sync:                   # a blocking copy inside the step (e.g. eager-h2d attention)
                yield from drain(f"{k.name} sync")
        yield from drain("sync")         # the end-of-token synchronisation

    def device():
        while True:
            k = yield stream.get()
            if isinstance(k, simpy.Event):
                k.succeed()
                continue
            out.device_busy_s += k.device_s
            yield from busy("device", k.name, k.device_s)

    env.process(device())
    env.run(until=env.process(host()))
    out.latency_s = env.now
    out.host_busy_s = call_s + graph_s + gen_s + sum(k.host_s for k in plan) + \
        layer_s * sum(1 for k in plan if k.layer_start)
    out.sync_s = sync_s * (1 + sum(1 for k in plan if k.sync))
    return out


def _cpu_token(plan, call_s, layer_s, gen_s, graph_s, r: Rates, timeline, equal_split) -> TokenTimeline:
    env = simpy.Environment()
    out = TokenTimeline(0.0)
    ev = out.events if timeline else None

    def busy(lane, name, dt):
        return _busy(env, ev, lane, name, dt)

    def worker(i, k):
        yield from busy(f"thread{i}", k.name, k.device_s)

    def main():
        yield from busy("host", "forward call", call_s + graph_s)
        for k in plan:
            if k.layer_start:
                yield from busy("host", "layer glue", layer_s)
            if k.name == "generate_loop.argmax":
                yield from busy("host", "generate loop", gen_s)
            yield from busy("host", k.name, k.host_s)
            if k.parallel and equal_split and ev is None:
                yield env.timeout(k.device_s)          # every worker's chunk takes k.device_s
                yield from busy("host", "fork/join", r.fork_join_s)
            elif k.parallel:
                yield env.all_of([env.process(worker(i, k)) for i in range(r.threads)])
                yield from busy("host", "fork/join", r.fork_join_s)
            else:
                yield from busy("thread0", k.name, k.device_s)
            out.device_busy_s += k.device_s

    env.run(until=env.process(main()))
    out.latency_s = env.now
    out.host_busy_s = call_s + graph_s + gen_s + sum(k.host_s for k in plan) + \
        layer_s * sum(1 for k in plan if k.layer_start) + r.fork_join_s * sum(1 for k in plan if k.parallel)
    return out
