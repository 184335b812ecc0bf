"""Programs moved to the device layer (simulator/dram/program.py): one type for ISR traces and the mapping's
tiles. These names stay for existing code."""

from simulator.dram.program import Program, ProgramBuilder, concat, delay, from_rows

__all__ = ["Program", "ProgramBuilder", "concat", "delay", "from_rows"]
