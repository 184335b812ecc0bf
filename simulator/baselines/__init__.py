"""GPU and CPU baselines: an event-driven model of batch-1 decode (per-kernel roofline + the software
stack's host costs, in SimPy), shipped presets with sourced parameters, a measured `local` preset, and
measurement of HF transformers decode (docs/baselines.md).

    from simulator.baselines import load_preset, model_shape, predict, workload_from_model
    wl = workload_from_model(model_shape("gpt2-xl"), 1024, "fp16", stack="hf-generate")
    res = predict(load_preset("t4"), wl, stack="hf-generate")
"""

from simulator.baselines.model import BaselineResult, closed_form, predict
from simulator.baselines.presets import (
    BaselinePreset,
    corner,
    list_presets,
    load_preset,
)
from simulator.baselines.profile import (
    MeasuredProfile,
    load_profile,
    profile_result,
    save_profile,
)
from simulator.baselines.stacks import DEFAULT_STACK, STACKS, Stack, get_stack
from simulator.baselines.workload import (
    BaselineOp,
    ModelShape,
    model_shape,
    shape_from_config,
    totals,
    workload_from_model,
    workload_from_trace,
)

__all__ = [
    "DEFAULT_STACK", "STACKS", "BaselineOp", "BaselinePreset", "BaselineResult", "MeasuredProfile", "ModelShape",
    "Stack", "closed_form", "corner", "get_stack", "list_presets", "load_preset", "load_profile", "model_shape",
    "predict", "profile_result", "save_profile", "shape_from_config", "totals", "workload_from_model",
    "workload_from_trace",
]
