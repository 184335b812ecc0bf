"""The ahead-of-time kernel (simulator/dram/aot.py) computes exactly what the JIT kernel computes.

The build takes minutes, so this test uses an existing build (`python -m simulator.dram.aot`) and is
skipped, saying so, when there is none for the current source.
"""

import json
import random
from pathlib import Path

import numpy as np
import pytest
from isr_gen import random_isr

from simulator.config import load_arch
from simulator.dram import aot, fast
from simulator.dram.isa import parse_isr, read_isr

BUILT = aot.load()
pytestmark = pytest.mark.skipif(BUILT is None, reason="no AOT kernel built for this source "
                                                      "(python -m simulator.dram.aot)")
ORACLE = Path(__file__).parent / "data" / "aim_oracle"


def _both(prog, cfg):
    out = []
    for kern in (BUILT, fast.jit_kernels()):
        eng = fast.FastEngine(cfg)
        rec = np.zeros((len(prog), fast.N_REC), np.int64)
        end, _ = kern(*eng.kernel_args(prog.op, prog.opsize, prog.mask, prog.bank, prog.row, False, rec))
        out.append((int(end), rec, eng.state.channel_counts(), eng.state.bank_open_cycles(int(end))))
    return out


def test_oracle_traces_identical():
    cfg = load_arch("aim_gddr6")
    expected = json.loads((ORACLE / "expected_cycles.json").read_text())
    for name, cycles in expected.items():
        (e1, r1, c1, o1), (e2, r2, c2, o2) = _both(read_isr(ORACLE / "traces" / name, cfg.organisation), cfg)
        assert e1 == e2 == cycles and o1 == o2
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(c1, c2)


@pytest.mark.parametrize("seed", range(40))
def test_random_traces_identical(seed):
    cfg = load_arch("aim_gddr6", ["organisation.channels=4", "refresh.enabled=true", "timing.nREFI=500"])
    prog = parse_isr(random_isr(random.Random(seed), 4, 40), cfg.organisation)
    (e1, r1, c1, o1), (e2, r2, c2, o2) = _both(prog, cfg)
    assert e1 == e2 and o1 == o2
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(c1, c2)
