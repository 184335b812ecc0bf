"""The PIM-GPT system: placement, capacity, fast vs command-by-command, protocol legality, scaling and
compression-aware mapping."""

import dataclasses

import numpy as np
import pytest

from simulator.asic.config import asic_config_from_arch
from simulator.config import load_arch
from simulator.errors import PimsimError
from simulator.mapping.pim_gpt import PimGptMapping
from simulator.system.api import simulate
from simulator.system.engine import SystemEngine
from simulator.trace import derive_trace, load_trace
from simulator.trace.zoo import MODEL_ZOO
from replay_check import assert_fast_equals_reference

TOY = dataclasses.replace(MODEL_ZOO["gpt2-small"], name="toy-2l", n_layers=2, d_model=128, n_heads=2,
                          n_kv_heads=2, head_dim=64, ffn_dim=512, vocab_size=1000, context_limit=300)
SMALL_ARCH = ["organisation.channels=2"]


def _toy(arch_sets=SMALL_ARCH, mapping="pim-gpt"):
    arch = load_arch("pim_gpt", arch_sets)
    m = PimGptMapping(arch, derive_trace(TOY), mapping=mapping, asic=asic_config_from_arch(arch))
    return arch, m, SystemEngine(arch, m)


@pytest.mark.parametrize("mapping", ["pim-gpt", "aim-rows"])
def test_fast_equals_command_by_command_on_toy_model(mapping):
    """Three tokens at contexts that cross a 32-key slot boundary and refresh intervals: the per-token
    fast path (state carried between tokens) and one command-by-command stream agree to the cycle, and the
    protocol checker finds no violation in the full command log."""
    arch, m, eng = _toy(mapping=mapping)
    assert_fast_equals_reference(arch, eng, [31, 32, 33])


def test_fast_equals_reference_at_other_contexts():
    arch, m, eng = _toy(["organisation.channels=1"])
    for ctxs in ([1], [2, 3], [299, 300]):
        assert eng.run_reference(ctxs, keep_log=False).cycles - 2 == eng.run(ctxs).cycles


def test_regions_never_overlap_and_every_weight_is_placed_once():
    arch = load_arch("pim_gpt")
    m = PimGptMapping(arch, derive_trace("gpt2-small"))
    regions = []
    for name, p in m.layer_mats.items():
        regions.append((name, p.base_row, p.base_row + p.rows))
        lay = p.layout
        seen = {lay.weight_address(n, k) for n in range(0, lay.n_out, 97) for k in range(0, lay.n_in, 61)}
        assert len(seen) == len(range(0, lay.n_out, 97)) * len(range(0, lay.n_in, 61))
    regions.append(("K", m.k_base, m.k_base + m.k_rows))
    regions.append(("V", m.v_base, m.v_base + m.v_layout.rows_used))
    regions.sort(key=lambda r: r[1])
    for (a, _, end), (b, start, _) in zip(regions, regions[1:]):
        assert end <= start, f"{a} overlaps {b}"
    assert regions[-1][2] == m.layer_rows
    assert m.lm.base_row == m.layers * m.layer_rows and m.total_rows <= arch.organisation.rows
    # the K cache holds every key of every head for the full context, each at its own place (channel, bank,
    # row, first column) inside the K region, its head_dim / 16 columns within that one row
    keys = set()
    for t in range(m.ctx_limit):
        slot, ch, bank = t // m.CB, (t % m.CB) // m.B, t % m.B
        for h in range(m.kv_heads):
            row, seg = int(m.k_row(slot, h)), (slot * m.kv_heads + h) % m.k_per_row
            assert 0 <= row < m.k_rows and (seg + 1) * m.k_hd_cols <= m.cols_per_row
            keys.add((ch, bank, row, seg * m.k_hd_cols))
    assert len(keys) == m.ctx_limit * m.kv_heads


def test_capacity_error_is_one_line():
    arch = load_arch("pim_gpt", ["organisation.channels=1"])
    with pytest.raises(PimsimError) as exc:
        PimGptMapping(arch, derive_trace("gpt2-xl"))
    msg = str(exc.value)
    assert "\n" not in msg and "GiB" in msg and "organisation.channels=2" in msg


