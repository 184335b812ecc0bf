"""Pruning masks for weight matrices [N, K] (K = reduction dimension). A mask is boolean, True = keep.

Patterns:
- unstructured: the `sparsity` fraction of weights with the smallest score are zeroed (magnitude pruning,
  Han et al. 2015, "Learning both Weights and Connections for Efficient Neural Networks"), layer-wise;
- n:m: in every m consecutive weights along K the n largest are kept (Mishra et al. 2021, "Accelerating
  Sparse Deep Neural Networks", NVIDIA 2:4);
- block bh x bw: the matrix is tiled into bh (rows) x bw (K) tiles, the tiles with the smallest summed score
  are zeroed (block sparsity, Gray et al. 2017, "GPU Kernels for Block-Sparse Weights");
- burst b: block 1 x b along K, so a zeroed tile is one whole DRAM burst (b = 16 bf16 = 32 bytes).
Scores: magnitude |W|; Wanda |W_ij| * ||X_j||_2 compared per output row (Sun et al. 2023, "A Simple and
Effective Pruning Approach for Large Language Models"); SparseGPT's scores and weight updates are in
simulator.compress.obs. The number of zeroed tiles is round(sparsity * tiles) (per row for Wanda's
per-output comparison), ties broken by position (stable sort), so results are deterministic.
"""

from __future__ import annotations

import numpy as np

from simulator.compress.spec import PruneSpec
from simulator.errors import PimsimError


def _tile_sums(score: np.ndarray, bh: int, bw: int) -> np.ndarray:
    n, k = score.shape
    nb, kb = -(-n // bh), -(-k // bw)
    padded = np.zeros((nb * bh, kb * bw), dtype=np.float64)
    padded[:n, :k] = score
    return padded.reshape(nb, bh, kb, bw).sum(axis=(1, 3))


def _expand_tiles(keep_tiles: np.ndarray, bh: int, bw: int, shape: tuple[int, int]) -> np.ndarray:
    full = np.repeat(np.repeat(keep_tiles, bh, axis=0), bw, axis=1)
    return full[: shape[0], : shape[1]]


def tile_mask(score: np.ndarray, bh: int, bw: int, sparsity: float, per_row: bool = False) -> np.ndarray:
    """Keep-mask zeroing the round(sparsity * #tiles) bh x bw tiles of smallest summed score.

    per_row: compare tiles within each tile-row (Wanda's per-output comparison group) instead of globally."""
    sums = _tile_sums(np.asarray(score, dtype=np.float64), bh, bw)
    keep = np.ones_like(sums, dtype=bool)
    if per_row:
        n_zero = int(round(sparsity * sums.shape[1]))
        if n_zero:
            order = np.argsort(sums, axis=1, kind="stable")[:, :n_zero]
            np.put_along_axis(keep, order, False, axis=1)
    else:
        n_zero = int(round(sparsity * sums.size))
        if n_zero:
            order = np.argsort(sums, axis=None, kind="stable")[:n_zero]
            keep.reshape(-1)[order] = False
    return _expand_tiles(keep, bh, bw, score.shape)


def nm_mask(score: np.ndarray, n: int, m: int) -> np.ndarray:
    """Keep the n largest-score weights of every m consecutive weights along K (K must be a multiple of m)."""
    rows, k = score.shape
    if k % m:
        raise PimsimError(f"n:m pruning {n}:{m} needs in_features divisible by {m}, got {k}")
    g = np.asarray(score, dtype=np.float64).reshape(rows, k // m, m)
    # stable descending: sort by (-score, position)
    order = np.argsort(-g, axis=2, kind="stable")
    keep = np.zeros_like(g, dtype=bool)
    np.put_along_axis(keep, order[:, :, :n], True, axis=2)
    return keep.reshape(rows, k)


def prune_mask(score: np.ndarray, spec: PruneSpec, per_row: bool = False) -> np.ndarray:
    """Keep-mask for `spec` from a score matrix (|W| for magnitude, |W|*||X|| for Wanda)."""
    if spec.pattern == "n:m":
        return nm_mask(score, int(spec.n), int(spec.m))
    if spec.pattern == "unstructured":
        return tile_mask(score, 1, 1, spec.sparsity, per_row)
    return tile_mask(score, spec.bh, spec.bw, spec.sparsity, per_row and spec.bh == 1)


def magnitude_mask(w: np.ndarray, spec: PruneSpec) -> np.ndarray:
    return prune_mask(np.abs(w), spec)


def wanda_mask(w: np.ndarray, act_norm: np.ndarray, spec: PruneSpec) -> np.ndarray:
    """Wanda (Sun et al. 2023): score |W_ij| * ||X_j||_2, with X the calibration inputs of the layer [tokens, K];
    per-output-row comparison for unstructured and 1-row tiles, as in the paper."""
    return prune_mask(np.abs(w) * np.asarray(act_norm, dtype=np.float64)[None, :], spec, per_row=True)
