"""Shared fixtures: small real simulations (cached per session)."""

from __future__ import annotations

import pytest

import eqlgn


@pytest.fixture(scope="session")
def small_spring() -> eqlgn.ParticleDataset:
    """A real spring simulation, 2D, 4 particles, 20 simulations x 100 snapshots."""
    return eqlgn.simulate("spring", dim=2, n=4, sims=20, seed=0, progress=False)
