"""Write the notebooks of this folder from the cell sources below (outputs cleared), so reviews read Python.

    python notebooks/build_notebooks.py          # rewrite the .ipynb files
    python notebooks/build_notebooks.py --check  # exit 1 if a notebook differs from what this script writes

Every notebook runs top to bottom. `PIMSIM_NB_SMALL=1` shrinks each sweep to a few points (CI runs them
that way, tests/test_notebooks.py); `PIMSIM_NB_OUT` sets where sweep results go (default `out/` here);
`PIMSIM_NB_WORKERS` the local worker processes (default 2). Rerunning a notebook reuses finished points.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
import os
from pathlib import Path

import yaml
from IPython.display import Image, display

from simulator.report.plots import plot
from simulator.sweep.cli_commands import load_results
from simulator.sweep.runner import run_sweep
from simulator.sweep.spec import find_spec_file, validate_spec

SMALL = os.environ.get("PIMSIM_NB_SMALL") == "1"  # CI: a few points per sweep
OUT = Path(os.environ.get("PIMSIM_NB_OUT", "out"))
WORKERS = int(os.environ.get("PIMSIM_NB_WORKERS", "2"))


def shipped(name):
    """A shipped sweep spec (arch_configs/sweeps/NAME.yaml) as plain data, to adapt before running."""
    return yaml.safe_load(find_spec_file(name).read_text())


def run(data):
    """Validate and run a sweep spec; returns (rows, axis columns, sweep name) of its result table."""
    spec = validate_spec(data, f"<notebook sweep {data['name']}>")
    s = run_sweep(spec, OUT / spec.name, workers=WORKERS, progress=False)
    print(f"sweep {spec.name}: {s.points} points, {s.ok} ok, {s.failed} failed, {s.ran} run now -> {s.csv}")
    return load_results(OUT / spec.name)


def show(results, kind, **options):
    """Draw one kind of figure from a result table, save it as PNG next to the results, display it."""
    rows, axes, sweep = results
    path = OUT / f"{sweep}-{kind}.png"
    drawn = plot(rows, kind, path, axis_columns=axes, sweep=sweep, **options)
    display(Image(filename=str(path)))
    return drawn


def table(rows, columns, where=None):
    """Print chosen columns of the finished rows as a fixed-width table."""
    rows = [r for r in rows if r["status"] == "ok" and all(str(r.get(k)) == str(v) for k, v in (where or {}).items())]
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))
'''

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "pim_gpt_figures.ipynb": [
        ("md", """\
# Reproducing the PIM-GPT figures

PIM-GPT (Wu, Wang, Lu, arXiv 2310.09385) runs batch-1 GPT decoding on 8 GDDR6-AiM-style PIM channels of
16 banks with a small controller ASIC. This notebook simulates the paper's eight models on that system with
pimsim and draws the paper's headline figures: speedup and energy-efficiency gain over an NVIDIA T4 GPU and
an Intel Xeon Gold 6154 CPU, the latency breakdown, latency against context length, and the sensitivity to
the ASIC clock. Every figure's caption line names the config and trace hashes it shows.

Set `PIMSIM_NB_SMALL=1` for a quick run (two models, few tokens)."""),
        ("code", SETUP),
        ("md", """\
## The eight models on the PIM-GPT system (8 channels × 16 banks)
From the shipped paper grid, keep the PIM-GPT configuration and sweep the start context."""),
        ("code", '''\
grid = shipped("paper_grid_sweep")
grid.update(name="pim_gpt_models", filters={})
grid["axes"] = [{"key": "context", "values": [128, 256, 512, 1016]}]
if SMALL:
    grid.update(models=["gpt2-small", "gpt3-small"], run={**grid["run"], "tokens": 2})
    grid["axes"] = [{"key": "context", "values": [128, 512]}]
models = run(grid)'''),
        ("md", """\
## Headline: speedup and energy-efficiency gain over GPU and CPU (context 128)
Published ranges (v2 / journal): speedup 41–137× over the T4 and 631–1074× over the Xeon; energy-efficiency
gain 123–383× over the T4 and 320–602× over the Xeon (v1: 339–1085× and 890–1632×)."""),
        ("code", '''\
headline = show(models, "speedup", where={"context": 128})
table(models[0], ["model", "per_token_latency_s", "speedup.gpu", "speedup.cpu", "energy_efficiency_gain.gpu",
                  "energy_efficiency_gain.cpu", "row_hit_rate"], where={"context": 128})'''),
        ("code", '''\
published = {"speedup": {"gpu": (41, 137), "cpu": (631, 1074)},
             "energy_efficiency_gain": {"gpu": (123, 383), "cpu": (320, 602)}}
for s in headline.series:
    lo, hi = published[s.panel][s.label.split()[-1]]
    got = [y for x, y in zip(s.x, s.y) if x != "geomean"]
    print(f"{s.panel:24s} {s.label}: simulated {min(got):8.3g} .. {max(got):8.3g}   published {lo} .. {hi}")'''),
        ("md", "## Where the time goes (context 128)"),
        ("code", 'show(models, "breakdown", where={"context": 128});'),
        ("md", "## Per-token latency against context length"),
        ("code", 'show(models, "context");'),
        ("md", """\
