"""Baselines as events: the closed forms as limit cases, the CPU thread model, stacks, ranges, reporting.

No timing here: every expected value is computed by hand from the preset's parameters.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.baselines import (
    BaselineOp,
    closed_form,
    corner,
    load_preset,
    model_shape,
    predict,
    workload_from_model,
)
from simulator.baselines.events import (
    GENERATE_LOOP_KERNELS,
    kernel_plan,
    rates,
    simulate_token,
)
from simulator.baselines.presets import has_ranges, list_presets, preset_from_data
from simulator.baselines.stacks import STACKS, get_stack
from simulator.errors import PimsimError

US = 1e-6


def c(v, **kw):
    return {"value": v, "source": "test", **kw}


def preset(kind="gpu", *, host=10.0, dev=0.0, layer=0.0, call=0.0, gen=0.0, sync=0.0, graph=0.0, depth=1024,
           bw=50.0, tflops=1.0, threads=1, cores=4, bw1=None, fj=0.0, power="utilisation", launch=None):
    """50 GB/s and 1 TFLOP/s achievable (efficiencies 1); host costs in us."""
    data = {
        "name": "tiny", "kind": kind,
        "memory": {"bandwidth_gbs": c(bw), "bandwidth_efficiency": c(1.0)},
        "compute": {"fp32_tflops": c(tflops), "efficiency": c(1.0)},
        "power": {"model": power, "tdp_w": c(100), "idle_w": c(20)},
        "software": {"host_us_per_kernel": c(host), "device_us_per_kernel": c(dev), "layer_overhead_us": c(layer),
                     "token_overhead_us": c(call), "generate_overhead_us": c(gen), "sync_us": c(sync),
                     "graph_launch_us": c(graph)},
    }
    if launch is not None:
        data["software"]["launch_us"] = c(launch)
    if kind == "gpu":
        data["software"]["launch_queue_depth"] = c(depth)
    else:
        data["cpu"] = {"cores": c(cores), "threads": c(threads), "bandwidth_1t_gbs": c(bw1 or bw),
                       "fork_join_us": c(fj)}
    return preset_from_data(data, "tiny.yaml")


def op(name="w", *, bytes_=1_000_000, flops=0, kernels=1, per_layer=True, count=1, weights=True):
    return BaselineOp(kind="gemv" if weights else "copy", flops=flops, weight_bytes=bytes_ if weights else 0,
                      activation_bytes=0 if weights else bytes_, kv_bytes=0, kernels=kernels, per_layer=per_layer,
                      count=count, name=name)


# ------------------------------------------------------------------ GPU: closed form as limit cases
def test_gpu_device_free_is_exactly_host_time():
    p = preset(host=10, layer=30, call=50, sync=7)
    wl = [op(bytes_=0, kernels=2, count=3)]          # 3 layers x 2 kernels, no device time
    r = predict(p, wl, "hf-forward")
    assert r.latency_s == pytest.approx((3 * 30 + 50 + 6 * 10 + 7) * US, rel=1e-12)
    assert r.latency_s == pytest.approx(closed_form(p, wl, "hf-forward"), rel=1e-12)


def test_gpu_sync_inside_the_step_drains_the_stream():
    """A blocking copy inside the step (eager-h2d attention) makes the host wait for the device each layer.
    Hand timeline, 2 layers of [20 us weight kernel, 0 us copy with a sync], 10 us dispatch, 5 us sync:
    layer 1 dispatches 0-10 and 10-20, the device runs 10-30, the host drains at 30 and reads back to 35;
    layer 2 the same from 35 to 70; the end-of-token sync 70-75. Without the syncs: 55 us."""
    p = preset(host=10, sync=5)
    copy = BaselineOp(kind="h2d_copy", flops=0, weight_bytes=0, activation_bytes=0, kv_bytes=0, kernels=1,
                      per_layer=True, count=2, name="mask", syncs=1)
    wl = [op(bytes_=1_000_000, count=2), copy]
    r = predict(p, wl, "hf-forward", timeline=True)
    assert r.latency_s == pytest.approx(75 * US, rel=1e-12)
    assert r.breakdown["sync_s"] == pytest.approx(3 * 5 * US, rel=1e-12)
    assert [e[1] for e in r.timeline if e[0] == "host"].count("mask sync") == 2
    no_sync = [wl[0], BaselineOp(**{**copy.__dict__, "syncs": 0})]
    assert predict(p, no_sync, "hf-forward").latency_s == pytest.approx(55 * US, rel=1e-12)
    # the closed form stays a lower bound: max(host 40, device 40) + 3 syncs
    assert closed_form(p, wl, "hf-forward") == pytest.approx(55 * US, rel=1e-12)
    # on a CPU the copy is host-to-host: no drain, nothing changes
    cpu = preset("cpu", host=10, sync=5)
    assert predict(cpu, wl, "hf-forward").latency_s == pytest.approx(predict(cpu, no_sync, "hf-forward").latency_s)


def test_gpu_host_free_is_exactly_device_time():
    p = preset(host=0, dev=3)
    wl = [op(bytes_=1_000_000, kernels=2, count=3)]  # 20 us per op = 10 us per kernel + 3 us fixed
    r = predict(p, wl, "hf-forward")
    assert r.latency_s == pytest.approx(6 * 13 * US, rel=1e-12)
    assert r.latency_s == pytest.approx(closed_form(p, wl, "hf-forward"), rel=1e-12)
    assert r.breakdown["utilisation"] == pytest.approx(1.0)


@pytest.mark.parametrize("h,d", [(10.0, 4.0), (4.0, 10.0), (5.0, 5.0)])
def test_gpu_uniform_kernels_follow_the_pipeline_formula(h, d):
    n = 50
    p = preset(host=h)
    wl = [op(bytes_=int(d * 50_000), kernels=1, count=n)]   # d us of device time each at 50 GB/s
    lat = predict(p, wl, "hf-forward").latency_s
    expected = (h + n * d) if d >= h else (n * h + d)     # first dispatch + device stream, or host + last kernel
    assert lat == pytest.approx(expected * US, rel=1e-9)
    # ... so the closed form max(host, device) is the limit as kernels get many: within one kernel of it
    assert closed_form(p, wl, "hf-forward") <= lat <= closed_form(p, wl, "hf-forward") + max(h, d) * US + 1e-15


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 50), st.integers(0, 200_000), st.integers(1, 3)), min_size=1, max_size=12),
       st.floats(0, 40), st.integers(1, 8))
def test_gpu_events_lie_between_max_and_sum(ops, host, depth):
    p = preset(host=host, dev=1.0, depth=depth)
    wl = [op(name=f"o{i}", bytes_=b, kernels=k, count=1) for i, (_, b, k) in enumerate(ops)]
    plan = kernel_plan(p, get_stack("hf-forward"), wl)
    H, D = sum(k.host_s for k in plan), sum(k.device_s for k in plan)
    lat = predict(p, wl, "hf-forward").latency_s
    assert max(H, D) - 1e-12 <= lat <= H + D + 1e-12


def test_gpu_launch_queue_depth_one_blocks_the_host():
    # depth 1: the host may hold one not-yet-started kernel, so it cannot run ahead by more than one
    n, h, d = 10, 1.0, 10.0
    wl = [op(bytes_=int(d * 50_000), count=n)]
    deep = predict(preset(host=h, depth=1024), wl, "hf-forward").latency_s
    shallow = predict(preset(host=h, depth=1), wl, "hf-forward").latency_s
    assert deep == pytest.approx((h + n * d) * US) and shallow == pytest.approx(deep)  # device-bound: same
    # host-side glue after the kernels (generate loop) overlaps the queued kernels only with a deep queue
    g = preset(host=h, depth=1024, gen=50)
    g1 = preset(host=h, depth=1, gen=50)
    assert predict(g1, wl, "hf-generate").latency_s > predict(g, wl, "hf-generate").latency_s


# ------------------------------------------------------------------ CPU
def test_cpu_one_thread_is_exactly_host_plus_device():
    p = preset("cpu", host=10, layer=100, call=50, gen=20)
    wl = workload_from_model(model_shape("gpt2-small"), 128, "fp32")
    for stack in (s for s in STACKS if not get_stack(s).gpu_only):
        wls = workload_from_model(model_shape("gpt2-small"), 128, "fp32", stack=stack)
        assert predict(p, wls, stack).latency_s == pytest.approx(closed_form(p, wls, stack), rel=1e-9), stack
    r = predict(p, wl, "hf-generate")
    assert r.threads == 1 and r.stack == "hf-generate"


def test_cpu_hand_computed_fork_join():
    # one 1 MB weight op, 2 kernels, at 4 threads: bandwidth min(4 x 10, 50) = 40 GB/s -> 25 us per op,
    # 12.5 us per kernel; fork/join 2 us x log2(4) = 4 us per kernel; dispatch 10 us per kernel
    p = preset("cpu", host=10, bw=50, bw1=10, threads=4, fj=2)
    r = predict(p, [op(kernels=2)], "hf-forward")
    assert r.latency_s == pytest.approx(2 * (10 + 12.5 + 4) * US, rel=1e-12)
    # a kernel below PyTorch's grain size runs on one thread at one thread's bandwidth, without fork/join
    small = predict(p, [op(bytes_=100_000, kernels=1)], "hf-forward")
    assert small.latency_s == pytest.approx((10 + 100_000 / 10e9 / US) * US, rel=1e-12)


def test_cpu_thread_model_scales_as_documented():
    p = preset("cpu", bw=50, bw1=10, threads=4, cores=8, fj=2)
    assert rates(p, "fp32", 1).stream_bw == pytest.approx(10e9) and rates(p, "fp32", 1).fork_join_s == 0
    assert rates(p, "fp32", 2).stream_bw == pytest.approx(20e9) and rates(p, "fp32", 2).fork_join_s == pytest.approx(2e-6)
    assert rates(p, "fp32", 8).stream_bw == pytest.approx(50e9) and rates(p, "fp32", 8).fork_join_s == pytest.approx(6e-6)
    assert rates(p, "fp32", None).threads == 4
    with pytest.raises(PimsimError, match="--threads 9: tiny has 8 cores"):
        rates(p, "fp32", 9)
    with pytest.raises(PimsimError, match="CPU presets only"):
        rates(preset(), "fp32", 4)


def test_cpu_equal_split_shortcut_equals_worker_processes():
    p = load_preset("xeon_gold_6154")
    st_ = get_stack("hf-generate")
    wl = workload_from_model(model_shape("gpt2-medium"), 300, "fp32")
    plan = kernel_plan(p, st_, wl, 6)
    fast = simulate_token(p, st_, plan, threads=6, equal_split=True)
    slow = simulate_token(p, st_, plan, threads=6, equal_split=False)
    assert fast.latency_s == slow.latency_s and fast.device_busy_s == slow.device_busy_s


def test_xeon_threads_are_read_and_change_the_prediction():
    p = load_preset("xeon_gold_6154")
    wl = workload_from_model(model_shape("gpt2-small"), 128, "fp32")
    default, one = predict(p, wl), predict(p, wl, threads=1)
    assert default.threads == int(p.cpu.threads.value) == 18 and one.threads == 1
    assert one.latency_s > default.latency_s


# ------------------------------------------------------------------ stacks
def test_stack_generate_loop_costs_exactly_its_kernels_glue_and_argmax():
    p = preset("cpu", host=10, gen=40)
    fwd = predict(p, [op(count=2)], "hf-forward").latency_s
    gen_wl = [op(count=2), BaselineOp(kind="lm_head", flops=0, weight_bytes=0, activation_bytes=200_000,
                                      kv_bytes=0, kernels=1, per_layer=False, name="lm_head")]
    lm = 10 * US + 200_000 / 50e9
    gen = predict(p, gen_wl, "hf-generate").latency_s
    argmax = 200_000 / 50e9
    assert gen == pytest.approx(fwd + lm + 40 * US + GENERATE_LOOP_KERNELS * 10 * US + argmax, rel=1e-12)


def test_optimized_stack_is_one_launch_and_kernel_time():
    p = preset(host=10, dev=2, layer=100, call=100, graph=12, sync=5)
    wl = [op(count=4)]                                   # 20 us + 2 us fixed per kernel
    r = predict(p, wl, "optimized")
    assert r.latency_s == pytest.approx((12 + 4 * 22 + 5) * US, rel=1e-12)
    assert r.stack == "optimized" and r.breakdown["dispatch_s"] == 0


def test_optimized_stack_updates_the_cache_in_place():
    shape = model_shape("gpt2-small")
    def append_bytes(stack):
        return sum(o.kv_bytes for o in workload_from_model(shape, 1000, "fp32", stack=stack) if o.kind == "kv_append")

    assert append_bytes("optimized") == 2 * 768 * 4          # write this token's k and v only
    assert append_bytes("hf-generate") > 500 * append_bytes("optimized")   # torch.cat copies the whole cache


def test_fastertransformer_stack_launches_each_kernel_from_cpp():
    """A C++ loop: every kernel costs `launch_us` of host time (no PyTorch dispatch, no Python glue, no graph)
    and the step ends with one synchronisation (FT's device-to-host copy of the finished flags)."""
    p = preset(host=10, dev=2, layer=100, call=100, graph=12, sync=5, launch=4)
    host_bound = [op(bytes_=50_000, count=4)]             # 1 us + 2 us fixed per kernel < 4 us launch
    r = predict(p, host_bound, "fastertransformer")
    assert r.latency_s == pytest.approx((4 * 4 + 3 + 5) * US, rel=1e-12)   # host-bound: last kernel, then sync
    assert r.breakdown["dispatch_s"] == pytest.approx(16 * US) and r.breakdown["framework_s"] == 0
    device_bound = [op(count=4)]                         # 20 us + 2 us fixed per kernel
    assert predict(p, device_bound, "fastertransformer").latency_s == pytest.approx((4 + 4 * 22 + 5) * US)


def test_fastertransformer_stack_needs_a_gpu_with_launch_us():
    wl = [op()]
    with pytest.raises(PimsimError, match="--stack fastertransformer: a CUDA library, so GPU presets only"):
        predict(preset("cpu"), wl, "fastertransformer")
    with pytest.raises(PimsimError, match="tiny has no software.launch_us"):
        predict(preset(), wl, "fastertransformer")
    for name in ("t4", "v100", "a100", "h100", "rtx5090"):
        assert load_preset(name).software.launch_us is not None, name


def test_unknown_stack_is_a_clear_error():
    with pytest.raises(PimsimError, match="--stack 'tf-serving': choose one of hf-generate, hf-generate-v4, hf-forward, "
                                          "optimized, fastertransformer"):
        get_stack("tf-serving")


def test_timeline_shows_host_and_device_lanes():
    p = load_preset("t4")
    wl = workload_from_model(model_shape("gpt2-small"), 64, "fp32")
    r = predict(p, wl, timeline=True)
    lanes = {e[0] for e in r.timeline}
    assert lanes == {"host", "device"}
    assert max(e[3] for e in r.timeline) == pytest.approx(r.latency_s)
    assert sum(e[3] - e[2] for e in r.timeline if e[0] == "device") == pytest.approx(r.breakdown["device_s"])


# ------------------------------------------------------------------ ranges (uncertainty)
@pytest.mark.parametrize("name", list_presets())
def test_corners_bracket_the_point_prediction(name):
    p = load_preset(name)
    assert has_ranges(p)
    wl = workload_from_model(model_shape("gpt2-medium"), 512, "fp32")
    lo, mid, hi = (predict(q, wl) for q in (corner(p, "low"), p, corner(p, "high")))
    assert lo.latency_s <= mid.latency_s <= hi.latency_s
    assert lo.energy_j <= mid.energy_j <= hi.energy_j


def test_bad_range_is_one_line_error():
    with pytest.raises(PimsimError, match=r"tiny\.yaml: memory\.bandwidth_efficiency: need low <= value <= high"):
        preset_from_data({**preset().model_dump(mode="json"),
                          "memory": {"bandwidth_gbs": c(10), "bandwidth_efficiency": c(0.5, low=0.6, high=0.9)}},
                         "tiny.yaml")


def test_cpu_preset_needs_its_thread_section():
    raw = preset("cpu").model_dump(mode="json")
    del raw["cpu"]
    with pytest.raises(PimsimError, match="tiny.yaml: .*cpu section"):
        preset_from_data(raw, "tiny.yaml")


# ------------------------------------------------------------------ reporting: CLI, run, sweep
def test_cli_predict_reports_stack_threads_and_range(capsys, tmp_path):
    from simulator.cli import main

    tl = tmp_path / "tl.json"
    assert main(["baseline", "predict", "--preset", "xeon_gold_6154", "--threads", "6", "--stack", "hf-forward",
                 "--json", "--timeline", str(tl)]) == 0
    o = json.loads(capsys.readouterr().out)
    assert o["stack"] == "hf-forward" and o["threads"] == 6
    lo, hi = o["ms_per_token_range"]
    assert lo <= o["ms_per_token"] <= hi
    assert {e["lane"] for e in json.loads(tl.read_text())} >= {"host", "thread0"}


def test_run_reports_stack_threads_and_ranges(capsys):
    from simulator.cli import main

    assert main(["run", "--model", "gpt2-small", "--context", "64", "--tokens", "1", "--json",
                 "--stack", "hf-forward", "--cpu-threads", "4"]) == 0
    o = json.loads(capsys.readouterr().out)
    assert o["baselines"]["gpu"]["stack"] == o["baselines"]["cpu"]["stack"] == "hf-forward"
    assert o["baselines"]["cpu"]["threads"] == 4 and o["baselines"]["gpu"]["threads"] is None
    for role in ("gpu", "cpu"):
        lo, hi = o["speedup_range"][role]
        assert lo <= o["speedup"][role] <= hi
        lo, hi = o["energy_efficiency_gain_range"][role]
        assert lo <= o["energy_efficiency_gain"][role] <= hi


def test_sweep_spec_reads_and_checks_baseline_stack(tmp_path):
    from simulator.sweep.spec import load_spec

    f = tmp_path / "s_sweep.yaml"
    f.write_text("name: s\nmodels: [gpt2-small]\nrun: {baseline_stack: optimized, baseline_threads: 2}\n")
    spec, _ = load_spec(f)
    assert spec.run.baseline_stack == "optimized" and spec.run.baseline_threads == 2
    f.write_text("name: s\nmodels: [gpt2-small]\naxes: [{key: baseline_stack, values: [hf-generate, tf]}]\n")
    with pytest.raises(PimsimError, match="unknown baseline_stack 'tf'"):
        load_spec(f)


def test_run_point_passes_stack_and_threads():
    from simulator.system.api import run_point

    o = run_point({"model": "gpt2-small", "context": 8, "tokens": 1, "baseline_stack": "optimized",
                   "baseline_threads": 3})
    assert o["baselines"]["cpu"]["stack"] == "optimized" and o["baselines"]["cpu"]["threads"] == 3
    assert not math.isnan(o["speedup"]["cpu"])


def test_reproduce_defaults_to_hf_generate_and_reports_threads(capsys):
    from simulator.cli import main

    assert main(["reproduce", "pim-gpt", "--models", "gpt2-small", "--samples", "1", "--json"]) == 0
    o = json.loads(capsys.readouterr().out)
    b = o["models"][0]["baselines"]
    assert o["stack"] == "hf-generate" and b["gpu"]["stack"] == b["cpu"]["stack"] == "hf-generate"
    assert b["cpu"]["threads"] == 18 and "physical cores" in b["cpu"]["threads_source"]
    lo, hi = o["models"][0]["speedup_cpu_range"]
    assert lo <= o["models"][0]["speedup_cpu"] <= hi
    assert main(["reproduce", "pim-gpt", "--models", "gpt2-small", "--samples", "1", "--cpu-threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "xeon_gold_6154 (hf-generate, 1 threads: set by --cpu-threads)" in out


def test_measured_op_bandwidths_apply_per_op_class():
    # gemv (Conv1D addmm) at 40 GB/s, the LM head (nn.Linear) at 10, attention at 5; everything else STREAM 50
    data = preset("cpu", host=0).model_dump(mode="json")
    data["memory"]["op_bandwidth_gbs"] = {"gemv": {"fp32": c(40)}, "linear": {"fp32": c(10)},
                                          "attention": {"fp32": c(5)}}
    data["memory"]["op_fixed_us"] = {"linear": {"fp32": c(7)}}   # per call, on top of the streaming time
    p = preset_from_data(data, "tiny.yaml")
    mb = 1_000_000
    ops = {"gemv": op(bytes_=mb), "lm_head": BaselineOp(kind="lm_head", flops=0, weight_bytes=mb, activation_bytes=0,
                                                        kv_bytes=0, kernels=1, per_layer=False, name="lm_head"),
           "attn_score": BaselineOp(kind="attn_score", flops=0, weight_bytes=0, activation_bytes=0, kv_bytes=mb,
                                    kernels=1, per_layer=True, name="attn"),
           "residual_add": op(bytes_=mb, weights=False)}
    expected = {"gemv": 40e9, "lm_head": 10e9, "attn_score": 5e9, "residual_add": 50e9}
    for kind, o in ops.items():
        fixed = 7e-6 if kind == "lm_head" else 0.0
        assert predict(p, [o], "hf-forward").latency_s == pytest.approx(mb / expected[kind] + fixed, rel=1e-12), kind


def test_run_rejects_an_impossible_baseline_before_simulating(monkeypatch):
    """`pimsim run` / `reproduce` check the baseline options first, so a bad one loses no simulated work."""
    import simulator.system.api as api
    from simulator.config.loader import load_arch
    from simulator.trace.derive import derive_trace

    def engine_must_not_run(*a, **k):
        raise AssertionError("the PIM simulation started before the baseline options were checked")

    monkeypatch.setattr(api, "SystemEngine", engine_must_not_run)
    arch, trace = load_arch("pim_gpt"), derive_trace("gpt2-small")
    with pytest.raises(PimsimError, match="--stack fastertransformer: a CUDA library"):
        api.simulate(arch, trace, tokens=1, cpu="xeon_gold_6154", baseline_stack="fastertransformer")
    with pytest.raises(PimsimError, match="--threads 99: xeon_gold_6154 has 18 cores"):
        api.simulate(arch, trace, tokens=1, baseline_threads=99)
