"""V append modes (kv.v_append), the read-out protocol switch (organisation.readout_mode_switch) and the
device floor: exact gate cycles, golden command counts, both engines and the checker in agreement."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.asic.config import asic_config_from_arch
from simulator.config import load_arch
from simulator.dram.checker import check_log
from simulator.dram.commands import Cmd
from simulator.dram.fast import FastEngine, run_fast
from simulator.dram.reference import run_reference
from simulator.errors import PimsimError
from simulator.mapping.pim_gpt import PimGptMapping
from simulator.system.engine import SystemEngine
from simulator.system.floor import floor_cycles, floor_terms, token_floor_cycles
from simulator.system.program import from_rows
from simulator.trace import derive_trace
from simulator.trace.isr import Op, parse_isr
from simulator.trace.zoo import MODEL_ZOO
from replay_check import assert_fast_equals_reference

TOY = dataclasses.replace(MODEL_ZOO["gpt2-small"], name="toy-2l", n_layers=2, d_model=128, n_heads=2,
                          n_kv_heads=2, head_dim=64, ffn_dim=512, vocab_size=1000, context_limit=300)
MODES = ("single", "allbank", "buffered")


def _toy(sets):
    arch = load_arch("pim_gpt", ["organisation.channels=2"] + list(sets))
    m = PimGptMapping(arch, derive_trace(TOY), asic=asic_config_from_arch(arch))
    return arch, m, SystemEngine(arch, m)


# ------------------------------------------------------------------------------------------ V append


def _append_counts(sets, ctx):
    """Commands of one token's kv_append (layer 0) on a fresh device (all banks closed, bank mode)."""
    arch, m, _ = _toy(sets)
    prog = m._append_rel(ctx)
    eoc = from_rows([(Op.EOC, 0, m.full, 0, 0)])
    full = from_rows(np.concatenate([np.column_stack([p.op, p.opsize, p.mask, p.bank, p.row]) for p in (prog, eoc)]))
    ref = run_reference(full, arch, keep_log=True)
    fast = run_fast(full, arch, keep_log=True)
    assert fast.cycles == ref.cycles and fast.log.rows() == ref.log.rows()
    assert check_log(ref.log, arch) == []
    tot = ref.counts.sum(axis=0)
    return m, {c.name: int(tot[c]) for c in (Cmd.ACT, Cmd.ACT16, Cmd.PRE, Cmd.PREA, Cmd.WRCP, Cmd.WRGB)}, prog


def test_toy_v_layout_is_what_the_golden_counts_assume():
    _, m, _ = _toy([])
    lay = m.v_layout  # 128 V neurons over 2 x 16 banks: 4 slots, fan-in 300 = 19 columns, 3 segments a row
    assert (lay.n_slots, lay.n_passes, [int(lay.seg_row[lay.segment_index(0, q)]) for q in range(4)]) == \
        (4, 1, [0, 0, 0, 1])
    assert m.k_hd_cols == 4 and m.k_row(0, 0) == m.k_row(0, 1)  # both heads' keys of slot 0 share a K row


def test_single_v_append_golden_counts():
    """k_t: one ACT (1 bank, 1 channel), 2 heads x 4 columns; v_t: each of 2 x 16 banks opens its 2 V rows
    (slots 0-2 share row 0): 64 ACT, 32 PRE (+1: the K bank reopens for V), one masked column per target."""
    _, c, prog = _append_counts(["kv.v_append=single"], 20)
    assert c == {"ACT": 1 + 2 * 16 * 2, "ACT16": 0, "PRE": 1 + 2 * 16, "PREA": 0, "WRCP": 8 + 2 * 64,
                 "WRGB": 8 + 2 * 64}
    # k_t before v_t (the design's order)
    copies = prog.op[(prog.op == Op.COPY_GBBK) | (prog.op == Op.COPY_GBBK_AB)]
    assert copies[0] == Op.COPY_GBBK and prog.opsize[np.nonzero(prog.op == Op.COPY_GBBK)[0][0]] == 4


def test_allbank_v_append_golden_counts():
    """One ACT16 per V row per channel (2 rows), one PREA per row change (the channel holding k_t's row
    closes it first): ACTs fall from 65 to 1 + 4."""
    _, c, prog = _append_counts(["kv.v_append=allbank"], 20)
    assert c == {"ACT": 1, "ACT16": 2 * 2, "PRE": 0, "PREA": 1 + 2, "WRCP": 8 + 2 * 64, "WRGB": 8 + 2 * 64}
    assert int(np.count_nonzero(prog.op == Op.COPY_GBBK_AB)) == 64


