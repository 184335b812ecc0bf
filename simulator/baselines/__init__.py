"""GPU and CPU baselines: an analytic model of batch-1 decode (roofline + software overheads), shipped
presets with sourced parameters, a measured `local` preset, and measurement of HF transformers decode.

    from simulator.baselines import load_preset, model_shape, predict, workload_from_model
    res = predict(load_preset("t4"), workload_from_model(model_shape("gpt2-xl"), 1024, "fp16"))
"""

from simulator.baselines.model import BaselineResult, predict
from simulator.baselines.presets import BaselinePreset, list_presets, load_preset
from simulator.baselines.profile import MeasuredProfile, load_profile, profile_result, save_profile
from simulator.baselines.workload import (
    BaselineOp, ModelShape, model_shape, shape_from_config, totals, workload_from_model, workload_from_trace,
)

__all__ = [
    "BaselineOp", "BaselinePreset", "BaselineResult", "MeasuredProfile", "ModelShape", "list_presets",
    "load_preset", "load_profile", "model_shape", "predict", "profile_result", "save_profile",
    "shape_from_config", "totals", "workload_from_model", "workload_from_trace",
]
