"""Baselines: workload counts, the analytic model against hand-computed values, presets, profiles, CLI."""

from __future__ import annotations

import argparse
import json
import math
import sys

import pytest
import yaml

from simulator.baselines import (
    BaselineOp,
    ModelShape,
    list_presets,
    load_preset,
    load_profile,
    model_shape,
    predict,
    profile_result,
    save_profile,
    totals,
    workload_from_model,
)
from simulator.baselines.calibrate import preset_from_measurements
from simulator.baselines.presets import PRESET_DIR, preset_from_data
from simulator.baselines.profile import MeasuredProfile, profile_from_data
from simulator.errors import PimsimError

GPT2_SMALL = ModelShape(layers=12, d_model=768, heads=12, head_dim=64, ffn=3072, vocab=50257, ctx_limit=1024,
                        name="gpt2-small")


def c(v, s="test"):
    return {"value": v, "source": s}


def tiny_preset(kind="cpu", power_model="utilisation", **sw):
    software = {"host_us_per_kernel": c(10), "device_us_per_kernel": c(0), "layer_overhead_us": c(100),
                "token_overhead_us": c(50), "generate_overhead_us": c(0), "sync_us": c(0), "graph_launch_us": c(0)}
    if kind == "gpu":
        software["launch_queue_depth"] = c(1024)
    software.update({k: c(v) for k, v in sw.items()})
    data = {
        "name": "tiny", "kind": kind,
        "memory": {"bandwidth_gbs": c(100), "bandwidth_efficiency": c(0.5)},          # 50 GB/s achievable
        "compute": {"fp32_tflops": c(2), "efficiency": c(0.5)},                      # 1 TFLOP/s achievable
        "power": {"model": power_model, "tdp_w": c(100), "idle_w": c(20)},
        "software": software,
    }
    if kind == "cpu":
        data["cpu"] = {"cores": c(1), "threads": c(1), "bandwidth_1t_gbs": c(50), "fork_join_us": c(0)}
    return preset_from_data(data, "tiny.yaml")


# ---------------------------------------------------------------- workload
def test_gpt2_small_weight_bytes_and_flops_by_hand():
    t = totals(workload_from_model(GPT2_SMALL, 128, "fp32"))
    d, f, v = 768, 3072, 50257
    per_layer_w = (d * 3 * d + d * d + d * f + f * d) * 4      # matrices, fp32
    per_layer_b = (3 * d + d + f + d) * 4 + 2 * 2 * d * 4     # linear biases + 2 layernorms (w, b)
    emb = 2 * d * 4                                            # one token row + one position row
    head = d * v * 4 + 2 * d * 4                               # tied LM head read in full + ln_f
    assert t["weight_bytes"] == 12 * (per_layer_w + per_layer_b) + emb + head
    gemv_flops = 12 * 2 * (d * 3 * d + d * d + d * f + f * d) + 2 * d * v
    attn_flops = 12 * 2 * 2 * d * 128
    # elementwise: 2 layernorms x 8d, softmax 5 x heads x ctx, gelu 10 f, 2 residuals; ln_f 8d; embedding add d
    elementwise = 12 * (2 * 8 * d + 5 * 12 * 128 + 10 * f + 2 * d) + 8 * d + d
    assert t["flops"] == gemv_flops + attn_flops + elementwise
    # 20 kernels per layer (1 ln + 1 qkv + 2 cat + 1 sdpa + 1 copy + 1 o + 1 add + 1 ln + 1 up + 8 gelu + 1 down
    # + 1 add) + 3 embedding + 1 ln_f + 1 lm_head
    assert t["kernels"] == 12 * 20 + 5


def test_kv_concat_traffic_by_hand():
    ops = {o.name: o for o in workload_from_model(GPT2_SMALL, 1000, "bf16")}
    cache = 2 * 1000 * 768 * 2                 # K and V of one layer, bf16
    assert ops["attn.kv_append"].kv_bytes == 2 * cache - 2 * 768 * 2   # read old cache + write new one
    assert ops["attn.score"].kv_bytes + ops["attn.value"].kv_bytes == cache
    inplace = {o.name: o for o in workload_from_model(GPT2_SMALL, 1000, "bf16", kv_update="inplace")}
    assert inplace["attn.kv_append"].kv_bytes == 2 * 768 * 2


