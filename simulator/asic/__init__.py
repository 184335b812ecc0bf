"""The controller ASIC of PIM-GPT: configuration, numerics of its approximate nonlinear operations, and their
cycle costs / operation counts (one algorithm, two views). See docs/asic.md.

    from simulator.asic import AsicConfig, asic_cycles, asic_op_counts, numerics
    asic_cycles("softmax", 1024, AsicConfig(), rows=12)
"""

from simulator.asic import numerics
from simulator.asic.config import AsicConfig, asic_config_from_arch, asic_config_from_dict
from simulator.asic.cost import ASIC_OPS, algorithm, asic_cycles, asic_op_counts, asic_time_ns

__all__ = ["AsicConfig", "asic_config_from_arch", "asic_config_from_dict", "asic_cycles", "asic_op_counts",
           "asic_time_ns", "algorithm", "ASIC_OPS", "numerics"]
