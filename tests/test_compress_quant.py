"""Quantization: RTN on hand-computed cases, overhead bits, GPTQ vs RTN, the GGUF reader."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from simulator.compress import gptq, max_levels_per_group, parse_quant, rtn_quantize
from simulator.compress.gguf import GGUFFile
from simulator.compress.spec import QuantSpec
from simulator.errors import PimsimError


def test_rtn_int8_per_tensor_hand():
    w = np.array([[127.0, -64.4, 0.5, 1.5, -2.5]])  # max |w| = 127 -> scale exactly 1
    assert rtn_quantize(w, parse_quant("int8-tensor")).tolist() == [[127.0, -64.0, 0.0, 2.0, -2.0]]


def test_rtn_int4_per_channel_hand():
    w = np.array([[7.0, 3.4, -0.5, -7.0], [14.0, 1.0, -3.0, 2.9]])  # scales 1 and 2
    out = rtn_quantize(w, parse_quant("int4"))
    assert out.tolist() == [[7.0, 3.0, 0.0, -7.0], [14.0, 0.0, -4.0, 2.0]]


def test_rtn_int4_group_asym_hand():
    w = np.array([[0.0, 1.5, 3.0, 15.0, -5.0, 10.0, 2.4, 0.0]])  # two groups of 4, both scale 1
    out = rtn_quantize(w, parse_quant("int4-g4-asym"))
    assert out.tolist() == [[0.0, 2.0, 3.0, 15.0, -5.0, 10.0, 2.0, 0.0]]


def test_scale_is_fp16():
    w = np.array([[1.0, 0.3]])
    s = np.float16(1.0 / 127)
    out = rtn_quantize(w, parse_quant("int8"))
    assert out[0, 0] == pytest.approx(127 * float(s), rel=0, abs=0)


@pytest.mark.parametrize("spec", ["int8", "int4", "int4-g128", "int4-g128-asym", "int3-g64", "int8-tensor"])
def test_levels_and_zero_preserved(spec):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(64, 256))
    w[:, ::3] = 0.0
    q = parse_quant(spec)
    out = rtn_quantize(w, q)
    assert np.all(out[:, ::3] == 0.0)  # pruned weights stay pruned
    assert max_levels_per_group(out, q) <= 2 ** q.bits


def test_overhead_bits():
    assert parse_quant("int4-g128").overhead_bits_per_weight(10, 768) == pytest.approx(16 / 128)
    assert parse_quant("int4-g128-asym").overhead_bits_per_weight(10, 768) == pytest.approx(20 / 128)
    assert parse_quant("int8").overhead_bits_per_weight(10, 768) == pytest.approx(16 / 768)
    assert parse_quant("int8-tensor").overhead_bits_per_weight(10, 768) == pytest.approx(16 / 7680)
    assert parse_quant("int4-g128").overhead_bits_per_weight(1, 576) == pytest.approx(16 * 5 / 576)


def test_parse_quant():
    assert parse_quant("gptq-int4") == QuantSpec(bits=4, scheme="gptq")
    assert parse_quant("int4-g128") == QuantSpec(bits=4, granularity="group", group_size=128)
    assert parse_quant("none") is None
    for bad in ("int9", "fp4", "int4-g1", "gptq-int4-foo"):
        with pytest.raises(PimsimError):
            parse_quant(bad)


def _calibrated_layer(seed=0, n=96, k=256, tokens=512):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n, k)) * 0.05
    mix = np.eye(k) + 0.6 * rng.normal(size=(k, k)) / np.sqrt(k)  # correlated inputs, as in real activations
    x = rng.normal(size=(tokens, k)) @ mix * rng.uniform(0.2, 3.0, size=k)
    return w, x


@pytest.mark.parametrize("spec", ["int4", "int4-g64", "int3", "int8"])
def test_gptq_beats_rtn(spec):
    w, x = _calibrated_layer()
    q = parse_quant(spec)
    err = lambda a: np.linalg.norm(x @ (a - w).T)
    e_rtn, e_gptq = err(rtn_quantize(w, q)), err(gptq(w, x, q))
    assert e_gptq < 0.9 * e_rtn
    assert max_levels_per_group(gptq(w, x, q), q) <= 2 ** q.bits


def test_gptq_respects_mask_and_dead_inputs():
    w, x = _calibrated_layer(n=16, k=64, tokens=128)
    x[:, 5] = 0.0  # a dead input: its weights are zeroed (GPTQ paper)
    mask = np.ones_like(w, dtype=bool)
    mask[:, ::2] = False
    out = gptq(w, x, parse_quant("int4"), mask=mask)
    assert np.all(out[:, ::2] == 0.0) and np.all(out[:, 5] == 0.0)


# ---------------------------------------------------------------------------------------------- GGUF
def _gguf_string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def _write_gguf(path, tensors):
    """tensors: list of (name, dims innermost-first, ggml type, raw bytes)."""
    kv = _gguf_string("general.architecture") + struct.pack("<I", 8) + _gguf_string("llama")
    kv += _gguf_string("general.alignment") + struct.pack("<I", 4) + struct.pack("<I", 32)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), 2) + kv
    offset, infos, data = 0, b"", b""
    for name, dims, gtype, raw in tensors:
        infos += _gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", gtype, offset)
        pad = (-len(raw)) % 32
        data += raw + b"\0" * pad
        offset += len(raw) + pad
    blob = head + infos
    blob += b"\0" * ((-len(blob)) % 32)
    path.write_bytes(blob + data)


def test_gguf_reader_hand(tmp_path):
    f32 = np.arange(6, dtype=np.float32)
    q8 = np.float16(0.5).tobytes() + np.arange(-16, 16, dtype=np.int8).tobytes()
    nib = bytes(((i % 16) | ((15 - i % 16) << 4)) for i in range(16))
    q41 = np.float16(2.0).tobytes() + np.float16(-1.0).tobytes() + nib
    p = tmp_path / "t.gguf"
    _write_gguf(p, [("a", [3, 2], 0, f32.tobytes()), ("b", [32, 1], 8, q8), ("c", [32, 1], 3, q41)])
    g = GGUFFile(p)
    assert g.metadata["general.architecture"] == "llama"
    assert g.load("a").tolist() == [[0, 1, 2], [3, 4, 5]]
    assert g.load("b").tolist() == [[0.5 * v for v in range(-16, 16)]]
    low = [2.0 * i - 1.0 for i in range(16)]
    high = [2.0 * (15 - i) - 1.0 for i in range(16)]
    assert g.load("c").tolist() == [low + high]
    (tmp_path / "bad.gguf").write_bytes(p.read_bytes()[:60])
    with pytest.raises(PimsimError, match="truncated or corrupt"):
        GGUFFile(tmp_path / "bad.gguf")
    with pytest.raises(PimsimError, match="not a GGUF"):
        (tmp_path / "x.gguf").write_bytes(b"NOPE" + bytes(40))
        GGUFFile(tmp_path / "x.gguf")
