"""Pruning masks on hand-computed cases, zero-group measurement, Wanda, SparseGPT, mask sidecars."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.compress import (
    density, load_mask, magnitude_mask, nm_mask, parse_prune, save_masks, sparsegpt, wanda_mask, zero_fraction_at,
    zero_group_counts,
)
from simulator.compress.spec import PruneSpec
from simulator.errors import PimsimError


def test_2of4_on_4x8_hand():
    w = np.array([
        [1, -2, 3, -4, 5, -6, 7, -8],
        [0.1, -0.9, 0.5, 0.2, 3, -1, 0, 2],
        [-5, 4, 3, 2, 1, 1, 1, 1],        # ties: the earlier position wins
        [0, 0, 0, 9, -7, 0, 0, 0],
    ], dtype=float)
    want = np.array([
        [0, 0, 1, 1, 0, 0, 1, 1],
        [0, 1, 1, 0, 1, 0, 0, 1],
        [1, 1, 0, 0, 1, 1, 0, 0],
        [1, 0, 0, 1, 1, 1, 0, 0],
    ], dtype=bool)
    mask = magnitude_mask(w, parse_prune("2:4"))
    assert np.array_equal(mask, want)
    assert np.array_equal(nm_mask(np.abs(w), 2, 4), want)


def test_4of8_keeps_half():
    w = np.random.default_rng(0).normal(size=(8, 64))
    m = magnitude_mask(w, parse_prune("4:8"))
    assert np.all(m.reshape(8, 8, 8).sum(axis=2) == 4)


def test_block_2x2_hand():
    w = np.array([[9, 9, 1, 1], [9, 9, 1, 1], [1, 1, 9, 9], [1, 1, 9, 9]], dtype=float)
    m = magnitude_mask(w, parse_prune("block:2x2:0.5"))
    assert m.astype(int).tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]


def test_unstructured_hand():
    w = np.array([[0.1, -3, 0.2, 4], [-0.3, 5, 0.05, -6]])
    assert magnitude_mask(w, parse_prune("unstructured:0.5")).astype(int).tolist() == [[0, 1, 0, 1], [0, 1, 0, 1]]


def test_zero_group_counts_hand():
    row = np.array([[0.0] * 16 + [1.0] + [0.0] * 3])
    assert zero_group_counts(row, 16) == (1, 2)    # a last partial group counts on its own elements
    assert zero_group_counts(row, 4) == (4, 5)
    assert zero_fraction_at(np.zeros((2, 32)))[16] == 1.0


def test_zero_fractions_by_pattern():
    """Element sparsity alone is misleading: 50 % unstructured or 2:4 leaves ~no 16-group all-zero."""
    w = np.random.default_rng(0).normal(size=(256, 512))
    z = {}
    for spec in ("unstructured:0.5", "2:4", "block:32x32:0.5", "burst:16:0.5"):
        pw = w * magnitude_mask(w, parse_prune(spec))
        assert density(pw) == pytest.approx(0.5)
        z[spec] = zero_fraction_at(pw)
    assert z["2:4"][16] == 0.0
    assert z["unstructured:0.5"][16] < 1e-3
    assert z["block:32x32:0.5"][16] == 0.5 and z["block:32x32:0.5"][32] == 0.5
    assert z["block:32x32:0.5"][64] < 0.5
    assert z["burst:16:0.5"][16] == 0.5 and z["burst:16:0.5"][32] < 0.5


def test_wanda_per_row_and_activation_aware():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(16, 64))
    norms = np.ones(64)
    norms[7] = 1e6  # a huge-activation input column is never pruned by Wanda
    m = wanda_mask(w, norms, parse_prune("unstructured:0.5", "wanda"))
    assert np.all(m.sum(axis=1) == 32) and np.all(m[:, 7])


def test_sparsegpt_beats_magnitude():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(64, 256)) * 0.05
    x = rng.normal(size=(512, 256)) @ (np.eye(256) + 0.6 * rng.normal(size=(256, 256)) / 16) * rng.uniform(0.2, 3, 256)
    err = lambda a: np.linalg.norm(x @ (a - w).T)
    for spec in ("unstructured:0.5", "2:4", "burst:16:0.5"):
        p = parse_prune(spec, "sparsegpt")
        out, keep = sparsegpt(w, x, p)
        assert density(out) == pytest.approx(0.5) and np.all(out[~keep] == 0)
        assert err(out) < 0.95 * err(w * magnitude_mask(w, p))
    out, _ = sparsegpt(w, x, parse_prune("2:4", "sparsegpt"))
    assert np.all((out.reshape(64, 64, 4) != 0).sum(axis=2) <= 2)


def test_parse_prune():
    assert parse_prune("2:4") == PruneSpec("n:m", 0.5, n=2, m=4)
    assert parse_prune("block:32x16:0.25").bw == 16
    assert parse_prune("burst:16:0.5") == PruneSpec("burst", 0.5, bh=1, bw=16)
    for bad in ("4:2", "block:32:0.5", "unstructured:1.5", "burst:x:0.5", "magic"):
        with pytest.raises(PimsimError):
            parse_prune(bad)
    with pytest.raises(PimsimError):
        parse_prune("2:4", "obs")
    with pytest.raises(PimsimError, match="divisible"):
        nm_mask(np.ones((2, 6)), 2, 4)


def test_mask_sidecar(tmp_path):
    rng = np.random.default_rng(0)
    masks = {"a.{layer}.w": rng.random((3, 8, 20)) > 0.5, "b": rng.random((5, 7)) > 0.3}
    p1, p2 = save_masks(tmp_path / "m1.npz", masks), save_masks(tmp_path / "m2.npz", masks)
    assert p1.read_bytes() == p2.read_bytes()
    for k, v in masks.items():
        assert np.array_equal(load_mask(p1, k), v)
    assert p1.stat().st_size < 3 * 8 * 20 // 8 + 5 * 7 // 8 + 2000
    with pytest.raises(PimsimError):
        load_mask(p1, "missing")
