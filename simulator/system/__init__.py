"""The PIM-GPT system: trace -> mapping (memory map + per-operator programs) -> SimPy engine -> results."""
