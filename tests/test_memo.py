"""The run memo (simulator/dram/memo.py) is exact: memo on == memo off, on full generations.

Compared: every program's end cycle, per-channel command counts and open-bank cycles, replaying the programs a
full system run issued (tiles and idle DELAYs, one device call each: many small calls from the same few
programs), and
the whole `simulate` result (cycles, per-token latencies, counts, energy) through the system engine. The
model is a two-layer GPT small enough for a full generation (context 1 up to its limit) in a test.
"""

import dataclasses
import random
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from isr_gen import VARIANTS, random_isr

from simulator.asic.config import asic_config_from_arch
from simulator.config import load_arch
from simulator.dram import fast
from simulator.dram.isa import Op, parse_isr
from simulator.errors import PimsimError
from simulator.dram.tile_driver import run_programs
from simulator.system.api import simulate
from simulator.system.engine import SystemEngine
from simulator.mapping.pim_gpt import PimGptMapping
from simulator.trace import MODEL_ZOO, derive_trace

CHANNELS = 4
CFGS = {k: load_arch("aim_gddr6", [f"organisation.channels={CHANNELS}"] + v) for k, v in VARIANTS.items()}
TINY = dataclasses.replace(MODEL_ZOO["gpt2-small"], name="tiny-gpt", n_layers=2, d_model=256, n_heads=4,
                           n_kv_heads=4, head_dim=64, ffn_dim=1024, vocab_size=2048, context_limit=64)


@pytest.fixture(scope="module")
def setup():
    arch = load_arch("pim_gpt")
    trace = derive_trace(TINY)
    pm = PimGptMapping(arch, trace, mapping="pim-gpt", asic=asic_config_from_arch(arch))
    se = SystemEngine(arch, pm)
    se.run(list(range(1, TINY.context_limit + 1)), record=True)
    return arch, trace, pm, se


def _generation(arch, pm, se, memo):
    dev = fast.FastEngine(arch, memo=memo, memo_min_columns=0)  # every program, to exercise the memo
    ends = run_programs(dev, se.issued)
    x = dev.state.x
    return ends, dev.state.channel_counts(), dev.state.bank_open_cycles(x), dev


def test_program_by_program_generation_identical(setup):
    arch, _, pm, se = setup
    e_on, c_on, o_on, dev = _generation(arch, pm, se, True)
    e_off, c_off, o_off, _ = _generation(arch, pm, se, False)
    assert e_on == e_off
    np.testing.assert_array_equal(c_on, c_off)
    assert o_on == o_off
    assert dev.memo.hits >= 100  # the memo is exercised, not bypassed


def _tile_records(arch, programs, memo, min_columns=0):
    """Every program's whole record (all REC_* columns), run the way the system engine runs tiles."""
    dev = fast.FastEngine(arch, memo=memo, memo_min_columns=min_columns)
    run_tile = dev.tile_runner()
    recs = [run_tile(*(np.ascontiguousarray(v, np.int64) for v in (p.op, p.opsize, p.mask, p.bank, p.row))).copy()
            for p in programs]
    x = dev.state.x
    return recs, dev.state.channel_counts(), dev.state.bank_open_cycles(x), x, dev


