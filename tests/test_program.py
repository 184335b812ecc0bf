"""One program type for the device: an ISR trace read from text and a program the mapping builds are the
same `simulator.dram.program.Program`, so every engine and tool takes either."""

import numpy as np

from simulator.config import load_arch
from simulator.dram.fast import run_fast
from simulator.dram.isa import Op, parse_isr
from simulator.dram.program import Program, concat, from_rows


def test_old_names_are_the_one_type():
    import simulator.dram.isa as isa
    import simulator.system.program as system_program
    import simulator.trace.isr as trace_isr

    assert isa.IsrProgram is trace_isr.IsrProgram is system_program.Program is Program


def test_parsed_trace_equals_built_program():
    """The reader fills the engine arrays (int64, channel-id masks) and the source lines; a program built
    from rows with the same instructions replays to the same cycle."""
    cfg = load_arch("aim_gddr6", ["organisation.channels=4"])
    text = "# two MACs\nAiM WR_GB 4 0 0x1\nAiM MAC_ABK 8 0xf 3\n\nAiM RD_MAC 0 0x8\nAiM EOC\n"
    parsed = parse_isr(text, cfg.organisation, source="t.isr")
    assert isinstance(parsed, Program) and parsed.source == "t.isr"
    assert parsed.line.tolist() == [2, 3, 5, 6]
    assert all(a.dtype == np.int64 for a in parsed.arrays())
    # ISR bit i selects channel channels-1-i: 0x1 -> channel 3, 0x8 -> channel 0
    built = from_rows([(Op.WR_GB, 4, 0b1000, 0, 0), (Op.MAC_ABK, 8, 0b1111, 0, 3), (Op.RD_MAC, 0, 0b0001, 0, 0),
                       (Op.EOC, 0, 0b1111, 0, 0)])
    for a, b in zip(parsed.arrays(), built.arrays()):
        assert a.tolist() == b.tolist()
    assert built.line is None and built.channels == 0b1111
    assert run_fast(parsed, cfg).cycles == run_fast(built, cfg).cycles > 0
    both = concat([built, parsed])
    assert len(both) == 8 and both.line is None
