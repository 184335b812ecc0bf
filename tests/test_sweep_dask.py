"""The same sweep on a local Dask cluster (loopback) gives the same table as the local process pool."""

from __future__ import annotations

import pytest

from simulator.errors import PimsimError
from simulator.sweep.runner import run_sweep
from simulator.sweep.store import read_csv
from test_sweep_runner import FAKE, stable_table, write_spec

distributed = pytest.importorskip("distributed")


def test_dask_cluster_runs_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("PIMSIM_CODE_VERSION", "test-pinned")
    spec = write_spec(tmp_path, models=["gpt2-small"],
                      axes=[{"key": "organisation.channels", "values": [4, 8]},
                            {"key": "organisation.queue_depth", "values": [33, 1, 2]}])
    local = run_sweep(spec, tmp_path / "local", workers=2, point_fn=FAKE, progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        s = run_sweep(spec, tmp_path / "dask", scheduler=cluster.scheduler_address, point_fn=FAKE, progress=False)
        assert (s.points, s.ran, s.ok, s.failed) == (6, 6, 2, 4)
        again = run_sweep(spec, tmp_path / "dask", scheduler=cluster.scheduler_address, point_fn=FAKE,
                          progress=False)
        assert (again.ran, again.already_done) == (0, 6)
    assert (local.ok, local.failed) == (s.ok, s.failed)
    assert stable_table(tmp_path / "dask" / "results.csv") == stable_table(tmp_path / "local" / "results.csv")
    errors = {r["error"] for r in read_csv(tmp_path / "dask" / "results.csv") if r["error"]}
    assert errors == {"fake: queue_depth=1 is too shallow for this point", "worker process died (exit code 3)"}


def test_unreachable_scheduler_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PIMSIM_CODE_VERSION", "test-pinned")
    monkeypatch.setattr("simulator.sweep.dask_backend.CONNECT_TIMEOUT", "1s")
    with pytest.raises(PimsimError, match="cannot connect to the Dask scheduler at tcp://127.0.0.1:9"):
        run_sweep(write_spec(tmp_path), tmp_path / "out", scheduler="tcp://127.0.0.1:9", point_fn=FAKE,
                  progress=False)