def test_dtype_and_context_effects():
    f32 = totals(workload_from_model(GPT2_SMALL, 128, "fp32"))
    b16 = totals(workload_from_model(GPT2_SMALL, 128, "bf16"))
    i8 = totals(workload_from_model(GPT2_SMALL, 128, "int8"))
    assert f32["weight_bytes"] > b16["weight_bytes"] > i8["weight_bytes"]
    assert all(o.dtype == "bf16" for o in workload_from_model(GPT2_SMALL, 8, "bf16"))
    assert totals(workload_from_model(GPT2_SMALL, 1024, "fp32"))["kv_bytes"] > f32["kv_bytes"]
    with pytest.raises(PimsimError, match="exceeds"):
        workload_from_model(GPT2_SMALL, 2048, "fp32")
    with pytest.raises(PimsimError, match="dtype"):
        workload_from_model(GPT2_SMALL, 8, "fp8")
    with pytest.raises(PimsimError, match="ModelShape.layers"):
        ModelShape(layers=0, d_model=8, heads=1, head_dim=8, ffn=8, vocab=8, ctx_limit=8)


def test_swiglu_rmsnorm_gqa_model():
    shape = model_shape("smollm2-135m")
    assert shape.ffn_kind == "swiglu" and shape.norm == "rmsnorm" and shape.n_kv_heads == 3
    kinds = {o.kind for o in workload_from_model(shape, 64, "bf16")}
    assert {"rmsnorm", "swiglu", "rope"} <= kinds and "gelu" not in kinds


@pytest.mark.parametrize("attn,stack", [("sdpa", None), ("eager-h2d", None), (None, "fastertransformer")])
def test_trace_workload_matches_model_workload(attn, stack):
    from simulator.baselines import workload_from_trace
    from simulator.trace.derive import derive_trace

    trace = derive_trace("gpt2-small")
    a = totals(workload_from_trace(trace, 256, "fp32", attn=attn, stack=stack))
    b = totals(workload_from_model(model_shape("gpt2-small"), 256, "fp32", attn=attn, stack=stack))
    for key in ("flops", "weight_bytes", "kv_bytes", "kernels", "syncs"):
        assert a[key] == b[key], key


@pytest.mark.parametrize("model", ["gpt2-small", "gpt3-medium", "gpt3-xl"])
def test_fastertransformer_kernel_set_is_ft_gpt_decoder(model):
    """FT's GPT decoder (ParallelGptDecoder.cc): 9 kernels per layer; per step embedding + position (1), final
    layernorm (1), logits GEMM (1) and top-p sampling (FT_SAMPLING_KERNELS). Same weights as HF's op list,
    the cache updated in place, no merge-heads copy."""
    from simulator.baselines.workload import FT_SAMPLING_KERNELS

    shape = model_shape(model)
    ft = workload_from_model(shape, 330, "fp16", stack="fastertransformer")
    assert sum(o.kernels for o in ft if o.per_layer) == 9
    assert sum(o.kernels for o in ft if not o.per_layer) == 3 + FT_SAMPLING_KERNELS
    assert totals(ft)["kernels"] == 9 * shape.layers + 3 + FT_SAMPLING_KERNELS
    hf = workload_from_model(shape, 330, "fp16", stack="optimized")
    assert totals(ft)["weight_bytes"] == totals(hf)["weight_bytes"]
    assert totals(ft)["kv_bytes"] == totals(hf)["kv_bytes"]
    assert "attn.merge_heads" not in {o.name for o in ft} and ft[-1].name == "sampling"
    # the kernel set is its own argument too
    own = workload_from_model(shape, 330, "fp16", kernels="fastertransformer", kv_update="inplace")
    assert totals(own) == totals(ft)
    with pytest.raises(PimsimError, match="kernels 'trt'"):
        workload_from_model(shape, 330, "fp16", kernels="trt")


