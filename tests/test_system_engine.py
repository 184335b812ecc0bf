"""The event-driven system engine: sequential vs overlapped schedules, critical-path breakdowns, reference
replay of the issued programs, timeline output."""

import dataclasses
import gc
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.asic.config import AsicConfig, asic_config_from_arch
from simulator.asic.units import Pass
from simulator.config import load_arch
from simulator.mapping.pim_gpt import PimGptMapping
from simulator.mapping.tiles import AsicJob, PimTile
from simulator.system.api import simulate
from simulator.system.engine import SystemEngine
from simulator.system.program import from_rows
from simulator.system.timeline import chrome_trace, resources
from simulator.trace import derive_trace
from simulator.trace.isr import Op
from simulator.trace.zoo import MODEL_ZOO
from replay_check import assert_fast_equals_reference

TOY = dataclasses.replace(MODEL_ZOO["gpt2-small"], name="toy-2l", n_layers=2, d_model=128, n_heads=2,
                          n_kv_heads=2, head_dim=64, ffn_dim=512, vocab_size=1000, context_limit=300)


def _toy(overlap, sets=("organisation.channels=2",)):
    arch = load_arch("pim_gpt", list(sets))
    m = PimGptMapping(arch, derive_trace(TOY), asic=asic_config_from_arch(arch))
    return arch, SystemEngine(arch, m, overlap=overlap)


def test_overlap_off_latency_is_the_sum_of_node_durations():
    _, eng = _toy(False)
    stats = eng.run([1, 31, 32, 33], durations=True)
    for tok, durs in zip(stats.tokens, stats.node_durations):
        assert tok.cycles == sum(durs)


