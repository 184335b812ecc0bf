"""End-to-end functional run: generate tokens through the PIM functional path and compare with fp32.

Both decoders consume the same token sequence: a seeded random prompt, then the fp32 reference's greedy
tokens (teacher forcing), so every compared step sees the same context and one early disagreement does not
cascade. Per generated token t:

    max_rel_err[t]  = max_i |l_pim[i] - l_ref[i]| / max_i |l_ref[i]|
    mean_rel_err[t] = mean_i |l_pim[i] - l_ref[i]| / mean_i |l_ref[i]|
    agree[t]        = argmax l_pim == argmax l_ref

`logits_max_rel_err` is the max over tokens of max_rel_err, `logits_mean_rel_err` the mean over tokens of
mean_rel_err, `token_agreement` the fraction of agreeing greedy tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from simulator.asic.config import AsicConfig, asic_config_from_arch
from simulator.errors import PimsimError
from simulator.functional.forward import PimDecoder, RefDecoder
from simulator.functional.gemv import geometry_for
from simulator.functional.model import ModelShape, load_weights, random_weights
from simulator.kernels.numerics import MacNumerics


@dataclass(frozen=True)
class FunctionalResult:
    model: str
    tokens: int
    logits_max_rel_err: float
    logits_mean_rel_err: float
    token_agreement: float
    accumulator: str
    order: str
    readout: str
    prompt: tuple[int, ...] = ()
    ref_tokens: tuple[int, ...] = ()
    pim_tokens: tuple[int, ...] = ()
    per_token_max_rel_err: tuple[float, ...] = field(default=())
    per_token_mean_rel_err: tuple[float, ...] = field(default=())
    skipped_column_commands: int = 0

    def to_json(self) -> dict:
        return {
            "functional": {"tokens": self.tokens, "logits_max_rel_err": self.logits_max_rel_err,
                           "logits_mean_rel_err": self.logits_mean_rel_err, "token_agreement": self.token_agreement},
            "functional_details": {
                "model": self.model, "accumulator": self.accumulator, "order": self.order, "readout": self.readout,
                "prompt": list(self.prompt), "ref_tokens": list(self.ref_tokens), "pim_tokens": list(self.pim_tokens),
                "per_token_max_rel_err": list(self.per_token_max_rel_err),
                "per_token_mean_rel_err": list(self.per_token_mean_rel_err),
                "skipped_column_commands": self.skipped_column_commands,
            },
        }


def run_functional(model_shape: ModelShape, tokens: int, seed: int = 0, weights: str | None = None, arch=None,
                   numerics: MacNumerics | None = None, asic: AsicConfig | None = None, prompt_len: int = 4,
                   layout_fn: Callable | None = None, progress: Callable[[int], None] | None = None) -> FunctionalResult:
    """Generate `tokens` tokens of `model_shape` through the PIM path and compare with the fp32 forward.

    arch: an ArchConfig (None: PIM-GPT defaults); its `mac` section gives the accumulator and zero skipping
    unless `numerics` is given; its `asic` section the ASIC numerics unless `asic` is given.
    """
    if tokens <= 0:
        raise PimsimError(f"--tokens: must be a positive integer, got {tokens}")
    if prompt_len <= 0:
        raise PimsimError(f"--prompt-len: must be a positive integer, got {prompt_len}")
    if prompt_len + tokens - 1 > model_shape.ctx:
        raise PimsimError(f"--tokens: prompt {prompt_len} + {tokens} tokens exceed the context {model_shape.ctx}")
    if numerics is None:
        numerics = MacNumerics.from_mac_unit(arch.mac) if arch is not None else MacNumerics()
    if asic is None:
        asic = asic_config_from_arch(arch) if arch is not None else AsicConfig()
    w = load_weights(weights, model_shape) if weights else random_weights(model_shape, seed)
    ref = RefDecoder(model_shape, w)
    pim = PimDecoder(model_shape, w, numerics, asic, geometry_for(arch, "bf16"), layout_fn)
    rng = np.random.default_rng(seed + 1)
    prompt = [int(v) for v in rng.integers(0, model_shape.vocab, prompt_len)]
    seq = list(prompt)
    max_errs, mean_errs, ref_toks, pim_toks = [], [], [], []
    for pos in range(prompt_len + tokens - 1):
        lr, lp = ref.step(seq[pos]), pim.step(seq[pos])
        if pos < prompt_len - 1:
            continue
        diff = np.abs(lp - lr)
        max_errs.append(float(diff.max() / max(np.abs(lr).max(), 1e-30)))
        mean_errs.append(float(diff.mean() / max(np.abs(lr).mean(), 1e-30)))
        ref_toks.append(int(np.argmax(lr)))
        pim_toks.append(int(np.argmax(lp)))
        seq.append(ref_toks[-1])
        if progress:
            progress(len(ref_toks))
    agree = float(np.mean(np.array(ref_toks) == np.array(pim_toks)))
    return FunctionalResult(model_shape.name, tokens, max(max_errs), float(np.mean(mean_errs)), agree,
                            numerics.accumulator, numerics.order, numerics.readout, tuple(prompt), tuple(ref_toks),
                            tuple(pim_toks), tuple(max_errs), tuple(mean_errs), pim.skipped)
