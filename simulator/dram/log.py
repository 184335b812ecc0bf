"""Command logs and replay results: plain, typed values shared by engines, checker and reports."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator.dram.commands import CMD_NAMES, N_CMDS

ENGINES = ("fast", "reference")  # the values of ReplayResult.engine


@dataclass(frozen=True)
class CommandLog:
    """Every issued command, in issue order per channel. bank = -1 for all-bank / channel commands;
    for ACT4/PRE4 `bank` is any bank of the addressed group. row = -1 where no row is addressed."""

    cycle: np.ndarray  # int64
    channel: np.ndarray  # int64
    cmd: np.ndarray  # int64 (Cmd ids)
    bank: np.ndarray  # int64
    row: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.cycle.shape[0])

    def sorted(self) -> "CommandLog":
        order = np.lexsort((self.channel, self.cycle))
        return CommandLog(*(a[order] for a in (self.cycle, self.channel, self.cmd, self.bank, self.row)))

    def rows(self) -> list[tuple[int, int, str, int, int]]:
        s = self.sorted()
        return [(int(c), int(ch), CMD_NAMES[int(k)], int(b), int(r))
                for c, ch, k, b, r in zip(s.cycle, s.channel, s.cmd, s.bank, s.row)]


@dataclass(frozen=True)
class ReplayResult:
    cycles: int  # cycle in which EOC is acknowledged (the first ISR reaches the channels in cycle 1)
    tck_ns: float
    counts: np.ndarray  # int64 [channels, N_CMDS]: commands issued per channel
    engine: str
    wall_s: float
    log: CommandLog | None = None
    extra: dict = field(default_factory=dict)

    @property
    def time_ns(self) -> float:
        return self.cycles * self.tck_ns

    def command_summary(self) -> dict[str, dict[str, int]]:
        out = {}
        for k in range(N_CMDS):
            col = self.counts[:, k]
            if col.sum():
                out[CMD_NAMES[k]] = {"per_channel_max": int(col.max()), "total": int(col.sum())}
        return out
