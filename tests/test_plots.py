"""Plots of sweep results: each kind draws the right numbers, labels, units and hashes, and saves a file."""

from __future__ import annotations

import json
import math

import pytest

from simulator.cli import main
from simulator.errors import PimsimError
from simulator.report.plots import KINDS, make_figure, pareto_front, plot
from simulator.sweep.cli_commands import load_results
from simulator.sweep.runner import run_sweep
from test_sweep_runner import FAKE, write_spec


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("PIMSIM_CODE_VERSION", "test-pinned")
    folder = tmp_path_factory.mktemp("plots")
    spec = write_spec(folder, name="plots", models=["gpt2-small", "gpt2-xl"],
                      axes=[{"key": "organisation.channels", "values": [4, 8, 16]},
                            {"name": "banks", "values": [{"organisation.bank_groups": 2},
                                                         {"organisation.bank_groups": 4}], "labels": [8, 16]},
                            {"key": "context", "values": [128, 512]},
                            {"key": "organisation.queue_depth", "values": [33, 1]}])  # half of them fail
    run_sweep(spec, folder / "out", workers=2, point_fn=FAKE, progress=False)
    mp.undo()
    return folder / "out"


@pytest.fixture(scope="module")
def results(sweep_dir):
    return load_results(sweep_dir)


def _ok(rows, **where):
    return [r for r in rows if r["status"] == "ok" and all(str(r[k]) == str(v) for k, v in where.items())]


def _caption(fig) -> str:
    getter = getattr(fig, "get_supxlabel", None)  # matplotlib >= 3.8 (?); older: the private attribute
    return getter() if getter else fig._supxlabel.get_text()


def _texts(fig):
    out = [_caption(fig)]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        legend = ax.get_legend()
        if legend:
            out += [t.get_text() for t in legend.get_texts()]
        out += [t.get_text() for t in ax.texts]
    return out


def test_energy_efficiency_curves(results):
    rows, axes, sweep = results
    fig, data = make_figure(rows, "energy-efficiency", axis_columns=axes, where={"context": 128}, sweep=sweep)
    lines = {s.label: s for s in data.series if s.panel == "tokens_per_j"}
    assert set(lines) == {"gpt2-small, banks=8", "gpt2-small, banks=16", "gpt2-xl, banks=8", "gpt2-xl, banks=16"}
    line = lines["gpt2-xl, banks=16"]
    assert line.x == (4, 8, 16)
    expect = {r["channels"]: 1 / r["energy_per_token_j"] for r in _ok(rows, model="gpt2-xl", banks=16, context=128)}
    assert line.y == pytest.approx(tuple(expect[c] for c in (4, 8, 16)))
    speed = {s.label: s for s in data.series if s.panel == "speedup.gpu"}["gpt2-xl, banks=16"]
    assert speed.y[0] < speed.y[1] < speed.y[2]  # more channels, faster
    # the lines on the axes are the series returned
    ax_ee = fig.axes[0]
    drawn = {ln.get_label(): tuple(ln.get_ydata()) for ln in ax_ee.get_lines()}
    assert drawn["gpt2-xl, banks=16"] == pytest.approx(line.y)
    texts = " ".join(_texts(fig))
    assert "tokens/J" in texts and "PIM channels" in texts and "speedup over t4 GPU (×)" in texts
    assert data.points == 12
    for h in data.config_hashes[:3]:
        assert h in data.caption
    assert all(h in data.caption for h in data.trace_hashes) and "sweep plots" in data.caption
    assert _caption(fig) == data.caption


def test_speedup_bars_per_model_vs_gpu_and_cpu(results, tmp_path):
    rows, axes, sweep = results
    where = {"context": 128, "channels": 8, "banks": 16}
    out = tmp_path / "headline.png"
    data = plot(rows, "speedup", out, axis_columns=axes, where=where)
    bars = {(s.panel, s.label): s for s in data.series}
    gpu = bars[("speedup", "vs gpu")]
    assert gpu.x == ("gpt2-small", "gpt2-xl", "geomean")
    small = _ok(rows, model="gpt2-small", **where)[0]
    assert gpu.y[0] == pytest.approx(small["speedup.gpu"])
    assert gpu.y[2] == pytest.approx(math.sqrt(gpu.y[0] * gpu.y[1]))
    cpu = bars[("energy_efficiency_gain", "vs cpu")]
    assert cpu.y[0] == pytest.approx(small["energy_efficiency_gain.cpu"])
    assert out.stat().st_size > 20_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_breakdown_stacks_components_per_token(results):
    rows, axes, _ = results
    fig, data = make_figure(rows, "breakdown", axis_columns=axes, where={"context": 128, "banks": 16})
    parts = {s.label: s for s in data.series}
    assert set(parts) == {"pim", "asic", "link"}
    r = _ok(rows, context=128, banks=16)[0]
    assert parts["pim"].y[0] == pytest.approx(r["breakdown.by_component.pim"] * 1e3)
    assert parts["pim"].x[0] == "gpt2-small, channels=4"
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert len(heights) == 3 * 6 and all(h >= 0 for h in heights)
    assert "ms per generated token" in fig.axes[0].get_title()
    _, by_op = make_figure(rows, "breakdown", axis_columns=axes, where={"context": 128}, by="op")
    assert {s.label for s in by_op.series} == {"gemv", "attention", "asic"}


