"""Where a run's data come from: a simulation, a user's file, or a dataset in memory; the split.

:class:`DataSource` names a user's files and how to read them (a trajectory file's derivative
estimator); :func:`load_data` reads it; :func:`prepare_data` simulates or takes the data,
IQR-prunes them if asked and splits them 80/10/10 by simulation. A run directory records
its source (:mod:`eqlgn.rundir`), so every verb can rebuild the same splits.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import ParticleDataset
from .derivatives import RUN_DEFAULT
from .errors import DatasetError
from .simulator import SimulationConfig, simulate

DEFAULT_CACHE = "data/cache"


@dataclass(frozen=True)
class DataSource:
    """A user's data: an eqlgn dataset (``.npz`` with ``nodes``) or trajectory files.

    Attributes:
        paths: an eqlgn dataset file alone, or trajectory files and folders of them
            (:func:`eqlgn.trajectories.load_trajectories`); one path may be given as a string.
        derivative: how accelerations are estimated from trajectory positions
            (``central``, ``savgol`` or ``auto``, the default; ignored for datasets).
        window: Savitzky-Golay window in snapshots.
        learn: particle properties to learn even where the files give them
            (:func:`eqlgn.trajectories.load_trajectories`; masses they do not give are learned anyway).
    """

    paths: tuple[str, ...]
    derivative: str = RUN_DEFAULT
    window: int = 7
    learn: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        paths = [self.paths] if isinstance(self.paths, (str, os.PathLike)) else list(self.paths)
        object.__setattr__(self, "paths", tuple(str(p) for p in paths))
        object.__setattr__(self, "learn", tuple(self.learn))

    def load(self, law: str | None = None) -> ParticleDataset:
        return load_data(self.paths, law, self.derivative, self.window, self.learn)

    def to_dict(self) -> dict:
        return {"paths": [str(Path(p).resolve()) for p in self.paths], "derivative": self.derivative,
                "window": self.window, "learn": list(self.learn)}

    @classmethod
    def from_dict(cls, record: dict) -> DataSource:
        """Read :meth:`to_dict`'s record, or an earlier one that named a single ``path``."""
        paths = record["paths"] if "paths" in record else [record["path"]]
        return cls(tuple(paths), record.get("derivative", "central"), record.get("window", 7),
                   tuple(record.get("learn", ())))


def load_data(paths: str | os.PathLike | Sequence[str | os.PathLike], law: str | None = None,
              derivative: str = RUN_DEFAULT, window: int = 7, learn: Sequence[str] = ()) -> ParticleDataset:
    """Users' data: an eqlgn dataset (``.npz`` with ``nodes``) or trajectory files (CSV / npz positions, folders).

    ``law``, when given, names the force law of trajectory data (for the judge); a dataset
    that records another law is refused. A dataset file is read alone.
    """
    from .trajectories import load_trajectories

    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    datasets = [Path(p) for p in items if _is_dataset(Path(p))]
    if not datasets:
        return load_trajectories(items, law=law, method=derivative, window=window, learn=learn)
    if len(items) > 1:
        raise DatasetError(f"{str(datasets[0])!r} is an eqlgn dataset, which a run reads alone; give it without "
                           "other files (several files in one run are trajectory files)")
    data = ParticleDataset.load(datasets[0])
    if learn:
        raise DatasetError(f"{str(datasets[0])!r} is an eqlgn dataset; properties are learned from trajectory files")
    if law is not None and data.meta.law is not None:
        data.check_matches(law=law, source=f"dataset {str(datasets[0])!r}")
    return data


def _is_dataset(path: Path) -> bool:
    """An eqlgn dataset file (an npz with ``nodes``), not a trajectory file."""
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as archive:
            return "nodes" in archive.files
    except Exception:
        return False  # let the loaders name the fault


def prepare_data(sim: SimulationConfig | None, cache_dir: str | os.PathLike | None = DEFAULT_CACHE,
                 prune_outliers: bool = False, split_seed: int = 0, progress: bool | None = None,
                 data: ParticleDataset | None = None) -> tuple[ParticleDataset, ParticleDataset, ParticleDataset]:
    """Simulate (or read the cached dataset, or take ``data``), optionally IQR-prune, split 80/10/10 by simulation
    (in time within each simulation when the data learn per-particle properties: every particle is then trained on)."""
    if data is None:
        data = simulate(sim.law, sim.dim, sim.n, sim.sims, sim.seed, steps=sim.steps,
                        save_every=sim.save_every, dt=sim.dt, softening=sim.softening,
                        charge_choices=sim.charge_choices, cache_dir=cache_dir, progress=progress)
    if prune_outliers:
        data, _ = data.prune_outliers()
    elif (report := data.extreme_accelerations()) is not None:
        logging.getLogger("eqlgn").warning("eqlgn: %s", report)
    if data.meta.learned and data.meta.identity == "particle":
        return split_in_time(data, (0.8, 0.1, 0.1))
    return data.split((0.8, 0.1, 0.1), seed=split_seed)


def split_in_time(data: ParticleDataset, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
                  ) -> tuple[ParticleDataset, ParticleDataset, ParticleDataset]:
    """Train/validation/test split **in time within each simulation**: its first snapshots train, the next
    validate, the last test (every particle is seen in training; the test is its future)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise DatasetError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    part = np.zeros(len(data), dtype=int)
    for sim in np.unique(data.sim_ids):
        rows = np.flatnonzero(data.sim_ids == sim)
        rows = rows[np.argsort(data.times[rows], kind="stable")]
        rank = np.arange(len(rows)) / len(rows)
        part[rows] = (rank >= fractions[0]).astype(int) + (rank >= fractions[0] + fractions[1]).astype(int)
    if not all((part == k).any() for k in range(3) if fractions[k] > 0):
        raise DatasetError("simulations too short to split in time; give more snapshots per simulation")
    return tuple(data.subset(part == k) for k in range(3))  # type: ignore[return-value]
