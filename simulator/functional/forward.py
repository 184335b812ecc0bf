"""GPT-2 decode, one token at a time: an fp32 NumPy reference and the PIM-functional path.

Reference (`RefDecoder`): float32 NumPy with exact exp / tanh / sqrt, BLAS matmuls, fp32 KV cache.
PIM path (`PimDecoder`), following the PIM-GPT dataflow (docs/pim-gpt-design.md, steps 1-14):
  * every weight GEMV (QKV, output projection, FFN up/down, LM head) runs on the bank images through
    `pim_gemv` (input rounded to bf16 in the global buffer, the bank MAC numerics, read-outs reduced by
    the ASIC in fp32);
  * K is stored row-major and V column-major in PIM as bf16; q.K^T and p.V are bank GEMVs with the same
    MAC numerics (`gemv_bf16`, one read-out per 1024-element row);
  * layernorm, softmax, GELU, bias and residual adds run on the ASIC in fp32 with the approximate
    algorithms of `simulator.asic.numerics` (Taylor exp, Newton reciprocal, fast inverse sqrt); the
    residual stream stays fp32 in ASIC SRAM ([D]).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from simulator.asic import numerics as an
from simulator.asic.config import AsicConfig
from simulator.functional.gemv import PimGeometry, pim_gemv, place_matrix
from simulator.functional.model import ModelShape
from simulator.kernels.api import gemv_bf16
from simulator.kernels.bits import f32_to_bf16
from simulator.kernels.numerics import MacNumerics

F = np.float32


# ------------------------------------------------------------------------------------------- fp32 reference


def _ln_ref(x, g, b, eps):
    m = x.mean(dtype=np.float32)
    v = ((x - m) ** 2).mean(dtype=np.float32)
    return ((x - m) / np.sqrt(v + F(eps)) * g + b).astype(np.float32)


def _gelu_ref(x):
    return (F(0.5) * x * (F(1) + np.tanh(F(math.sqrt(2 / math.pi)) * (x + F(0.044715) * x ** 3)))).astype(np.float32)


class RefDecoder:
    def __init__(self, shape: ModelShape, w: dict[str, np.ndarray]):
        self.s, self.w = shape, w
        hd = shape.head_dim
        self.k = np.zeros((shape.layers, shape.heads, shape.ctx, hd), np.float32)
        self.v = np.zeros_like(self.k)
        self.t = 0

    def step(self, token: int) -> np.ndarray:
        s, w, t = self.s, self.w, self.t
        d, H, hd = s.d_model, s.heads, s.head_dim
        x = (w["wte"][token] + w["wpe"][t]).astype(np.float32)
        for i in range(s.layers):
            p = f"h.{i}."
            h = _ln_ref(x, w[p + "ln_1.g"], w[p + "ln_1.b"], s.norm_eps)
            qkv = w[p + "attn.w"] @ h + w[p + "attn.b"]
            q, k, v = (a.reshape(H, hd) for a in np.split(qkv, 3))
            self.k[i, :, t], self.v[i, :, t] = k, v
            sc = np.einsum("hd,htd->ht", q, self.k[i, :, :t + 1]) * F(1 / math.sqrt(hd))
            sc = np.exp(sc - sc.max(axis=1, keepdims=True))
            pr = (sc / sc.sum(axis=1, keepdims=True)).astype(np.float32)
            att = np.einsum("ht,htd->hd", pr, self.v[i, :, :t + 1]).reshape(d)
            x = (x + w[p + "proj.w"] @ att + w[p + "proj.b"]).astype(np.float32)
            h = _ln_ref(x, w[p + "ln_2.g"], w[p + "ln_2.b"], s.norm_eps)
            f = _gelu_ref((w[p + "fc.w"] @ h + w[p + "fc.b"]).astype(np.float32))
            x = (x + w[p + "fc_proj.w"] @ f + w[p + "fc_proj.b"]).astype(np.float32)
        self.t += 1
        return (w["wte"] @ _ln_ref(x, w["ln_f.g"], w["ln_f.b"], s.norm_eps)).astype(np.float32)


# ------------------------------------------------------------------------------------------- PIM path


class PimDecoder:
    def __init__(self, shape: ModelShape, w: dict[str, np.ndarray], numerics: MacNumerics = MacNumerics(),
                 asic: AsicConfig = AsicConfig(), geometry: PimGeometry = PimGeometry(),
                 layout_fn: Callable | None = None):
        self.s, self.w, self.num, self.asic = shape, w, numerics, asic
        self.row_elems = geometry.row_elems
        place = lambda name: place_matrix(f32_to_bf16(w[name]), geometry, layout_fn)  # noqa: E731
        self.mats = {}
        for i in range(shape.layers):
            for m in ("attn.w", "proj.w", "fc.w", "fc_proj.w"):
                self.mats[f"h.{i}.{m}"] = place(f"h.{i}.{m}")
        self.mats["lm_head"] = place("wte")  # tied LM head on PIM ([D], docs/pim-gpt-design.md)
        H, hd = shape.heads, shape.head_dim
        self.k = np.zeros((shape.layers, H, shape.ctx, hd), np.uint16)  # K row-major (one key per row run)
        self.vt = np.zeros((shape.layers, H, hd, shape.ctx), np.uint16)  # V column-major
        self.t = 0
        self.skipped = 0

    def _gemv(self, name: str, x: np.ndarray) -> np.ndarray:
        y, sk = pim_gemv(self.mats[name], x, self.num, return_skipped=True)
        self.skipped += sk
        return y

    def step(self, token: int) -> np.ndarray:
        s, w, t, cfg = self.s, self.w, self.t, self.asic
        d, H, hd = s.d_model, s.heads, s.head_dim
        x = an.vec_add(w["wte"][token], w["wpe"][t])
        for i in range(s.layers):
            p = f"h.{i}."
            h = an.layernorm(x, w[p + "ln_1.g"], w[p + "ln_1.b"], s.norm_eps, cfg)
            qkv = an.vec_add(self._gemv(p + "attn.w", h), w[p + "attn.b"])
            q, k, v = (a.reshape(H, hd) for a in np.split(qkv, 3))
            self.k[i, :, t] = f32_to_bf16(k)
            self.vt[i, :, :, t] = f32_to_bf16(v)
            keys = np.ascontiguousarray(self.k[i, :, :t + 1])
            sc = gemv_bf16(keys, f32_to_bf16(q), self.num, seg_elems=self.row_elems)
            pr = np.stack([an.softmax(sc[h_], cfg, scale=1 / math.sqrt(hd)) for h_ in range(H)])
            vals = np.ascontiguousarray(self.vt[i, :, :, :t + 1])
            att = gemv_bf16(vals, f32_to_bf16(pr), self.num, seg_elems=self.row_elems).reshape(d)
            x = an.vec_add(x, an.vec_add(self._gemv(p + "proj.w", att), w[p + "proj.b"]))
            h = an.layernorm(x, w[p + "ln_2.g"], w[p + "ln_2.b"], s.norm_eps, cfg)
            f = an.gelu(an.vec_add(self._gemv(p + "fc.w", h), w[p + "fc.b"]), cfg)
            x = an.vec_add(x, an.vec_add(self._gemv(p + "fc_proj.w", f), w[p + "fc_proj.b"]))
        self.t += 1
        return self._gemv("lm_head", an.layernorm(x, w["ln_f.g"], w["ln_f.b"], s.norm_eps, cfg))
