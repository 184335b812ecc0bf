"""A minimal reader for GGUF checkpoints (llama.cpp's file format), written from the format description.

Reads the metadata and dequantizes the tensor types a small checkpoint uses (F32, F16, BF16, Q8_0, Q4_0,
Q4_1) to float32 numpy arrays, in PyTorch orientation (`[out_features, in_features]` for a linear weight).
Format: GGUF v2/v3 as documented in the ggml repository (docs/gguf.md): a header (magic, version, tensor
count, key/value count), typed key/value metadata, tensor infos (name, dims innermost-first, type, offset),
then aligned tensor data. Block formats (ggml-quants): Q8_0 = fp16 scale + 32 int8; Q4_0 = fp16 scale +
16 bytes of nibbles, value = d*(q-8); Q4_1 = fp16 scale d, fp16 min m + 16 bytes, value = d*q + m; in both
4-bit types the low nibbles hold elements 0..15 of the block and the high nibbles elements 16..31.

The file is data: it is parsed with `struct`/`numpy`, never executed. Every format problem is a PimsimError.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.errors import PimsimError

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 8: "Q8_0", 30: "BF16"}


@dataclass(frozen=True)
class GGUFTensor:
    name: str
    shape: tuple[int, ...]  # PyTorch order (outermost first)
    ggml_type: int
    offset: int  # absolute byte offset of the data in the file


class GGUFFile:
    """Metadata and lazily dequantized tensors of one GGUF file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._buf = memoryview(self.path.read_bytes())
        except OSError as exc:
            raise PimsimError(f"{self.path}: cannot read GGUF checkpoint ({exc.strerror})") from None
        self._pos = 0
        try:
            self._parse()
        except (struct.error, UnicodeDecodeError, IndexError, ValueError):
            raise PimsimError(f"{self.path}: truncated or corrupt GGUF file near byte {self._pos}") from None

    # -- parsing -------------------------------------------------------------------------------------------
    def _read(self, fmt: str):
        size = struct.calcsize(fmt)
        if self._pos + size > len(self._buf):
            raise struct.error("eof")
        (value,) = struct.unpack_from(fmt, self._buf, self._pos)
        self._pos += size
        return value

    def _string(self) -> str:
        n = self._read("<Q")
        if self._pos + n > len(self._buf):
            raise struct.error("eof")
        s = bytes(self._buf[self._pos : self._pos + n]).decode("utf-8")
        self._pos += n
        return s

    def _value(self, vtype: int):
        if vtype in _SCALAR:
            return self._read(_SCALAR[vtype])
        if vtype == 8:
            return self._string()
        if vtype == 9:
            etype = self._read("<I")
            count = self._read("<Q")
            return [self._value(etype) for _ in range(count)]
        raise ValueError(f"unknown GGUF value type {vtype}")

    def _parse(self) -> None:
        if bytes(self._buf[:4]) != b"GGUF":
            raise PimsimError(f"{self.path}: not a GGUF file (bad magic); pass a .gguf or .safetensors checkpoint")
        self._pos = 4
        version = self._read("<I")
        if version not in (2, 3):
            raise PimsimError(f"{self.path}: GGUF version {version} is not supported (2 or 3)")
        n_tensors = self._read("<Q")
        n_kv = self._read("<Q")
        self.metadata: dict[str, object] = {}
        for _ in range(n_kv):
            key = self._string()
            self.metadata[key] = self._value(self._read("<I"))
        infos = []
        for _ in range(n_tensors):
            name = self._string()
            ndim = self._read("<I")
            dims = [self._read("<Q") for _ in range(ndim)]
            gtype = self._read("<I")
            offset = self._read("<Q")
            infos.append((name, tuple(reversed(dims)), gtype, offset))
        align = int(self.metadata.get("general.alignment", 32))
        data_start = (self._pos + align - 1) // align * align
        self.tensors = {n: GGUFTensor(n, s, t, data_start + o) for n, s, t, o in infos}

    # -- tensors -------------------------------------------------------------------------------------------
    def load(self, name: str) -> np.ndarray:
        """Dequantize tensor `name` to float32 in PyTorch orientation."""
        if name not in self.tensors:
            raise PimsimError(f"{self.path}: no tensor named {name!r} in the GGUF file")
        t = self.tensors[name]
        n = int(np.prod(t.shape))
        buf = self._buf
        if t.ggml_type == 0:
            out = np.frombuffer(buf, np.float32, n, t.offset).copy()
        elif t.ggml_type == 1:
            out = np.frombuffer(buf, np.float16, n, t.offset).astype(np.float32)
        elif t.ggml_type == 30:
            raw = np.frombuffer(buf, np.uint16, n, t.offset).astype(np.uint32) << 16
            out = raw.view(np.float32)
        elif t.ggml_type in (2, 3, 8):
            out = _dequant_blocks(buf, t.offset, n, t.ggml_type)
        else:
            raise PimsimError(
                f"{self.path}: tensor {name} has ggml type {t.ggml_type}, which this reader does not dequantize "
                f"(supported: {', '.join(_TYPE_NAMES.values())})"
            )
        return out.reshape(t.shape)


def _dequant_blocks(buf: memoryview, offset: int, n: int, gtype: int) -> np.ndarray:
    nblocks = n // 32
    if gtype == 8:  # Q8_0: fp16 d, 32 x int8
        raw = np.frombuffer(buf, np.uint8, nblocks * 34, offset).reshape(nblocks, 34)
        d = raw[:, :2].copy().view(np.float16).astype(np.float32)
        q = raw[:, 2:].copy().view(np.int8).astype(np.float32)
        return (d * q).reshape(-1)
    head = 2 if gtype == 2 else 4
    raw = np.frombuffer(buf, np.uint8, nblocks * (head + 16), offset).reshape(nblocks, head + 16)
    d = raw[:, :2].copy().view(np.float16).astype(np.float32)
    nib = raw[:, head:]
    q = np.concatenate([nib & 0x0F, nib >> 4], axis=1).astype(np.float32)
    if gtype == 2:  # Q4_0
        return (d * (q - 8.0)).reshape(-1)
    m = raw[:, 2:4].copy().view(np.float16).astype(np.float32)
    return (d * q + m).reshape(-1)
