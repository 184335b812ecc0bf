"""pimsim: a cycle-accurate simulator of DRAM processing-in-memory accelerators (GDDR6-AiM, PIM-GPT)."""

__version__ = "0.1.0"
