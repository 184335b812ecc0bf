"""What one bank's MAC unit computes, as a small frozen value the kernels take.

    lanes products (fp32, exact for normal bf16 operands)  ->  reduction order  ->  accumulator  ->  read-out

* `accumulator` ("fp32" | "bf16"): width of the accumulator register. "bf16" means every addition into the
  accumulator is an fp32 addition whose result is rounded to bf16 (round to nearest even) before it is
  stored. Source: `MacUnit.accumulator` of the arch config; default fp32 (docs/pim-gpt-design.md [D]).
* `order`: the order of additions inside one bank, part of the model because fp addition is not associative.
    - "tree"   (default [D]): the 16 lane products of one column command go through a pairwise adder tree
      ((p0+p1)+(p2+p3))+... in fp32, log2(lanes) levels; the tree's sum is added to the accumulator.
      This is the AiM-style MAC unit: 16 multipliers, an adder tree and one accumulator per bank.
    - "serial": one accumulator takes the lane products one at a time, lane 0 first (a chained MAC).
    - "lane":   one accumulator per lane; at read-out the lane accumulators go through the adder tree.
* `readout` ("bf16" | "fp32"): what RDMAC16 returns. 16 accumulators in one 32 B burst are 16 x 16 bit,
  so bf16 read-out is the default (docs/pim-gpt-design.md [D]: "FP32 accumulate, bf16 read-out").
* `zero_skipping`: skip column commands whose 32 B weight burst is all zero bits (`MacUnit.zero_skipping`).
  The result is identical to the dense computation for finite inputs: a skipped burst would add +-0 to an
  accumulator that can never hold -0 (it starts at +0, and a round-to-nearest sum is -0 only if both
  addends are -0).

Integer MACs (int8 x int8, int4 x int8) accumulate exactly in int32; order does not matter for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simulator.errors import PimsimError

ORDER_CODES = {"tree": 0, "serial": 1, "lane": 2}
ACC_CODES = {"fp32": 0, "bf16": 1}
READOUT_CODES = {"fp32": 0, "bf16": 1}


@dataclass(frozen=True)
class MacNumerics:
    accumulator: Literal["fp32", "bf16"] = "fp32"  # source: MacUnit.accumulator, default docs/pim-gpt-design.md [D]
    order: Literal["tree", "serial", "lane"] = "tree"  # [D] AiM-style adder tree per bank
    readout: Literal["bf16", "fp32"] = "bf16"  # [D] docs/pim-gpt-design.md: bf16 read-out (RDMAC16 = 16 x 16 bit)
    lanes: int = 16  # source: MacUnit.lanes_bf16 / docs/aim-device.md: 16 bf16 MACs per bank per column command
    zero_skipping: bool = False  # source: MacUnit.zero_skipping

    def __post_init__(self) -> None:
        if self.accumulator not in ACC_CODES:
            raise PimsimError(f"mac.accumulator: must be one of {sorted(ACC_CODES)}, got {self.accumulator!r}")
        if self.order not in ORDER_CODES:
            raise PimsimError(f"mac numerics order: must be one of {sorted(ORDER_CODES)}, got {self.order!r}")
        if self.readout not in READOUT_CODES:
            raise PimsimError(f"mac numerics readout: must be one of {sorted(READOUT_CODES)}, got {self.readout!r}")
        if self.lanes < 1 or self.lanes & (self.lanes - 1):
            raise PimsimError(f"mac lanes: must be a power of two (adder tree), got {self.lanes}")

    @property
    def codes(self) -> tuple[int, int, int]:
        """(accumulator, order, readout) as the integer codes the Numba kernels take."""
        return ACC_CODES[self.accumulator], ORDER_CODES[self.order], READOUT_CODES[self.readout]

    @classmethod
    def from_mac_unit(cls, mac, order: str = "tree", readout: str = "bf16") -> "MacNumerics":
        """Build from `simulator.config.schema.MacUnit` (order and read-out are not config fields yet)."""
        return cls(accumulator=mac.accumulator, order=order, readout=readout, lanes=mac.lanes_bf16,
                   zero_skipping=mac.zero_skipping)
