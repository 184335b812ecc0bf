"""Operator traces (`pimtrace/1`): schema, model zoo, derivation, reading/writing, validation, expansion.

Public API (no torch needed)::

    from simulator.trace import load_trace, save_trace, derive_trace, expand, trace_hash, MODEL_ZOO
    t = load_trace("traces/gpt2-small.pimtrace.jsonl")      # validated, frozen dataclasses
    step = expand(t, ctx=128)                               # concrete ops of one token at ctx 128

The compressing exporter (torch) lives in simulator.trace.export and is imported lazily by the CLI.
`simulator.trace.isr` (AiM ISR reader) is a separate module of the same package.
"""

from simulator.trace.derive import derive_trace
from simulator.trace.expand import ConcreteOp, ExpandedStep, expand, expand_range, step_totals
from simulator.trace.io import dumps, load_trace, save_trace, trace_hash
from simulator.trace.schema import (
    DTYPE_BITS, OP_KINDS, SCHEMA_VERSION, ZERO_FRACTION_GROUPS, Compression, Lin, MaskRef, ModelConfig, Op,
    Quantization, Sparsity, TensorSpec, Trace, TraceHeader, WeightInfo,
)
from simulator.trace.validate import Problem, validate_records
from simulator.trace.zoo import MODEL_ZOO, PIM_GPT_MODELS, get_model, param_counts

__all__ = [
    "DTYPE_BITS", "OP_KINDS", "SCHEMA_VERSION", "ZERO_FRACTION_GROUPS", "MODEL_ZOO", "PIM_GPT_MODELS",
    "Compression", "ConcreteOp", "ExpandedStep", "Lin", "MaskRef", "ModelConfig", "Op", "Problem", "Quantization",
    "Sparsity", "TensorSpec", "Trace", "TraceHeader", "WeightInfo",
    "derive_trace", "dumps", "expand", "expand_range", "get_model", "load_trace", "param_counts", "save_trace",
    "step_totals", "trace_hash", "validate_records",
]
