"""Trajectories no one here wrote: REBOUND's (an outside N-body code, optional extra ``rebound``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import eqlgn

pytest.importorskip("rebound")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import rebound_trajectories  # noqa: E402


def test_ragged_rebound_gravity_reads_with_accelerations_close_to_newtons(tmp_path):
    """REBOUND (IAS15), 2D gravity, 12 simulations of 30-60 snapshots in one CSV, dt = 0.01.

    Measured on 300 such simulations: median relative error of the central differences
    against Newton's sum 1.6e-4 (90th percentile 0.016, close encounters); asserted < 1e-3.
    """
    rows = rebound_trajectories.simulate(dim=2, n=4, sims=12, steps=60, dt=0.01, seed=3, ragged=True)
    path = rebound_trajectories.write(rows, 2, tmp_path / "gravity.csv")
    data = eqlgn.load_trajectories(path, law="r2")
    table = np.array(rows)
    lengths = [int((table[:, 0] == s).sum()) // 4 for s in range(12)]
    assert len(set(lengths)) > 1 and [int((data.sim_ids == s).sum()) for s in range(12)] == [t - 2 for t in lengths]
    exact = {(int(r[0]), round(r[1], 6), int(r[2])): r[6:8] for r in table}  # times are float32 in a dataset
    snapshots = zip(data.sim_ids, data.times)
    truth = np.array([[exact[int(s), round(float(t), 6), i] for i in range(4)] for s, t in snapshots])
    error = np.linalg.norm(data.accelerations - truth, axis=-1) / np.linalg.norm(truth, axis=-1)
    assert np.median(error) < 1e-3, np.median(error)
    np.testing.assert_allclose(data.masses[data.sim_ids == 0][0], table[table[:, 0] == 0][:4, 5], rtol=1e-6)
