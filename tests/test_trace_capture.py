"""Capture cross-check: the ATen ops of a real HF decode step (meta device) equal the derived trace."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from simulator.trace import derive_trace, get_model  # noqa: E402
from simulator.trace.capture import capture_signature, trace_signature  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.mark.parametrize("name", ["gpt2-small", "gpt2-xl", "smollm2-135m", "gpt3-xl"])
@pytest.mark.parametrize("ctx", [1, 9])
def test_captured_equals_derived(name, ctx):
    captured = capture_signature(get_model(name), ctx)
    derived = trace_signature(derive_trace(name), ctx)
    assert len(captured) == len(derived)
    for i, (c, d) in enumerate(zip(captured, derived)):
        assert c == d, f"op {i}: captured {c} != derived {d}"