def test_eager_h2d_attention_is_transformers_4x_gpt2():
    """GPT2Attention._attn of transformers 4.x: matmul, full + div, where, softmax, matmul (6 kernels against
    SDPA's 1) and one blocking host-to-device copy of the mask value per layer."""
    shape = model_shape("gpt2-small")
    sdpa = totals(workload_from_model(shape, 128, "fp32"))
    h2d = workload_from_model(shape, 128, "fp32", attn="eager-h2d")
    t = totals(h2d)
    assert t["kernels"] - sdpa["kernels"] == (6 - 1 + 1) * shape.layers   # + the copy itself
    assert t["syncs"] == shape.layers and sdpa["syncs"] == 0
    names = [o.name for o in h2d if o.per_layer]
    assert names.index("attn.score") < names.index("attn.mask_value") < names.index("attn.softmax")
    with pytest.raises(PimsimError, match="attn 'flash'"):
        workload_from_model(shape, 128, "fp32", attn="flash")


# ---------------------------------------------------------------- model
def one_op(**kw):
    base = {"kind": "gemv", "flops": 10_000_000, "weight_bytes": 1_000_000, "activation_bytes": 0, "kv_bytes": 0, "kernels": 2,
                "per_layer": True, "count": 3}
    base.update(kw)
    return BaselineOp(**base)


def test_cpu_prediction_by_hand():
    # memory 1e6 B / 50e9 B/s = 20 us; compute 1e7 / 1e12 = 10 us -> 20 us device per execution, x3 = 60 us
    # host: 3 x 2 kernels x 10 us = 60 us; framework: 3 layers x 100 + 50 = 350 us; CPU is synchronous
    r = predict(tiny_preset(), [one_op()], "hf-forward")
    assert r.breakdown["device_s"] == pytest.approx(60e-6)
    assert r.breakdown["host_s"] == pytest.approx(410e-6)
    assert r.latency_s == pytest.approx(470e-6)
    util = 60 / 470
    assert r.breakdown["power_w"] == pytest.approx(20 + 80 * util)
    assert r.energy_j == pytest.approx((20 + 80 * util) * 470e-6)


def test_gpu_overlaps_host_and_device_and_charges_kernel_fixed_time():
    p = tiny_preset(kind="gpu", device_us_per_kernel=5)
    r = predict(p, [one_op(flops=100_000_000)], "hf-forward")  # compute-bound: 2 x (50 + 5 fixed) per op, x3
    assert r.breakdown["compute_bound_s"] == pytest.approx(330e-6)
    assert r.breakdown["device_s"] == pytest.approx(330e-6)
    # host-bound: each layer's glue (100 us) idles the device; the last layer's first kernel is dispatched at
    # 50 + 2 x 120 + 100 + 10 = 400 us, and its two 55 us kernels run back to back: 510 us. The closed form
    # max(host 410, device 330) misses that tail.
    assert r.latency_s == pytest.approx(510e-6)


def test_tdp_power_model():
    r = predict(tiny_preset(power_model="tdp"), [one_op()], "hf-forward")
    assert r.energy_j == pytest.approx(100 * r.latency_s)


def test_missing_dtype_throughput_is_an_error():
    with pytest.raises(PimsimError, match="bf16_tflops"):
        predict(tiny_preset(), [one_op(dtype="bf16")])


def test_shipped_presets_ordering():
    wl = workload_from_model(model_shape("gpt2-xl"), 1024, "fp16")
    lat = {n: predict(load_preset(n), wl).latency_s for n in ("t4", "a100", "h100", "xeon_gold_6154")}
    assert lat["h100"] <= lat["a100"] < lat["t4"] < lat["xeon_gold_6154"]


# ---------------------------------------------------------------- presets
def test_every_shipped_preset_loads_and_is_sourced():
    names = list_presets()
    assert {"t4", "xeon_gold_6154", "a100", "h100", "ryzen9_7950x"} <= set(names)
    for name in names:
        raw = yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text())
        load_preset(name)
        for section in ("memory", "compute", "power", "software", "cpu"):
            for key, val in raw.get(section, {}).items():
                if isinstance(val, dict):
                    assert val["source"].strip(), (name, section, key)


