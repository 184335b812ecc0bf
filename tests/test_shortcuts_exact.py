"""The fast engine's shortcuts (closed-form bursts, channel classes split and merged) are exact: with every
shortcut on (no command log), what it reports per instruction and per channel equals what the reference
engine's command log says, on a thousand random traces per run.

Compared per instruction: the cycle it reaches the channels and the cycle the next one may (`x_after`,
which drives the per-operator breakdown), the first / last cycle over its channels in which its last
request's final command issued, and the sum over all its requests of their final commands' issue cycles
(so every command of a closed-form burst counts, not only its ends), read off the reference log command
kind by command kind. Per channel:
the count of every command kind. Per run: the EOC cycle and the open-bank cycles (background energy),
the latter recomputed from the reference log here.
"""

import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from isr_gen import VARIANTS, random_isr

from simulator.config import load_arch
from simulator.dram.commands import Cmd
from simulator.dram.fast import N_REC, REC_DONE_FIRST, REC_DONE_LAST, REC_ISSUE_SUM, FastEngine
from simulator.dram.isa import Op, parse_isr
from simulator.dram.reference import run_reference
from simulator.dram.requests import DECODE, requests_per_channel

CHANNELS = 4
CFGS = {k: load_arch("aim_gddr6", [f"organisation.channels={CHANNELS}"] + v) for k, v in VARIANTS.items()}
OPENS = {"ACT", "ACT4", "ACT16"}
CLOSES = {"PRE", "PRE4", "PREA", "WRA16", "REFab"}


def done_cycles_from_log(prog, log):
    """Per instruction, (first, last) over its channels of the cycle its last request's final command
    issued, and the sum of the cycles of all its requests' final commands, read off the log: each channel's
    commands of one kind appear in instruction order."""
    per = {}  # (channel, cmd) -> list of issue cycles, in order
    for cyc, ch, name, _, _ in log.rows():
        per.setdefault((ch, int(Cmd[name])), []).append(cyc)
    used = {}
    out = np.full((len(prog), 3), -1, np.int64)
    out[:, 2] = 0
    for i in range(len(prog)):
        op = Op(int(prog.op[i]))
        n = requests_per_channel(op, int(prog.opsize[i]))
        if n == 0 or op in (Op.SYNC, Op.EOC):
            continue
        final = int(DECODE[op][1])
        done, total = [], 0
        for ch in range(CHANNELS):
            if int(prog.mask[i]) >> ch & 1:
                k = used.get((ch, final), 0) + n
                used[(ch, final)] = k
                done.append(per[(ch, final)][k - 1])
                total += sum(per[(ch, final)][k - n:k])
        if done:
            out[i] = min(done), max(done), total
    return out


def open_cycles_from_log(log, cfg, now):
    """Sum over channels of the cycles before `now` in which at least one bank held an open row."""
    nb, bpg = cfg.organisation.banks, cfg.organisation.banks_per_group
    total = 0
    state = {}
    for cyc, ch, name, bank, _ in log.rows():
        open_banks, since = state.get(ch, (set(), 0))
        was = bool(open_banks)
        if name in ("ACT4", "PRE4"):
            banks = set(range(bank // bpg * bpg, (bank // bpg + 1) * bpg))
        else:
            banks = {bank} if bank >= 0 else set(range(nb))
        if name in OPENS:
            open_banks |= banks
        elif name in CLOSES:
            open_banks -= banks
        if not was and open_banks:
            since = cyc
        elif was and not open_banks:
            total += cyc - since
        state[ch] = (open_banks, since)
    return total + sum(now - since for open_banks, since in state.values() if open_banks)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), variant=st.sampled_from(sorted(VARIANTS)), n=st.integers(1, 40))
def test_shortcut_path_matches_reference_log(seed, variant, n):
    cfg = CFGS[variant]
    text = random_isr(random.Random(seed), CHANNELS, n, conventional=variant == "fcfs-conventional")
    prog = parse_isr(text, cfg.organisation)
    rec_ref = np.zeros((len(prog), N_REC), np.int64)
    ref = run_reference(prog, cfg, keep_log=True, record=rec_ref)

    eng = FastEngine(cfg)
    rec_fast = np.zeros((len(prog), N_REC), np.int64)
    end, _ = eng.run(prog.op, prog.opsize, prog.mask.astype(np.int64), prog.bank, prog.row, record=rec_fast)

    assert end == ref.cycles
    np.testing.assert_array_equal(rec_fast, rec_ref)
    np.testing.assert_array_equal(rec_fast[:, [REC_DONE_FIRST, REC_DONE_LAST, REC_ISSUE_SUM]],
                                  done_cycles_from_log(prog, ref.log))
    np.testing.assert_array_equal(eng.state.channel_counts(), ref.counts)
    assert eng.state.bank_open_cycles(end) == open_cycles_from_log(ref.log, cfg, end)


def test_x_after_is_the_record_column():
    """The older `x_after` output is the REC_NEXT column of the record."""
    cfg = CFGS["default"]
    prog = parse_isr(random_isr(random.Random(7), CHANNELS, 30), cfg.organisation)
    rec = np.zeros((len(prog), N_REC), np.int64)
    FastEngine(cfg).run(prog.op, prog.opsize, prog.mask.astype(np.int64), prog.bank, prog.row, record=rec)
    x_after = np.zeros(len(prog), np.int64)
    FastEngine(cfg).run(prog.op, prog.opsize, prog.mask.astype(np.int64), prog.bank, prog.row, x_after=x_after)
    np.testing.assert_array_equal(x_after, rec[:, 1])
