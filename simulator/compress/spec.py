"""Parsing the `--quant` and `--prune` specifications into frozen values.

Quantization: `[gptq-]int<bits>[-g<group>|-channel|-tensor][-sym|-asym]`, bits 2..8. Defaults: per-channel
(one scale per output row), symmetric. Examples: `int8`, `int4-g128`, `int4-g128-asym`, `gptq-int4`,
`gptq-int4-g128`, `int8-tensor`.

Pruning: `unstructured:<frac>`, `<n>:<m>` (**n weights kept of every m** consecutive weights along the
reduction dimension, as in NVIDIA's 2:4 sparse tensor cores), `block:<bh>x<bw>:<frac>`, `burst:<b>:<frac>` (= 1 x b blocks
along the reduction dimension: one 32-byte bf16 burst for b = 16). `<frac>` is the fraction of weights
(of blocks) set to zero. Method (`--prune-method`): magnitude (default), wanda, sparsegpt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from simulator.errors import PimsimError

PRUNE_METHODS = ("magnitude", "wanda", "sparsegpt")


@dataclass(frozen=True)
class QuantSpec:
    bits: int
    scheme: Literal["rtn", "gptq"] = "rtn"
    granularity: Literal["tensor", "channel", "group"] = "channel"
    group_size: int | None = None
    symmetric: bool = True
    scale_dtype: str = "fp16"

    @property
    def zero_bits(self) -> int:
        """Bits of one stored zero point (0 when symmetric; the zero is an integer of the weight width)."""
        return 0 if self.symmetric else self.bits

    def overhead_bits_per_weight(self, out_features: int, in_features: int) -> float:
        per_param = 16 + self.zero_bits
        if self.granularity == "tensor":
            return per_param / (out_features * in_features)
        if self.granularity == "channel":
            return per_param / in_features
        groups = -(-in_features // int(self.group_size))
        return per_param * groups / in_features


@dataclass(frozen=True)
class PruneSpec:
    pattern: Literal["unstructured", "n:m", "block", "burst"]
    sparsity: float          # target fraction of zero weights
    n: int | None = None     # n:m -> n kept of every m
    m: int | None = None
    bh: int = 1              # tile rows (output dim) for block/burst/unstructured
    bw: int = 1              # tile cols (reduction dim)
    method: str = "magnitude"

    @property
    def params(self) -> tuple[tuple[str, float | int], ...]:
        if self.pattern == "n:m":
            return (("m", self.m), ("n", self.n))
        if self.pattern == "block":
            return (("bh", self.bh), ("bw", self.bw), ("sparsity", self.sparsity))
        if self.pattern == "burst":
            return (("bw", self.bw), ("sparsity", self.sparsity))
        return (("sparsity", self.sparsity),)


_Q = re.compile(r"^(?:(gptq)-)?int(\d+)(?:-(g(\d+)|channel|tensor))?(?:-(sym|asym))?$")


def parse_quant(spec: str | None) -> QuantSpec | None:
    if spec is None or spec in ("", "none", "bf16"):
        return None
    m = _Q.match(spec.strip().lower())
    if not m:
        raise PimsimError(f"--quant {spec!r}: not understood; use [gptq-]int<bits>[-g<group>|-channel|-tensor][-sym|-asym], "
                          "e.g. int8, int4-g128, gptq-int4")
    bits = int(m.group(2))
    if not 2 <= bits <= 8:
        raise PimsimError(f"--quant {spec!r}: bits must be 2..8")
    gran, group = "channel", None
    if m.group(3) == "tensor":
        gran = "tensor"
    elif m.group(4):
        gran, group = "group", int(m.group(4))
        if group < 2:
            raise PimsimError(f"--quant {spec!r}: group size must be at least 2")
    return QuantSpec(bits=bits, scheme="gptq" if m.group(1) else "rtn", granularity=gran, group_size=group,
                     symmetric=m.group(5) != "asym")


def _frac(text: str, spec: str) -> float:
    try:
        f = float(text)
    except ValueError:
        raise PimsimError(f"--prune {spec!r}: {text!r} is not a number; give the zero fraction, e.g. 0.5") from None
    if not 0.0 <= f < 1.0:
        raise PimsimError(f"--prune {spec!r}: the zero fraction must be in [0, 1)")
    return f


def parse_prune(spec: str | None, method: str = "magnitude") -> PruneSpec | None:
    if spec is None or spec in ("", "none", "dense"):
        return None
    if method not in PRUNE_METHODS:
        raise PimsimError(f"--prune-method {method!r}: choose one of {', '.join(PRUNE_METHODS)}")
    s = spec.strip().lower()
    parts = s.split(":")
    try:
        if parts[0] == "unstructured" and len(parts) == 2:
            return PruneSpec("unstructured", _frac(parts[1], spec), method=method)
        if parts[0] == "block" and len(parts) == 3:
            bh, bw = (int(x) for x in parts[1].split("x"))
            if bh < 1 or bw < 1:
                raise ValueError
            return PruneSpec("block", _frac(parts[2], spec), bh=bh, bw=bw, method=method)
        if parts[0] == "burst" and len(parts) == 3:
            bw = int(parts[1])
            if bw < 1:
                raise ValueError
            return PruneSpec("burst", _frac(parts[2], spec), bh=1, bw=bw, method=method)
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            n, m = int(parts[0]), int(parts[1])
            if not 0 < n < m:
                raise PimsimError(f"--prune {spec!r}: n:m needs 0 < n < m (n weights kept of every m)")
            return PruneSpec("n:m", 1.0 - n / m, n=n, m=m, method=method)
    except ValueError:
        pass
    raise PimsimError(f"--prune {spec!r}: not understood; use unstructured:<frac>, <n>:<m>, block:<bh>x<bw>:<frac> "
                      "or burst:<b>:<frac>, e.g. 2:4, unstructured:0.5, block:32x32:0.5, burst:16:0.5")
