"""The AiM ISR reader moved to the device layer (simulator/dram/isa.py); this name stays for existing code."""

from simulator.dram.isa import AF_MODE_CFR, COLUMN_COUNT_OPS, IsrProgram, Op, parse_isr, read_isr

__all__ = ["AF_MODE_CFR", "COLUMN_COUNT_OPS", "IsrProgram", "Op", "parse_isr", "read_isr"]
