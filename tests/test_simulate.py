"""Simulator against the analytic laws, energy conservation, determinism, cache."""

from __future__ import annotations

import numpy as np
import pytest

import eqlgn
from eqlgn.laws import LAWS, get_law
from eqlgn.simulator import SimulationConfig, cache_path


def analytic_accelerations(data: eqlgn.ParticleDataset) -> np.ndarray:
    """Sum over senders of the hand-written NumPy force, divided by the receiver's mass."""
    law = get_law(data.meta.law)
    pos = data.positions.astype(np.float64)
    m, q = data.masses.astype(np.float64), data.charges.astype(np.float64)
    n = data.n_particles
    acc = np.zeros_like(pos)
    for i in range(n):
        for j in range(n):
            if i != j:
                force = law.force(pos[:, i] - pos[:, j], m[:, i], m[:, j], q[:, i], q[:, j],
                                  data.meta.softening)
                acc[:, i] += force / m[:, i, None]
    return acc


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("law", sorted(LAWS))
def test_accelerations_equal_analytic_forces(law, dim):
    data = eqlgn.simulate(law, dim=dim, n=5, sims=6, seed=3, steps=50, progress=False)
    assert data.accelerations.shape == (6 * 10, 5, dim)
    expected = analytic_accelerations(data)
    scale = np.abs(expected).max(axis=-1, keepdims=True) + 1e-3
    # float32 storage of both state and acceleration bounds the agreement.
    assert np.abs(data.accelerations - expected).max() / scale.max() < 1e-4
    np.testing.assert_allclose(data.accelerations, expected, rtol=2e-3, atol=2e-3 * np.median(scale))


def test_charge_sign_and_mass_independence():
    law = get_law("charge")
    dx = np.array([[1.0, 0.0]])
    like = law.force(dx, 1.0, 5.0, 1.0, 1.0, softening=0.0)
    unlike = law.force(dx, 1.0, 5.0, 1.0, -1.0, softening=0.0)
    assert like[0, 0] == pytest.approx(1.0) and unlike[0, 0] == pytest.approx(-1.0)


def test_spring_energy_drift_is_small():
    data = eqlgn.simulate("spring", dim=2, n=4, sims=200, seed=0, progress=False)
    energy = eqlgn.total_energy(data).reshape(200, -1)
    drift = np.abs(energy - energy[:, :1]) / np.abs(energy[:, :1])
    # Measured: median 1.6e-4, worst of 200 trajectories 1.4e-2 (very light particles).
    assert np.median(drift.max(axis=1)) < 2e-3
    assert drift.max() < 0.1


def test_same_seed_same_data_and_different_seed_differs():
    a = eqlgn.simulate("r1", 2, 4, 5, seed=7, steps=20, progress=False)
    b = eqlgn.simulate("r1", 2, 4, 5, seed=7, steps=20, progress=False)
    c = eqlgn.simulate("r1", 2, 4, 5, seed=8, steps=20, progress=False)
    np.testing.assert_array_equal(a.nodes, b.nodes)
    np.testing.assert_array_equal(a.accelerations, b.accelerations)
    assert not np.allclose(a.nodes, c.nodes)


def test_layout_and_metadata():
    data = eqlgn.simulate("charge", 3, 3, 4, seed=1, steps=30, save_every=3, progress=False)
    assert len(data) == 4 * 10
    assert data.meta.feature_names == ["x", "y", "z", "vx", "vy", "vz", "q", "m"]
    assert data.meta.dt == 1e-3 and data.meta.softened and data.meta.softening == 0.01
    assert set(np.unique(data.charges)) <= {-1.0, 1.0}
    assert (data.masses > 0).all()
    # simulation-major ordering, constant charges and masses along a trajectory
    assert list(data.sim_ids[:10]) == [0] * 10
    first = data.subset(data.sim_ids == 0)
    assert np.ptp(first.masses, axis=0).max() == 0
    np.testing.assert_allclose(first.times, np.arange(10) * 3 * 1e-3, rtol=1e-6)


def test_cache_reuses_the_file(tmp_path):
    a = eqlgn.simulate("spring", 2, 4, 3, seed=0, steps=10, cache_dir=tmp_path, progress=False)
    path = cache_path(SimulationConfig("spring", 2, 4, 3, steps=10, seed=0), tmp_path)
    assert path.is_file()
    stamp = path.stat().st_mtime_ns
    b = eqlgn.simulate("spring", 2, 4, 3, seed=0, steps=10, cache_dir=tmp_path, progress=False)
    assert path.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(a.nodes, b.nodes)
    eqlgn.simulate("spring", 2, 4, 3, seed=1, steps=10, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"law": "gravity"}, "unknown force law 'gravity'; valid: charge, r1, r2, spring"),
        ({"law": "sprng"}, "did you mean 'spring'"),
        ({"dim": 4}, "dim must be 2 or 3"),
        ({"n": 1}, "at least 2"),
        ({"sims": 0}, "sims must be at least 1"),
        ({"steps": 7, "save_every": 5}, "multiple of save_every"),
        ({"dt": -1.0}, "dt must be positive"),
    ],
)
def test_bad_simulation_config(kwargs, match):
    args = {"law": "spring", "dim": 2, "n": 4, "sims": 2} | kwargs
    with pytest.raises(eqlgn.ConfigError, match=match):
        eqlgn.simulate(**args, progress=False)
