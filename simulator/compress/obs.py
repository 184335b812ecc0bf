"""Second-order (Optimal Brain Surgeon style) compression with error compensation: GPTQ and SparseGPT.

Both minimise ||W X - W' X||^2 for calibration inputs X, one input column (of W) at a time, using the
Cholesky factor of the inverse Hessian H = 2 X X^T to spread each column's rounding/pruning error over the
columns not yet processed:
- GPTQ: Frantar, Ashkboos, Hoefler, Alistarh 2022, "GPTQ: Accurate Post-Training Quantization for
  Generative Pre-trained Transformers" (arXiv 2210.17323), Algorithm 1: dampening lambda = 1 % of the mean
  diagonal, dead inputs (H_jj = 0) zeroed, lazy batch updates over blocks of B columns, group parameters
  fitted when the first column of a group is reached (on the already-updated weights).
- SparseGPT: Frantar & Alistarh 2023, "SparseGPT: Massive Language Models Can Be Accurately Pruned in
  One-Shot" (arXiv 2301.00774), Algorithm 1: the same column sweep; the mask of each block of B columns is
  chosen adaptively with the OBS saliency w^2 / [H^-1]_jj^2 (unstructured: smallest fraction within the block;
  n:m: per row and group of m columns), pruned weights are set to zero and their error compensated; joint
  quantization rounds the kept weights in the same sweep. Block and burst tiles use the saliency summed
  over the tile, chosen within each column block (our extension to the structured patterns).
With a fixed mask (e.g. magnitude pruning followed by GPTQ), masked weights are quantized to zero and their
error is compensated like any other rounding error.

Implemented in numpy float64; inputs `x` are [tokens, K] and weights [N, K].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from simulator.compress.prune import _expand_tiles, _tile_sums
from simulator.compress.quant import qparams, quantize_with
from simulator.compress.spec import PruneSpec, QuantSpec
from simulator.errors import PimsimError


def hessian(x: np.ndarray) -> np.ndarray:
    """H = 2 X^T X / tokens for calibration inputs x [tokens, K] (the 1/tokens scaling does not change the result)."""
    x = np.asarray(x, dtype=np.float64)
    return 2.0 * (x.T @ x) / max(1, x.shape[0])


def _inverse_cholesky_upper(h: np.ndarray, percdamp: float) -> np.ndarray:
    k = h.shape[0]
    damp = percdamp * float(np.mean(np.diag(h)))
    h = h + np.eye(k) * max(damp, 1e-12)
    for attempt in range(5):
        try:
            hinv = np.linalg.inv(h)
            return np.linalg.cholesky(hinv).T  # upper U with Hinv = U^T U
        except np.linalg.LinAlgError:
            h = h + np.eye(k) * max(damp, 1e-8) * (10 ** attempt)
    raise PimsimError("GPTQ/SparseGPT: the calibration Hessian is not positive definite even after dampening; "
                      "use more --calib-tokens")


def _block_selector(spec: PruneSpec) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """SparseGPT adaptive mask for one column block: returns a keep-mask [N, B]."""

    def select(w1: np.ndarray, dinv: np.ndarray) -> np.ndarray:
        sal = w1 ** 2 / (dinv[None, :] ** 2)
        if spec.pattern == "n:m":
            n, m = int(spec.n), int(spec.m)
            rows, b = sal.shape
            g = sal.reshape(rows, b // m, m)
            order = np.argsort(-g, axis=2, kind="stable")
            keep = np.zeros_like(g, dtype=bool)
            np.put_along_axis(keep, order[:, :, :n], True, axis=2)
            return keep.reshape(rows, b)
        bh, bw = (1, 1) if spec.pattern == "unstructured" else (spec.bh, spec.bw)
        sums = _tile_sums(sal, bh, bw)
        keep = np.ones_like(sums, dtype=bool)
        n_zero = int(round(spec.sparsity * sums.size))
        if n_zero:
            keep.reshape(-1)[np.argsort(sums, axis=None, kind="stable")[:n_zero]] = False
        return _expand_tiles(keep, bh, bw, sal.shape)

    return select


def obs_compress(w: np.ndarray, h: np.ndarray, *, quant: QuantSpec | None = None, mask: np.ndarray | None = None,
                 prune: PruneSpec | None = None, blocksize: int = 128, percdamp: float = 0.01
                 ) -> tuple[np.ndarray, np.ndarray]:
    """GPTQ (quant), SparseGPT (prune), both, or GPTQ under a fixed keep-`mask`. Returns (W' [N, K], keep-mask)."""
    w = np.array(w, dtype=np.float64)
    n, k = w.shape
    h = np.array(h, dtype=np.float64)
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    u = _inverse_cholesky_upper(h, percdamp)
    keep = np.ones((n, k), dtype=bool) if mask is None else np.array(mask, dtype=bool)
    select = _block_selector(prune) if prune is not None else None
    if quant is not None and quant.granularity == "group":
        blocksize = int(quant.group_size) * max(1, blocksize // int(quant.group_size))
    if prune is not None:
        unit = prune.m if prune.pattern == "n:m" else prune.bw
        if blocksize % int(unit):
            blocksize = int(unit) * max(1, blocksize // int(unit))
        if prune.pattern == "n:m" and k % int(prune.m):
            raise PimsimError(f"n:m pruning {prune.n}:{prune.m} needs in_features divisible by {prune.m}, got {k}")
    scale = zero = None
    if quant is not None and quant.granularity == "channel":
        scale, zero = qparams(w, quant.bits, quant.symmetric)
    elif quant is not None and quant.granularity == "tensor":
        scale, zero = qparams(w.reshape(1, -1), quant.bits, quant.symmetric)
        scale, zero = np.repeat(scale, n), np.repeat(zero, n)

    for i1 in range(0, k, blocksize):
        i2 = min(i1 + blocksize, k)
        w1 = w[:, i1:i2].copy()
        q1 = np.zeros_like(w1)
        err1 = np.zeros_like(w1)
        u1 = u[i1:i2, i1:i2]
        if select is not None:
            keep[:, i1:i2] = select(w1, np.diag(u1))
        for i in range(i2 - i1):
            col = i1 + i
            wc = w1[:, i]
            if quant is not None:
                if quant.granularity == "group" and col % int(quant.group_size) == 0:
                    g_end = min(col + int(quant.group_size), k)
                    scale, zero = qparams(w1[:, i: i + (g_end - col)], quant.bits, quant.symmetric)
                qc = quantize_with(wc[:, None], scale, zero, quant.bits, quant.symmetric)[:, 0]
            else:
                qc = wc.copy()
            qc = np.where(keep[:, col], qc, 0.0)
            q1[:, i] = qc
            e = (wc - qc) / u1[i, i]
            w1[:, i:] -= np.outer(e, u1[i, i:])
            err1[:, i] = e
        w[:, i1:i2] = q1
        if i2 < k:
            w[:, i2:] -= err1 @ u[i1:i2, i2:]
    return w, keep


def gptq(w: np.ndarray, x: np.ndarray, spec: QuantSpec, mask: np.ndarray | None = None, **kw) -> np.ndarray:
    """GPTQ-quantize `w` [N, K] with calibration inputs `x` [tokens, K]; returns dequantized weights."""
    return obs_compress(w, hessian(x), quant=spec, mask=mask, **kw)[0]


def sparsegpt(w: np.ndarray, x: np.ndarray, spec: PruneSpec, quant: QuantSpec | None = None, **kw
              ) -> tuple[np.ndarray, np.ndarray]:
    """SparseGPT-prune (and optionally jointly quantize) `w` [N, K]; returns (weights, keep-mask)."""
    return obs_compress(w, hessian(x), quant=quant, prune=spec, **kw)
