"""Energy of a system run: the command counts, cycles and ASIC work of `SystemStats` fed to simulator/energy.py."""

from __future__ import annotations

from simulator.config.schema import ArchConfig
from simulator.dram.commands import Cmd


def add_energy(out: dict, arch: ArchConfig, stats, asic_clock_ghz: float, variant: str) -> None:
    if arch.energy is None:
        return
    from simulator.energy import EnergyInputs, compute_energy, energy_table_from_arch

    table = energy_table_from_arch(arch)
    counts = stats.counts
    cmds = {c.name: int(counts[:, c].sum()) for c in Cmd if c not in (Cmd.SYNC, Cmd.EOC)}
    # ASIC active time: DRAM cycles in which at least one unit computed, in ASIC clock cycles
    asic_cycles = round(stats.asic_active_dram_cycles * arch.timing.tck_ns * asic_clock_ghz)
    inputs = EnergyInputs(
        commands=cmds, cycles=int(stats.cycles), tck_ns=arch.timing.tck_ns, channels=arch.organisation.channels,
        banks_per_channel=arch.organisation.banks, bank_open_cycles=int(stats.bank_open_cycles),
        link_bits=int(out["bytes_link"] * 8), asic_ops=dict(stats.asic_ops), asic_active_cycles=asic_cycles,
        asic_clock_ghz=asic_clock_ghz, tokens=out["tokens"])
    rep = compute_energy(inputs, table, variant=variant)
    out["energy_j"] = rep.total_j
    out["energy_per_token_j"] = rep.per_token_j
    out["energy_breakdown"] = dict(rep.breakdown_j)
    out["energy_table_hash"] = rep.table_hash
    out["energy_variant"] = variant
    if variant == "v2":
        out["energy_per_token_j_v1"] = compute_energy(inputs, table, variant="v1").per_token_j
