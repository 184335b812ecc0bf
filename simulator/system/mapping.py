"""Mapping: from a pimtrace operator trace to per-token stages (device programs and ASIC operations).

`PimGptMapping` implements the PIM-GPT dataflow (pim-gpt.md, "Mapping and dataflow"):
- every weight matrix (fused W_QKV, W_O, FFN up/gate, FFN down, LM head) is placed by
  `simulator.mapping.layout.gemv_layout`: one output neuron per bank, neurons spread over all banks of all
  channels, fan-in tiled into global-buffer passes, partial sums added by the ASIC;
- per pass, the input chunk is broadcast into every channel's global buffer (WR_GB over each channel's link),
  then each segment is one all-bank MAC (MAC_ABK) followed by a read-out of the 16 accumulators (RD_MAC);
- the K cache is row-major (one key vector per bank segment, keys of consecutive tokens in consecutive
  banks), the V cache column-major (one V "neuron" (head, dim) per bank, positions along its row); both are
  reserved for the full context when the model is loaded;
- kv_append writes k_t into one bank (WR_GB + COPY_GBBK) and v_t into every V neuron's row (one column copy
  per neuron row: ACT/WRCP/PRE per touched row, pim-gpt.md [D]);
- embedding rows are read with conventional reads; layernorm, softmax, GELU, residuals, biases, RoPE and
  partial-sum reduction run on the ASIC.
`packed=False` gives the AiM/CENT-style alternative ("aim-rows"): every segment starts a new row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simulator.asic import AsicConfig, asic_cycles, asic_op_counts
from simulator.config.schema import ArchConfig
from simulator.errors import PimsimError
from simulator.mapping.layout import GemvLayout, gemv_layout
from simulator.system.program import Program, ProgramBuilder, concat, from_rows
from simulator.trace.isr import Op

MAPPINGS = ("pim-gpt", "aim-rows")

# Operator classes of the latency breakdown (issue 4).
OP_CLASS = {"attn.qkv": "qkv", "attn.o_proj": "out_proj", "lm_head": "lm_head"}
KIND_CLASS = {"layernorm": "layernorm", "rmsnorm": "layernorm", "softmax": "softmax", "attn_score": "attn_score",
              "attn_value": "attn_value", "kv_append": "kv_append", "residual_add": "residual", "gelu": "activation",
              "silu": "activation", "swiglu": "activation", "embedding": "embedding", "add": "embedding",
              "rope": "rope", "lm_head": "lm_head"}


@dataclass(frozen=True, eq=False)
class Stage:
    """One step of a token: a device program (PIM) or an ASIC operation (cycles at the ASIC clock)."""

    name: str
    op_class: str
    program: Program | None = None
    asic_cycles: int = 0
    asic_ops: tuple[tuple[str, int], ...] = ()

    @property
    def is_pim(self) -> bool:
        return self.program is not None


@dataclass(frozen=True)
class MatrixPlacement:
    name: str
    layout: GemvLayout
    base_row: int  # within the layer block (per-layer matrices) or absolute (global ones)
    weight_bits: int  # bits per stored weight (16 unless the MAC unit supports the trace's int8/int4)
    in_bytes: int  # bytes per input element in the global buffer
    ncols_eff: np.ndarray  # MAC columns issued per segment (zero-skipping and scale overhead applied)
    skip_fraction: float

    @property
    def rows(self) -> int:
        return self.layout.rows_used


@lru_cache(maxsize=65536)
def _asic_cost(kind: str, n: int, cfg: AsicConfig, shape: tuple) -> tuple[int, tuple[tuple[str, int], ...]]:
    """(ASIC cycles, op counts) of one operation; cached, the same few shapes recur every layer and token."""
    kw = dict(shape)
    return int(asic_cycles(kind, n, cfg, **kw)), tuple(sorted(asic_op_counts(kind, n, cfg, **kw).items()))


def _full_mask(channels: int) -> int:
    return (1 << channels) - 1


class PimGptMapping:
    def __init__(self, arch: ArchConfig, trace, mapping: str = "pim-gpt", asic: AsicConfig | None = None,
                 overlap: bool = False):
        if mapping not in MAPPINGS:
            raise PimsimError(f"--mapping: must be one of {', '.join(MAPPINGS)}, got {mapping!r}")
        self.arch, self.trace, self.name = arch, trace, mapping
        self.packed = mapping == "pim-gpt"
        self.asic = asic or AsicConfig()
        self.overlap = overlap
        org = arch.organisation
        self.C, self.B = org.channels, org.banks
        self.CB = self.C * self.B
        self.cols_per_row = org.columns_per_row
        self.col_bytes = org.access_bytes
        self.row_bytes = org.row_bytes
        self.gb_bytes = org.global_buffer_bytes
        self.full = _full_mask(self.C)
        m = trace.header.model
        self.model = m
        self.layers, self.d = m.n_layers, m.d_model
        self.ops = trace.ops
        self.layer_ops = [op for op in trace.ops if op.scope == "layer"]
        self.pre_ops = [op for op in trace.ops if op.scope == "pre"]
        self.post_ops = [op for op in trace.ops if op.scope == "post"]
        attn = next((op for op in self.layer_ops if op.kind == "attn_score"), None)
        self.heads = attn.heads if attn else m.n_heads
        self.kv_heads = (attn.kv_heads or attn.heads) if attn else m.n_kv_heads
        self.hd = attn.head_dim if attn else m.head_dim
        self.ctx_limit = m.context_limit
        self._place()

    # ---------------------------------------------------------------------------------------- placement
    def _place_matrix(self, op, base_row: int) -> MatrixPlacement:
        w = next(w for w in op.weights if w.role not in ("bias", "norm_weight", "norm_bias"))
        bits = w.quant.weight_bits if w.quant.scheme != "none" else 16
        mac = self.arch.mac
        supported = {16: mac.bf16, 8: mac.int8, 4: mac.int4}.get(bits, False)
        eff_bits = bits if supported else 16
        if not mac.bf16 and eff_bits == 16:
            raise PimsimError(f"arch {self.arch.name}: mac.bf16 is false but {op.name} needs bf16 MACs "
                              "(weights not quantized to a type the MAC unit supports)")
        col_elems = self.col_bytes * 8 // eff_bits
        in_bytes = 2 if eff_bits == 16 else 1
        row_elems = self.row_bytes * 8 // eff_bits
        gb_elems = min(row_elems, self.gb_bytes // in_bytes)
        lay = gemv_layout(op.out_features, op.in_features, self.C, self.B, row_elems, col_elems, gb_elems,
                          self.packed)
        ncols = lay.seg_ncols.astype(np.int64)
        skip = 0.0
        if mac.zero_skipping:
            z = w.sparsity.zero_fraction_at.get(col_elems, 0.0)
            # all-bank commands skip a column only if it is zero in every bank at once; neurons of one
            # channel are consecutive rows of W, so a bh-row block pattern makes ceil(B/bh) independent units
            params = dict(w.sparsity.params) if w.sparsity.params else {}
            bh = int(params.get("bh", params.get("block_h", 1))) if w.sparsity.pattern == "block" else 1
            skip = z ** math.ceil(self.B / max(1, bh))
            ncols = ncols - np.floor(ncols * skip + 0.5).astype(np.int64)
        if eff_bits < 16 and w.quant.overhead_bits_per_weight > 0:
            ovh = np.ceil(lay.seg_ncols * col_elems * w.quant.overhead_bits_per_weight / (8 * self.col_bytes))
            ncols = np.minimum(self.cols_per_row, ncols + ovh.astype(np.int64))
        return MatrixPlacement(op.name, lay, base_row, eff_bits, in_bytes, ncols, skip)

    def _place(self) -> None:
        # --- per-layer block: weight matrices, then the K and V caches reserved for the full context ---
        row = 0
        self.layer_mats: dict[str, MatrixPlacement] = {}
        for op in self.layer_ops:
            if op.kind == "gemv":
                p = self._place_matrix(op, row)
                self.layer_mats[op.name] = p
                row += p.rows
        self.k_hd_cols = math.ceil(self.hd * 2 / self.col_bytes)
        self.k_per_row = max(1, self.cols_per_row // self.k_hd_cols)
        self.slots_max = math.ceil(self.ctx_limit / self.CB)
        self.k_base = row
        self.k_rows = math.ceil(self.slots_max * self.kv_heads / self.k_per_row)
        row += self.k_rows
        self.kv_dim = self.kv_heads * self.hd
        self.v_layout = gemv_layout(self.kv_dim, self.ctx_limit, self.C, self.B, self.row_bytes // 2,
                                    self.col_bytes // 2, self.gb_bytes // 2, self.packed)
        self.v_base = row
        row += self.v_layout.rows_used
        self.layer_rows = row
        # --- once-per-model tables: LM head (shares the token embedding when tied), position embeddings ---
        row = self.layers * self.layer_rows
        lm = next(op for op in self.post_ops if op.kind == "lm_head")
        self.lm = self._place_matrix(lm, row)
        row += self.lm.rows
        self.tables: dict[str, tuple[GemvLayout, int]] = {}
        lm_weight = next(w for w in lm.weights if w.role not in ("bias",))
        for op in self.pre_ops:
            if op.kind != "embedding":
                continue
            w = op.weights[0]
            if lm_weight.tied_to == w.name:
                self.tables[op.name] = (self.lm.layout, self.lm.base_row)
            else:
                lay = gemv_layout(w.shape[0], w.shape[1], self.C, self.B, self.row_bytes // 2, self.col_bytes // 2,
                                  self.gb_bytes // 2, self.packed)
                self.tables[op.name] = (lay, row)
                row += lay.rows_used
        self.total_rows = row
        org = self.arch.organisation
        if self.total_rows > org.rows:
            need = self.total_rows * self.row_bytes * self.CB
            have = org.rows * self.row_bytes * self.CB
            raise PimsimError(
                f"{self.model.name}: needs {need / 2**30:.2f} GiB ({self.total_rows} rows per bank: weights + KV "
                f"cache for {self.ctx_limit} tokens) but {self.arch.name} has {have / 2**30:.2f} GiB "
                f"({org.rows} rows per bank x {self.B} banks x {self.C} channels); add channels, e.g. "
                f"--set organisation.channels={self.C * 2}")
        self._layer_program_cache: dict = {}

    # ---------------------------------------------------------------------------------------- programs
    def _gemv_program(self, p: MatrixPlacement) -> Program:
        lay, b = p.layout, ProgramBuilder()
        for ps in range(lay.n_passes):
            gb_cols = math.ceil(int(lay.pass_k1[ps] - lay.pass_k0[ps]) * p.in_bytes / self.col_bytes)
            b.add(Op.WR_GB, gb_cols, self.full)
            for s in np.nonzero(lay.seg_pass == ps)[0]:
                if p.ncols_eff[s] > 0:  # a segment whose columns are all zero is skipped entirely
                    b.add(Op.MAC_ABK, p.ncols_eff[s], self.full, 0, p.base_row + int(lay.seg_row[s]))
                    b.add(Op.RD_MAC, 0, self.full)
        return b.build()

    def weight_program(self, layer: int, name: str) -> Program:
        key = (layer, name)
        prog = self._layer_program_cache.get(key)
        if prog is None:
            if name == "lm_head":
                prog = self._gemv_program(self.lm)
            else:
                prog = self._gemv_program(self.layer_mats[name]).shifted(layer * self.layer_rows)
            self._layer_program_cache[key] = prog
        return prog

    def k_row(self, slot, kvh):
        return (slot * self.kv_heads + kvh) // self.k_per_row

    @lru_cache(maxsize=4096)
    def _score_rel(self, ctx: int) -> Program:
        """q . K^T for every head over ctx keys (rows relative to the layer's K region)."""
        H, G, hd = self.heads, self.kv_heads, self.hd
        g = max(1, H // G)
        hp = max(1, min(H, (self.gb_bytes // 2) // hd))  # heads whose q fits the global buffer at once
        n_slots = math.ceil(ctx / self.CB)
        parts = []
        for h0 in range(0, H, hp):
            hs = np.arange(h0, min(H, h0 + hp))
            wr = np.array([[Op.WR_GB, math.ceil(len(hs) * hd * 2 / self.col_bytes), self.full, 0, 0]], np.int64)
            slots = np.repeat(np.arange(n_slots), len(hs))
            heads = np.tile(hs, n_slots)
            rows = self.k_base + self.k_row(slots, heads // g)
            n = len(rows)
            mac = np.column_stack([np.full(n, Op.MAC_ABK), np.full(n, self.k_hd_cols), np.full(n, self.full),
                                   np.zeros(n, np.int64), rows])
            rd = np.column_stack([np.full(n, Op.RD_MAC), np.zeros(n, np.int64), np.full(n, self.full),
                                  np.zeros(n, np.int64), np.zeros(n, np.int64)])
            body = np.empty((2 * n, 5), np.int64)
            body[0::2], body[1::2] = mac, rd
            parts.append(wr)
            parts.append(body)
        return from_rows(np.concatenate(parts))

    @lru_cache(maxsize=4096)
    def _value_rel(self, ctx: int) -> Program:
        """probabilities . V: each V neuron accumulates over the ctx positions of its head (all passes),
        then one read-out; GQA heads sharing a KV head repeat with their own probabilities."""
        lay, g = self.v_layout, max(1, self.heads // self.kv_heads)
        used = math.ceil(ctx / lay.gb_elems)
        b = ProgramBuilder()
        for q in range(lay.n_slots):
            for _ in range(g):
                for p in range(used):
                    n = min(ctx - p * lay.gb_elems, lay.gb_elems)
                    cols = math.ceil(n / lay.col_elems)
                    b.add(Op.WR_GB, cols, self.full)
                    b.add(Op.MAC_ABK, cols, self.full, 0, self.v_base + int(lay.seg_row[lay.segment_index(p, q)]))
                b.add(Op.RD_MAC, 0, self.full)
        return b.build()

    @lru_cache(maxsize=8192)
    def _append_rel(self, ctx: int) -> Program:
        t = ctx - 1
        slot, ch, bank = t // self.CB, (t % self.CB) // self.B, t % self.B
        b = ProgramBuilder()
        # v_t first (every channel alike), then k_t (one channel): the fast engine keeps the channels in
        # one state class through the long v_t part
        # v_t: one element per V neuron, i.e. one column copy into every bank, for every neuron slot
        lay = self.v_layout
        p = t // lay.gb_elems
        targets = [(q, bk) for q in range(lay.n_slots) for bk in range(self.B)]
        for i in range(0, len(targets), self.cols_per_row):
            chunk = targets[i:i + self.cols_per_row]
            b.add(Op.WR_GB, len(chunk), self.full)
            for q, bk in chunk:
                b.add(Op.COPY_GBBK, 1, self.full, bk, self.v_base + int(lay.seg_row[lay.segment_index(p, q)]))
        # k_t: into one bank of one channel, one segment per KV head
        heads_per_gb = max(1, self.cols_per_row // self.k_hd_cols)
        for h0 in range(0, self.kv_heads, heads_per_gb):
            hs = range(h0, min(self.kv_heads, h0 + heads_per_gb))
            b.add(Op.WR_GB, len(hs) * self.k_hd_cols, 1 << ch)
            for h in hs:
                b.add(Op.COPY_GBBK, self.k_hd_cols, 1 << ch, bank, self.k_base + self.k_row(slot, h))
        return b.build()

    def _lookup_program(self, table: str, index: int) -> Program:
        """Conventional reads of one embedding row (neuron `index` of the table's layout)."""
        lay, base = self.tables[table]
        slot, r = divmod(index, self.CB)
        ch, bank = divmod(r, self.B)
        b = ProgramBuilder()
        for p in range(lay.n_passes):
            s = lay.segment_index(p, slot)
            for _ in range(int(lay.seg_ncols[s])):
                b.add(Op.R_MEM, 0, 1 << ch, bank, base + int(lay.seg_row[s]))
        return b.build()

    # ---------------------------------------------------------------------------------------- stages
    def _asic(self, name: str, cls: str, kind: str, n: int, **shape) -> Stage:
        cyc, ops = _asic_cost(kind, n, self.asic, tuple(sorted(shape.items())))
        return Stage(name, cls, asic_cycles=cyc, asic_ops=ops)

    def _gemv_stages(self, name: str, cls: str, op, prog: Program, place: MatrixPlacement) -> list[Stage]:
        out = [Stage(name, cls, program=prog)]
        passes = place.layout.n_passes
        if passes > 1:  # with overlap, reductions of earlier passes hide under later MACs: only the last shows
            out.append(self._asic(name + ".reduce", cls, "partial_sum", op.out_features,
                                  partials=2 if self.overlap else passes))
        if getattr(op, "bias", False):
            out.append(self._asic(name + ".bias", cls, "bias_add", op.out_features))
        return out

    def token_stages(self, ctx: int) -> list[Stage]:
        """Everything the system does to generate one token whose KV cache holds `ctx` keys afterwards."""
        if not 1 <= ctx <= self.ctx_limit:
            raise PimsimError(f"context {ctx}: must be in 1..{self.ctx_limit} for {self.model.name}")
        st: list[Stage] = []
        for op in self.pre_ops:
            if op.kind == "embedding":
                index = (ctx - 1) if "position" in op.name else (ctx - 1) % op.weights[0].shape[0]
                st.append(Stage(op.name, "embedding", program=self._lookup_program(op.name, index)))
            elif op.kind == "add":
                st.append(self._asic(op.name, "embedding", "vec_add", self.d))
        score, value, append = self._score_rel(ctx), self._value_rel(ctx), self._append_rel(ctx)
        for layer in range(self.layers):
            off = layer * self.layer_rows
            for op in self.layer_ops:
                name = f"layer{layer}.{op.name}"
                kind = op.kind
                if kind == "gemv":
                    cls = OP_CLASS.get(op.name, "ffn")
                    st += self._gemv_stages(name, cls, op, self.weight_program(layer, op.name),
                                            self.layer_mats[op.name])
                elif kind == "attn_score":
                    st.append(Stage(name, "attn_score", program=score.shifted(off)))
                elif kind == "attn_value":
                    st.append(Stage(name, "attn_value", program=value.shifted(off)))
                elif kind == "kv_append":
                    st.append(Stage(name, "kv_append", program=append.shifted(off)))
                elif kind == "softmax":
                    st.append(self._asic(name, "softmax", "softmax", ctx, rows=self.heads))
                elif kind in ("layernorm", "rmsnorm"):
                    st.append(self._asic(name, "layernorm", kind, self.d))
                elif kind == "residual_add":
                    st.append(self._asic(name, "residual", "residual_add", self.d))
                elif kind in ("gelu", "silu", "swiglu"):
                    n = op.elements(ctx) if kind != "swiglu" else op.elements(ctx) // 2
                    st.append(self._asic(name, "activation", kind, max(1, n)))
                elif kind == "rope":  # x*cos + rot(x)*sin on q and k: three vector passes [D]
                    n = (self.heads + self.kv_heads) * self.hd
                    s = self._asic(name, "rope", "vec_add", n)
                    st.append(Stage(name, "rope", asic_cycles=3 * s.asic_cycles,
                                    asic_ops=tuple((k, 3 * v) for k, v in s.asic_ops)))
                else:
                    raise PimsimError(f"{self.trace_source}: op kind {kind!r} ({op.name}) has no PIM-GPT mapping")
        for op in self.post_ops:
            if op.kind in ("layernorm", "rmsnorm"):
                st.append(self._asic(op.name, "layernorm", op.kind, self.d))
            elif op.kind == "lm_head":
                st += self._gemv_stages(op.name, "lm_head", op, self.weight_program(-1, "lm_head"), self.lm)
        return st

    @property
    def trace_source(self) -> str:
        return getattr(self.trace, "source", self.model.name)

    def program_for_reference(self, contexts: list[int], delay_cycles) -> Program:
        """All tokens as one instruction stream (ASIC stages as host DELAYs) for the command-by-command mode."""
        parts = []
        for ctx in contexts:
            for s in self.token_stages(ctx):
                if s.is_pim:
                    parts.append(s.program)
                else:
                    parts.append(from_rows([(Op.DELAY, delay_cycles(s.asic_cycles), 0, 0, 0)]))
        parts.append(from_rows([(Op.EOC, 0, self.full, 0, 0)]))
        return concat(parts)
