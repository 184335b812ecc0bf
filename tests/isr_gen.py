"""Random ISR trace generator shared by the property tests and the benchmark."""

from __future__ import annotations

import random

AIM_OPS = ["MAC_ABK", "MAC_SBK", "WR_GB", "WR_BIAS", "RD_MAC", "AF", "RD_AF", "EWMUL", "EWADD", "COPY_BKGB",
           "COPY_GBBK", "WR_ABK", "SYNC", "W_CFR", "W_GPR"]
CONV_OPS = ["R_MEM", "W_MEM", "RD_SBK", "WR_SBK"]
# config variants the engine property tests run under (--set overrides of the aim_gddr6 preset)
VARIANTS = {
    "default": [],
    "refresh": ["refresh.enabled=true", "timing.nREFI=400"],
    "faw": ["controller.enforce_faw=true"],
    "fcfs-conventional": ["controller.conventional_scheduler=fcfs"],
    "slow-mode-switch": ["timing.nMODCH=7", "timing.nCCDL=3", "organisation.queue_depth=5"],
}


def random_isr(rng: random.Random, channels: int, n: int, conventional: bool = False, rows: int = 4,
               banks: int = 16, max_opsize: int = 64) -> str:
    full = (1 << channels) - 1
    ops = AIM_OPS + (CONV_OPS if conventional else [])
    lines = []
    for _ in range(n):
        op = rng.choice(ops)
        mask = rng.choice([full, full, rng.randint(1, full)])
        one = 1 << rng.randrange(channels)
        size = rng.choice([1, 2, rng.randint(1, max_opsize), max_opsize])
        row, bank = rng.randrange(rows), rng.randrange(banks)
        lines.append({
            "MAC_ABK": f"AiM MAC_ABK {size} {mask:#x} {row}",
            "MAC_SBK": f"AiM MAC_SBK {size} {mask:#x} {bank} {row}",
            "WR_GB": f"AiM WR_GB {size} 0 {mask:#x}",
            "WR_BIAS": f"AiM WR_BIAS 0 {mask:#x}",
            "RD_MAC": f"AiM RD_MAC 0 {mask:#x}",
            "AF": f"AiM AF {mask:#x}",
            "RD_AF": f"AiM RD_AF 0 {mask:#x}",
            "EWMUL": f"AiM EWMUL {size} {mask:#x} {row}",
            "EWADD": f"AiM EWADD {size} 0 1",
            "COPY_BKGB": f"AiM COPY_BKGB {size} {mask:#x} {bank} {row}",
            "COPY_GBBK": f"AiM COPY_GBBK {size} {mask:#x} {bank} {row}",
            "WR_ABK": f"AiM WR_ABK 0 {one:#x} {row}",
            "SYNC": "AiM SYNC",
            "W_CFR": f"W CFR 0 {rng.randrange(2)}",
            "W_GPR": "W GPR 1",
            "R_MEM": f"R MEM {rng.randrange(channels)} {bank} {row}",
            "W_MEM": f"W MEM {rng.randrange(channels)} {bank} {row}",
            "RD_SBK": f"AiM RD_SBK 0 {mask:#x} {bank} {row}",
            "WR_SBK": f"AiM WR_SBK 0 {mask:#x} {bank} {row}",
        }[op])
    lines.append("AiM EOC")
    return "\n".join(lines) + "\n"
