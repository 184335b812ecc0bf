"""Typed, validated architecture configuration (the `arch_configs/*.yaml` files).

Every section rejects unknown keys and is strictly typed: an integer field takes no `true`, text or
fraction, a number field no `.inf`/`.nan`, and every value has a physical range (checked at load time, so a
bad value fails before any simulation starts). Timing values are integer counts of the DRAM command clock
(`n*` names, as in the GDDR6 datasheet and the AiM preset); everything else carries its unit in its name.
Sections that later modules own (ASIC, links, energy, baselines) are defined in their own modules and
plugged in here so that one file describes the whole system.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

#: upper bound of every n* timing: no DRAM constraint is near 2^24 tCK (8 ms at 0.5 ns; tREFI is ~2 us), and
#: the bound keeps the engines' cycle arithmetic far from int64 overflow over a whole run
MAX_CYCLES = 2**24

PositiveInt = Annotated[int, Strict(), Field(ge=1)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0)]
Cycles = Annotated[int, Strict(), Field(ge=1, le=MAX_CYCLES)]
Cycles0 = Annotated[int, Strict(), Field(ge=0, le=MAX_CYCLES)]
FiniteFloat = Annotated[float, Strict(), Field(allow_inf_nan=False)]
StrictBool = Annotated[bool, Strict()]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Organisation(_Strict):
    """Device organisation. Defaults: the public GDDR6-AiM preset (docs/aim-device.md)."""

    channels: PositiveInt = Field(32, le=63)  # channel masks are held in 64-bit integers
    bank_groups: PositiveInt = Field(4, le=64)
    banks_per_group: PositiveInt = Field(4, le=64)
    # bounds (docs/configuration.md): DRAM banks have up to 2^16..2^17 rows (GDDR6: 2^14); 2^20 rows and 2^16
    # columns are far beyond any bank
    rows: PositiveInt = Field(16384, le=2**20)
    columns: PositiveInt = Field(1024, le=2**16)  # 16-bit columns per row: 2 KB rows
    column_bits: PositiveInt = Field(16, le=1024)
    access_bytes: PositiveInt = Field(32, le=4096)  # one ISR "column" (one burst, one MAC16 operand chunk)
    global_buffer_bytes: PositiveInt = Field(2048, le=2**24)
    queue_depth: PositiveInt = Field(33, le=4096)  # per-channel request queue of the AiM controller
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
    def _check(self) -> Organisation:
        if self.banks > 64:
            raise ValueError("bank_groups * banks_per_group must be at most 64")
        if self.columns * self.column_bits % 8:
            raise ValueError("columns * column_bits must be a whole number of bytes")
        if self.row_bytes % self.access_bytes:
            raise ValueError("row bytes (columns * column_bits / 8) must be a multiple of access_bytes")
        return self


class Timing(_Strict):
    """Timing table in command-clock cycles (tCK). Source: SK hynix GDDR6-AiM preset, docs/aim-device.md."""

    # bounds: 0.05 ns (20 GHz) .. 100 ns (10 MHz) brackets every DRAM command clock
    tck_ns: FiniteFloat = Field(0.5, ge=0.05, le=100.0)
    nBL: Cycles = 2
    nCL: Cycles = 50
    nCWL: Cycles = 6
    nRCDRD: Cycles = 36
    nRCDWR: Cycles = 28
    nRCDRDMAC: Cycles = 56
    nRCDEWMUL: Cycles = 25
    nRCDRDAF: Cycles = 86
    nRCDRDCP: Cycles = 66
    nRCDWRCP: Cycles = 48
    nRP: Cycles = 32
    nRAS: Cycles = 54
    nRC: Cycles = 89
    nWR: Cycles = 33
    nRTP: Cycles = 12
    nCCDS: Cycles = 2
    nCCDL: Cycles = 2
    nRRDS: Cycles = 5
    nRRDL: Cycles = 6
    nWTRS: Cycles = 9
    nWTRL: Cycles = 11
    nFAW: Cycles = 28
    nRFC: Cycles = 210
    nRFCpb: Cycles = 105
    nREFI: Cycles = 3333
    nMODCH: Cycles = 32
    nCLREG: Cycles0 = 0
    nCWLREG: Cycles0 = 1
    nWPRE: Cycles0 = 1


class Completion(_Strict):
    """Issue-to-completion latency per command, in tCK (docs/aim-device.md, 'Command completion')."""

    RD: Cycles0 = 52
    WR: Cycles0 = 39  # nCWL + nWR: conventional write data landed (our convention, docs/aim-device.md)
    WRA16: Cycles0 = 40
    RDMAC16: Cycles0 = 2
    RDAF16: Cycles0 = 2
    WRGB: Cycles0 = 3
    WRMAC16: Cycles0 = 3
    MAC: Cycles0 = 1
    MAC16: Cycles0 = 1
    EWMUL16: Cycles0 = 1
    AF16: Cycles0 = 1
    RDCP: Cycles0 = 1
    WRCP: Cycles0 = 1


class Refresh(_Strict):
    """All-bank refresh every nREFI. Off by default: the reference AiM simulator models no refresh."""

    enabled: StrictBool = False


class Controller(_Strict):
    enforce_faw: StrictBool = False  # the public AiM simulator does not enforce nFAW (docs/aim-device.md)
    # Conventional requests (R/W MEM, RD_SBK, WR_SBK) are served FR-FCFS; AiM requests strictly in order.
    conventional_scheduler: Literal["frfcfs", "fcfs"] = "frfcfs"


class MacUnit(_Strict):
    """What the per-bank MAC unit computes. bf16 x bf16, fp32 accumulation by default (docs/pim-gpt-design.md [D])."""

    bf16: StrictBool = True
    int8: StrictBool = False
    int4: StrictBool = False
    lanes_bf16: PositiveInt = Field(16, le=1024)  # bf16 MACs per bank per column command (functional model)
    accumulator: Literal["fp32", "bf16"] = "fp32"
    zero_skipping: StrictBool = False  # skip all-zero 32 B bursts / rows when the trace says they are zero


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
    # Sections owned by other modules stay plain data here; `simulator.config.loader.SECTION_MODELS`
    # validates them with their owner's model at load time (so their keys are checked before any run).
    asic: dict | None = None
    energy: dict | None = None

    @model_validator(mode="after")
    def _refresh_fits(self) -> ArchConfig:
        """With refresh on, every wait must fit between two refreshes, or a command could never issue."""
        t = self.timing
        if self.refresh.enabled:
            window = t.nREFI - t.nRFC
            if window < 1:
                raise ValueError(f"timing.nRFC ({t.nRFC}) must be less than timing.nREFI ({t.nREFI}) when refresh "
                                 "is enabled")
            for name, value in t.model_dump().items():
                if name.startswith("n") and name not in ("nREFI", "nRFC") and value >= window:
                    raise ValueError(f"timing.{name} = {value} does not fit between two refreshes (nREFI - nRFC = "
                                     f"{window} tCK); lower it or set refresh.enabled=false")
        return self
