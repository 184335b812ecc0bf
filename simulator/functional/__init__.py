"""Functional simulation: what the PIM system computes, bit for bit (PIM GEMVs on bank images, ASIC numerics),
and the end-to-end GPT run compared with an fp32 forward. See docs/kernels.md.

    from simulator.functional import model_shape, run_functional
    res = run_functional(model_shape("gpt2-small"), tokens=32, seed=0)
"""

from simulator.functional.gemv import PimGeometry, PlacedMatrix, geometry_for, pim_gemv, place_matrix
from simulator.functional.model import ModelShape, load_weights, model_shape, random_weights
from simulator.functional.run import FunctionalResult, run_functional

__all__ = ["PimGeometry", "PlacedMatrix", "geometry_for", "pim_gemv", "place_matrix", "ModelShape", "model_shape",
           "random_weights", "load_weights", "FunctionalResult", "run_functional"]