def test_bad_preset_is_one_line_error(tmp_path):
    raw = yaml.safe_load((PRESET_DIR / "t4.yaml").read_text())
    raw["memory"]["bandwidth_gbs"]["value"] = 0
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(raw))
    with pytest.raises(PimsimError, match=r"bad\.yaml: memory\.bandwidth_gbs\.value: must be a positive"):
        load_preset(str(f))
    raw["memory"]["bandwidth_gbs"]["value"] = 320
    del raw["software"]
    f.write_text(yaml.safe_dump(raw))
    with pytest.raises(PimsimError, match=r"bad\.yaml: software: missing"):
        load_preset(str(f))
    with pytest.raises(PimsimError, match="not found"):
        load_preset("no_such_gpu")


FAKE_CAL = {
    "cpu": "Test CPU", "when": "now", "cores": 2,
    "stream": {"threads": 2, "array_mib": 256.0, "copy_gbs": 10.0, "triad_gbs": 20.0},
    "stream_1t": {"threads": 1, "array_mib": 256.0, "copy_gbs": 6.0, "triad_gbs": 12.0},
    "torch": {"threads": 2, "kernel_op_us": 1.0, "module_call_us": 2.0, "host_op_us": 0.5, "fp32_tflops": 0.05,
              "bf16_tflops": 0.02, "fp16_tflops": 0.01, "gemv_dram_gbs": 15.0, "gemv_fp32_dram_gbs": 15.0,
              "gemv_bf16_dram_gbs": 7.0, "attention_fp32_dram_gbs": 9.0, "kv_append_bf16_dram_gbs": 4.0,
              "gemv_fp32_fixed_us": 12.0,
              "fork_join_us": 3.0, "glue_layer_us": 100.0, "glue_call_us": 60.0, "forward_1l_us": 160.0,
              "generate_step_us": 400.0},
}


def test_local_preset_from_measurements():
    p = preset_from_measurements(FAKE_CAL)
    assert p.name == "local" and p.kind == "cpu"
    assert p.memory.bandwidth_gbs.value == 20.0 and p.memory.bandwidth_efficiency.value == 1.0
    # glue = tiny-model time minus the kernel dispatches the workload charges separately (20 per layer,
    # 5 per call outside the layers, 15 in the generate loop; 1 us each)
    assert p.software.layer_overhead_us.value == pytest.approx(100.0 - 20 * 1.0)
    assert p.software.token_overhead_us.value == pytest.approx(60.0 - 5 * 1.0)
    assert p.software.generate_overhead_us.value == pytest.approx(400.0 - 160.0 - 15 * 1.0)
    assert p.cpu.threads.value == 2 and p.cpu.cores.value == 2 and p.cpu.bandwidth_1t_gbs.value == 12.0
    assert p.cpu.fork_join_us.value == 3.0
    ob = p.memory.op_bandwidth_gbs
    assert ob["gemv"]["fp32"].value == 15.0 and ob["gemv"]["bf16"].value == 7.0
    assert set(ob["attention"]) == {"fp32"} and set(ob["kv_append"]) == {"bf16"}
    assert p.memory.op_fixed_us["gemv"]["fp32"].value == 12.0 and set(p.memory.op_fixed_us) == {"gemv"}
    assert p.compute.tflops("bf16").value == 0.02
    assert preset_from_measurements(FAKE_CAL, bandwidth="torch_gemv").memory.bandwidth_gbs.value == 15.0
    no_torch = {k: v for k, v in FAKE_CAL.items() if k != "torch"} | {"numpy_fp32_tflops": 0.03}
    q = preset_from_measurements(no_torch)
    assert q.software.host_us_per_kernel.value == 0 and q.compute.bf16_tflops is None


