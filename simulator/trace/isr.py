"""The AiM ISR reader moved to the device layer (simulator/dram/isa.py, simulator/dram/program.py); these names
stay for existing code (`IsrProgram` is `Program`)."""

from simulator.dram.isa import AF_MODE_CFR, COLUMN_COUNT_OPS, Op, parse_isr, read_isr
from simulator.dram.program import Program as IsrProgram

__all__ = ["AF_MODE_CFR", "COLUMN_COUNT_OPS", "IsrProgram", "Op", "parse_isr", "read_isr"]