def test_buffered_v_append_flushes_whole_columns_every_n_tokens():
    _, c, _ = _append_counts(["kv.v_append=buffered"], 20)  # 20 % 16 != 0: only k_t goes to PIM
    assert c == {"ACT": 1, "ACT16": 0, "PRE": 0, "PREA": 0, "WRCP": 8, "WRGB": 8}
    _, c, _ = _append_counts(["kv.v_append=buffered"], 32)  # flush of positions 16..31: one column each
    assert c == {"ACT": 1, "ACT16": 4, "PRE": 0, "PREA": 3, "WRCP": 8 + 2 * 64, "WRGB": 8 + 2 * 64}
    _, c, prog = _append_counts(["kv.v_append=buffered", "kv.v_buffer_tokens=32"], 32)  # two columns each
    assert c == {"ACT": 1, "ACT16": 4, "PRE": 0, "PREA": 3, "WRCP": 8 + 2 * 128, "WRGB": 8 + 2 * 128}
    assert set(prog.opsize[prog.op == Op.COPY_GBBK_AB]) == {2}


def test_buffered_attention_charges_the_asic_for_buffered_rows():
    _, m, _ = _toy(["kv.v_append=buffered"])
    assert [m.v_buffered(c) for c in (15, 16, 17, 32)] == [15, 0, 1, 0]
    # p . V of the token at ctx runs before its own K/V write (a flush among them): it sees the buffer the
    # previous token left, (ctx - 1) % 16 positions
    assert [m.v_pending(c) for c in (15, 16, 17, 31, 32)] == [14, 15, 0, 14, 15]

    def value_out(ctx):
        return [nd for nd in m.token_graph(ctx) if nd.name.endswith("attn.value.out")]

    # ctx 31: 14 buffered rows of v (2 heads x 64 dims each): p_j * v_j + acc on the ASIC's vector ALU,
    # beside the current token's p_t * v_t + acc
    jobs = value_out(31)
    assert [j.name for j in jobs] == ["layer0.attn.value.out", "layer1.attn.value.out"]
    assert [(p.stages, p.n) for p in jobs[0].passes] == [((("valu", 2 + 2 * 14),), 128)]
    assert dict(jobs[0].ops)["mul"] == 14 * 128
    assert [(p.stages, p.n) for p in value_out(17)[0].passes] == [((("valu", 2),), 128)]


def test_v_rows_of_every_layer_stay_in_that_layer():
    for mode in MODES:
        _, m, _ = _toy([f"kv.v_append={mode}"])
        for s in m.token_graph(16):
            if s.is_pim and s.op_class == "kv_append":
                layer = int(s.name.split(".")[0][5:])
                v = s.program.row[(s.program.op == Op.COPY_GBBK_AB)
                                  | ((s.program.op == Op.COPY_GBBK) & (s.program.opsize == 1))]
                base = layer * m.layer_rows + m.v_base
                assert ((v >= base) & (v < base + m.v_layout.rows_used)).all(), (mode, s.name)


@pytest.mark.parametrize("sets", [["kv.v_append=single"], ["kv.v_append=allbank"], ["kv.v_append=buffered"],
                                  ["kv.v_append=allbank", "organisation.readout_mode_switch=false"]])
def test_system_fast_equals_reference_in_every_mode(sets):
    """Tokens across a buffer flush (ctx 16) with refresh on: same cycles and counts in the per-token fast
    path and one command-by-command stream; the full log is protocol-clean."""
    arch, _, eng = _toy(sets)
    assert_fast_equals_reference(arch, eng, [15, 16, 17])


def test_bad_kv_config_is_one_line():
    with pytest.raises(PimsimError, match="kv.v_buffer_tokens: must be a multiple of 16"):
        _toy(["kv.v_append=buffered", "kv.v_buffer_tokens=24"])
    with pytest.raises(PimsimError, match="v_buffer_tokens applies only with v_append: buffered"):
        load_arch("pim_gpt", ["kv.v_buffer_tokens=32"])
    with pytest.raises(PimsimError, match="kv.v_append"):
        load_arch("pim_gpt", ["kv.v_append=sometimes"])


# ------------------------------------------------------------------------------------------ read-out switch

GATES = {  # the device's worked examples (docs/device-model.md semantics); with the switch off RDMAC16 follows the MAC16 at nCCD, no TMOD
    "rdmac_twice": ("AiM RD_MAC 0 0x1\nAiM RD_MAC 0 0x1\nAiM EOC\n", 40, 8,
                    [("TMOD", 1), ("RDMAC16", 33), ("RDMAC16", 36)], [("RDMAC16", 1), ("RDMAC16", 4)]),
    "gemv": ("AiM WR_GB 2 0 0x1\nAiM WR_BIAS 0 0x1\nAiM MAC_ABK 2 0x1 0\nAiM RD_MAC 0 0x1\nAiM EOC\n", 166, 134,
             [("TMOD", 1), ("WRGB", 33), ("WRGB", 35), ("WRMAC16", 37), ("TMOD", 38), ("ACT16", 70), ("MAC16", 126),
              ("MAC16", 128), ("TMOD", 130), ("RDMAC16", 162)],
             [("TMOD", 1), ("WRGB", 33), ("WRGB", 35), ("WRMAC16", 37), ("TMOD", 38), ("ACT16", 70), ("MAC16", 126),
              ("MAC16", 128), ("RDMAC16", 130)]),
}