def test_pareto_front(results):
    rows, axes, _ = results
    fig, data = make_figure(rows, "pareto", axis_columns=axes, where={"context": 128})
    fronts = {s.label: s for s in data.series if s.panel == "front"}
    assert set(fronts) == {"gpt2-small", "gpt2-xl"}
    pts = [(r["tokens_per_s"], r["tokens_per_j"]) for r in _ok(rows, context=128, model="gpt2-xl")]
    front = fronts["gpt2-xl"]
    for x, y in zip(front.x, front.y):  # no point beats a front point in both
        assert not any(px > x and py > y for px, py in pts)
    assert "tokens/s" in fig.axes[0].get_xlabel() and "tokens/J" in fig.axes[0].get_ylabel()
    assert any(t.get_text().startswith("channels=") for t in fig.axes[0].texts)


def test_cli_lists_every_kind():
    from simulator.sweep.cli_commands import PLOT_KINDS

    assert PLOT_KINDS == (*KINDS, "timeline")  # timeline: drawn from a `pimsim run --timeline` file


def test_pareto_front_helper():
    pts = [(1, 5), (2, 4), (2, 2), (3, 1), (0.5, 5)]
    assert pareto_front(pts) == [0, 1, 3]


def test_context_curves(results):
    rows, axes, _ = results
    fig, data = make_figure(rows, "context", axis_columns=axes, where={"banks": 16, "channels": 8})
    assert {s.label for s in data.series} == {"gpt2-small", "gpt2-xl"}
    s = data.series_by_label()["gpt2-xl"]
    assert s.x == (128, 512) and s.y[0] < s.y[1]
    assert "ms" in fig.axes[0].get_ylabel() and "context" in fig.axes[0].get_xlabel()


def test_every_kind_saves_png_and_pdf(results, tmp_path):
    rows, axes, _ = results
    for kind in KINDS:
        where = {"banks": 16, "channels": 8} if kind == "context" else {"context": 128}
        for ext in ("png", "pdf"):
            out = tmp_path / f"{kind}.{ext}"
            data = plot(rows, kind, out, axis_columns=axes, where=where)
            assert out.stat().st_size > 5_000 and data.series and data.points > 0


def test_plot_errors_are_one_line(results):
    rows, axes, _ = results
    with pytest.raises(PimsimError, match="unknown plot kind"):
        make_figure(rows, "pie")
    with pytest.raises(PimsimError, match="no finished point"):
        make_figure(rows, "speedup", where={"model": "gpt3-xl"})
    with pytest.raises(PimsimError, match="two or more context lengths"):
        make_figure(rows, "context", where={"context": 128})
    no_energy = [{k: v for k, v in r.items() if not k.startswith("energy")} | {"tokens_per_j": None} for r in rows]
    with pytest.raises(PimsimError, match="energy per token"):
        make_figure(no_energy, "pareto")
    with pytest.raises(PimsimError, match="--group-by nope"):
        make_figure(rows, "context", group_by=["nope"])


def test_cli_plot_from_dir_and_from_csv(sweep_dir, tmp_path, capsys):
    out = tmp_path / "ee.png"
    assert main(["plot", str(sweep_dir), "--kind", "energy-efficiency", "-o", str(out), "--where", "context=128",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["points"] == 12 and out.stat().st_size > 20_000 and "config" in doc["caption"]
    out2 = tmp_path / "ee_csv.png"
    assert main(["plot", str(sweep_dir / "results.csv"), "--kind", "energy-efficiency", "-o", str(out2),
                 "--where", "context=128", "--json"]) == 0
    doc2 = json.loads(capsys.readouterr().out)
    assert doc2["series"] == doc["series"]  # the CSV holds what the store holds
    assert main(["plot", str(tmp_path), "--kind", "pareto", "-o", str(out)]) == 2
    assert "no sweep results here" in capsys.readouterr().err
    assert main(["plot", str(sweep_dir), "--kind", "pareto", "-o", str(tmp_path / "x.jpg")]) == 2
