"""Shared fixtures: small real simulations (cached per session)."""

from __future__ import annotations

import os

import pytest
import torch

import eqlgn


def _slow_modules(session) -> set:
    return {item.module for item in session.items if item.get_closest_marker("slow")}


def pytest_collection_finish(session) -> None:
    """Start the slow runs (tests/test_slow.py's pool) as soon as the session is known to hold a slow test, so they
    train while the fast tests run."""
    if session.config.option.collectonly:
        return
    modules = _slow_modules(session)
    if modules:
        one_thread_each()
    for module in modules:
        getattr(module, "start_runs", lambda: None)()


def one_thread_each() -> None:
    """One thread per process while the slow runs share the two cores with the fast tests: this process, the
    processes it starts and the pool's workers. With two threads each, OpenMP's threads spin while they wait for
    one another on busy cores (measured: a fast test beside two busy processes took 96 s with two threads, 42 s
    with one)."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    torch.set_num_threads(1)


def pytest_sessionfinish(session) -> None:
    for module in _slow_modules(session):
        getattr(module, "stop_runs", lambda: None)()


@pytest.fixture(scope="session")
def small_spring() -> eqlgn.ParticleDataset:
    """A real spring simulation, 2D, 4 particles, 20 simulations x 100 snapshots."""
    return eqlgn.simulate("spring", dim=2, n=4, sims=20, seed=0, progress=False)