@pytest.mark.parametrize("case", sorted(GATES))
@pytest.mark.parametrize("switch", [True, False])
def test_readout_gate_cycles(case, switch):
    text, on_cycles, off_cycles, on_log, off_log = GATES[case]
    cfg = load_arch("aim_gddr6", ["organisation.channels=1", f"organisation.readout_mode_switch={str(switch).lower()}"])
    prog = parse_isr(text, cfg.organisation)
    ref, fast = run_reference(prog, cfg, keep_log=True), run_fast(prog, cfg, keep_log=True)
    want_log = on_log if switch else off_log
    assert ref.cycles == fast.cycles == (on_cycles if switch else off_cycles)
    assert [(c, int(t)) for t, _, c, _, _ in ref.log.rows()] == want_log
    assert fast.log.rows() == ref.log.rows()
    assert check_log(ref.log, cfg) == []


def test_checker_still_demands_register_mode_for_readout_on_aim():
    """The same no-TMOD log is legal on a switch-free device and a mode violation on AiM."""
    text, _, _, _, _ = GATES["rdmac_twice"]
    off = load_arch("aim_gddr6", ["organisation.channels=1", "organisation.readout_mode_switch=false"])
    on = load_arch("aim_gddr6", ["organisation.channels=1"])
    log = run_reference(parse_isr(text, off.organisation), off, keep_log=True).log
    assert check_log(log, off) == []
    assert [(v.cmd, v.rule) for v in check_log(log, on)] == [("RDMAC16", "mode")] * 2


_OPS = (Op.MAC_ABK, Op.WR_GB, Op.RD_MAC, Op.COPY_GBBK, Op.COPY_GBBK_AB, Op.COPY_BKGB, Op.RD_AF, Op.AF)


def _random_program(rng: random.Random, channels: int, n: int):
    rows = []
    full = (1 << channels) - 1
    for _ in range(n):
        op = rng.choice(_OPS)
        mask = full if rng.random() < 0.6 else rng.randint(1, full)
        size = rng.choice((1, 2, 3, 16)) if op in (Op.MAC_ABK, Op.WR_GB, Op.COPY_GBBK, Op.COPY_GBBK_AB,
                                                   Op.COPY_BKGB) else 0
        rows.append((int(op), size, mask, rng.randrange(16), rng.randrange(4)))
    rows.append((int(Op.EOC), 0, full, 0, 0))
    return from_rows(rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 25), switch=st.booleans(), refresh=st.booleans())
def test_random_programs_engines_and_checker_agree(seed, n, switch, refresh):
    """Random mixes of all-bank MACs, read-outs, single-bank and all-bank-open copies, with and without
    read-out mode switches: both engines give the same log, the checker finds nothing."""
    cfg = load_arch("aim_gddr6", ["organisation.channels=3", f"organisation.readout_mode_switch={str(switch).lower()}",
                                  f"refresh.enabled={str(refresh).lower()}", "timing.nREFI=500"])
    prog = _random_program(random.Random(seed), 3, n)
    ref, fast = run_reference(prog, cfg, keep_log=True), run_fast(prog, cfg, keep_log=True)
    assert fast.cycles == ref.cycles and fast.log.rows() == ref.log.rows()
    assert check_log(ref.log, cfg) == []
    assert run_fast(prog, cfg).cycles == ref.cycles  # class merging on (no log)


# ------------------------------------------------------------------------------------------ device floor


def test_floor_by_hand():
    """WR_GB 4; MAC 10 @ row 5; RD; MAC 20 @ row 5; RD; MAC 64 @ row 6; RD -- M = 94, R = 2, N = 3.
    AiM preset: nCCD 2, nRP 32, nRCDRDMAC 56, RDMAC16 completion 2, nMODCH 32."""
    prog = from_rows([(Op.WR_GB, 4, 1, 0, 0), (Op.MAC_ABK, 10, 1, 0, 5), (Op.RD_MAC, 0, 1, 0, 0),
                      (Op.MAC_ABK, 20, 1, 0, 5), (Op.RD_MAC, 0, 1, 0, 0), (Op.MAC_ABK, 64, 1, 0, 6),
                      (Op.RD_MAC, 0, 1, 0, 0)])
    assert floor_terms([prog]) == (94, 2, 3)
    on = load_arch("aim_gddr6", ["organisation.channels=1"])
    off = load_arch("aim_gddr6", ["organisation.channels=1", "organisation.readout_mode_switch=false"])
    assert floor_cycles(off, [prog]) == 2 * 94 + 88 * 2 + 3 * 3 == 373
    assert floor_cycles(on, [prog]) == 373 + 32 * 5 == 533
    # and the engine cannot beat it (here it takes the floor plus nRTP, GB writes and ISR delivery)
    eoc = from_rows([(Op.EOC, 0, 1, 0, 0)])
    for cfg in (on, off):
        eng = FastEngine(cfg)
        end, _ = eng.run(*(np.concatenate([getattr(p, f) for p in (prog, eoc)]) for f in ("op", "opsize", "mask",
                                                                                          "bank", "row")))
        assert end > floor_cycles(cfg, [prog])


