"""Measuring what compression achieved on real tensors, and the bit-packed mask sidecar.

`zero_group_counts(w, g)` counts, per row of w [N, K], the groups of g consecutive elements along K
(the reduction dimension, so one group = one contiguous run of a DRAM row) that are entirely zero; a
last partial group (K not a multiple of g) is one group judged on its own elements. Element sparsity alone
does not tell how many DRAM bursts a PIM could skip: 50 % unstructured or 2:4 leaves essentially no
16-element (32-byte bf16) group all-zero, while 50 % 32x32 blocks leave half of them zero.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from simulator.errors import PimsimError
from simulator.trace.schema import ZERO_FRACTION_GROUPS


def zero_group_counts(w: np.ndarray, g: int) -> tuple[int, int]:
    """(all-zero groups, groups) of g consecutive elements along the last axis of a 2-D array."""
    w = np.asarray(w)
    n, k = w.shape
    nz = w != 0
    full = k // g
    zero = 0
    if full:
        zero += int((~nz[:, : full * g].reshape(n, full, g).any(axis=2)).sum())
    groups = n * full
    if k % g:
        zero += int((~nz[:, full * g:].any(axis=1)).sum())
        groups += n
    return zero, groups


class SparsityStats:
    """Accumulates density and all-zero group fractions over several tensors (e.g. one weight in every layer)."""

    def __init__(self, groups: Iterable[int] = ZERO_FRACTION_GROUPS):
        self.groups = tuple(groups)
        self.nnz = 0
        self.numel = 0
        self.zero = {g: 0 for g in self.groups}
        self.total = {g: 0 for g in self.groups}
        self.per_tensor_density: list[float] = []

    def add(self, w: np.ndarray) -> None:
        w = np.asarray(w)
        if w.ndim == 1:
            w = w.reshape(1, -1)
        nnz = int(np.count_nonzero(w))
        self.nnz += nnz
        self.numel += w.size
        self.per_tensor_density.append(nnz / w.size)
        for g in self.groups:
            z, t = zero_group_counts(w, g)
            self.zero[g] += z
            self.total[g] += t

    @property
    def density(self) -> float:
        return self.nnz / self.numel if self.numel else 1.0

    def zero_fraction_at(self) -> dict[int, float]:
        return {g: (self.zero[g] / self.total[g] if self.total[g] else 0.0) for g in self.groups}


def density(w: np.ndarray) -> float:
    w = np.asarray(w)
    return float(np.count_nonzero(w)) / w.size


def zero_fraction_at(w: np.ndarray, groups: Iterable[int] = ZERO_FRACTION_GROUPS) -> dict[int, float]:
    s = SparsityStats(groups)
    s.add(w)
    return s.zero_fraction_at()


# ------------------------------------------------------------------------------------------ mask sidecar
def save_masks(path: str | Path, masks: dict[str, np.ndarray]) -> Path:
    """Write keep-masks bit-packed (np.packbits, big bit order, flattened) to a deterministic .npz.

    Each key holds a uint8 array; `<key>.shape` holds the unpacked shape (int64)."""
    import zipfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(masks):
            m = np.asarray(masks[key], dtype=bool)
            for name, arr in ((key, np.packbits(m.reshape(-1))), (f"{key}.shape", np.asarray(m.shape, np.int64))):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, arr, allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, buf.getvalue())
    return path


def load_mask(path: str | Path, key: str) -> np.ndarray:
    """Unpack one keep-mask from a sidecar written by save_masks."""
    try:
        with np.load(path, allow_pickle=False) as z:
            shape = tuple(int(x) for x in z[f"{key}.shape"])
            bits = z[key]
    except (OSError, KeyError, ValueError) as exc:
        raise PimsimError(f"{path}: cannot read mask {key!r} ({exc}); regenerate it with --masks") from None
    n = int(np.prod(shape))
    return np.unpackbits(bits, count=n).astype(bool).reshape(shape)