# ---------------------------------------------------------------- profiles
def profile(**kw):
    base = {"model": "gpt2-small", "context": 128, "dtype": "fp32", "device": "cpu", "ms_per_token": 20.0,
                "ms_per_token_samples": (19.0, 20.0, 21.0), "warmup": 1, "repeats": 3, "threads": 1, "power_w": None,
                "energy_per_token_j": None, "power_source": "none", "host": {"cpu": "x"}, "cpu_ms_per_token": 19.5}
    base.update(kw)
    return MeasuredProfile(**base)


def test_profile_roundtrip_and_result(tmp_path):
    f = tmp_path / "p.yaml"
    save_profile(profile(power_w=50.0, power_source="rapl"), f)
    p = load_profile(f)
    assert p == profile(power_w=50.0, power_source="rapl")
    r = profile_result(p)
    assert r.latency_s == pytest.approx(0.020) and r.energy_j == pytest.approx(1.0)
    assert math.isnan(profile_result(profile()).energy_j)


def test_version_1_profiles_read_as_hf_forward():
    d = profile().as_dict()
    d["schema"] = "pimsim-baseline-profile/1"
    for k in ("stack", "ms_per_token_median", "spread"):
        del d[k]
    assert profile_from_data(d, "p.yaml").stack == "hf-forward"


def test_bad_profile_is_one_line_error(tmp_path):
    d = profile().as_dict()
    d["ms_per_token"] = -1
    with pytest.raises(PimsimError, match=r"p\.yaml: ms_per_token"):
        profile_from_data(d, "p.yaml")
    d = profile().as_dict()
    d["schema"] = "other/9"
    with pytest.raises(PimsimError, match=r"schema: expected .*'pimsim-baseline-profile/2'"):
        profile_from_data(d, "p.yaml")
    f = tmp_path / "x.yaml"
    f.write_text("model: [unclosed")
    with pytest.raises(PimsimError, match="YAML"):
        load_profile(f)


# ---------------------------------------------------------------- CLI
def run_cli(argv, capsys):
    from simulator.baselines import cli_commands

    parser = argparse.ArgumentParser(prog="pimsim")
    cli_commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    rc = args.func(args)
    return rc, capsys.readouterr().out


def test_cli_predict_json(capsys):
    rc, out = run_cli(["baseline", "predict", "--preset", "t4", "--model", "gpt2-small", "--context", "128",
                       "--dtype", "fp16", "--json"], capsys)
    data = json.loads(out)
    assert rc == 0 and data["ms_per_token"] > 0 and data["preset"] == "t4"
    wl = workload_from_model(model_shape("gpt2-small"), 128, "fp16")
    assert data["ms_per_token"] == pytest.approx(predict(load_preset("t4"), wl).latency_s * 1e3)


