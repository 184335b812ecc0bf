"""Each notebook runs top to bottom (small setting), and the committed notebooks match their build script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(p.name for p in NB_DIR.glob("*.ipynb"))


def test_notebooks_are_built_from_the_script():
    pytest.importorskip("nbformat")
    assert NOTEBOOKS == ["channel_bank_sweep.ipynb", "compression_study.ipynb", "pim_gpt_figures.ipynb"]
    proc = subprocess.run([sys.executable, str(NB_DIR / "build_notebooks.py"), "--check"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    import nbformat

    for name in NOTEBOOKS:
        nb = nbformat.read(NB_DIR / name, as_version=4)
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if
                   c.cell_type == "code"), f"{name} has outputs; rebuild it"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("PIMSIM_NB_SMALL", "1")
    monkeypatch.setenv("PIMSIM_NB_OUT", str(tmp_path))
    monkeypatch.setenv("PIMSIM_NB_WORKERS", "2")
    nb = nbformat.read(NB_DIR / name, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NB_DIR)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, f"{name} displayed {len(images)} figures"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert " 0 failed" in text, text[:2000]
    assert list(tmp_path.glob("*/results.csv"))