@pytest.mark.parametrize("sets", [[f"kv.v_append={m}", f"organisation.readout_mode_switch={s}"]
                                  for m in MODES for s in ("true", "false")])
def test_floor_is_below_simulated_latency(sets):
    _, m, eng = _toy(sets)
    stats = eng.run([15, 16, 17, 200])
    for tok in stats.tokens:
        assert 0 < token_floor_cycles(m, tok.ctx) <= tok.cycles


# ------------------------------------------------------------------------------------------ reproduce checks


def test_reproduce_published_checks_keys_types_and_floor(capsys, tmp_path):
    import json

    from simulator.cli import main

    doc = tmp_path / "r.md"
    doc.write_text("before\n<!-- reproduce-table:begin -->\nold\n<!-- reproduce-table:end -->\nafter\n")
    assert main(["reproduce", "pim-gpt", "--models", "gpt2-small,gpt3-xl", "--samples", "1", "--check-contexts", "1",
                 "--gpu", "none", "--cpu", "none", "--json", "--update-doc", str(doc)]) == 0
    o = json.loads(capsys.readouterr().out)
    c = o["published_checks"]
    assert set(c) == {"non_vmm_share_gpt3_xl", "asic_100mhz_slowdown_max", "row_hit_rate_min",
                      "channel_scaling_8_to_16", "data_movement_reduction"}
    for k in ("non_vmm_share_gpt3_xl", "asic_100mhz_slowdown_max", "row_hit_rate_min", "channel_scaling_8_to_16"):
        assert isinstance(c[k], float), k
    assert 0 < c["non_vmm_share_gpt3_xl"] < 1 and 0 < c["row_hit_rate_min"] <= 1
    assert c["asic_100mhz_slowdown_max"] > 0 and c["channel_scaling_8_to_16"] > 1  # slower ASIC, more channels
    lo, hi = c["data_movement_reduction"]
    assert isinstance(lo, float) and 1 < lo <= hi
    assert c["row_hit_rate_min"] == min(m["row_hit_rate"] for m in o["models"])
    runs = o["check_runs"]
    assert c["channel_scaling_8_to_16"] == runs["channel_scaling"]["latency_8ch_s"] / \
        runs["channel_scaling"]["latency_16ch_s"]
    for m in o["models"]:
        assert isinstance(m["floor_latency_s"], float) and isinstance(m["floor_ratio"], float)
        assert 0 < m["floor_latency_s"] <= m["per_token_latency_s"]
        assert m["floor_ratio"] == pytest.approx(m["per_token_latency_s"] / m["floor_latency_s"])
    text = doc.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text
    assert "| gpt3-xl |" in text and "latency 8 ch / 16 ch" in text


@pytest.mark.parametrize("sets", [["kv.v_append=single"], ["kv.v_append=allbank"],
                                  ["kv.v_append=buffered", "kv.v_buffer_tokens=48"]])
def test_append_pieces_are_the_whole_append_cut_at_its_loads(sets):
    """The K/V write pieces the token graph uses (built piece by piece, V pieces cached per pass) are exactly
    `_append_rel(ctx)` cut before each global-buffer load, for contexts across V pass boundaries."""
    arch = load_arch("pim_gpt", ["organisation.channels=2"] + sets)
    m = PimGptMapping(arch, derive_trace(dataclasses.replace(TOY, context_limit=2100)),
                      asic=asic_config_from_arch(arch))
    fields = ("op", "opsize", "mask", "bank", "row")
    assert m.v_layout.n_passes > 1
    for ctx in list(range(1, 80)) + list(range(1000, 1100)) + list(range(2040, 2101)):
        whole = m._append_rel(ctx)
        pieces = m._append_chunks(ctx)
        starts = [i for i in range(len(whole)) if i == 0 or whole.op[i] == Op.WR_GB]
        assert len(pieces) == len(starts)
        for f in fields:
            assert np.array_equal(np.concatenate([getattr(p, f) for p in pieces]), getattr(whole, f)), (ctx, f)
        assert [len(p) for p in pieces] == np.diff(starts + [len(whole)]).tolist()