## ASIC clock sensitivity
The paper reports that lowering the ASIC clock from 1 GHz to 100 MHz costs at most 20 % latency."""),
        ("code", '''\
clock = {"name": "asic_clock", "arch": "pim_gpt", "models": grid["models"], "run": {**grid["run"], "context": 128},
         "axes": [{"key": "asic.clock_ghz", "values": [1.0, 0.5, 0.1] if not SMALL else [1.0, 0.1]}]}
clock_rows, _, _ = run(clock)
for model in clock["models"]:
    lat = {r["clock_ghz"]: r["per_token_latency_s"] for r in clock_rows if r["model"] == model and r["status"] == "ok"}
    print(f"{model:12s} 100 MHz vs 1 GHz: {lat[0.1] / lat[1.0]:.2f}x the per-token latency")'''),
    ],
    "channel_bank_sweep.ipynb": [
        ("md", """\
# Channels × banks: energy efficiency and speed

How do tokens per joule and speedup change with the number of PIM channels and banks per channel? This
notebook runs the shipped `channels_banks_sweep.yaml` (GPT-2 small and medium; 4–32 channels; 8 or 16
banks per channel) and draws the energy-efficiency curves and the Pareto front of throughput against
energy efficiency. Set `PIMSIM_NB_SMALL=1` for a quick run."""),
        ("code", SETUP),
        ("code", '''\
cb = shipped("channels_banks_sweep")
if SMALL:
    cb.update(models=["gpt2-small"], run={**cb["run"], "tokens": 2})
    cb["axes"][0]["values"] = [8, 16]
results = run(cb)
table(results[0], ["model", "channels", "banks_per_channel", "per_token_latency_s", "tokens_per_j",
                   "speedup.gpu"])'''),
        ("md", """\
## Energy efficiency (tokens/J) and speedup against channels
One line per model and banks per channel. More channels cut latency almost linearly, while background and
refresh power grow with the channel count, so tokens per joule fall slowly."""),
        ("code", 'ee = show(results, "energy-efficiency")'),
        ("md", "## Pareto front: throughput against energy efficiency"),
        ("code", '''\
front = show(results, "pareto")
for s in front.series:
    if s.panel == "front":
        print(s.label, "front:", ", ".join(f"{x:.0f} tok/s @ {y:.0f} tok/J" for x, y in zip(s.x, s.y)))'''),
    ],
    "compression_study.ipynb": [
        ("md", """\
# Quantization and pruning on PIM-GPT

The same gpt2-small decode step exported five ways — dense bf16, int8, int4 (group 128), 2:4 pruned and
32×32-block pruned (50 %) — runs on PIM-GPT with int8/int4 MAC units and zero skipping enabled
(`arch_configs/sweeps/compression_sweep.yaml`). Narrower weights need fewer DRAM rows and column
commands; pruned blocks that are all zero can be skipped. Set `PIMSIM_NB_SMALL=1` for a quick run."""),
        ("code", SETUP),
        ("code", '''\
comp = shipped("compression_sweep")
if SMALL:
    comp["run"] = {**comp["run"], "tokens": 2}
    comp["axes"][1]["values"] = [8]
results = run(comp)
rows = [r for r in results[0] if r["status"] == "ok"]
table(rows, ["variant", "channels", "per_token_latency_s", "energy_per_token_j", "commands.MAC16.total",
             "row_hit_rate"])'''),
        ("md", "## Latency and energy per token relative to dense bf16"),
        ("code", '''\
from matplotlib.figure import Figure

channels = sorted({r["channels"] for r in rows})
fig = Figure(figsize=(9, 3.6), layout="constrained")
axes = fig.subplots(1, 2)
for ax, col, title in ((axes[0], "per_token_latency_s", "latency per token"),
                       (axes[1], "energy_per_token_j", "energy per token")):
    for i, ch in enumerate(channels):
        sub = [r for r in rows if r["channels"] == ch]
        dense = next(r[col] for r in sub if r["variant"] == "dense")
        ax.bar([j + 0.8 * i / len(channels) for j in range(len(sub))], [r[col] / dense for r in sub],
               0.8 / len(channels), label=f"{ch} channels")
        ax.set_xticks([j + 0.4 - 0.4 / len(channels) for j in range(len(sub))], [r["variant"] for r in sub])
    ax.axhline(1.0, color="0.4", lw=0.8, ls="--")
    ax.set_title(f"{title} relative to dense bf16 (×)")
    ax.set_ylabel("ratio to dense (×)")
    ax.legend(fontsize=8)
fig.supxlabel(f"sweep {results[2]} · traces " + ", ".join(sorted({r['trace_hash'][7:19] for r in rows})),
              fontsize=7)
path = OUT / "compression-relative.png"
fig.savefig(path, dpi=120)
display(Image(filename=str(path)))'''),
        ("md", "## Latency breakdown by operation"),
        ("code", 'show(results, "breakdown", by="op", where={"channels": channels[0]});'),
    ],
}


def build(name: str, cells: list[tuple[str, str]]) -> str:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, src) in enumerate(cells):
        cell = new_markdown_cell(src) if kind == "md" else new_code_cell(src)
        cell["id"] = f"{Path(name).stem.replace('_', '-')}-{i:02d}"  # stable ids: rebuilding changes nothing
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, cells in NOTEBOOKS.items():
        text, path = build(name, cells), HERE / name
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"out of date (run python notebooks/build_notebooks.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
