"""Functional PIM GEMV: place a weight matrix into bank images exactly as the mapping does, run the per-bank
MAC kernels per all-bank column command, read out, and reduce the partial sums as the ASIC does.

    placed = place_matrix(W_bits, geometry_for(arch, "bf16"))      # once per matrix (the weights live in DRAM)
    y = pim_gemv(placed, x_f32, MacNumerics())                       # per token

Placement uses `simulator.mapping.layout.gemv_layout` (the mapping's own address function,
`weight_address(n, k) -> (channel, bank, row, col, lane)`); the MAC kernels then read the bank images by
the layout's segment tables (`seg_row`, `seg_col`, `seg_ncols`, `seg_gb_col`, `seg_pass`), so a
disagreement between the address function and the segment tables shows up as a wrong result (tested
against a reference that reads W directly by the segment tables).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from simulator.errors import PimsimError
from simulator.kernels.bits import f32_to_bf16, bf16_to_f32
from simulator.kernels.mac_bf16 import mac_banks_bf16_kernel, reduce_partials_kernel
from simulator.kernels.mac_int import apply_scales_kernel, mac_banks_int_kernel
from simulator.kernels.numerics import MacNumerics
from simulator.kernels.quant import QuantizedMatrix, quantize_activations
from simulator.kernels.api import check_int32_range, group_sums_of_input

COL_BYTES = 32  # source: docs/aim-device.md, one column command = one 32 B burst


@dataclass(frozen=True)
class PimGeometry:
    """What the layout needs, in elements of the weight dtype (from the arch config)."""

    channels: int = 8  # source: docs/pim-gpt-design.md [S] 8 channels
    banks: int = 16  # source: docs/aim-device.md 16 banks per channel
    row_elems: int = 1024  # source: docs/aim-device.md 2 KB row = 1024 bf16
    col_elems: int = 16  # source: docs/aim-device.md 32 B column = 16 bf16
    gb_elems: int = 1024  # source: docs/aim-device.md 2 KB global buffer = 1024 bf16 inputs
    dtype: str = "bf16"


def geometry_for(arch=None, dtype: str = "bf16") -> PimGeometry:
    """Geometry for bf16, int8 or int4 weights from an ArchConfig (None: the PIM-GPT defaults).

    int8: 32 weights per column, 2048 per row, GB holds 2048 int8 inputs; int4: 64 per column, 4096 per row.
    """
    if arch is None:
        ch, banks, row_b, col_b, gb_b = 8, 16, 2048, COL_BYTES, 2048
    else:
        org = arch.organisation
        ch, banks, row_b, col_b, gb_b = org.channels, org.banks, org.row_bytes, org.access_bytes, org.global_buffer_bytes
    per_byte = {"bf16": 0.5, "int8": 1, "int4": 2}
    if dtype not in per_byte:
        raise PimsimError(f"weight dtype {dtype!r}: must be bf16, int8 or int4")
    f = per_byte[dtype]
    gb_per_byte = 0.5 if dtype == "bf16" else 1  # inputs are bf16, or int8 for the integer kernels
    return PimGeometry(ch, banks, int(row_b * f), int(col_b * f), int(gb_b * gb_per_byte), dtype)


def _default_layout_fn() -> Callable[..., Any]:
    try:
        from simulator.mapping.layout import gemv_layout
    except ImportError:
        raise PimsimError("simulator.mapping.layout.gemv_layout is not available in this build: the functional "
                          "GEMV needs the mapping's placement (pass layout_fn=... to use another)") from None
    return gemv_layout


@dataclass(frozen=True, eq=False)
class PlacedMatrix:
    """A weight matrix resident in the banks: images, segment tables and the ASIC's reduction order."""

    n_out: int
    n_in: int
    geometry: PimGeometry
    layout: Any
    mem: np.ndarray  # uint16 [C, B, R, row_elems] (bf16) or uint8 [C, B, R, row_bytes] (int8 / int4)
    active: np.ndarray  # bool [C, B, S]
    seg_tables: tuple[np.ndarray, ...]  # seg_pass, seg_row, seg_col, seg_ncols, seg_gb_col (int64)
    seg_neuron: np.ndarray  # int64 [C, B, S]
    seg_k0: np.ndarray  # int64 [S]
    red_neuron: np.ndarray  # neuron of each active read-out, in (c, b, s) order
    red_order: np.ndarray  # visiting order of the read-outs: by neuron, then increasing k
    quant: QuantizedMatrix | None = None

    @property
    def n_segments(self) -> int:
        return int(self.seg_k0.shape[0])


