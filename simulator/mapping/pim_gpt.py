"""Mapping: from a pimtrace operator trace to each token's dependency graph of PIM tiles and ASIC jobs.

`PimGptMapping` implements the PIM-GPT dataflow (docs/system.md, "Mapping"):
- every weight matrix (fused W_QKV, W_O, FFN up/gate, FFN down, LM head) is placed by
  `simulator.mapping.layout.gemv_layout`: one output neuron per bank, neurons spread over all banks of all
  channels, fan-in tiled into global-buffer passes, partial sums added by the ASIC;
- per pass, the input chunk is broadcast into every channel's global buffer (WR_GB over each channel's link),
  then each segment is one all-bank MAC (MAC_ABK) followed by a read-out of the 16 accumulators (RD_MAC);
- the K cache is row-major (one key vector per bank segment, keys of consecutive tokens in consecutive
  banks), the V cache column-major (one V "neuron" (head, dim) per bank, positions along its row); both are
  reserved for the full context when the model is loaded;
- kv_append writes k_t into one bank (WR_GB + COPY_GBBK), then v_t into every V neuron's row, in the form
  `kv.v_append` selects (docs/system.md 'KV append'): `single` (one masked column copy per neuron row with its
  own ACT/WRCP/PRE, docs/system.md [D]), `allbank` (one all-bank open per V row, then one masked copy per bank) or
  `buffered` (the ASIC keeps v of the last `kv.v_buffer_tokens` tokens, computes their share of p . V itself
  and flushes whole columns every `v_buffer_tokens` tokens);
- embedding rows are read with conventional reads; layernorm, softmax, GELU, residuals, biases, RoPE and
  partial-sum reduction run on the ASIC.
`packed=False` gives the AiM/CENT-style alternative ("aim-rows"): every segment starts a new row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simulator.asic import AsicConfig, asic_op_counts
from simulator.asic.units import (
    Pass,
    UnitPool,
    activation_stages,
    operator_passes,
    stream_suffix,
    units_from_config,
)
from simulator.config.schema import ArchConfig
from simulator.errors import PimsimError
from simulator.mapping.layout import GemvLayout, gemv_layout
from simulator.mapping.tiles import AsicJob, PimTile, Readouts
from simulator.system.program import Program, ProgramBuilder, from_rows
from simulator.trace.isr import Op

MAPPINGS = ("pim-gpt", "aim-rows")

# Operator classes of the latency breakdown (issue 4).
OP_CLASS = {"attn.qkv": "qkv", "attn.o_proj": "out_proj", "lm_head": "lm_head"}
KIND_CLASS = {"layernorm": "layernorm", "rmsnorm": "layernorm", "softmax": "softmax", "attn_score": "attn_score",
              "attn_value": "attn_value", "kv_append": "kv_append", "residual_add": "residual", "gelu": "activation",
              "silu": "activation", "swiglu": "activation", "embedding": "embedding", "add": "embedding",
              "rope": "rope", "lm_head": "lm_head"}


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
def _op_counts(kind: str, n: int, cfg: AsicConfig, shape: tuple) -> tuple[tuple[str, int], ...]:
    """Element operations of one ASIC operator (energy); cached, the same few shapes recur every layer."""
    return tuple(sorted(asic_op_counts(kind, n, cfg, **dict(shape)).items()))


def _cut_at_loads(prog: Program) -> list[Program]:
    """The program cut before every global-buffer load (WR_GB) but its first instruction."""
    cuts = [int(i) for i in np.nonzero(prog.op == Op.WR_GB)[0] if i > 0] + [len(prog)]
    r, lo = [], 0
    for hi in cuts:
        if hi > lo:
            r.append(Program(*(getattr(prog, f)[lo:hi] for f in ("op", "opsize", "mask", "bank", "row"))))
        lo = hi
    return r


def _full_mask(channels: int) -> int:
    return (1 << channels) - 1


class PimGptMapping:
    def __init__(self, arch: ArchConfig, trace, mapping: str = "pim-gpt", asic: AsicConfig | None = None):
        if mapping not in MAPPINGS:
            raise PimsimError(f"--mapping: must be one of {', '.join(MAPPINGS)}, got {mapping!r}")
        self.arch, self.trace, self.name = arch, trace, mapping
        self.packed = mapping == "pim-gpt"
        self.asic = asic or AsicConfig()
        self._pool = UnitPool(units_from_config(self.asic))  # issue windows of stream passes
        self._readout_cache: dict = {}
        self._window_cache: dict = {}
        self._templates: dict = {}
        self._chunk_cache: dict = {}
        self._layer_copies: dict = {}  # id(program) -> (program, its copy in every layer block); bounded
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
        self._value_out_passes = (Pass(self._VALUE_OUT, self.heads * self.hd),)
        kv = arch.kv
        self.v_append = kv.v_append
        self.v_buffer = kv.v_buffer_tokens if kv.v_append == "buffered" else 1
        if self.v_append == "buffered" and self.v_buffer % (self.col_bytes // 2):
            raise PimsimError(f"arch {arch.name}: kv.v_buffer_tokens: must be a multiple of {self.col_bytes // 2} "
                              f"(bf16 values per {self.col_bytes} B column, so a flush writes whole columns), "
                              f"got {self.v_buffer}")
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

    def _score_rel(self, ctx: int) -> Program:
        """q . K^T for every head over ctx keys (rows relative to the layer's K region). The program depends on
        ctx only through the key slots it covers: one program object per slot count."""
        return self._score_slots(math.ceil(ctx / self.CB) * self.CB)

    @lru_cache(maxsize=4096)
    def _score_slots(self, ctx: int) -> Program:
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

    def _value_rel(self, ctx: int) -> Program:
        """probabilities . V: each V neuron accumulates over the ctx positions of its head (all passes),
        then one read-out; GQA heads sharing a KV head repeat with their own probabilities. The program depends
        on ctx only through the passes used and the columns of the last one: one program object per such
        pair (built for the largest ctx that has it)."""
        lay = self.v_layout
        used = math.ceil(ctx / lay.gb_elems)
        last_cols = math.ceil((ctx - (used - 1) * lay.gb_elems) / lay.col_elems)
        return self._value_cols((used - 1) * lay.gb_elems + last_cols * lay.col_elems)

    @lru_cache(maxsize=4096)
    def _value_cols(self, ctx: int) -> Program:
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
        """kv_append of the token whose KV cache holds `ctx` keys afterwards (rows relative to the layer block):
        k_t, then v_t (the design's order, docs/system.md 'KV append'; nothing in the data flow asks for
        another). In `buffered` mode v_t only enters the ASIC's buffer; every `v_buffer_tokens`-th token
        flushes the buffer's whole columns."""
        t = ctx - 1
        b = ProgramBuilder()
        self._append_k(b, t)
        if self.v_append != "buffered":
            self._append_v(b, t, 1)
        elif (t + 1) % self.v_buffer == 0:
            self._append_v(b, t + 1 - self.v_buffer, self.v_buffer)
        return b.build()

    def _append_k(self, b: ProgramBuilder, t: int) -> None:
        """k_t into one bank of one channel, one segment (whole columns) per KV head."""
        slot, ch, bank = t // self.CB, (t % self.CB) // self.B, t % self.B
        heads_per_gb = max(1, self.cols_per_row // self.k_hd_cols)
        for h0 in range(0, self.kv_heads, heads_per_gb):
            hs = range(h0, min(self.kv_heads, h0 + heads_per_gb))
            b.add(Op.WR_GB, len(hs) * self.k_hd_cols, 1 << ch)
            for h in hs:
                b.add(Op.COPY_GBBK, self.k_hd_cols, 1 << ch, bank, self.k_base + self.k_row(slot, h))

    def _append_v(self, b: ProgramBuilder, t0: int, n: int) -> None:
        """Positions t0 .. t0+n-1 of every V neuron (all channels alike): per neuron row, the columns holding
        them go GB -> bank. n = 1 writes one 2 B element of a 32 B column (a masked write, docs/system.md);
        `single` opens each bank's row on its own (ACT/WRCP/PRE per bank), the others open the row in all
        banks at once (COPY_GBBK_AB: PREA/ACT16 once, then a row-hit WRCP per bank)."""
        lay = self.v_layout
        for p in range(t0 // lay.gb_elems, (t0 + n - 1) // lay.gb_elems + 1):
            lo, hi = max(t0, p * lay.gb_elems), min(t0 + n, (p + 1) * lay.gb_elems)
            cols = (hi - 1) // lay.col_elems - lo // lay.col_elems + 1  # columns of the row segment touched
            b.rows.extend(self._v_segment_rows(p, cols))

    @lru_cache(maxsize=256)
    def _v_segment_rows(self, p: int, cols: int) -> tuple:
        """The instruction rows writing `cols` columns of V pass p's row segment of every V neuron (the same
        for every token of the pass: cached)."""
        lay = self.v_layout
        op = Op.COPY_GBBK if self.v_append == "single" else Op.COPY_GBBK_AB
        gb_cols = self.gb_bytes // self.col_bytes
        b = ProgramBuilder()
        targets = [(q, bk) for q in range(lay.n_slots) for bk in range(self.B)]
        per_chunk = max(1, gb_cols // cols)
        for i in range(0, len(targets), per_chunk):
            chunk = targets[i:i + per_chunk]
            b.add(Op.WR_GB, len(chunk) * cols, self.full)
            for q, bk in chunk:
                b.add(op, cols, self.full, bk, self.v_base + int(lay.seg_row[lay.segment_index(p, q)]))
        return tuple(b.rows)

    def v_buffered(self, ctx: int) -> int:
        """Positions whose v sits in the ASIC's buffer (not yet in PIM) after this token's append."""
        return ctx % self.v_buffer if self.v_append == "buffered" else 0

    def v_pending(self, ctx: int) -> int:
        """Cached positions (before the current token) whose v is still in the ASIC's buffer when this token's
        p . V runs: the current token's own K/V write (a flush among them) runs in the PIM's idle time after it
        (docs/system.md 'Token graph'), so its p . V sees the buffer as the previous token left it."""
        return (ctx - 1) % self.v_buffer if self.v_append == "buffered" else 0

    def _lookup_program(self, table: str, index: int) -> Program:
        """Conventional reads of one embedding row (neuron `index` of the table's layout)."""
        lay, base = self.tables[table]
        slot, r = divmod(index, self.CB)
        ch, bank = divmod(r, self.B)
        segs = np.arange(lay.n_passes) * lay.n_slots + slot  # lay.segment_index(p, slot) for every pass p
        rows = np.repeat(base + lay.seg_row[segs], lay.seg_ncols[segs])  # one read per column, pass by pass
        n = len(rows)
        return Program(np.full(n, int(Op.R_MEM), np.int64), np.zeros(n, np.int64), np.full(n, 1 << ch, np.int64),
                       np.full(n, bank, np.int64), rows.astype(np.int64))

    # ---------------------------------------------------------------------------------------- graph
    def _job(self, name: str, cls: str, kind: str, n: int, deps, rows: int = 1, stream: int = -1,
             stream_suffix=None, passes=None, count_kind: str | None = None, count_shape=()) -> AsicJob:
        passes = operator_passes(kind, n, rows) if passes is None else passes
        ops = _op_counts(count_kind or kind, n, self.asic, tuple(count_shape) or (("rows", rows),))
        return AsicJob(name, cls, passes, tuple(deps), stream, stream_suffix, ops)

    def _gemv_readouts(self, place: MatrixPlacement, prog: Program) -> Readouts:
        """Read-outs of a GEMV tile: one RD_MAC per issued segment, the segment's valid neurons each."""
        key = ("gemv", place.name)
        r = self._readout_cache.get(key)
        if r is None:
            lay = place.layout
            segs = [s for ps in range(lay.n_passes) for s in np.nonzero(lay.seg_pass == ps)[0]
                    if place.ncols_eff[s] > 0]
            n = np.array([int((lay.seg_neuron[:, :, s] >= 0).sum()) for s in segs], np.int64)
            final = np.array([int(lay.seg_pass[s]) == lay.n_passes - 1 for s in segs], bool)
            r = Readouts(np.nonzero(prog.op == Op.RD_MAC)[0], n, final)
            self._readout_cache[key] = r
        return r

    def _stream_suffix(self, readouts: Readouts, partial: tuple, final: tuple) -> np.ndarray:
        """Suffix sums of the ASIC issue cycles the consumer's first pass needs per read-out (cached per
        read-out pattern; simulator/asic/units.py `stream_suffix`)."""
        key = (id(readouts), partial, final)
        w = self._window_cache.get(key)
        if w is None:
            wp, wf = {}, {}
            out = []
            for n, f in zip(readouts.elements.tolist(), readouts.final.tolist()):
                st, memo = (final, wf) if f else (partial, wp)
                if n not in memo:
                    memo[n] = self._pool.window(Pass(st, n), n)
                out.append(memo[n])
            w = stream_suffix(np.array(out, np.float64))
            self._window_cache[key] = (readouts, w)
        else:
            w = w[1]
        return w

    def _gemv_nodes(self, g: list, name: str, cls: str, op, prog: Program, place: MatrixPlacement, deps,
                    act: str | None = None) -> int:
        """A GEMV tile and the ASIC stream that consumes its read-outs: partial sums accumulate as they arrive;
        a read-out of the last fan-in pass completes its outputs, which get the bias and, when the next
        operator is an activation (`act`), the activation at once. Returns the index of the stream job."""
        ro = self._gemv_readouts(place, prog)
        g.append(PimTile(name, cls, prog, tuple(deps), readouts=ro))
        tile = len(g) - 1
        passes = place.layout.n_passes
        partial = (("valu", 1),)
        final = (("valu", 1),) if passes > 1 else ()
        if getattr(op, "bias", False):
            final = final + (("valu", 1),)
        if act:
            final = final + activation_stages(act)
        if cls == "lm_head":
            final = final + (("reduce", 1),)  # running argmax over the logits
        if not final:
            final = (("valu", 1),)  # the read-out written into the activation buffer
        window = self._stream_suffix(ro, partial, final)
        n_out = op.out_features
        count_kind, shape = ("partial_sum", (("partials", passes),)) if passes > 1 else ("vec_add", ())
        job = AsicJob(name + (f"+{act}" if act else "") + ".out", "activation" if act else cls,
                      (Pass(final, n_out),), (tile,), tile, window,
                      _op_counts(count_kind, n_out, self.asic, shape or (("rows", 1),)))
        g.append(job)
        return len(g) - 1

    def _score_readouts(self, ctx: int, prog: Program) -> Readouts:
        key = ("score", ctx)
        r = self._readout_cache.get(key)
        if r is None:
            hp = max(1, min(self.heads, (self.gb_bytes // 2) // self.hd))
            n = []
            for h0 in range(0, self.heads, hp):
                for slot in range(math.ceil(ctx / self.CB)):
                    n += [min(self.CB, ctx - slot * self.CB)] * len(range(h0, min(self.heads, h0 + hp)))
            r = Readouts(np.nonzero(prog.op == Op.RD_MAC)[0], np.array(n, np.int64), np.ones(len(n), bool))
            self._readout_cache[key] = r
        return r

    def _value_readouts(self, ctx: int, prog: Program) -> Readouts:
        key = ("value", id(prog))  # the elements do not depend on ctx; the read-out positions on the program
        got = self._readout_cache.get(key)
        if got is None or got[0] is not prog:
            lay, g = self.v_layout, max(1, self.heads // self.kv_heads)
            n = [int((lay.seg_neuron[:, :, lay.segment_index(0, q)] >= 0).sum()) for q in range(lay.n_slots)
                 for _ in range(g)]
            got = (prog, Readouts(np.nonzero(prog.op == Op.RD_MAC)[0], np.array(n, np.int64), np.ones(len(n), bool)))
            self._readout_cache[key] = got
        return got[1]

    # ctx-dependent nodes. A family is one kind of them (e.g. the score tile of every layer): `parts(ctx)` gives
    # what its nodes are made of, the same cached objects while they do not change; make(ctx, parts, ...) one
    # node. `token_graph` remakes a family's nodes only when a part is not the last token's object (a node is
    # immutable and fully determined by its parts and its place in the graph).
    def _embed_tile(self, ctx: int, parts, op) -> PimTile:  # parts: None, a new row every token
        index = (ctx - 1) if "position" in op.name else (ctx - 1) % op.weights[0].shape[0]
        return PimTile(op.name, "embedding", self._lookup_program(op.name, index), kind="embedding")

    def _append_chunks(self, ctx: int) -> list[Program]:
        """The K/V write of one token cut at its global-buffer loads, so the pieces fill short idle gaps."""
        r = self._chunk_cache.get(ctx)
        if r is None:
            # `_append_rel(ctx)` cut piece by piece: its K part and each V row segment start with a global-buffer
            # load, so they are cut apart; the V pieces are the same for every token of a V pass (cached, and so
            # are their copies per layer). tests/test_kv_append_readout.py checks the pieces against the whole.
            t = ctx - 1
            b = ProgramBuilder()
            self._append_k(b, t)
            r = _cut_at_loads(b.build())
            if self.v_append != "buffered":
                r += self._v_pieces(t, 1)
            elif (t + 1) % self.v_buffer == 0:
                r += self._v_pieces(t + 1 - self.v_buffer, self.v_buffer)
            self._chunk_cache = {ctx: r}
        return r

    def _v_pieces(self, t0: int, n: int) -> list[Program]:
        """`_append_v(b, t0, n)` cut at its global-buffer loads."""
        lay = self.v_layout
        out = []
        for p in range(t0 // lay.gb_elems, (t0 + n - 1) // lay.gb_elems + 1):
            lo, hi = max(t0, p * lay.gb_elems), min(t0 + n, (p + 1) * lay.gb_elems)
            cols = (hi - 1) // lay.col_elems - lo // lay.col_elems + 1
            out += self._v_segment_pieces(p, cols)
        return out

    @lru_cache(maxsize=256)
    def _v_segment_pieces(self, p: int, cols: int) -> list[Program]:
        return _cut_at_loads(from_rows(self._v_segment_rows(p, cols)))

    def _in_layers(self, prog: Program) -> list[Program]:
        """prog.shifted(off) for every layer block offset, made at once and kept while later tokens reuse the
        program (score and p . V programs change every few tokens, a V write piece once per V pass)."""
        got = self._layer_copies.get(id(prog))
        if got is None or got[0] is not prog:
            if len(self._layer_copies) >= 64:
                self._layer_copies.clear()
            got = (prog, prog.shifted_many(np.arange(self.layers, dtype=np.int64) * self.layer_rows))
            self._layer_copies[id(prog)] = got
        return got[1]

    def _append_parts(self, ctx: int, j: int) -> tuple:
        return (self._in_layers(self._append_chunks(ctx)[j]),)  # a V piece: the same program all its V pass

    def _append_tile(self, ctx: int, parts, name: str, layer: int, deps) -> PimTile:
        return PimTile(name, "kv_append", parts[0][layer], deps, shadow=True, kind="kv_write")

    def _score_parts(self, ctx: int) -> tuple:
        prog = self._score_rel(ctx - 1)
        return self._in_layers(prog), self._score_readouts(ctx - 1, prog)

    def _score_tile(self, ctx: int, parts, name: str, layer: int, deps) -> PimTile:
        return PimTile(name, "attn_score", parts[0][layer], deps, readouts=parts[1])

    def _softmax_job(self, ctx: int, parts, name: str, deps, tile: int) -> AsicJob:
        passes, win, ops = parts
        return AsicJob(name, "softmax", passes, deps, tile, win, ops)

    @lru_cache(maxsize=4)
    def _softmax_parts(self, ctx: int, streamed: bool) -> tuple:
        """(passes, stream suffix, element operations) of the softmax job, the same in every layer."""
        passes = operator_passes("softmax", ctx, self.heads)
        win = None
        if streamed:
            ro = self._score_readouts(ctx - 1, self._score_rel(ctx - 1))
            win = self._stream_suffix(ro, passes[0].stages, passes[0].stages)
        return passes, win, _op_counts("softmax", ctx, self.asic, (("rows", self.heads),))

    def _value_parts(self, ctx: int) -> tuple:
        prog = self._value_rel(ctx - 1)  # serves many tokens (with its read-outs)
        return self._in_layers(prog), self._value_readouts(ctx - 1, prog)

    def _value_tile(self, ctx: int, parts, name: str, layer: int, deps) -> PimTile:
        return PimTile(name, "attn_value", parts[0][layer], deps, readouts=parts[1])

    _VALUE_OUT = (("valu", 2),)  # + p_t * v_t of the current token, added as each read-out arrives

    def _value_out_job(self, ctx: int, parts, name: str, deps, tile: int) -> AsicJob:
        passes, win, ops = parts  # win: None when not streamed (tile -1)
        return AsicJob(name, "attn_value", passes, deps, tile, win, ops)

    @lru_cache(maxsize=4)
    def _value_out_parts(self, ctx: int, streamed: bool) -> tuple:
        """(passes, stream suffix, element operations) of the p . V output job, the same in every layer."""
        n = self.heads * self.hd
        ops = _op_counts("vec_add", n, self.asic, (("rows", 2),))
        st = self._VALUE_OUT
        passes = self._value_out_passes
        n_buf = self.v_pending(ctx)
        if n_buf:  # v rows still in the ASIC's buffer: p_j * v_j added on the ASIC (PIM sees zero p_j there)
            st = (("valu", st[0][1] + 2 * n_buf),)
            passes = (Pass(st, n),)
            axpy = dict(_op_counts("axpy", n, self.asic, (("rows", n_buf),)))
            ops = tuple(sorted((k, v + axpy.pop(k, 0)) for k, v in ops)) + tuple(sorted(axpy.items()))
        if not streamed:
            return passes, None, ops
        ro = self._value_readouts(ctx - 1, self._value_rel(ctx - 1))
        return passes, self._stream_suffix(ro, st, st), ops

    def graph_shape(self, ctx: int) -> tuple:
        """Tokens whose graphs share this key have the same nodes, dependencies and order."""
        return (ctx > 1, len(self._append_chunks(ctx)))

    def token_graph(self, ctx: int) -> list:
        """Everything the system does to generate one token whose KV cache holds `ctx` keys afterwards, as a
        dependency graph of PIM tiles and ASIC jobs (simulator/mapping/tiles.py) in program order.

        Dataflow choice [D]: the ASIC computes the current token's own attention terms (q . k_t per head and
        p_t * v_t), so the PIM's q . K^T and p . V run over the ctx - 1 cached positions and the K/V write of
        token t is only needed before token t + 1 reaches that layer: it runs in the PIM's idle time.

        A tile is one trace operator's device program (a GEMV, a score), except the K/V write, cut into
        pieces at its global-buffer loads so that it fills the PIM's short idle gaps (docs/system.md). The
        graph's shape depends on ctx only through whether any key is cached and the number of K/V write
        pieces; per shape a template is built once and the ctx-dependent nodes are rebuilt per token."""
        if not 1 <= ctx <= self.ctx_limit:
            raise PimsimError(f"context {ctx}: must be in 1..{self.ctx_limit} for {self.model.name}")
        key = self.graph_shape(ctx)
        tpl = self._templates.get(key)
        if tpl is None:
            tpl = self._templates[key] = self._build_graph(ctx)
        else:
            _remake(tpl, ctx)
        return list(tpl[0])

    def _build_graph(self, ctx: int) -> tuple[list, list]:
        """The template of ctx's graph shape: (its nodes, as of the last token, and its families of
        ctx-dependent nodes, each [parts, parts' extra arguments, make, members (index, make's arguments),
        the last token's parts])."""
        g: list = []
        families: dict = {}

        def per_ctx(parts, pargs: tuple, make, *args) -> int:
            """A node made per token: make(ctx, parts(ctx, *pargs), *args) (parts None: remade every token)."""
            g.append(None)
            families.setdefault((parts, pargs), [parts, pargs, make, [], None])[3].append((len(g) - 1, args))
            return len(g) - 1

        last = resid = -1
        embeds = []
        for op in self.pre_ops:
            if op.kind == "embedding":
                last = per_ctx(None, (), self._embed_tile, op)
                embeds.append(last)
            elif op.kind == "add":
                g.append(self._job(op.name, "embedding", "vec_add", self.d, embeds))
                last = len(g) - 1
        resid = last
        n_pieces = len(self._append_chunks(ctx))
        H, hd = self.heads, self.hd
        layer_ops = self.layer_ops
        for layer in range(self.layers):
            q_node = p_node = score_tile = -1
            for i, op in enumerate(layer_ops):
                name = f"layer{layer}.{op.name}"
                kind = op.kind
                if kind == "gemv":
                    cls = OP_CLASS.get(op.name, "ffn")
                    nxt = layer_ops[i + 1].kind if i + 1 < len(layer_ops) else None
                    act = nxt if nxt in ("gelu", "silu", "swiglu") else None
                    last = self._gemv_nodes(g, name, cls, op, self.weight_program(layer, op.name),
                                            self.layer_mats[op.name], (last,), act)
                elif kind in ("gelu", "silu", "swiglu"):
                    continue  # fused into the stream of the GEMV before it
                elif kind == "rope":
                    g.append(self._job(name, "rope", "rope", (self.heads + self.kv_heads) * hd, (last,),
                                       count_kind="vec_add", count_shape=(("rows", 3),)))
                    last = len(g) - 1
                elif kind == "kv_append":
                    for j in range(n_pieces):
                        per_ctx(self._append_parts, (j,), self._append_tile, f"{name}.{j}", layer, (last,))
                elif kind == "attn_score":
                    g.append(self._job(name + ".self", "attn_score", "dot", hd, (last,), rows=H,
                                       count_kind="vec_add", count_shape=(("rows", 2 * H),)))
                    q_node = len(g) - 1
                    if ctx > 1:
                        score_tile = per_ctx(self._score_parts, (), self._score_tile, name, layer, (last,))
                elif kind == "softmax":
                    deps = (q_node,) + ((score_tile,) if score_tile >= 0 else ())
                    last = p_node = per_ctx(self._softmax_parts, (score_tile >= 0,), self._softmax_job, name, deps,
                                           score_tile)
                elif kind == "attn_value":
                    t = -1
                    if ctx > 1:
                        t = per_ctx(self._value_parts, (), self._value_tile, name, layer, (p_node,))
                    last = per_ctx(self._value_out_parts, (t >= 0,), self._value_out_job, name + ".out",
                                   (t,) if t >= 0 else (p_node,), t)
                elif kind in ("layernorm", "rmsnorm"):
                    g.append(self._job(name, "layernorm", kind, self.d, (last,)))
                    last = len(g) - 1
                elif kind == "residual_add":
                    g.append(self._job(name, "residual", "residual_add", self.d, (last, resid)))
                    last = resid = len(g) - 1
                else:
                    raise PimsimError(f"{self.trace_source}: op kind {kind!r} ({op.name}) has no PIM-GPT mapping")
        for op in self.post_ops:
            if op.kind in ("layernorm", "rmsnorm"):
                g.append(self._job(op.name, "layernorm", op.kind, self.d, (last,)))
                last = len(g) - 1
            elif op.kind == "lm_head":
                last = self._gemv_nodes(g, op.name, "lm_head", op, self.weight_program(-1, "lm_head"), self.lm,
                                        (last,))
        tpl = (g, list(families.values()))
        _remake(tpl, ctx)
        return tpl

    @property
    def trace_source(self) -> str:
        return getattr(self.trace, "source", self.model.name)


def _remake(tpl: tuple, ctx: int) -> None:
    """Bring a template's ctx-dependent nodes to ctx: a family's nodes are remade when one of its parts is not
    the object the last token's were made of (`PimGptMapping._build_graph`)."""
    g = tpl[0]
    for fam in tpl[1]:
        parts_of, pargs, make, members, last = fam
        parts = None if parts_of is None else parts_of(ctx, *pargs)
        if parts is not None and last is not None and all(a is b for a, b in zip(parts, last)):
            continue
        fam[4] = parts
        for i, args in members:
            g[i] = make(ctx, parts, *args)
