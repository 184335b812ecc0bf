"""Weight compression on real tensors (numpy): RTN and GPTQ quantization; magnitude, N:M, block, burst,
Wanda and SparseGPT pruning; measurement of what was achieved (density, all-zero groups, levels).

Each method cites its paper in its module docstring. No third-party quantizer is used.
"""

from simulator.compress.measure import SparsityStats, density, load_mask, save_masks, zero_fraction_at, zero_group_counts
from simulator.compress.obs import gptq, hessian, obs_compress, sparsegpt
from simulator.compress.prune import magnitude_mask, nm_mask, prune_mask, tile_mask, wanda_mask
from simulator.compress.quant import max_levels_per_group, rtn_quantize
from simulator.compress.spec import PruneSpec, QuantSpec, parse_prune, parse_quant

__all__ = [
    "PruneSpec", "QuantSpec", "SparsityStats", "density", "gptq", "hessian", "load_mask", "magnitude_mask",
    "max_levels_per_group", "nm_mask", "obs_compress", "parse_prune", "parse_quant", "prune_mask", "rtn_quantize",
    "save_masks", "sparsegpt", "tile_mask", "wanda_mask", "zero_fraction_at", "zero_group_counts",
]