def _addresses(lay, n: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, ...]:
    """weight_address over arrays: vectorised if the layout accepts arrays, element by element otherwise."""
    try:
        out = lay.weight_address(n, k)
        arrs = tuple(np.broadcast_to(np.asarray(a, np.int64), n.shape) for a in out)
        if len(arrs) == 5:
            return arrs
    except Exception:  # noqa: BLE001 - a scalar-only address function
        pass
    res = np.array([lay.weight_address(int(a), int(b)) for a, b in zip(n.ravel(), k.ravel())], np.int64)
    return tuple(res[:, i].reshape(n.shape) for i in range(5))


def _runs(lay, n_out: int, n_in: int, col_elems: int):
    """Yield (neurons, k0, k1, channel, bank, row, first row element) for runs of weights W[n, k0:k1] that the
    address function puts contiguously into one bank row.

    The address function is asked for the first and the last weight of every (neuron, GB pass) run; when
    both lie in one row at the right distance, every weight in between does too (within a segment the bank
    column advances with the GB column, by the layout's contract). Runs that fail this check (a segment
    split over two rows) are addressed weight by weight.
    """
    for k0, k1 in zip(np.asarray(lay.pass_k0, np.int64), np.asarray(lay.pass_k1, np.int64)):
        k0, k1 = int(k0), int(k1)
        nn = np.arange(n_out, dtype=np.int64)
        c0, b0, r0, col0, l0 = _addresses(lay, nn, np.full(n_out, k0, np.int64))
        c1, b1, r1, col1, l1 = _addresses(lay, nn, np.full(n_out, k1 - 1, np.int64))
        e0, e1 = col0 * col_elems + l0, col1 * col_elems + l1
        ok = (c0 == c1) & (b0 == b1) & (r0 == r1) & (e1 - e0 == k1 - 1 - k0)
        if ok.any():
            yield nn[ok], k0, k1, c0[ok], b0[ok], r0[ok], e0[ok]
        for n in nn[~ok]:
            kk = np.arange(k0, k1, dtype=np.int64)
            c, b, r, col, lane = _addresses(lay, np.full(kk.shape, n), kk)
            for i, k in enumerate(kk):
                yield np.array([n]), int(k), int(k) + 1, c[i:i + 1], b[i:i + 1], r[i:i + 1], col[i:i + 1] * col_elems + lane[i:i + 1]


