"""ParticleDataset: the one data contract every stage reads and writes.

A dataset is a set of graph snapshots of ``n`` particles in ``D`` dimensions:

* ``nodes``          ``[S, n, F]`` float32, ``F = 2 D + 2``; per particle, in order:
  position (``x, y[, z]``), velocity (``vx, vy[, vz]``), charge ``q``, mass ``m``.
* ``accelerations``  ``[S, n, D]`` float32, the exact acceleration of each particle.
* ``sim_ids``        ``[S]`` int64, which simulation (trajectory) a snapshot belongs to.
* ``times``          ``[S]`` float32, the snapshot's time within its simulation.
* ``meta``           :class:`DatasetMeta` (law, sizes, integration settings, seed, ...).

**Properties to learn.** When a particle property was not measured (``meta.learned`` lists
``"m"`` and/or ``"q"``), its node column holds each particle's **identity** instead of a
value: an integer ``0 .. meta.identities - 1`` naming the learned value it takes
(:mod:`eqlgn.properties` fills the values in during training). Identities are per particle of
a simulation (``meta.identity == "particle"``) or per species (``"species"``, shared across
simulations). Per-particle identities are split in time (:func:`eqlgn.sources.split_in_time`),
so that every particle is seen in training.

Every dataset is checked when it is made (shapes, NaN/inf, unknown law, newer format
version), each fault with an error that names it. Reading and writing files is
:mod:`eqlgn.dataset_io`; torch tensors and batches of graphs are :mod:`eqlgn.batching`
(this module does not import torch).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DatasetError
from .laws import LAWS
from .layout import NodeLayout

FORMAT_VERSION = 1
ARRAYS = ("nodes", "accelerations", "sim_ids", "times")
LEARNABLE = ("m", "q")  # node properties that can be learned when not measured
IDENTITIES = ("particle", "species")


def node_feature_names(dim: int) -> list[str]:
    """Names of the node feature columns for ``dim`` dimensions (:class:`eqlgn.layout.NodeLayout`)."""
    return NodeLayout(dim).names()


@dataclass
class DatasetMeta:
    """Metadata stored with every dataset.

    Attributes:
        law: force-law name (see :mod:`eqlgn.laws`), or ``None`` for data of unknown law.
        dim: spatial dimension, 2 or 3.
        n_particles: particles per graph.
        dt: integration step of the simulator (``None`` when not simulated).
        softening: ``eps`` in ``r + eps`` inside the potential.
        softened: whether the law's potential was actually softened.
        seed: random seed of the simulation.
        steps: integration steps per simulation.
        save_every: a snapshot is kept every ``save_every`` steps.
        sims: number of simulations.
        integrator: how the trajectories were integrated.
        charge_choices: charges drawn uniformly from these values.
        feature_names: names of the ``F`` node feature columns.
        pruned: snapshots removed by IQR pruning so far.
        format_version: dataset file format version.
        derivatives: how velocities and accelerations were obtained: ``exact`` (the
            simulator's ``-grad U / m``) or the estimator used on positions
            (``central differences``, ``savgol(window=W, order=K)``).
        noise: noise added on purpose, e.g. ``{"relative": 0.05, "on": "accelerations"}``.
        learned: properties not measured, to be learned (``"m"``, ``"q"``); their columns hold
            identities (see the module docstring).
        identity: what an identity names: ``"particle"`` (of one simulation) or ``"species"``.
        identities: how many identities there are.
        species: with ``identity == "species"``, the label of each identity (the files' ``species`` column).
    """

    law: str | None
    dim: int
    n_particles: int
    dt: float | None = None
    softening: float = 0.01
    softened: bool = False
    seed: int | None = None
    steps: int | None = None
    save_every: int | None = None
    sims: int | None = None
    integrator: str = "velocity-verlet"
    charge_choices: list[float] = field(default_factory=lambda: [-1.0, 1.0])
    feature_names: list[str] = field(default_factory=list)
    pruned: int = 0
    format_version: int = FORMAT_VERSION
    derivatives: str = "exact"
    noise: dict | None = None
    learned: list[str] = field(default_factory=list)
    identity: str | None = None
    identities: int = 0
    species: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.feature_names and self.dim in (2, 3):
            self.feature_names = node_feature_names(self.dim)

    def check(self) -> None:
        """Raise DatasetError naming the first fault of the metadata (version, law, sizes)."""
        if self.format_version > FORMAT_VERSION:
            raise DatasetError(f"dataset format version {self.format_version} is newer than this eqlgn "
                               f"understands ({FORMAT_VERSION}); upgrade eqlgn")
        if self.law is not None and self.law not in LAWS:
            raise DatasetError(f"dataset names unknown force law {self.law!r}; valid: {', '.join(sorted(LAWS))}")
        if self.dim not in (2, 3):
            raise DatasetError(f"dataset dim must be 2 or 3, got {self.dim}")
        if self.n_particles < 2:
            raise DatasetError(f"dataset needs at least 2 particles per graph, got {self.n_particles}")
        unknown = sorted(set(self.learned) - set(LEARNABLE))
        if unknown:
            raise DatasetError(f"dataset lists unknown learned propert(ies) {unknown}; learnable: m, q")
        if self.learned and (self.identity not in IDENTITIES or self.identities < 1):
            raise DatasetError(f"a dataset with learned properties needs identity in {IDENTITIES} and identities "
                               f">= 1, got {self.identity!r} and {self.identities}")
        if self.species and len(self.species) != self.identities:
            raise DatasetError(f"dataset names {len(self.species)} species for {self.identities} identities")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DatasetMeta:
        """Build from a parsed JSON dict, ignoring keys this version does not know."""
        known = {f.name for f in fields(cls)}
        missing = {"law", "dim", "n_particles"} - set(raw)
        if missing:
            raise DatasetError(f"dataset metadata lacks {sorted(missing)}; re-create the file")
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass
class ParticleDataset:
    """Graph snapshots with exact accelerations; see the module docstring for shapes."""

    nodes: np.ndarray
    accelerations: np.ndarray
    sim_ids: np.ndarray
    times: np.ndarray
    meta: DatasetMeta

    def __post_init__(self) -> None:
        self.nodes = np.ascontiguousarray(self.nodes, dtype=np.float32)
        self.accelerations = np.ascontiguousarray(self.accelerations, dtype=np.float32)
        self.sim_ids = np.asarray(self.sim_ids, dtype=np.int64)
        self.times = np.asarray(self.times, dtype=np.float32)
        self.validate()

    # ------------------------------------------------------------------ contract
    def validate(self) -> None:
        """Check shapes, dtypes, finiteness and metadata; raise DatasetError naming the fault."""
        meta = self.meta
        meta.check()
        s, n, d = len(self.nodes), meta.n_particles, meta.dim
        expected = {
            "nodes": (s, n, NodeLayout(d).width),
            "accelerations": (s, n, d),
            "sim_ids": (s,),
            "times": (s,),
        }
        for name, shape in expected.items():
            actual = getattr(self, name).shape
            if actual != shape:
                raise DatasetError(
                    f"array {name!r} has shape {actual}, expected {shape} "
                    f"(S={s} snapshots, n={n}, D={d} from the metadata)"
                )
        if len(meta.feature_names) != (width := NodeLayout(d).width):
            raise DatasetError(f"metadata lists {len(meta.feature_names)} feature names, expected {width}")
        for name in ("nodes", "accelerations", "times"):
            bad = ~np.isfinite(getattr(self, name))
            if bad.any():
                first = np.argwhere(bad)[0]
                raise DatasetError(
                    f"array {name!r} holds {int(bad.sum())} NaN/inf values (first at index "
                    f"{tuple(int(i) for i in first)}); clean the data or re-simulate"
                )
        if s and "m" not in meta.learned and (self.masses <= 0).any():
            raise DatasetError("masses (last node feature) must be positive")
        _check_identities(self)

    # ---------------------------------------------------------------- accessors
    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def dim(self) -> int:
        return self.meta.dim

    @property
    def n_particles(self) -> int:
        return self.meta.n_particles

    @property
    def positions(self) -> np.ndarray:
        """``[S, n, D]`` positions."""
        return self.nodes[..., NodeLayout(self.dim).position]

    @property
    def velocities(self) -> np.ndarray:
        """``[S, n, D]`` velocities."""
        return self.nodes[..., NodeLayout(self.dim).velocity]

    @property
    def charges(self) -> np.ndarray:
        """``[S, n]`` charges."""
        return self.nodes[..., NodeLayout(self.dim).charge]

    @property
    def masses(self) -> np.ndarray:
        """``[S, n]`` masses."""
        return self.nodes[..., NodeLayout(self.dim).mass]

    def identities_of(self, name: str) -> np.ndarray:
        """``[S, n]`` identities in the column of learned property ``name`` (``"m"`` or ``"q"``)."""
        return _identities_of(self, name)

    def subset(self, index: np.ndarray) -> ParticleDataset:
        """Snapshots selected by a boolean mask or an index array (metadata kept)."""
        return ParticleDataset(
            self.nodes[index], self.accelerations[index], self.sim_ids[index],
            self.times[index], replace(self.meta),
        )

    def summary(self) -> str:
        """A few human-readable lines describing the dataset."""
        acc = np.linalg.norm(self.accelerations, axis=-1)
        meta = self.meta
        lines = [
            f"ParticleDataset: law={meta.law} dim={meta.dim} n={meta.n_particles} "
            f"snapshots={len(self)} simulations={len(np.unique(self.sim_ids))}",
            f"  features: {', '.join(meta.feature_names)}",
            f"  dt={meta.dt} steps={meta.steps} save_every={meta.save_every} "
            f"softening={meta.softening if meta.softened else 'none'} seed={meta.seed} "
            f"integrator={meta.integrator} derivatives={meta.derivatives}"
            + (f" noise={meta.noise}" if meta.noise else ""),
        ]
        if len(self):
            q = np.percentile(acc, [50, 99, 100])
            lines.append(f"  |acceleration|: median {q[0]:.3g}, 99% {q[1]:.3g}, max {q[2]:.3g}")
        if meta.pruned:
            lines.append(f"  pruned outlier snapshots: {meta.pruned}")
        return "\n".join(lines)

    # ---------------------------------------------------------------------- I/O
    def save(self, path: str | os.PathLike) -> Path:
        """Write the dataset to ``path`` (``.npz``) atomically (:func:`eqlgn.dataset_io.save_dataset`)."""
        from .dataset_io import save_dataset

        return save_dataset(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ParticleDataset:
        """Read and validate a dataset file (:func:`eqlgn.dataset_io.load_dataset`)."""
        from .dataset_io import load_dataset

        return load_dataset(path)

    # ------------------------------------------------------------ preprocessing
    def prune_outliers(self, whisker: float = 1.5) -> tuple[ParticleDataset, int]:
        """Drop snapshots whose largest acceleration lies outside the IQR whiskers.

        The statistic per snapshot is the largest acceleration norm over its particles;
        snapshots above ``Q3 + whisker * IQR`` or below ``Q1 - whisker * IQR`` (quartiles
        over all snapshots) are dropped, as the 2024 reproduction of Cranmer et al. did
        to tame close encounters of the singular laws.

        Returns:
            The pruned dataset and the number of snapshots dropped.
        """
        if whisker <= 0:
            raise DatasetError(f"whisker must be positive, got {whisker}")
        stat = np.linalg.norm(self.accelerations, axis=-1).max(axis=-1)
        q1, q3 = np.percentile(stat, [25, 75])
        iqr = q3 - q1
        keep = (stat >= q1 - whisker * iqr) & (stat <= q3 + whisker * iqr)
        dropped = int((~keep).sum())
        pruned = self.subset(keep)
        pruned.meta.pruned = self.meta.pruned + dropped
        return pruned, dropped

    def check_matches(self, law: str | None = None, dim: int | None = None, n: int | None = None,
                      source: str = "dataset") -> ParticleDataset:
        """Raise :class:`DatasetError` when the data's law, dimension or particle count differ from a run's."""
        wanted = {"law": law, "dim": dim, "n_particles": n}
        found = {"law": self.meta.law, "dim": self.meta.dim, "n_particles": self.meta.n_particles}
        wrong = [f"{k} {found[k]!r} (run wants {v!r})" for k, v in wanted.items() if v is not None and found[k] != v]
        if wrong:
            raise DatasetError(f"{source} does not match the run: {', '.join(wrong)}; use data of the run's "
                               "law, dimension and particle count, or change the run's settings")
        return self

    def extreme_accelerations(self, factor: float = 100.0) -> str | None:
        """A one-line report when some snapshots' accelerations exceed ``factor`` × the median, else None.

        Close encounters of the singular laws (r1, r2, charge) produce such snapshots; they
        dominate an L1 loss and can drive training to NaN. The report names the option
        that handles them.
        """
        stat = np.linalg.norm(self.accelerations, axis=-1).max(axis=-1)
        if len(stat) == 0:
            return None
        median = float(np.median(stat))
        extreme = int((stat > factor * median).sum())
        if extreme == 0:
            return None
        return (f"{extreme} of {len(stat)} snapshots have accelerations above {factor:g}x the median "
                f"(largest {stat.max():.3g}, median {median:.3g}); IQR pruning drops them: "
                "--prune-outliers (CLI) or prune_outliers=True / ParticleDataset.prune_outliers()")

    def split(
        self, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
    ) -> tuple[ParticleDataset, ParticleDataset, ParticleDataset]:
        """Train/validation/test split **by simulation**: one trajectory never straddles splits.

        Args:
            fractions: shares of simulations for train, validation and test (sum to 1).
            seed: seed of the shuffle of simulation ids.
        """
        if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
            raise DatasetError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
        sims = np.unique(self.sim_ids)
        if len(sims) < 3:
            raise DatasetError(f"need at least 3 simulations to split, dataset has {len(sims)}")
        sims = np.random.default_rng(seed).permutation(sims)
        n_train = max(1, int(round(fractions[0] * len(sims))))
        n_val = max(1, int(round(fractions[1] * len(sims)))) if fractions[1] > 0 else 0
        n_train = min(n_train, len(sims) - n_val - (1 if fractions[2] > 0 else 0))
        groups = (sims[:n_train], sims[n_train : n_train + n_val], sims[n_train + n_val :])
        return tuple(self.subset(np.isin(self.sim_ids, g)) for g in groups)  # type: ignore[return-value]


def _identities_of(data: ParticleDataset, name: str) -> np.ndarray:
    if name not in data.meta.learned:
        raise DatasetError(f"property {name!r} is measured in this dataset, not learned")
    return data.masses if name == "m" else data.charges


def _check_identities(data: ParticleDataset) -> None:
    """The columns of learned properties hold integer identities below ``meta.identities``."""
    for name in data.meta.learned:
        ids = _identities_of(data, name)
        if len(ids) and ((ids != np.round(ids)).any() or ids.min() < 0 or ids.max() >= data.meta.identities):
            raise DatasetError(f"the column of learned property {name!r} must hold identities 0 .. "
                               f"{data.meta.identities - 1}")