def test_tile_runner_records_identical(setup):
    """Through `tile_runner` (the system engine's path): every instruction's arrival, next-arrival, first and
    last completion and issue-cycle sum, the counts and the open-bank cycles equal memo off."""
    arch, _, _, se = setup
    on = _tile_records(arch, se.issued, True)
    off = _tile_records(arch, se.issued, False)
    assert len(on[0]) == len(off[0])
    for a, b in zip(on[0], off[0]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(on[1], off[1])
    assert on[2:4] == off[2:4]
    assert on[4].memo.hits >= 100 and on[4].memo.misses >= 1


def test_memo_takes_only_programs_with_enough_columns(setup):
    """A program is looked up only if it has at least `min_columns` column requests (memo.MIN_COLUMNS by
    default) and goes to every channel or to none (one that leaves channels out splits them anew each time):
    the others are simulated."""
    arch, _, _, se = setup
    dev = fast.FastEngine(arch, memo=True)
    assert dev.memo.min_columns == fast.MEMO_MIN_COLUMNS
    run_programs(dev, se.issued)
    every = (1 << arch.organisation.channels) - 1
    big = sum(1 for p in se.issued if len(p.op) >= 16 and int(p.opsize.sum()) >= fast.MEMO_MIN_COLUMNS
              and p.channels == every)
    assert 0 < dev.memo.hits + dev.memo.misses <= big
    partial = [p for p in se.issued if p.channels not in (0, every)]  # e.g. score tiles on a head's channels
    every_size = fast.FastEngine(arch, memo=True, memo_min_columns=0).memo
    assert partial and not any(every_size.takes(len(p.op), p.opsize, p.mask) for p in partial)
    dev = fast.FastEngine(arch, memo=True, memo_min_columns=10**9)
    run_programs(dev, se.issued)
    assert dev.memo.hits == dev.memo.misses == 0


def test_a_full_table_drops_entries_and_stays_exact(setup):
    """With a table too small for the generation, entries are dropped (first those never hit) and the
    results still equal memo off."""
    arch, _, _, se = setup
    on = _tile_records(arch, se.issued, True)
    off = _tile_records(arch, se.issued, False)
    dev = fast.FastEngine(arch, memo=True, memo_min_columns=0)
    dev.memo.max_words = 200_000
    run_tile = dev.tile_runner()
    recs = [run_tile(*(np.ascontiguousarray(v, np.int64) for v in (p.op, p.opsize, p.mask, p.bank, p.row))).copy()
            for p in se.issued]
    assert dev.memo.dropped > 0 and dev.memo.hits > 0
    assert dev.memo.words <= dev.memo.max_words
    for a, b in zip(recs, off[0]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(dev.state.channel_counts(), off[1])
    assert dev.state.bank_open_cycles(dev.state.x) == off[2] and dev.state.x == off[3] == on[3]


@pytest.mark.parametrize("min_columns", [0, None])
def test_simulate_identical(setup, monkeypatch, min_columns):
    arch, trace, _, _ = setup
    out = {}
    if min_columns is not None:
        monkeypatch.setattr(fast, "MEMO_MIN_COLUMNS", min_columns)
    for memo in (True, False):
        monkeypatch.setattr(fast, "MEMO_DEFAULT", memo)
        o = simulate(arch, trace, context=1, tokens=None, gpu=None, cpu=None)
        o.pop("wall_s", None)
        out[memo] = o
    assert out[True] == out[False]


def _random_session(cfg, seed, n_programs, memo, full_masks=True):
    """A few random programs (tests/isr_gen.py) run many times in a random order, at random row offsets
    (`Program.shifted`: the memo keys rows relative to a program's first row), with random idle gaps
    (host DELAYs) between them, so that a program meets both repeated and new relative states. With
    `full_masks` every instruction goes to every channel (else a random mask splits the channels into
    classes, which the memo keys and plays class by class)."""
    rng = random.Random(seed)
    pool = [parse_isr(random_isr(rng, CHANNELS, rng.randint(1, 12)), cfg.organisation) for _ in range(3)]
    if full_masks:
        for p in pool:
            p.mask[p.mask != 0] = (1 << CHANNELS) - 1
    gaps = [0, 1, 7, rng.randint(1, 500)]
    shifts = [0, 0, 1, rng.randint(2, 40)]  # rows moved as the system moves a tile to another layer
    dev = fast.FastEngine(cfg, memo=memo, memo_min_columns=0)
    recs = []
    for _ in range(n_programs):
        p = rng.choice(pool).shifted(rng.choice(shifts))
        rec = np.zeros((len(p), fast.N_REC), np.int64)
        dev.run(p.op, p.opsize, p.mask.astype(np.int64), p.bank, p.row, record=rec)
        recs.append(rec)
        gap = rng.choice(gaps)
        if gap:
            dev.run(*(np.array([v], np.int64) for v in (int(Op.DELAY), gap, 0, 0, 0)))
    x = dev.state.x
    return recs, dev.state.channel_counts(), dev.state.bank_open_cycles(x), x, dev.memo


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), variant=st.sampled_from(sorted(VARIANTS)), full_masks=st.booleans())
def test_memo_on_random_program_sessions(seed, variant, full_masks):
    """Memo on == memo off on random sessions of repeated programs, under every device variant (refresh
    every 400 cycles, nFAW, FCFS conventional requests, slow mode switches): every instruction's record,
    the per-channel counts, the open-bank cycles and the final cycle."""
    cfg = CFGS[variant]
    try:
        off = _random_session(cfg, seed, 30, False, full_masks)
    except PimsimError as e:  # the refresh variant's timings can stall a device (both engines agree)
        with pytest.raises(PimsimError, match=re.escape(str(e))):
            _random_session(cfg, seed, 30, True, full_masks)
        return
    on = _random_session(cfg, seed, 30, True, full_masks)
    for a, b in zip(on[0], off[0]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(on[1], off[1])
    assert on[2:4] == off[2:4]


def test_random_sessions_do_hit():
    """The sessions above exercise the lookup path (not only misses), under refresh too."""
    hits = {v: sum(_random_session(CFGS[v], seed, 30, True)[4].hits for seed in range(5)) for v in sorted(VARIANTS)}
    assert sum(hits.values()) >= 100 and hits["refresh"] >= 1  # 172 and 6 when written


def test_random_sessions_with_split_channels_hit():
    """With random channel masks the channels split into two to four classes, and such states repeat too: the
    sessions above exercise the lookup of split states (when written: 31 hits, all from two to four classes)."""
    hits = 0
    for v in sorted(VARIANTS):
        for seed in range(5):
            try:
                hits += _random_session(CFGS[v], seed, 30, True, full_masks=False)[4].hits
            except PimsimError:  # a stalled device (the refresh variant), as in the property test
                pass
    assert hits >= 10


def test_open_row_just_below_the_base_row_is_not_a_closed_bank():
    """Rows are keyed relative to the program's first row, so an open row one below it becomes -1, the
    value a closed bank has in the device state. A closed bank and that open row must give different keys
    (from the second state the program needs a PREA first)."""
    cfg = CFGS["default"]
    p = parse_isr("AiM MAC_ABK 4 0xf 6\nAiM EOC\n", cfg.organisation)
    args = (p.op, p.opsize, p.mask.astype(np.int64), p.bank, p.row, np.zeros((0, fast.N_REC), np.int64))
    dev = fast.FastEngine(cfg, memo=True, memo_min_columns=0)
    keys = []
    for row in (-1, 5):  # every bank closed; every bank open at row 5
        dev.state.arrays["open_row"][:] = row
        hit, _, token = dev.memo.lookup(*args)  # a miss: nothing is stored
        assert not hit
        keys.append(token[0])
    assert not np.array_equal(keys[0], keys[1])


def test_a_tile_moved_to_another_layer_hits():
    """A program moved by a number of rows (`Program.shifted`, as each layer's copy of a tile) from a state
    moved by the same number of rows is looked up, not simulated, and gives what the simulation gives."""
    cfg = CFGS["default"]
    text = "".join(f"AiM MAC_ABK 8 0xf {r}\nAiM RD_MAC 0 0xf\n" for r in (3, 4, 9)) + "AiM EOC\n"
    prog = parse_isr(text, cfg.organisation)
    idle = tuple(np.array([v], np.int64) for v in (int(Op.DELAY), 100_000, 0, 0, 0))
    out = {}
    for memo in (True, False):
        dev = fast.FastEngine(cfg, memo=memo, memo_min_columns=0)
        recs = []
        for shift in (0, 10, 20, 30):  # from the third on, each starts where the one before did, 10 rows further
            p = prog.shifted(shift)
            dev.run(*idle)
            rec = np.zeros((len(p), fast.N_REC), np.int64)
            dev.run(p.op, p.opsize, p.mask.astype(np.int64), p.bank, p.row, record=rec)
            recs.append(rec)
        out[memo] = recs, dev.state.channel_counts(), dev.state.open_rows().copy(), dev.memo
    for a, b in zip(out[True][0], out[False][0]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(out[True][1], out[False][1])
    np.testing.assert_array_equal(out[True][2], out[False][2])  # open rows put back at the right offset
    assert out[True][3].hits == 1  # the fourth (the queue fills up over the first two); the idle DELAYs
    #                                before each start from different open rows


def test_a_program_from_split_channels_hits():
    """A program that splits the channels (a MAC on one channel) and one that starts from the split (every
    channel, the classes differing in open rows and timing) are looked up, not simulated, once their
    relative start states repeat, and give what the simulation gives: records, counts, open rows, classes."""
    cfg = CFGS["default"]
    one = parse_isr("AiM MAC_ABK 4 0x1 7\nAiM RD_MAC 0 0x1\nAiM EOC\n", cfg.organisation)  # channel 3 only
    every = parse_isr("".join(f"AiM MAC_ABK 8 0xf {r}\nAiM RD_MAC 0 0xf\n" for r in (3, 4, 9)) + "AiM EOC\n",
                      cfg.organisation)
    idle = tuple(np.array([v], np.int64) for v in (int(Op.DELAY), 100_000, 0, 0, 0))
    out = {}
    for memo in (True, False):
        dev = fast.FastEngine(cfg, memo=memo, memo_min_columns=0)
        recs, classes, hits = [], [], []
        for shift in (0, 0, 10, 20):
            dev.run(*idle)
            for prog in (one, every):
                p = prog.shifted(shift)
                before = dev.memo.hits if memo else 0
                classes.append(int(dev.state.arrays["scal"][fast.SCAL_CLASSES]))
                rec = np.zeros((len(p), fast.N_REC), np.int64)
                dev.run(p.op, p.opsize, p.mask.astype(np.int64), p.bank, p.row, record=rec)
                recs.append(rec)
                hits.append(dev.memo.hits - before if memo else 0)
        classes.append(int(dev.state.arrays["scal"][fast.SCAL_CLASSES]))
        out[memo] = recs, dev.state.channel_counts(), dev.state.open_rows().copy(), classes, hits
    for a, b in zip(out[True][0], out[False][0]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(out[True][1], out[False][1])
    np.testing.assert_array_equal(out[True][2], out[False][2])
    assert out[True][3] == out[False][3] == [1, 2] * 4 + [1]  # `every` starts split and ends merged
    assert out[True][4][-2:] == [1, 1]  # the last round: both from the memo (the queue fills over the first)
