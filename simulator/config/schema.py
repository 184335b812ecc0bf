"""Typed, validated architecture configuration (the `arch_configs/*.yaml` files).

Every section rejects unknown keys. Timing values are integer counts of the DRAM command clock
(`n*` names, as in the GDDR6 datasheet and the AiM preset); everything else carries its unit in its name.
Sections that later modules own (ASIC, links, energy, baselines) are defined in their own modules and
plugged in here so that one file describes the whole system.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Organisation(_Strict):
    """Device organisation. Defaults: the public GDDR6-AiM preset (aim-isa.md)."""

    channels: PositiveInt = Field(32, le=63)  # channel masks are held in 64-bit integers
    bank_groups: PositiveInt = 4
    banks_per_group: PositiveInt = 4
    rows: PositiveInt = 16384
    columns: PositiveInt = 1024  # 16-bit columns per row: 2 KB rows
    column_bits: PositiveInt = 16
    access_bytes: PositiveInt = 32  # one ISR "column" (one burst, one MAC16 operand chunk)
    global_buffer_bytes: PositiveInt = 2048
    queue_depth: PositiveInt = 33  # per-channel request queue of the AiM controller
    mac_lanes_bf16: PositiveInt = 16  # bf16 MACs per bank per column command
    # AiM reads its MAC accumulators (RDMAC16) and AF results (RDAF16) in register mode only, so every
    # read-out costs a TMOD in and a TMOD out (docs/device-model.md, 'Modes'). false: a PIM-GPT
    # device whose accumulators are readable in bank (MAC) mode, without a mode switch (docs/device-model.md)
    readout_mode_switch: bool = True

    @property
    def banks(self) -> int:
        return self.bank_groups * self.banks_per_group

    @property
    def row_bytes(self) -> int:
        return self.columns * self.column_bits // 8

    @property
    def columns_per_row(self) -> int:
        """Access-granularity columns (32 B bursts) per row: 64 for a 2 KB row."""
        return self.row_bytes // self.access_bytes

    @property
    def channel_bytes(self) -> int:
        return self.banks * self.rows * self.row_bytes

    @model_validator(mode="after")
    def _check(self) -> "Organisation":
        if self.banks > 64:
            raise ValueError("bank_groups * banks_per_group must be at most 64")
        if self.row_bytes % self.access_bytes:
            raise ValueError("row bytes (columns * column_bits / 8) must be a multiple of access_bytes")
        return self


class Timing(_Strict):
    """Timing table in command-clock cycles (tCK). Source: SK hynix GDDR6-AiM preset, aim-isa.md."""

    tck_ns: PositiveFloat = 0.5
    nBL: PositiveInt = 2
    nCL: PositiveInt = 50
    nCWL: PositiveInt = 6
    nRCDRD: PositiveInt = 36
    nRCDWR: PositiveInt = 28
    nRCDRDMAC: PositiveInt = 56
    nRCDEWMUL: PositiveInt = 25
    nRCDRDAF: PositiveInt = 86
    nRCDRDCP: PositiveInt = 66
    nRCDWRCP: PositiveInt = 48
    nRP: PositiveInt = 32
    nRAS: PositiveInt = 54
    nRC: PositiveInt = 89
    nWR: PositiveInt = 33
    nRTP: PositiveInt = 12
    nCCDS: PositiveInt = 2
    nCCDL: PositiveInt = 2
    nRRDS: PositiveInt = 5
    nRRDL: PositiveInt = 6
    nWTRS: PositiveInt = 9
    nWTRL: PositiveInt = 11
    nFAW: PositiveInt = 28
    nRFC: PositiveInt = 210
    nRFCpb: PositiveInt = 105
    nREFI: PositiveInt = 3333
    nMODCH: PositiveInt = 32
    nCLREG: NonNegativeInt = 0
    nCLGB: NonNegativeInt = 1
    nCWLREG: NonNegativeInt = 1
    nCWLGB: NonNegativeInt = 1
    nWPRE: NonNegativeInt = 1


class Completion(_Strict):
    """Issue-to-completion latency per command, in tCK (aim-isa.md, 'Command completion')."""

    RD: NonNegativeInt = 52
    WR: NonNegativeInt = 39  # nCWL + nWR: conventional write data landed (aim-isa.md is silent; JEDEC)
    WRA16: NonNegativeInt = 40
    RDMAC16: NonNegativeInt = 2
    RDAF16: NonNegativeInt = 2
    WRGB: NonNegativeInt = 3
    WRMAC16: NonNegativeInt = 3
    MAC: NonNegativeInt = 1
    MAC16: NonNegativeInt = 1
    EWMUL16: NonNegativeInt = 1
    AF16: NonNegativeInt = 1
    RDCP: NonNegativeInt = 1
    WRCP: NonNegativeInt = 1


class Refresh(_Strict):
    """All-bank refresh every nREFI. Off by default: the reference AiM simulator models no refresh."""

    enabled: bool = False


class Controller(_Strict):
    enforce_faw: bool = False  # the public AiM simulator does not enforce nFAW (aim-isa.md)
    # Conventional requests (R/W MEM, RD_SBK, WR_SBK) are served FR-FCFS; AiM requests strictly in order.
    conventional_scheduler: Literal["frfcfs", "fcfs"] = "frfcfs"


class MacUnit(_Strict):
    """What the per-bank MAC unit computes. bf16 x bf16 with fp32 accumulation by default (pim-gpt.md [D])."""

    bf16: bool = True
    int8: bool = False
    int4: bool = False
    lanes_bf16: PositiveInt = 16
    lanes_int8: PositiveInt = 32
    lanes_int4: PositiveInt = 64
    accumulator: Literal["fp32", "bf16"] = "fp32"
    zero_skipping: bool = False  # skip all-zero 32 B bursts / rows when the trace says they are zero


class KvCache(_Strict):
    """How the PIM-GPT mapping writes the KV cache (docs/system.md 'KV append'; read by
    simulator/mapping/pim_gpt.py)."""

    # single: v_t element by element, ACT / masked WRCP / PRE per touched row (docs/system.md [D]);
    # allbank: one all-bank open (ACT16) per V row, then one masked WRCP per bank;
    # buffered: the ASIC holds v of the last `v_buffer_tokens` tokens and flushes whole 32 B columns.
    # Default allbank: cheapest form that needs no ASIC buffer and no change to attention (docs/system.md).
    v_append: Literal["single", "allbank", "buffered"] = "allbank"
    # tokens per flush in `buffered` mode: 16 bf16 positions fill one 32 B column of a V neuron's row
    # (must be a multiple of access_bytes / 2; checked by the mapping)
    v_buffer_tokens: PositiveInt = 16

    @model_validator(mode="after")
    def _check(self) -> KvCache:
        if "v_buffer_tokens" in self.model_fields_set and self.v_append != "buffered":
            raise ValueError("v_buffer_tokens applies only with v_append: buffered (remove it, or set "
                             "kv.v_append=buffered)")
        return self


class ArchConfig(_Strict):
    """The whole system. Only `organisation` and `timing` matter to the device model."""

    name: str = "unnamed"
    description: str = ""
    organisation: Organisation = Field(default_factory=Organisation)
    timing: Timing = Field(default_factory=Timing)
    completion: Completion = Field(default_factory=Completion)
    refresh: Refresh = Field(default_factory=Refresh)
    controller: Controller = Field(default_factory=Controller)
    mac: MacUnit = Field(default_factory=MacUnit)
    kv: KvCache = Field(default_factory=KvCache)
    # Sections owned by later modules are kept as validated plain data until their module reads them.
    asic: dict | None = None
    link: dict | None = None
    energy: dict | None = None
    baselines: dict | None = None
