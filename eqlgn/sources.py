"""Where a run's data come from: a simulation, a user's file, or a dataset in memory; the split.

:class:`DataSource` names a user's file and how to read it (a trajectory file's derivative
estimator); :func:`load_data` reads it; :func:`prepare_data` simulates or takes the data,
IQR-prunes them if asked and splits them 80/10/10 by simulation. A run directory records
its source (:mod:`eqlgn.rundir`), so every verb can rebuild the same splits.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import ParticleDataset
from .simulator import SimulationConfig, simulate

DEFAULT_CACHE = "data/cache"


@dataclass(frozen=True)
class DataSource:
    """A user's data file: an eqlgn dataset (``.npz`` with ``nodes``) or a trajectory file.

    Attributes:
        path: the file.
        derivative: how accelerations are estimated from trajectory positions
            (``central`` or ``savgol``; ignored for datasets).
        window: Savitzky-Golay window in snapshots.
    """

    path: str
    derivative: str = "central"
    window: int = 7

    def load(self, law: str | None = None) -> ParticleDataset:
        return load_data(self.path, law, self.derivative, self.window)

    def to_dict(self) -> dict:
        return {"path": str(Path(self.path).resolve()), "derivative": self.derivative, "window": self.window}


def load_data(path: str | os.PathLike, law: str | None = None, derivative: str = "central",
              window: int = 7) -> ParticleDataset:
    """Users' data: an eqlgn dataset (``.npz`` with ``nodes``) or a trajectory file (CSV / npz positions).

    ``law``, when given, names the force law of trajectory data (for the judge); a dataset
    that records another law is refused.
    """
    from .trajectories import load_trajectories

    path = Path(path)
    is_dataset = False
    if path.suffix.lower() == ".npz" and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as archive:
                is_dataset = "nodes" in archive.files
        except Exception:
            is_dataset = False  # let the loaders name the fault
    if not is_dataset:
        return load_trajectories(path, law=law, method=derivative, window=window)
    data = ParticleDataset.load(path)
    if law is not None and data.meta.law is not None:
        data.check_matches(law=law, source=f"dataset {str(path)!r}")
    return data


def prepare_data(sim: SimulationConfig | None, cache_dir: str | os.PathLike | None = DEFAULT_CACHE,
                 prune_outliers: bool = False, split_seed: int = 0, progress: bool | None = None,
                 data: ParticleDataset | None = None) -> tuple[ParticleDataset, ParticleDataset, ParticleDataset]:
    """Simulate (or read the cached dataset, or take ``data``), optionally IQR-prune, split 80/10/10 by simulation."""
    if data is None:
        data = simulate(sim.law, sim.dim, sim.n, sim.sims, sim.seed, steps=sim.steps,
                        save_every=sim.save_every, dt=sim.dt, softening=sim.softening,
                        charge_choices=sim.charge_choices, cache_dir=cache_dir, progress=progress)
    if prune_outliers:
        data, _ = data.prune_outliers()
    elif (report := data.extreme_accelerations()) is not None:
        logging.getLogger("eqlgn").warning("eqlgn: %s", report)
    return data.split((0.8, 0.1, 0.1), seed=split_seed)
