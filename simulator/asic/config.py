"""`AsicConfig`: the controller ASIC of PIM-GPT (vector lanes, latencies, SRAM buffers, approximation depths).

A frozen pydantic dataclass (extra keys rejected), so it validates the `asic:` section of an arch YAML and is
hashable as a cache key. `asic_config_from_arch(arch)` reads `ArchConfig.asic` (plain data until now).

The numerics (`simulator.asic.numerics`) and the cost model (`simulator.asic.cost`) read the same fields
(`exp_taylor_terms`, `recip_newton_steps`, `rsqrt_newton_steps`), so the cycles charged and the values
computed describe one algorithm.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from simulator.errors import PimsimError


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class UnitConfig:
    """One function unit of the event-driven ASIC model (simulator/asic/units.py; sizing in docs/asic.md)."""

    lanes: int = Field(128, gt=0)
    depth: int | None = Field(None, ge=1)  # None: derived from the operation latencies (docs/asic.md)
    ii: int = Field(1, ge=1)  # initiation interval: cycles between two vectors entering the pipeline


# source: [D] docs/asic.md "Sizing": the ASIC keeps up with the aggregate link rate, 8 channels x 32 GB/s
# (GDDR6 x16 at 16 Gb/s) = 256 B/ns = 128 bf16 per ns = 128 lanes at 1 GHz; fully pipelined (ii 1).
# rsqrt gets one scalar per layernorm, so one lane keeps up with it.
_LINK_RATE_LANES = 128


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class AsicConfig:
    # source: PIM-GPT [S] (docs/pim-gpt-design.md): ASIC in TSMC 28 nm at 1 GHz
    clock_ghz: float = Field(1.0, ge=0.01, le=100.0)  # bounds: 10 MHz..100 GHz brackets any ASIC clock
    # source: PIM-GPT [S]: TSMC 28 nm (informational; the energy model reads it)
    process_nm: int = Field(28, gt=0)
    # source: [D] docs/pim-gpt-design.md "16 bf16 lanes, pipelined": operands arrive as bf16, arithmetic is fp32 inside
    lanes: int = Field(16, gt=0)
    # source: [D] pipeline depth of an fp32 adder at 1 GHz in 28 nm (2 stages); not published
    add_latency_cycles: int = Field(2, ge=1)
    # source: [D] pipeline depth of an fp32 multiplier at 1 GHz in 28 nm (3 stages); not published
    mul_latency_cycles: int = Field(3, ge=1)
    # source: [D] compare/select (max, clamp) is one stage
    cmp_latency_cycles: int = Field(1, ge=1)
    # source: [D] integer/bit ops (magic-constant subtract, shift, exponent insert, round-to-int) one stage
    int_latency_cycles: int = Field(1, ge=1)
    # source: [D] Taylor terms of exp(r), |r| <= ln2/2 after range reduction (PIM-GPT [S]: Taylor series);
    # 6 terms (degree 5): max relative error 7.3e-6 over [-87, 80] incl. range reduction (measured,
    # tests/test_asic_numerics.py), far under bf16's 3.9e-3
    exp_taylor_terms: int = Field(6, ge=1, le=16)
    # source: [D] Newton-Raphson steps of the reciprocal (PIM-GPT [S]: division by NR reciprocal); the
    # magic-constant seed is within 5.1 % and each step squares the error: 2 steps 6.6e-6, 3 steps 1.4e-7
    # (fp32 precision; measured, tests/test_asic_numerics.py)
    recip_newton_steps: int = Field(3, ge=0, le=8)
    # source: [D] Newton steps after the fast inverse-square-root seed (PIM-GPT [S]); seed within 3.4 %,
    # 1 step 1.8e-3, 2 steps 4.7e-6 (measured, tests/test_asic_numerics.py)
    rsqrt_newton_steps: int = Field(2, ge=0, le=8)
    # source: [D] activation/residual buffer: two fp32 vectors of the largest d_model x 4 (FFN width 6400) = 51 KB
    vector_sram_bytes: int = Field(64 * 1024, gt=0)
    # source: [D] partial-sum buffer: fp32 read-outs of one GEMV's largest output (6400 x 4 B = 25.6 KB)
    psum_sram_bytes: int = Field(32 * 1024, gt=0)
    # source: [D] score buffer for softmax: 2048 context positions x fp32 = 8 KB
    score_sram_bytes: int = Field(8 * 1024, gt=0)
    # source: [D] layernorm gamma/beta and biases of one layer, bf16 (GPT2-XL: (4 x 1600 + 3 x 1600 + 6400) x 2 B)
    param_sram_bytes: int = Field(64 * 1024, gt=0)

    # event-driven units (simulator/asic/units.py); every field read there, sizing in docs/asic.md
    valu: UnitConfig = UnitConfig(_LINK_RATE_LANES)
    exp: UnitConfig = UnitConfig(_LINK_RATE_LANES)
    recip: UnitConfig = UnitConfig(_LINK_RATE_LANES)
    rsqrt: UnitConfig = UnitConfig(1)
    reduce: UnitConfig = UnitConfig(_LINK_RATE_LANES)
    # True: the ASIC consumes read-outs as they arrive, K/V writes go in the PIM's idle time and ready PIM
    # tiles run while the ASIC computes (docs/system.md "Overlap"); False: every tile and job in program
    # order, one at a time. `pimsim run --overlap on|off` overrides it.
    overlap: bool = True

    @property
    def cycle_ns(self) -> float:
        return 1.0 / self.clock_ghz


_ADAPTER = TypeAdapter(AsicConfig)


def asic_config_from_dict(data: dict[str, Any] | None, source: str = "asic") -> AsicConfig:
    """Validate plain data (the `asic:` YAML section) into an AsicConfig; one-line PimsimError on bad input."""
    if data is None:
        return AsicConfig()
    if isinstance(data, AsicConfig):
        return data
    from simulator.config.messages import pydantic_message

    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise PimsimError(pydantic_message(exc, source, prefix="asic", docs="docs/asic.md")) from None


def asic_config_from_arch(arch) -> AsicConfig:
    """The ASIC section of an `ArchConfig` (defaults when absent)."""
    return asic_config_from_dict(getattr(arch, "asic", None), source=getattr(arch, "name", "arch config"))
