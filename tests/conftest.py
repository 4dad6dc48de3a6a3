"""Shared fixtures: small real simulations (cached per session)."""

from __future__ import annotations

import pytest

import eqlgn


def _slow_modules(session) -> set:
    return {item.module for item in session.items if item.get_closest_marker("slow")}


def pytest_collection_finish(session) -> None:
    """Start the slow runs (tests/test_slow.py's pool) as soon as the session is known to hold a slow test, so they
    train while the fast tests run."""
    if session.config.option.collectonly:
        return
    for module in _slow_modules(session):
        getattr(module, "start_runs", lambda: None)()


def pytest_sessionfinish(session) -> None:
    for module in _slow_modules(session):
        getattr(module, "stop_runs", lambda: None)()


@pytest.fixture(scope="session")
def small_spring() -> eqlgn.ParticleDataset:
    """A real spring simulation, 2D, 4 particles, 20 simulations x 100 snapshots."""
    return eqlgn.simulate("spring", dim=2, n=4, sims=20, seed=0, progress=False)
