"""Functional PIM GEMV: bank placement by the mapping's address function, per-bank MACs, ASIC reduction.

Runs against the real `simulator.mapping.layout.gemv_layout` (packed and unpacked) and against
`StandInLayout`, a second implementation of the same API whose segments may split over two rows (which
exercises the weight-by-weight placement path): neurons round-robin over all banks of all channels, fan-in tiled into GB passes, each bank's neuron
chunks packed back to back into its rows (a chunk crossing a row boundary becomes two segments). Every
bank runs the same (row, col, ncols) in a segment, as lockstep requires.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from simulator.functional.gemv import PimGeometry, geometry_for, pim_gemv, place_matrix
from simulator.functional.gemv_reference import ref_pim_gemv_bf16, ref_pim_gemv_int
from simulator.kernels import MacNumerics, QuantSpec, f32_to_bf16, quantize_weights


class StandInLayout:
    def __init__(self, n_out, n_in, channels=8, banks=16, row_elems=1024, col_elems=16, gb_elems=1024):
        self.C, self.B, self.col = channels, banks, col_elems
        self.cpr = row_elems // col_elems
        nb = channels * banks
        self.nb = nb
        self.slots = -(-n_out // nb)
        self.pass_k0 = np.arange(0, n_in, gb_elems)
        self.pass_k1 = np.minimum(self.pass_k0 + gb_elems, n_in)
        pcols = -(-(self.pass_k1 - self.pass_k0) // col_elems)
        self.pcol0 = np.concatenate([[0], np.cumsum(pcols)[:-1]])
        self.cols_per_neuron = int(pcols.sum())
        seg = []
        for p in range(len(self.pass_k0)):
            for i in range(self.slots):
                lin = i * self.cols_per_neuron + int(self.pcol0[p])
                left, gbc = int(pcols[p]), 0
                while left:
                    row, col = divmod(lin, self.cpr)
                    nc = min(left, self.cpr - col)
                    seg.append((p, row, col, nc, gbc, i, int(self.pass_k0[p]) + gbc * col_elems))
                    lin, left, gbc = lin + nc, left - nc, gbc + nc
        a = np.array(seg, np.int64)
        self.n_segments = len(seg)
        self.seg_pass, self.seg_row, self.seg_col, self.seg_ncols, self.seg_gb_col = (a[:, j] for j in range(5))
        slot, self.seg_k0 = a[:, 5], a[:, 6]
        g = np.arange(nb).reshape(channels, banks, 1)
        n = slot[None, None, :] * nb + g
        self.seg_neuron = np.where(n < n_out, n, -1)

    def weight_address(self, n, k):
        g, i = n % self.nb, n // self.nb
        p = k // (self.pass_k0[1] if len(self.pass_k0) > 1 else 10**12)
        kk = k - np.asarray(self.pass_k0)[p]
        lin = i * self.cols_per_neuron + np.asarray(self.pcol0)[p] + kk // self.col
        return g // self.B, g % self.B, lin // self.cpr, lin % self.cpr, kk % self.col


def stand_in(n_out, n_in, **kw):
    return StandInLayout(n_out, n_in, **kw)


def _layouts():
    out = {"stand_in": stand_in}
    try:
        from simulator.mapping.layout import gemv_layout
        out["packed"] = functools.partial(gemv_layout, packed=True)
        out["unpacked"] = functools.partial(gemv_layout, packed=False)
    except ImportError:
        pass
    return out


LAYOUTS = _layouts()


SMALL = dict(channels=2, banks=4, row_elems=128, col_elems=16, gb_elems=64)


def _bf16(rng, shape, zero_frac=0.0):
    w = rng.standard_normal(shape).astype(np.float32)
    if zero_frac:
        w[..., : int(shape[-1] * zero_frac)] = 0
    return f32_to_bf16(w)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(n_out=st.integers(1, 40), n_in=st.integers(1, 200), seed=st.integers(0, 2**31),
       acc=st.sampled_from(["fp32", "bf16"]), order=st.sampled_from(["tree", "serial", "lane"]),
       readout=st.sampled_from(["bf16", "fp32"]), skip=st.booleans(), layout=st.sampled_from(sorted(LAYOUTS)))
def test_pim_gemv_bf16_bit_exact(n_out, n_in, seed, acc, order, readout, skip, layout):
    rng = np.random.default_rng(seed)
    W = _bf16(rng, (n_out, n_in), zero_frac=0.3 if skip else 0.0)
    x = rng.standard_normal(n_in).astype(np.float32)
    geo = PimGeometry(**SMALL)
    num = MacNumerics(accumulator=acc, order=order, readout=readout, zero_skipping=skip)
    placed = place_matrix(W, geo, layout_fn=LAYOUTS[layout])
    y = pim_gemv(placed, x, num)
    ref = ref_pim_gemv_bf16(W, x, placed.layout, num, col_elems=16)
    assert y.view(np.uint32).tolist() == ref.view(np.uint32).tolist()


def test_images_hold_every_weight_where_the_address_function_says():
    rng = np.random.default_rng(3)
    W = _bf16(rng, (21, 150))
    geo = PimGeometry(**SMALL)
    for name, fn in LAYOUTS.items():
        placed = place_matrix(W, geo, layout_fn=fn)
        for n in range(21):
            for k in range(0, 150, 7):
                c, b, r, col, lane = placed.layout.weight_address(n, k)
                assert placed.mem[c, b, r, col * 16 + lane] == W[n, k], (name, n, k)
        assert np.count_nonzero(placed.mem) == np.count_nonzero(W)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(n_out=st.integers(1, 30), n_in=st.integers(1, 300), seed=st.integers(0, 2**31),
       bits=st.sampled_from([8, 4]), gran=st.sampled_from(["tensor", "channel", "group"]), sym=st.booleans(),
       scale_dtype=st.sampled_from(["fp32", "fp16", "bf16"]), skip=st.booleans(), layout=st.sampled_from(sorted(LAYOUTS)))
def test_pim_gemv_int_bit_exact(n_out, n_in, seed, bits, gran, sym, scale_dtype, skip, layout):
    if bits == 4 and n_in % 2:
        n_in += 1
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_out, n_in)).astype(np.float32)
    W[:, : n_in // 3] = 0
    spec = QuantSpec(weight_bits=bits, granularity=gran, group_size=128 if gran == "group" else None,
                     symmetric=sym, scale_dtype=scale_dtype)
    qm = quantize_weights(W, spec)
    geo = PimGeometry(channels=2, banks=4, row_elems=256 if bits == 8 else 512, col_elems=32 if bits == 8 else 64,
                      gb_elems=128, dtype=f"int{bits}")
    placed = place_matrix(None, geo, layout_fn=LAYOUTS[layout], quant=qm)
    x = rng.standard_normal(n_in).astype(np.float32)
    y = pim_gemv(placed, x, MacNumerics(zero_skipping=skip))
    ref = ref_pim_gemv_int(qm, x, placed.layout, geo.col_elems)
    assert y.view(np.uint32).tolist() == ref.view(np.uint32).tolist()


def test_zero_skipping_is_identical_to_dense_and_counts_bursts():
    rng = np.random.default_rng(5)
    W = _bf16(rng, (64, 300), zero_frac=0.5)
    x = rng.standard_normal(300).astype(np.float32)
    placed = place_matrix(W, PimGeometry(**SMALL), layout_fn=LAYOUTS.get("packed", stand_in))
    dense, s0 = pim_gemv(placed, x, MacNumerics(), return_skipped=True)
    sparse, s1 = pim_gemv(placed, x, MacNumerics(zero_skipping=True), return_skipped=True)
    assert s0 == 0 and s1 >= 64 * (150 // 16)
    assert dense.view(np.uint32).tolist() == sparse.view(np.uint32).tolist()


def test_geometry_from_arch_and_bad_input():
    from simulator.config.loader import load_arch
    from simulator.errors import PimsimError

    arch = load_arch("pim_gpt")
    g = geometry_for(arch, "bf16")
    assert (g.channels, g.banks, g.row_elems, g.col_elems, g.gb_elems) == (8, 16, 1024, 16, 1024)
    g8 = geometry_for(arch, "int8")
    assert (g8.row_elems, g8.col_elems, g8.gb_elems) == (2048, 32, 2048)
    g4 = geometry_for(arch, "int4")
    assert (g4.row_elems, g4.col_elems, g4.gb_elems) == (4096, 64, 2048)
    placed = place_matrix(_bf16(np.random.default_rng(0), (4, 40)), PimGeometry(**SMALL), layout_fn=stand_in)
    with pytest.raises(PimsimError):
        pim_gemv(placed, np.zeros(41, np.float32))
    with pytest.raises(PimsimError):
        place_matrix(np.zeros((4, 4), np.float32), PimGeometry(**SMALL), layout_fn=stand_in)