def test_cli_predict_local_uses_cached_calibration(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PIMSIM_CACHE_DIR", str(tmp_path))
    pre = preset_from_measurements(FAKE_CAL)
    (tmp_path / "baseline_local_t1.yaml").write_text(yaml.safe_dump(pre.model_dump(mode="json")))
    rc, out = run_cli(["baseline", "predict", "--preset", "local", "--threads", "1", "--json"], capsys)
    assert rc == 0 and json.loads(out)["preset"] == "local"


def test_cli_list(capsys):
    rc, out = run_cli(["baseline", "list"], capsys)
    assert rc == 0 and "t4" in out and "local" in out


def test_measure_without_torch_is_one_line_error(monkeypatch):
    from simulator.baselines import measure

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(PimsimError, match=r'pip install -e "\.\[export\]"'):
        measure.import_torch()


@pytest.mark.torch
def test_measure_decode_smoke(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from simulator.baselines.measure import build_hf_model, measure_decode

    built = build_hf_model("gpt2-small", "fp32", "cpu")
    for stack in ("hf-forward", "hf-generate"):
        prof = measure_decode("gpt2-small", 4, "fp32", warmup=0, repeats=2, threads=1, stack=stack, built=built)
        assert prof.ms_per_token > 0 and len(prof.ms_per_token_samples) == 2 and prof.context == 4
        assert prof.ms_per_token == min(prof.ms_per_token_samples) and prof.stack == stack and prof.threads == 1
        assert len(prof.host["load_avg_before"]) == 3 and prof.host["when"]
        save_profile(prof, tmp_path / "p.yaml")
        back = load_profile(tmp_path / "p.yaml")
        assert back.stack == stack and back.threads == 1 and profile_result(back).stack == stack


# ---------------------------------------------------------------- calibration noise handling (fake clock)
def _scripted_best_us(monkeypatch, per_round_us, rounds):
    """Run calibrate._best_us on a fake clock: 20 warm-up calls of 1 us, then rounds of 5 calls whose
    per-call time is scripted round by round (budget_s=0 makes n = 5)."""
    from simulator.baselines import calibrate as cal

    script = [1e-6] * 20 + [t * 1e-6 for t in per_round_us for _ in range(5)]
    clock = {"t": 0.0, "i": 0}

    def fn():
        clock["t"] += script[clock["i"]]
        clock["i"] += 1

    monkeypatch.setitem(cal._CLOCK, "now", lambda: clock["t"])
    monkeypatch.setattr(cal, "_SPREADS", {})
    monkeypatch.setattr(cal, "_ROUNDS", {})
    monkeypatch.setattr(cal, "_UNCONFIRMED", set())
    best = cal._best_us(fn, rounds=rounds, budget_s=0.0, name="x")
    return best, cal


def test_calibration_runs_extra_rounds_until_the_best_is_confirmed(monkeypatch):
    best, cal = _scripted_best_us(monkeypatch, [10, 20, 30, 10.2, 99], rounds=3)
    assert best == pytest.approx(10.0)
    assert cal._ROUNDS["x"] == 4 and "x" not in cal._UNCONFIRMED     # stopped once 10.2 confirmed 10


def test_calibration_reports_an_unconfirmed_best(monkeypatch):
    best, cal = _scripted_best_us(monkeypatch, [10, 20, 30, 40, 50, 60, 70, 80], rounds=2)
    assert best == pytest.approx(10.0)
    assert cal._ROUNDS["x"] == 2 * cal.MAX_ROUNDS_FACTOR and "x" in cal._UNCONFIRMED
    assert cal._SPREADS["x"] > cal.SPREAD_WARN


def test_hf_generate_v4_stack_picks_the_transformers_4x_attention():
    """hf-generate-v4 = hf-generate with the 2022-2023 attention: eager-h2d for GPT-2's attention module,
    plain eager for a LLaMA-style model; an explicit attn= still wins."""
    gpt2, llama = model_shape("gpt2-small"), model_shape("smollm2-135m")
    v4 = totals(workload_from_model(gpt2, 64, "fp32", stack="hf-generate-v4"))
    assert v4 == totals(workload_from_model(gpt2, 64, "fp32", stack="hf-generate", attn="eager-h2d"))
    assert totals(workload_from_model(llama, 64, "fp32", stack="hf-generate-v4")) == \
        totals(workload_from_model(llama, 64, "fp32", stack="hf-generate", attn="eager"))
    assert totals(workload_from_model(gpt2, 64, "fp32", stack="hf-generate-v4", attn="sdpa")) == \
        totals(workload_from_model(gpt2, 64, "fp32", stack="hf-generate"))


@pytest.mark.parametrize("stack", ["fastertransformer", "optimized"])
def test_reported_kernels_are_the_launched_ones(stack):
    """`kernels` in a prediction counts launches: an op fused into a neighbour (kernels=0) costs device time
    but launches nothing, so it is not counted (FT on GPT-3 XL: 9 x 24 + 3 + the sampling kernels = 225).
    Neither stack adds kernels of its own (hf-generate adds its per-token logits processing)."""
    from simulator.baselines.workload import FT_SAMPLING_KERNELS

    shape = model_shape("gpt3-xl")
    wl = workload_from_model(shape, 330, "fp16", stack=stack)
    res = predict(load_preset("a100"), wl, stack)
    assert res.breakdown["kernels"] == totals(wl)["kernels"]
    if stack == "fastertransformer":
        assert any(o.kernels == 0 for o in wl)  # fused ops exist, and are left out
        assert res.breakdown["kernels"] == 9 * shape.layers + 3 + FT_SAMPLING_KERNELS == 225