def test_token_graphs_are_freed_without_the_cyclic_collector():
    """The engine runs with the cyclic collector off: nothing of a token's graph may sit in a reference cycle,
    or every token's graph would be kept until the run ends (peak memory of long generations)."""
    _, eng = _toy(True)
    gc.collect()
    gc.disable()  # also after the run, until the cycles are looked for
    try:
        eng.run([1, 2, 40, 41])
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        leaked = [o for o in gc.garbage if isinstance(o, (PimTile, AsicJob))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert leaked == []


def test_overlap_on_is_faster_and_streams_read_outs():
    _, off = _toy(False)
    _, on = _toy(True)
    a, b = off.run([31, 32, 33]), on.run([31, 32, 33])
    assert b.cycles < a.cycles
    # on: the ASIC starts consuming a GEMV's read-outs before the GEMV's tile has finished
    st_on = on.run([40], durations=True, keep_times=True)
    nodes = on.mapping.token_graph(40)
    starts, ends = st_on.node_times[0]
    streams = [i for i, nd in enumerate(nodes) if not nd.is_pim and nd.stream >= 0]
    assert streams and all(starts[i] < ends[nodes[i].stream] for i in streams)


def test_breakdowns_sum_to_each_tokens_latency_exactly():
    for overlap in (False, True):
        _, eng = _toy(overlap)
        stats = eng.run([1, 2, 150, 151])
        for tok in stats.tokens:
            assert sum(tok.by_class.values()) == tok.cycles
            assert sum(tok.by_component.values()) == tok.cycles
            assert min(tok.by_component.values()) >= 0 and min(tok.by_class.values()) >= 0


def test_issued_programs_replay_command_exactly_and_checker_clean():
    """The exact sequence of programs the PIM controller issued (tiles and idle DELAYs), concatenated and
    replayed command by command by the reference engine, gives the same cycles, counts and a clean log."""
    for overlap in (False, True):
        arch, eng = _toy(overlap)
        assert_fast_equals_reference(arch, eng, [31, 32, 33])


def test_timeline_json_has_spans_on_every_resource(tmp_path):
    arch = load_arch("pim_gpt", ["organisation.channels=2"])
    out = simulate(arch, derive_trace(TOY), context=40, tokens=2, gpu=None, cpu=None, timeline=True)
    tl = out["timeline"]
    doc = json.loads(json.dumps(chrome_trace(tl, arch.timing.tck_ns)))
    names = {e["tid"]: e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M" and e["tid"]}
    spans = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert set(names.values()) == set(resources(tl))
    assert {names[e["tid"]] for e in spans} == set(names.values())
    assert all(e["ts"] >= 0 and e["dur"] >= 0 and e["name"] for e in spans)
    lat_us = out["per_token_latency"]["cycles"][0] * arch.timing.tck_ns * 1e-3
    assert max(e["ts"] + e["dur"] for e in spans) <= lat_us + 1e-6


# ------------------------------------------------------------------------------------ random tile graphs
class _GraphMapping:
    """A stand-in mapping whose every token is one given graph."""

    def __init__(self, nodes, asic):
        self.nodes, self.asic = nodes, asic

    def token_graph(self, ctx):
        return list(self.nodes)


_UNITS = ("valu", "exp", "recip", "reduce")


@st.composite
def _graphs(draw):
    n = draw(st.integers(2, 12))
    # node 0 puts every channel into the mode the WR_GBs need, so that no tile pays a mode switch that
    # another order would have paid for it
    nodes = [PimTile("warm", "ffn", from_rows([(Op.WR_GB, 1, 3, 0, 0), (Op.SYNC, 0, 3, 0, 0)]), ())]
    for i in range(1, n + 1):
        deps = tuple(sorted({0} | draw(st.sets(st.integers(1, i - 1), max_size=3)))) if i > 1 else (0,)
        if draw(st.booleans()):
            cols = draw(st.integers(1, 40))
            ch = draw(st.sampled_from((1, 2, 3)))
            # SYNC ends the tile when its writes have completed: the device queue is empty again, so a
            # tile's duration does not depend on what the controller issued before it (see the anomaly
            # test below for what happens without it)
            prog = from_rows([(Op.WR_GB, cols, ch, 0, 0)] * draw(st.integers(1, 3)) + [(Op.SYNC, 0, 3, 0, 0)])
            nodes.append(PimTile(f"t{i}", "ffn", prog, deps))
        else:
            passes = tuple(Pass(((draw(st.sampled_from(_UNITS)), draw(st.integers(1, 3))),), draw(st.integers(1, 3000)))
                           for _ in range(draw(st.integers(1, 3))))
            nodes.append(AsicJob(f"j{i}", "softmax", passes, deps))
    # shadow tiles (K/V writes) are sinks: nothing in the token waits for them (mapping/tiles.py)
    used = {d for nd in nodes for d in nd.deps}
    return [dataclasses.replace(nd, shadow=draw(st.booleans())) if nd.is_pim and i not in used else nd
            for i, nd in enumerate(nodes)]


@settings(max_examples=150, deadline=None)
@given(nodes=_graphs())
def test_overlap_between_critical_path_bound_and_sequential_sum(nodes):
    """Overlap on: every node starts after its inputs end; the latency is at least the longest dependency
    chain and at least the PIM controller's serial work, and at most the sequential (overlap off) sum.

    The upper bound holds when node durations do not depend on the schedule (here: each tile drains the
    device with a SYNC, every channel is in the same mode after node 0, refresh off): overlap on never leaves the controller and every ASIC unit idle while
    a node is ready, so its latency is covered by node durations that sum to the overlap-off latency."""
    arch = load_arch("pim_gpt", ["organisation.channels=2", "refresh.enabled=false"])
    m = _GraphMapping(nodes, AsicConfig())
    off = SystemEngine(arch, m, overlap=False).run([1], durations=True)
    on = SystemEngine(arch, m, overlap=True).run([1], keep_times=True)
    assert off.tokens[0].cycles == sum(off.node_durations[0])
    starts, ends = on.node_times[0]
    dur = [e - s for s, e in zip(starts, ends)]
    longest = [0] * len(nodes)
    for i, nd in enumerate(nodes):
        assert all(starts[i] >= ends[d] for d in nd.deps)
        longest[i] = dur[i] + max((longest[d] for d in nd.deps), default=0)
    pim_serial = sum(d for d, nd in zip(dur, nodes) if nd.is_pim)
    assert max(max(longest), pim_serial) <= on.tokens[0].cycles <= off.tokens[0].cycles
    for tok in (on.tokens[0], off.tokens[0]):
        assert sum(tok.by_class.values()) == tok.cycles == sum(tok.by_component.values())


def test_overlap_can_be_slower_when_a_reordered_tile_fills_the_request_queue():
    """Why the property above drains each tile: a tile ends when its last instruction is *accepted*, and
    a channel queue holds 33 requests (docs/aim-device.md, rule 3). Overlap off issues t0 (3 WR_GB
    requests), waits for j1, then t2's 15 + 15 requests: 3 + 30 = 33 fit while t0's requests still wait for
    the mode switch, so t2 is accepted in 2 cycles. Overlap on issues the ready t5 (1 request) while j1
    runs: 3 + 1 + 30 = 34 do not fit, so t2's second WR_GB waits for a slot (26 cycles) and j3, which
    waits for t2, ends later: 42 cycles against 34. A list schedule is not monotone in general (Graham's
    anomalies); with 14 columns (33 requests) overlap on wins again, 18 against 30."""
    arch = load_arch("pim_gpt", ["organisation.channels=2", "refresh.enabled=false"])
    one = (Pass((("valu", 1),), 1),)
    for cols, want_off, want_on in ((15, 34, 42), (14, 30, 18)):
        nodes = [PimTile("t0", "ffn", from_rows([(Op.WR_GB, 1, 1, 0, 0)] * 3), ()),
                 AsicJob("j1", "softmax", one, ()),
                 PimTile("t2", "ffn", from_rows([(Op.WR_GB, 15, 1, 0, 0), (Op.WR_GB, cols, 1, 0, 0)]), (1,)),
                 AsicJob("j3", "softmax", one, (0, 1, 2)),
                 AsicJob("j4", "softmax", one, ()),
                 PimTile("t5", "ffn", from_rows([(Op.WR_GB, 1, 1, 0, 0)]), ())]
        m = _GraphMapping(nodes, AsicConfig())
        off = SystemEngine(arch, m, overlap=False).run([1], durations=True)
        on = SystemEngine(arch, m, overlap=True).run([1], keep_times=True)
        assert (off.tokens[0].cycles, on.tokens[0].cycles) == (want_off, want_on)
        starts, ends = on.node_times[0]
        assert starts[5] < starts[2]  # on: t5 went first, because t2 waited for j1
        assert (ends[2] - starts[2], off.node_durations[0][2]) == ((26, 2) if cols == 15 else (2, 2))


def test_timeline_gantt_chart_draws_every_resource(tmp_path):
    from simulator.report.timeline import plot_timeline
    from simulator.system.timeline import write_chrome_trace

    arch = load_arch("pim_gpt", ["organisation.channels=2"])
    out = simulate(arch, derive_trace(TOY), context=40, tokens=1, gpu=None, cpu=None, timeline=True)
    write_chrome_trace(out["timeline"], str(tmp_path / "t.json"), arch.timing.tck_ns)
    data = plot_timeline(str(tmp_path / "t.json"), str(tmp_path / "t.png"))
    assert (tmp_path / "t.png").stat().st_size > 0
    assert [s.label for s in data.series] == resources(out["timeline"])
    assert all(s.x for s in data.series)


def test_timeline_bad_path_is_one_line_before_simulating(capsys, tmp_path):
    from simulator.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    bad = str(blocker / "t.json")  # its parent is a regular file: no directory can be made there
    assert main(["run", "--model", "gpt2-small", "--tokens", "1", "--timeline", bad]) != 0
    err = capsys.readouterr().err.strip()
    assert f"--timeline {bad}" in err and "\n" not in err
