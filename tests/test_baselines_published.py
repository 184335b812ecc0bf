"""The GPU/CPU presets against published batch-1 decode latencies (arch_configs/baselines/published/measurements.yaml).

An entry must be predicted within 25 % for the stack it used. An entry the presets miss carries `known_gap`
(why, in words); its test is a strict xfail, so a preset change that fixes it fails the test until the data
file is updated. The data file is read with yaml.safe_load and validated field by field.
"""

from __future__ import annotations

import pytest

from simulator.baselines.presets import list_presets
from simulator.baselines.published import TOLERANCE, check_entry, load_published
from simulator.errors import PimsimError

ENTRIES = load_published()


@pytest.mark.parametrize("entry", [
    pytest.param(e, id=e.id, marks=[pytest.mark.xfail(strict=True, reason=e.known_gap)] if e.known_gap else [])
    for e in ENTRIES])
def test_preset_predicts_published_latency(entry):
    r = check_entry(entry)
    assert abs(r["error"]) <= TOLERANCE, f"{entry.preset} predicts {r['predicted_ms']:.2f} ms, published {entry.ms_per_token}"


def test_entries_are_cited_and_use_shipped_presets():
    for e in ENTRIES:
        assert e.url.startswith("https://") and e.what and e.derivation
        assert e.preset in list_presets()


def test_bad_published_file_is_one_line_error(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("schema: pimsim-published-baselines/1\nentries: [{id: x}]\n")
    with pytest.raises(PimsimError, match=r"p\.yaml: entries\.0\.url"):
        load_published(f)


def test_entry_attention_code_is_read():
    """`attn` selects the attention code of the source's library version; it changes the prediction."""
    e = next(e for e in ENTRIES if e.attn == "eager-h2d")
    as_sdpa = e.model_copy(update={"attn": "sdpa"})
    assert check_entry(e)["predicted_ms"] > check_entry(as_sdpa)["predicted_ms"]


def test_bad_attention_code_is_one_line_error(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("schema: pimsim-published-baselines/1\nentries:\n"
                 "- {id: x, url: https://example.org, what: w, derivation: d, preset: t4, model: gpt2-small,\n"
                 "   dtype: fp32, context: 8, stack: hf-forward, attn: flash, ms_per_token: 1.0}\n")
    with pytest.raises(PimsimError, match=r"p\.yaml: entries\.0\.attn"):
        load_published(f)