def place_matrix(W: np.ndarray, geometry: PimGeometry = PimGeometry(), layout_fn: Callable | None = None,
                 quant: QuantizedMatrix | None = None) -> PlacedMatrix:
    """Place W (uint16 bf16 bits [n_out, n_in], or the codes of `quant`) into bank images by the mapping."""
    g = geometry
    if g.dtype == "bf16":
        W = np.asarray(W)
        if W.dtype != np.uint16 or W.ndim != 2:
            raise PimsimError("place_matrix: bf16 weights must be a 2-D uint16 array of bf16 bit patterns")
        codes = W
    else:
        if quant is None:
            raise PimsimError(f"place_matrix: {g.dtype} weights need a QuantizedMatrix (kernels.quantize_weights)")
        if quant.spec.weight_bits != (8 if g.dtype == "int8" else 4):
            raise PimsimError(f"place_matrix: geometry {g.dtype} but quantized to {quant.spec.weight_bits} bit")
        codes = quant.q
    n_out, n_in = codes.shape
    lay = (layout_fn or _default_layout_fn())(n_out, n_in, channels=g.channels, banks=g.banks, row_elems=g.row_elems,
                                              col_elems=g.col_elems, gb_elems=g.gb_elems)
    seg = tuple(np.ascontiguousarray(np.asarray(a), dtype=np.int64)
                for a in (lay.seg_pass, lay.seg_row, lay.seg_col, lay.seg_ncols, lay.seg_gb_col))
    seg_neuron = np.ascontiguousarray(np.asarray(lay.seg_neuron), dtype=np.int64)
    seg_k0 = np.ascontiguousarray(np.asarray(lay.seg_k0), dtype=np.int64)
    n_rows = int(seg[1].max(initial=0)) + 1

    # Every weight goes where the mapping's address function says (see `_runs`).
    runs = list(_runs(lay, n_out, n_in, g.col_elems))
    for _, _, _, c, b, r, e in runs:
        if (c >= g.channels).any() or (b >= g.banks).any() or (e + 0 >= g.row_elems).any() or (c < 0).any():
            raise PimsimError("layout.weight_address returned an address outside the bank geometry")
        n_rows = max(n_rows, int(r.max()) + 1)
    bytes_per_row = g.row_elems * (2 if g.dtype == "bf16" else 1) // (2 if g.dtype == "int4" else 1)
    if g.dtype == "bf16":
        mem = np.zeros((g.channels, g.banks, n_rows, g.row_elems), np.uint16)
    else:
        mem = np.zeros((g.channels, g.banks, n_rows, bytes_per_row), np.uint8)
    for nn, k0, k1, c, b, r, e in runs:
        span = np.arange(k1 - k0, dtype=np.int64)
        ee = e[:, None] + span[None, :]
        if (ee >= g.row_elems).any():
            raise PimsimError("layout.weight_address: a run of weights overflows its bank row")
        vals = codes[nn, k0:k1]
        idx = (c[:, None], b[:, None], r[:, None])
        if g.dtype == "bf16":
            mem[idx + (ee,)] = vals
        elif g.dtype == "int8":
            mem[idx + (ee,)] = vals.astype(np.int8).view(np.uint8)
        else:  # element e of the row is nibble e % 2 of byte e // 2 (low nibble first)
            u = (vals.astype(np.int16) & 0xF).astype(np.uint8)
            np.bitwise_or.at(mem, idx + (ee // 2,), (u << ((ee % 2) * 4).astype(np.uint8)).astype(np.uint8))
    active = seg_neuron >= 0
    cc, bb, ss = np.nonzero(active)
    red_neuron = seg_neuron[cc, bb, ss]
    red_order = np.lexsort((seg_k0[ss], red_neuron)).astype(np.int64)
    return PlacedMatrix(n_out, n_in, g, lay, mem, active, seg, seg_neuron, seg_k0, red_neuron, red_order, quant)


def _gb_contents(placed: PlacedMatrix, x: np.ndarray) -> np.ndarray:
    """Global-buffer contents per pass: GB element j of pass p holds x[pass_k0[p] + j] (0 past pass_k1)."""
    lay, g = placed.layout, placed.geometry
    k0s, k1s = np.asarray(lay.pass_k0, np.int64), np.asarray(lay.pass_k1, np.int64)
    gb = np.zeros((k0s.shape[0], g.gb_elems), x.dtype)
    for p, (k0, k1) in enumerate(zip(k0s, k1s)):
        gb[p, :k1 - k0] = x[k0:k1]
    return gb


def pim_gemv(placed: PlacedMatrix, x: np.ndarray, numerics: MacNumerics = MacNumerics(),
             return_skipped: bool = False):
    """y = W x as the PIM system computes it. x: float32 [n_in] (rounded to bf16 for the GB, or quantized to
    int8 per tensor for integer weights). Returns float32 [n_out] (and the skipped column commands)."""
    x = np.asarray(x, np.float32)
    if x.shape != (placed.n_in,):
        raise PimsimError(f"pim_gemv: input has shape {x.shape}, the matrix expects ({placed.n_in},)")
    g = placed.geometry
    if g.dtype == "bf16":
        if numerics.lanes != g.col_elems:
            raise PimsimError(f"pim_gemv: MAC lanes {numerics.lanes} != bf16 elements per column {g.col_elems}")
        gbf = bf16_to_f32(_gb_contents(placed, f32_to_bf16(x)))
        acc, order, readout = numerics.codes
        out, skipped = mac_banks_bf16_kernel(placed.mem, np.ascontiguousarray(gbf), *placed.seg_tables, placed.active,
                                             g.col_elems, acc, order, readout, numerics.zero_skipping)
        values = out[placed.active]
        y = reduce_partials_kernel(values, placed.red_neuron, placed.red_order, placed.n_out)
    else:
        qm = placed.quant
        bits = qm.spec.weight_bits
        gs, _ = qm.spec.groups_for(placed.n_in)
        check_int32_range(min(gs, placed.n_in), bits)
        xq, xs = quantize_activations(x)
        gb = _gb_contents(placed, xq)
        mem = placed.mem.view(np.int8) if bits == 8 else placed.mem
        sums, skipped = mac_banks_int_kernel(mem, gb, *placed.seg_tables, placed.seg_neuron, placed.seg_k0,
                                             placed.n_in, gs, bits, COL_BYTES, placed.n_out, numerics.zero_skipping)
        zeros = qm.zeros if qm.zeros is not None else np.zeros((1, 1), np.int32)
        y = apply_scales_kernel(sums, np.ascontiguousarray(qm.scales, np.float32), np.ascontiguousarray(zeros, np.int32),
                                qm.zeros is not None, group_sums_of_input(xq, gs), np.float32(xs))
    return (y, int(skipped)) if return_skipped else y
