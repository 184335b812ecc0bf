"""Software stacks: what runs around the kernels of one decode step (docs/baselines.md, "Stacks").

A stack is the *structure* of the software (which overheads exist, how kernels reach the device, where the
loop synchronises); a preset holds the *costs* of that structure on its host (`software.*` values, each
sourced). Three stacks:

* `hf-generate` (default): HF `model.generate()` greedy, eager PyTorch — the stack a 2023 paper most likely
  timed. Per token: the forward call (framework glue per layer and per call, one host dispatch per kernel)
  plus the generate loop around it: argmax over the vocabulary, `unfinished_sequences` / stopping-criteria
  updates, `torch.cat` of input_ids and attention mask, cache-position bookkeeping — GENERATE_LOOP_KERNELS
  kernels and `software.generate_overhead_us` of Python — and a host<->device synchronisation (the
  `this_peer_finished` check calls `.item()`), after which the next token's host work starts.
* `hf-generate-v4`: `hf-generate` as a 2022-2023 transformers 4.x ran it for GPT-2: no SDPA (added for
  GPT-2 in 4.42), eager attention whose mask value is copied host-to-device in every layer, a blocking copy
  that drains the GPU stream (workload `attn="eager-h2d"`; docs/baselines.md). Everything else (loop
  kernels, glue) is hf-generate's, measured on transformers 5.24.
* `hf-forward`: one forward call per token (the loop is the caller's), then a synchronisation to read the
  logits. No generate-loop work.
* `optimized`: CUDA graphs / a fused decode loop: one graph launch per token (`software.graph_launch_us`),
  no Python per layer, a static KV cache written in place; the device still pays its per-kernel fixed time.
  On a CPU there are no graphs: `optimized` then means no framework glue and in-place cache only.
* `fastertransformer`: NVIDIA FasterTransformer's C++ GPT decode loop (GPU only). Its own fused kernel set
  (`kernels="fastertransformer"`, simulator/baselines/workload.py: 9 kernels per layer, read from
  FT's ParallelGptDecoder.cc), each launched from C++ (`software.launch_us`, no PyTorch dispatch, no Python),
  top-p sampling kernels per step, the KV cache written in place by the attention kernel, and one
  device-to-host copy of the `finished` flags per step (a synchronisation; ParallelGpt.cc).

GENERATE_LOOP_KERNELS was counted with `torch.profiler` on transformers 5.24 `generate()` (greedy, GPT-2):
72 top-level aten ops per extra generated token against 53 for a bare forward call; of the 19 extra ops,
15 launch kernels (argmax, 2 `to`, 2 `full`, 2 `clone`, 2 `cat`, add, eq, bitwise_not, `__or__`,
`__and__`, max) and 1 synchronises (`is_nonzero` = `.item()`); the rest are views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simulator.errors import PimsimError

GENERATE_LOOP_KERNELS = 15


@dataclass(frozen=True)
class Stack:
    name: str
    # eager: PyTorch dispatches every kernel (host_us_per_kernel); graph: one launch per token;
    # native: a C++ loop launches every kernel (launch_us)
    dispatch: Literal["eager", "graph", "native"]
    framework: bool                        # Python glue per layer and per forward call (software.*_overhead_us)
    generate_loop: bool                    # the generate() loop's own kernels and Python per token
    kv_update: Literal["concat", "inplace"]  # DynamicCache torch.cat (copies the cache) or a static cache
    description: str
    # attention code of the library version (simulator/baselines/workload.py): "eager-h2d" is GPT-2's eager
    # attention of transformers 4.x (models without GPT-2's attention get that era's plain "eager")
    attention: Literal["sdpa", "eager-h2d"] = "sdpa"
    # the kernels a decode step launches (simulator/baselines/workload.py): HF eager's, or FasterTransformer's
    kernels: Literal["hf", "fastertransformer"] = "hf"
    gpu_only: bool = False                 # a CUDA library with no CPU path


STACKS: dict[str, Stack] = {s.name: s for s in (
    Stack("hf-generate", "eager", True, True, "concat",
          "HF generate() greedy, eager PyTorch (forward + generate loop, one sync per token)"),
    Stack("hf-generate-v4", "eager", True, True, "concat",
          "HF generate() greedy on transformers 4.x (2022-2023): hf-generate with GPT-2's eager attention of "
          "that era (6 kernels and a blocking mask-value copy per layer)", attention="eager-h2d"),
    Stack("hf-forward", "eager", True, False, "concat",
          "one HF forward call per token, eager PyTorch (one sync per token)"),
    Stack("optimized", "graph", False, False, "inplace",
          "CUDA graphs / fused decode loop: one launch per token, static KV cache, kernel time only"),
    Stack("fastertransformer", "native", False, False, "inplace",
          "NVIDIA FasterTransformer GPT: C++ decode loop, its fused kernels launched one by one, top-p sampling, "
          "one device-to-host copy of the finished flags per step", kernels="fastertransformer", gpu_only=True),
)}
DEFAULT_STACK = "hf-generate"


def get_stack(name: str | Stack | None) -> Stack:
    if isinstance(name, Stack):
        return name
    if name is None:
        return STACKS[DEFAULT_STACK]
    try:
        return STACKS[name]
    except KeyError:
        raise PimsimError(f"--stack {name!r}: choose one of {', '.join(STACKS)}") from None
