"""A deterministic stand-in for `simulator.system.api.run_point`, shared by the sweep and plot tests.

`fake_point` returns an object shaped like `pimsim run --json` (latency, breakdown, energy, baselines) from a
closed-form model of the request. Environment knobs (read in the worker): PIMSIM_FAKE_SLEEP (seconds per
point), PIMSIM_FAKE_LOG (append one line per call: the request's identity). A point with
`organisation.queue_depth=1` fails with a one-line PimsimError; `organisation.queue_depth=2` kills its process.
"""

from __future__ import annotations

import json
import os
import time

from simulator.errors import PimsimError

PARAMS_M = {"gpt2-small": 124, "gpt2-medium": 355, "gpt2-large": 774, "gpt2-xl": 1558, "gpt3-small": 125,
            "gpt3-medium": 350, "gpt3-large": 760, "gpt3-xl": 1300}


def _overrides(request: dict) -> dict:
    out = {}
    for item in request.get("set", []):
        k, _, v = item.partition("=")
        out[k] = json.loads(v)
    return out


def fake_point(request: dict) -> dict:
    log = os.environ.get("PIMSIM_FAKE_LOG")
    ov = _overrides(request)
    ident = json.dumps({k: request.get(k) for k in ("model", "trace", "context", "tokens", "set")}, sort_keys=True)
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(ident + "\n")
    time.sleep(float(os.environ.get("PIMSIM_FAKE_SLEEP", "0")))
    if ov.get("organisation.queue_depth") == 1:
        raise PimsimError("fake: queue_depth=1 is too shallow\nfor this point")
    if ov.get("organisation.queue_depth") == 2:
        os._exit(3)
    model = request.get("model") or os.path.basename(request["trace"]).split(".")[0]
    params = PARAMS_M.get(model, 135) * 1e6
    channels = ov.get("organisation.channels", 8)
    banks = ov.get("organisation.bank_groups", 4) * ov.get("organisation.banks_per_group", 4)
    ctx, tokens = request["context"], request["tokens"]
    gemv = 2 * params / (channels * banks * 16 * 1e9)
    attn = 1e-9 * ctx * 50 / channels
    asic = 2e-5 + 1e-9 * params / 1e4
    per_token = gemv + attn + asic
    energy_tok = 2 * params * 1.2e-12 + 1e-4 * per_token * channels
    gpu_lat, cpu_lat = 1.5e-3 * params / 1e8, 9e-3 * params / 1e8
    gpu_e, cpu_e = gpu_lat * 70, cpu_lat * 200
    return {
        "model": model, "arch": "pim_gpt", "context_start": ctx, "tokens": tokens,
        "latency_s": per_token * tokens, "per_token_latency_s": per_token,
        "breakdown": {"by_op": {"gemv": gemv, "attention": attn, "asic": asic},  # mean per token
                      "by_component": {"pim": gemv + attn, "asic": asic * 0.7, "link": asic * 0.3}},
        "row_hit_rate": 0.9, "commands": {"ACT": {"per_channel_max": 10, "total": 10 * channels}},
        "bytes_link": 1000 * tokens, "bytes_internal": int(params * 2) * tokens, "wall_s": 0.0,
        "schema_version": 1, "config_hash": "fake", "trace_hash": "fake",
        "energy_j": energy_tok * tokens, "energy_per_token_j": energy_tok,
        "energy_breakdown": {"dram": energy_tok * 0.8, "asic": energy_tok * 0.2}, "energy_table_hash": "fake",
        "baselines": {"gpu": {"name": "t4", "latency_s": gpu_lat * tokens, "energy_j": gpu_e * tokens},
                      "cpu": {"name": "xeon_gold_6154", "latency_s": cpu_lat * tokens, "energy_j": cpu_e * tokens}},
        "speedup": {"gpu": gpu_lat / per_token, "cpu": cpu_lat / per_token},
        "energy_efficiency_gain": {"gpu": gpu_e / energy_tok, "cpu": cpu_e / energy_tok},
    }


def test_fake_point_is_deterministic():
    req = {"model": "gpt2-small", "context": 128, "tokens": 2, "set": ["organisation.channels=16"]}
    assert fake_point(req) == fake_point(dict(req))
    assert fake_point(req)["per_token_latency_s"] < fake_point({**req, "set": []})["per_token_latency_s"]
