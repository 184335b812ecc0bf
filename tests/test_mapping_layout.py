"""The GEMV placement puts every weight exactly once, inside its bank's rows, in lockstep segments."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.mapping.layout import gemv_layout


@settings(max_examples=60, deadline=None)
@given(n_out=st.integers(1, 300), n_in=st.integers(1, 2500), channels=st.sampled_from([1, 2, 8]),
       banks=st.sampled_from([1, 4, 16]), col=st.sampled_from([16, 32, 64]), packed=st.booleans())
def test_every_weight_has_one_address(n_out, n_in, channels, banks, col, packed):
    lay = gemv_layout(n_out, n_in, channels, banks, row_elems=64 * col, col_elems=col, gb_elems=64 * col,
                      packed=packed)
    seen = set()
    for n in range(0, n_out, max(1, n_out // 7)):
        for k in range(0, n_in, max(1, n_in // 13)):
            a = lay.weight_address(n, k)
            assert a not in seen
            seen.add(a)
            ch, b, row, c, lane = a
            assert 0 <= ch < channels and 0 <= b < banks and 0 <= c < 64 and 0 <= lane < col
            assert 0 <= row < lay.rows_used
    # segments never overlap inside a row and never cross a row boundary
    ends = lay.seg_col + lay.seg_ncols
    assert (ends <= 64).all()
    order = np.lexsort((lay.seg_col, lay.seg_row))
    r, c0, c1 = lay.seg_row[order], lay.seg_col[order], ends[order]
    assert ((r[1:] > r[:-1]) | (c0[1:] >= c1[:-1])).all()


def test_full_enumeration_small():
    lay = gemv_layout(37, 100, channels=2, banks=4, row_elems=64, col_elems=16, gb_elems=64)
    addrs = {lay.weight_address(n, k) for n in range(37) for k in range(100)}
    assert len(addrs) == 37 * 100
    idle = (lay.seg_neuron < 0).sum(axis=(0, 1))
    assert (idle[lay.seg_slot == 4] == 8 - 5).all()  # last slot holds neurons 32..36 only


def test_packing_fills_rows():
    packed = gemv_layout(2304, 768, 8, 16)  # GPT2-small QKV: 48-column segments
    loose = gemv_layout(2304, 768, 8, 16, packed=False)
    assert packed.rows_used == loose.rows_used == 18  # 48 + 48 > 64: one segment per row either way
    short = gemv_layout(1024, 256, 8, 16)  # 16-column segments: four share a row when packed
    assert short.rows_used == 2 and gemv_layout(1024, 256, 8, 16, packed=False).rows_used == 8
