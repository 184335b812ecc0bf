"""Energy model: a sourced coefficient table and the accounting of one run's command counts and state times.

    table = load_energy_table("arch_configs/energy_gddr6_aim.yaml")
    report = compute_energy(inputs, table)            # v2: everything
    report_v1 = compute_energy(inputs, table, variant="v1")  # what PIM-GPT v1 probably omitted is dropped

Method (DRAMPower / Micron TN-41-01, "IDD method"): a datasheet current measured in a defined command loop,
minus the background current of the state the device would otherwise be in, times VDD, times the window
the command occupies, is the energy of that command on top of background. Units: mA x V x ns = pJ, and
mA x V = mW; mW x ns = pJ. Background (IDD3N when any bank of a channel has an open row, IDD2N otherwise)
is charged separately over time, so command energies never double-count it.

Derived DRAM energies (per x16 channel; `docs/energy.md` shows the arithmetic with the shipped numbers):
    e_act_pj      = (IDD0  - IDD3N) * VDD * tRAS        one bank opening a row
    e_pre_pj      = (IDD0  - IDD2N) * VDD * tRP         one bank precharging
    e_rd_col_pj   = (IDD4R - IDD3N) * VDD * tBURST      one 32 B column read  (array + datapath, no I/O)
    e_wr_col_pj   = (IDD4W - IDD3N) * VDD * tBURST      one 32 B column write
    e_ref_pj      = (IDD5B - IDD3N) * VDD * tRFC        one all-bank refresh
    p_act_bg_mw   = IDD3N * VDD,   p_pre_bg_mw = IDD2N * VDD
Each command's energy is built from these by its recipe in the command table (simulator/dram/commands.py,
`CommandFacts.energy`), listed here (`local` = the fraction of a column access spent inside the bank,
array + bank sense amplifiers + column decode, before the global data path; `lanes` = bf16 MACs per bank):
    ACT16 = banks * e_act            PREA = banks * e_pre            ACT4 / PRE4 = 4 * e_act / 4 * e_pre
    MAC16 = banks * (local * e_rd_col + lanes * e_mac_bf16)         MAC = local * e_rd_col + lanes * e_mac
    AF16  = banks * local * e_rd_col (LUT row read)                  EWMUL16 = banks * (local*e_rd_col + lanes*e_mul)
    WRGB, WRMAC16 = (1 - local) * e_wr_col (external bus -> buffer/accumulator, no array access)
    RDMAC16, RDAF16 = (1 - local) * e_rd_col (accumulator read-out over the global data path)
    RDCP = e_rd_col,  WRCP = e_wr_col  (bank <-> global buffer: array + global data path)
    WRA16 = banks * local * e_wr_col + (1 - local) * e_wr_col + banks * e_pre   (auto-precharge)
    REFab = e_ref,  REFpb = e_ref / banks,  TMOD = e_tmod,  SYNC / EOC = 0 (no DRAM command)
Time terms: background = (p_act_bg * open_cycles + p_pre_bg * (cycles*channels - open_cycles)) * tCK;
ASIC leakage = p_leak * cycles * tCK; ASIC active (clock tree, control) = p_active * asic_cycles / f_asic.
Link I/O = link_bits * e_io_pj_per_bit. ASIC op energy = count * (e_op + e_operand_access).

Variant `v1` drops background, refresh, link I/O and ASIC leakage (docs/pim-gpt-design.md: v2 energy ratios are about
2.75x lower than v1; those are the terms a first energy model most often omits).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulator.dram.commands import CMD_NAMES, TABLE, Cmd, EnergyTerms
from simulator.errors import PimsimError

SHIPPED_TABLE = Path(__file__).resolve().parents[1] / "arch_configs" / "energy_gddr6_aim.yaml"

#: DRAM command names `EnergyInputs.commands` may contain, and the breakdown component each feeds: both
#: read off the command table (simulator/dram/commands.py `TABLE`, each command's `energy` recipe)
DRAM_COMMANDS: tuple[str, ...] = CMD_NAMES
COMPONENT_OF_COMMAND: dict[str, str] = {c.name: TABLE[c].energy.component for c in Cmd if TABLE[c].energy}
COMPONENTS: tuple[str, ...] = (
    "dram_act_pre", "dram_mac", "dram_column", "dram_buffer", "dram_refresh", "dram_background",
    "link_io", "asic_ops", "asic_active", "asic_leakage",
)
#: components a PIM-GPT-v1-style model leaves out
V1_OMITTED: frozenset[str] = frozenset({"dram_background", "dram_refresh", "link_io", "asic_leakage"})

Variant = Literal["v1", "v2"]


# ---------------------------------------------------------------------------------------------------------
# Config schema: every coefficient is a {value, source} pair; value > 0, source non-empty.
# ---------------------------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Coef(_Strict):
    """One coefficient: a positive number in the unit its field name carries, and where it comes from."""

    value: float = Field(gt=0)
    source: str = Field(min_length=1)


class Fraction(_Strict):
    """A dimensionless share in (0, 1]."""

    value: float = Field(gt=0, le=1)
    source: str = Field(min_length=1)


class DramEnergy(_Strict):
    """Per x16 channel (one half of a dual-channel GDDR6 die). Currents in mA, windows in ns."""

    vdd_v: Coef
    idd0_ma: Coef
    idd2n_ma: Coef
    idd3n_ma: Coef
    idd4r_ma: Coef
    idd4w_ma: Coef
    idd5b_ma: Coef
    t_ras_ns: Coef
    t_rp_ns: Coef
    t_burst_ns: Coef
    t_rfc_ns: Coef
    banks: Coef
    bank_local_fraction: Fraction
    e_tmod_pj: Coef


class PimEnergy(_Strict):
    mac_lanes_per_bank: Coef
    e_mac_bf16_pj: Coef
    e_mul_bf16_pj: Coef


class LinkEnergy(_Strict):
    e_io_pj_per_bit: Coef


class AsicEnergy(_Strict):
    e_op_pj: dict[str, Coef]
    e_operand_access_pj: Coef
    p_active_mw: Coef
    p_leakage_mw: Coef


class EnergyConfig(_Strict):
    """The `energy:` section of an arch config (arch_configs/energy_gddr6_aim.yaml)."""

    name: str = "unnamed"
    description: str = ""
    dram: DramEnergy
    pim: PimEnergy
    link: LinkEnergy
    asic: AsicEnergy


# ---------------------------------------------------------------------------------------------------------
# The derived table (what the accounting uses) and the run's inputs / report
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnergyTable:
    """Per-event energies (pJ) and per-time powers (mW), derived from an `EnergyConfig`."""

    name: str
    e_cmd_pj: dict[str, float]          # per DRAM command, per channel that executes it
    p_act_bg_mw: float                  # per channel, any bank open (IDD3N * VDD)
    p_pre_bg_mw: float                  # per channel, all banks precharged (IDD2N * VDD)
    e_io_pj_per_bit: float              # ASIC <-> PIM link, both ends
    e_asic_op_pj: dict[str, float]      # per ASIC operation, operand access included
    p_asic_active_mw: float             # while the ASIC computes
    p_asic_leakage_mw: float            # whole run
    derived: dict[str, float] = field(default_factory=dict)  # intermediate values, for docs and tests

    @property
    def hash(self) -> str:
        """Short sha256 of every number the accounting uses (sources and names do not change it)."""
        blob = json.dumps(
            {"cmd": self.e_cmd_pj, "bg": [self.p_act_bg_mw, self.p_pre_bg_mw], "io": self.e_io_pj_per_bit,
             "asic": self.e_asic_op_pj, "asic_p": [self.p_asic_active_mw, self.p_asic_leakage_mw]},
            sort_keys=True, separators=(",", ":"),
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class EnergyInputs:
    """What the engine measured in one run (all channels together).

    `bank_open_cycles` is **per channel, summed over channels**: the number of (channel, cycle) pairs in
    which at least one bank of that channel held an open row (IDD3N state); the remaining
    `cycles * channels - bank_open_cycles` pairs are charged IDD2N.
    """

    commands: dict[str, int]
    cycles: int
    tck_ns: float
    channels: int
    banks_per_channel: int
    bank_open_cycles: int
    link_bits: int
    asic_ops: dict[str, int]
    asic_active_cycles: int
    asic_clock_ghz: float
    tokens: int

    def __post_init__(self) -> None:
        def bad(fld: str, why: str) -> PimsimError:
            return PimsimError(f"EnergyInputs.{fld}: {why}")

        for name in ("cycles", "channels", "banks_per_channel", "bank_open_cycles", "link_bits",
                     "asic_active_cycles", "tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise bad(name, f"must be a non-negative integer, got {v!r}")
        for name in ("channels", "banks_per_channel", "tokens"):
            if getattr(self, name) < 1:
                raise bad(name, f"must be at least 1, got {getattr(self, name)}")
        for name in ("tck_ns", "asic_clock_ghz"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0:
                raise bad(name, f"must be a positive number, got {v!r}")
        if self.bank_open_cycles > self.cycles * self.channels:
            raise bad("bank_open_cycles", f"{self.bank_open_cycles} exceeds cycles * channels = "
                      f"{self.cycles * self.channels} (it is summed over channels, at most one per cycle each)")
        for name, counts in (("commands", self.commands), ("asic_ops", self.asic_ops)):
            for key, n in counts.items():
                if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                    raise bad(f"{name}[{key!r}]", f"must be a non-negative integer, got {n!r}")
        unknown = sorted(set(self.commands) - set(DRAM_COMMANDS))
        if unknown:
            raise bad("commands", f"unknown DRAM command {unknown[0]!r}; known: {', '.join(DRAM_COMMANDS)}")

    @property
    def seconds(self) -> float:
        return self.cycles * self.tck_ns * 1e-9


@dataclass(frozen=True)
class EnergyReport:
    total_j: float
    per_token_j: float
    breakdown_j: dict[str, float]       # by component (COMPONENTS order); v1 omissions are 0.0
    by_command_j: dict[str, float]      # DRAM command energy per command name
    table_hash: str
    variant: str
    omitted: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"total_j": self.total_j, "per_token_j": self.per_token_j, "breakdown_j": dict(self.breakdown_j),
                "by_command_j": dict(self.by_command_j), "table_hash": self.table_hash, "variant": self.variant,
                "omitted": list(self.omitted)}


# ---------------------------------------------------------------------------------------------------------
# Loading and deriving
# ---------------------------------------------------------------------------------------------------------
def energy_config_from_data(data: object, source: str = "<energy>") -> EnergyConfig:
    """Validate the `energy:` section (plain data). Errors: one line naming `source` and the field."""
    if not isinstance(data, dict):
        raise PimsimError(f"{source}: energy: must be a mapping of sections (dram, pim, link, asic)")
    from simulator.config.messages import pydantic_message

    try:
        cfg = EnergyConfig.model_validate(data, strict=True)
    except ValidationError as exc:
        raise PimsimError(pydantic_message(exc, source, prefix="energy", docs="docs/energy.md")) from None
    try:
        build_table(cfg)
    except PimsimError as exc:
        raise PimsimError(f"{source}: {exc}") from None
    return cfg


def load_energy_config(path: str | Path = SHIPPED_TABLE) -> EnergyConfig:
    """Read a YAML file whose top level is `energy: {...}` (or the section itself)."""
    path = Path(path)
    try:
        from simulator.config.loader import yaml_data

        data = yaml_data(path.read_text(encoding="utf-8"))  # safe loader; a duplicate key is an error
    except OSError as exc:
        raise PimsimError(f"{path}: cannot read energy table ({exc.__class__.__name__})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise PimsimError(f"{path}: YAML syntax error{where}") from None
    if isinstance(data, dict) and "energy" in data:
        data = data["energy"]
    return energy_config_from_data(data, str(path))


def load_energy_table(path: str | Path = SHIPPED_TABLE) -> EnergyTable:
    return build_table(load_energy_config(path))


def build_table(cfg: EnergyConfig) -> EnergyTable:
    """Derive per-command energies from the IDD currents (see the module docstring for every formula)."""
    d, p = cfg.dram, cfg.pim
    vdd = d.vdd_v.value
    idd0, idd2n, idd3n = d.idd0_ma.value, d.idd2n_ma.value, d.idd3n_ma.value
    idd4r, idd4w, idd5b = d.idd4r_ma.value, d.idd4w_ma.value, d.idd5b_ma.value
    for name, hi, lo_name, lo in (("idd0_ma", idd0, "idd3n_ma", idd3n), ("idd0_ma", idd0, "idd2n_ma", idd2n),
                                  ("idd4r_ma", idd4r, "idd3n_ma", idd3n), ("idd4w_ma", idd4w, "idd3n_ma", idd3n),
                                  ("idd5b_ma", idd5b, "idd3n_ma", idd3n)):
        if not hi > lo:
            raise PimsimError(f"energy.dram.{name}: must exceed {lo_name} ({hi} <= {lo}); the IDD method "
                              f"charges the difference, which would be non-positive")
    banks = d.banks.value
    if banks != int(banks):
        raise PimsimError(f"energy.dram.banks: must be a whole number, got {banks}")
    banks = int(banks)
    lanes = p.mac_lanes_per_bank.value
    local = d.bank_local_fraction.value

    # mA * V * ns = pJ
    e_act = (idd0 - idd3n) * vdd * d.t_ras_ns.value
    e_pre = (idd0 - idd2n) * vdd * d.t_rp_ns.value
    e_rd = (idd4r - idd3n) * vdd * d.t_burst_ns.value
    e_wr = (idd4w - idd3n) * vdd * d.t_burst_ns.value
    e_ref = (idd5b - idd3n) * vdd * d.t_rfc_ns.value
    e_mac, e_mul = p.e_mac_bf16_pj.value, p.e_mul_bf16_pj.value

    terms = EnergyTerms(act=e_act, pre=e_pre, rd=e_rd, wr=e_wr, ref=e_ref, mac=e_mac, mul=e_mul,
                        tmod=d.e_tmod_pj.value, banks=banks, lanes=lanes, local=local)
    missing = [c.name for c in Cmd if TABLE[c].energy is None]
    if missing:
        raise PimsimError(f"command {missing[0]}: no energy recipe; give it one in the command table "
                          "(simulator/dram/commands.py, CommandFacts.energy)")
    cmd = {c.name: TABLE[c].energy.pj(terms) for c in Cmd}
    assert set(cmd) == set(DRAM_COMMANDS)
    a = cfg.asic
    if not a.e_op_pj:
        raise PimsimError("energy.asic.e_op_pj: needs at least one operation type (add, mul, fma, ...)")
    ops = {k: v.value + a.e_operand_access_pj.value for k, v in a.e_op_pj.items()}
    return EnergyTable(
        name=cfg.name, e_cmd_pj=cmd, p_act_bg_mw=idd3n * vdd, p_pre_bg_mw=idd2n * vdd,
        e_io_pj_per_bit=cfg.link.e_io_pj_per_bit.value, e_asic_op_pj=ops,
        p_asic_active_mw=a.p_active_mw.value, p_asic_leakage_mw=a.p_leakage_mw.value,
        derived={"e_act_pj": e_act, "e_pre_pj": e_pre, "e_rd_col_pj": e_rd, "e_wr_col_pj": e_wr,
                 "e_ref_pj": e_ref, "banks": banks, "lanes": lanes, "bank_local_fraction": local},
    )


# ---------------------------------------------------------------------------------------------------------
# Accounting
# ---------------------------------------------------------------------------------------------------------
PJ = 1e-12


def compute_energy(inputs: EnergyInputs, table: EnergyTable, variant: Variant = "v2") -> EnergyReport:
    """Energy of one run. Every time term is cycles x clock period (ns) x power (mW) = pJ."""
    if variant not in ("v1", "v2"):
        raise PimsimError(f"energy variant {variant!r}: choose v1 or v2")
    if inputs.banks_per_channel != table.derived.get("banks", inputs.banks_per_channel):
        raise PimsimError(f"energy table {table.name!r}: energy.dram.banks = {table.derived['banks']} but the "
                          f"run has {inputs.banks_per_channel} banks per channel; use a matching table")
    comp = dict.fromkeys(COMPONENTS, 0.0)
    by_cmd: dict[str, float] = {}
    for name, n in inputs.commands.items():
        e = n * table.e_cmd_pj[name] * PJ
        by_cmd[name] = e
        comp[COMPONENT_OF_COMMAND[name]] += e

    open_cyc = inputs.bank_open_cycles
    closed_cyc = inputs.cycles * inputs.channels - open_cyc
    comp["dram_background"] = (table.p_act_bg_mw * open_cyc + table.p_pre_bg_mw * closed_cyc) * inputs.tck_ns * PJ
    comp["link_io"] = inputs.link_bits * table.e_io_pj_per_bit * PJ

    for op, n in inputs.asic_ops.items():
        if op not in table.e_asic_op_pj:
            raise PimsimError(f"energy table {table.name!r}: ASIC op {op!r} has no coefficient; add "
                              f"energy.asic.e_op_pj.{op} (known: {', '.join(sorted(table.e_asic_op_pj))})")
        comp["asic_ops"] += n * table.e_asic_op_pj[op] * PJ
    asic_ns = inputs.asic_active_cycles / inputs.asic_clock_ghz  # cycles / (cycles per ns)
    comp["asic_active"] = table.p_asic_active_mw * asic_ns * PJ
    comp["asic_leakage"] = table.p_asic_leakage_mw * inputs.cycles * inputs.tck_ns * PJ

    omitted: tuple[str, ...] = ()
    if variant == "v1":
        omitted = tuple(c for c in COMPONENTS if c in V1_OMITTED)
        for c in omitted:
            comp[c] = 0.0
        by_cmd = {k: (0.0 if COMPONENT_OF_COMMAND[k] in V1_OMITTED else v) for k, v in by_cmd.items()}
    total = sum(comp.values())
    return EnergyReport(total_j=total, per_token_j=total / inputs.tokens, breakdown_j=comp, by_command_j=by_cmd,
                        table_hash=table.hash, variant=variant, omitted=omitted)


def energy_table_from_arch(arch) -> EnergyTable:
    """The table of an `ArchConfig` whose `energy:` section is set (the lead includes the shipped file)."""
    section = getattr(arch, "energy", None)
    if section is None:
        raise PimsimError(f"arch config {getattr(arch, 'name', '?')}: energy: section missing; include "
                          f"arch_configs/energy_gddr6_aim.yaml")
    return build_table(energy_config_from_data(section, f"arch config {getattr(arch, 'name', '?')}"))


__all__ = [
    "COMPONENTS", "DRAM_COMMANDS", "EnergyConfig", "EnergyInputs", "EnergyReport", "EnergyTable", "SHIPPED_TABLE",
    "build_table", "compute_energy", "energy_config_from_data", "energy_table_from_arch", "load_energy_config",
    "load_energy_table",
]
