"""The device layer loads nothing it does not need: importing the engines, the ISA reader and the checker
pulls in neither the trace package, torch, the pydantic config schema nor Numba (a replay that runs the
ahead-of-time kernel never needs Numba; the JIT path imports it on first use)."""

import subprocess
import sys

MODULES = ("simulator.dram.fast", "simulator.dram.reference", "simulator.dram.replay", "simulator.dram.isa",
           "simulator.dram.checker", "simulator.dram.replay_cli", "simulator.dram.memo")
HEAVY = ("simulator.trace.schema", "simulator.trace.derive", "torch", "pydantic", "simulator.config", "numba")


def test_device_layer_imports_are_light():
    code = (f"import sys\nfor m in {MODULES!r}: __import__(m)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pydantic', 'numba') "
            f"or m in {HEAVY!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