def test_latency_falls_near_linearly_with_channels():
    """Total latency falls monotonically; the PIM part (everything but ASIC compute, which channels do not
    speed up) falls near-linearly: 4x the channels gives at least 2.5x."""
    trace = derive_trace("gpt2-large")
    runs = [simulate(load_arch("pim_gpt", [f"organisation.channels={c}"]), trace, context=512, tokens=1, gpu=None,
                     cpu=None) for c in (8, 16, 24, 32)]
    lat = [o["per_token_latency_s"] for o in runs]
    pim = [o["per_token_latency_s"] - sum(v for k, v in o["breakdown"]["by_component"].items() if k.startswith("asic_"))
           for o in runs]
    assert all(a > b for a, b in zip(lat, lat[1:]))
    assert all(a > b for a, b in zip(pim, pim[1:]))
    assert pim[0] / pim[-1] > 2.5


def test_int8_weights_take_fewer_mac_commands_when_supported():
    dense = derive_trace("gpt2-small")
    int8 = load_trace("traces/gpt2-small.int8.pimtrace.jsonl")
    on = load_arch("pim_gpt", ["mac.int8=true"])
    mac = lambda arch, t: simulate(arch, t, context=64, tokens=1, gpu=None, cpu=None)["commands"]["MAC16"]["total"]
    # layer weights halve (32 int8 per 32 B column, plus per-channel scales); the bf16 LM head and the
    # attention MACs over the bf16 KV cache do not
    assert mac(on, int8) < 0.75 * mac(on, dense)
    m8, m16 = PimGptMapping(on, int8), PimGptMapping(on, dense)
    cols = lambda m: int(m.weight_program(0, "mlp.up").opsize[m.weight_program(0, "mlp.up").op == 0].sum())
    assert cols(m8) <= 0.55 * cols(m16)
    assert mac(load_arch("pim_gpt"), int8) == mac(load_arch("pim_gpt"), dense)  # no int8 MACs: stored as bf16


def test_block_pruned_weights_skip_bursts_only_with_zero_skipping():
    block = load_trace("traces/gpt2-small.block32x32-50.pimtrace.jsonl")
    dense = derive_trace("gpt2-small")
    run = lambda sets, t: simulate(load_arch("pim_gpt", sets), t, context=64, tokens=1, gpu=None,
                                   cpu=None)["commands"]["MAC16"]["total"]
    assert run([], block) == run([], dense)
    skip = run(["mac.zero_skipping=true"], block)
    assert skip < 0.75 * run(["mac.zero_skipping=true"], dense)
    two4 = load_trace("traces/gpt2-small.2of4.pimtrace.jsonl")
    assert run(["mac.zero_skipping=true"], two4) == run([], dense)  # 2:4 leaves no 32 B burst all zero


def test_result_object_keys_and_determinism():
    arch = load_arch("pim_gpt", SMALL_ARCH)
    trace = derive_trace(TOY)
    a = simulate(arch, trace, context=5, tokens=2)
    b = simulate(arch, trace, context=5, tokens=2)
    for k in ("model", "arch", "context_start", "tokens", "latency_s", "per_token_latency_s", "breakdown",
              "row_hit_rate", "commands", "bytes_link", "bytes_internal", "wall_s", "schema_version",
              "config_hash", "trace_hash", "energy_j", "energy_per_token_j", "energy_breakdown", "energy_table_hash",
              "baselines", "speedup", "energy_efficiency_gain"):
        assert k in a
    a.pop("wall_s"), b.pop("wall_s")
    assert a == b
    # per-token critical-path breakdowns: each sums to that token's cycles exactly
    cyc = a["per_token_latency"]["cycles"]
    for kind in ("by_op", "by_component"):
        per = a["breakdown"]["per_token_cycles"][kind]
        assert [sum(v[t] for v in per.values()) for t in range(2)] == cyc
        assert np.isclose(sum(a["breakdown"][kind].values()), a["per_token_latency_s"])
    with pytest.raises(PimsimError):
        simulate(arch, trace, context=300, tokens=2)


def test_link_bytes_count_every_command_that_uses_the_data_bus():
    """Link traffic is read off the command table's bus facts, so WR_ABK's WRA16 (32 B from the host into
    all banks) counts as link bytes like WRGB and WRMAC16 (it was missing from a hand-written list)."""
    from simulator.system.result import BUS_CMDS

    assert set(BUS_CMDS) == {"RD", "WR", "WRGB", "RDMAC16", "RDAF16", "WRMAC16", "WRA16"}
