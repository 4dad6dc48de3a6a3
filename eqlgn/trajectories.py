"""Users' own data: particle trajectories from files, with velocities and accelerations estimated.

Two file formats, read by :func:`load_trajectories`:

* **CSV**, long format with a header ``sim,t,particle,x,y[,z][,q][,m][,species]``: one row per
  particle per time; ``q`` may be absent (then 0), ``m`` too (then learned: :mod:`eqlgn.properties`,
  per particle, or per species with a ``species`` column); extra columns are ignored. Simulations may have
  different lengths and time steps (ragged); within one, every particle has a row at every
  time of that simulation (particles that enter or leave are refused, naming the row).
* **npz** with ``positions [S, T, n, D]`` (or ``[T, n, D]`` for one simulation),
  ``times [T]``, optional ``masses [S, n]`` or ``[n]`` (learned when absent), ``charges`` and
  ``species`` of the same shape.

Several files, or a folder of them, make one dataset: its simulations are numbered in the
order of the files (a folder's ``.csv`` and ``.npz`` files sorted by name), then of their
``sim`` values. All must have the same dimension and particle count (a GN's graph).

Velocities and accelerations are estimated from the positions on uniform time steps,
simulation by simulation (:mod:`eqlgn.derivatives`: central differences, Savitzky–Golay, or
the window chosen from the data, once for the whole dataset). The snapshots at the ends of
every trajectory, where the stencil does not fit, are dropped. The method is recorded in the
dataset metadata (``derivatives``).

:func:`save_trajectories` writes a simulated dataset's positions in either format, so the
same pipeline can be tested on data with known truth; :func:`add_noise` perturbs
positions or accelerations by a relative amount.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._io import atomic_write, atomic_write_text
from .data import LEARNABLE, DatasetMeta, ParticleDataset
from .derivatives import METHODS, choose_window, differentiate, local_derivatives, uniform_step
from .errors import ConfigError, DatasetError, unknown_name
from .layout import NodeLayout
from .trajectory_files import Simulation, read_csv, read_npz, split_arrays, trajectory_files

NOISE_TARGETS = ("positions", "accelerations")


def load_trajectories(paths: str | os.PathLike | Sequence[str | os.PathLike], law: str | None = None,
                      method: str = "central", window: int = 7, order: int = 3,
                      learn: Sequence[str] = ()) -> ParticleDataset:
    """Read trajectory files (CSV or npz, see module docstring) into one dataset.

    Args:
        paths: a ``.csv`` or ``.npz`` file, a folder of them, or a list of files and folders.
        law: the force law when known (kept in the metadata, used by the judge).
        method: ``central`` differences, ``savgol`` (Savitzky–Golay, for noisy data) or ``auto``
            (the window chosen from the data, :mod:`eqlgn.derivatives`).
        window, order: Savitzky–Golay window (odd, in snapshots) and polynomial order.
        learn: properties to learn (``"m"``, ``"q"``) even where the files give them (their
            values are then ignored: a check against the truth). Masses the files do not give
            are always learned; charges they do not give are zero unless ``"q"`` is here.
    """
    simulations: list[Simulation] = []
    for path in trajectory_files(paths):
        if path.suffix.lower() == ".csv":
            simulations += read_csv(path)
        elif path.suffix.lower() == ".npz":
            simulations += read_npz(path)
        else:
            raise DatasetError(f"{str(path)!r}: trajectory files are .csv (long format) or .npz; see "
                               "eqlgn.trajectories for the columns and arrays")
    return from_simulations(simulations, law=law, method=method, window=window, order=order, learn=learn)


def from_trajectories(positions: np.ndarray, times: np.ndarray, masses: np.ndarray | None,
                      charges: np.ndarray | None = None, law: str | None = None, method: str = "central",
                      window: int = 7, order: int = 3, learn: Sequence[str] = ()) -> ParticleDataset:
    """Build a dataset from positions ``[S, T, n, D]``, times ``[T]`` and masses/charges ``[S, n]``
    (``None``: not measured, see :func:`load_trajectories` for ``learn``)."""
    return from_simulations(split_arrays(positions, times, masses, charges, "array"), law=law, method=method,
                            window=window, order=order, learn=learn)


def from_simulations(simulations: Sequence[Simulation], law: str | None = None, method: str = "central",
                     window: int = 7, order: int = 3, learn: Sequence[str] = ()) -> ParticleDataset:
    """One dataset from simulations of any lengths (the same particle count and dimension), differentiated one by one.

    The dataset's ``dt`` is the common time step, or ``None`` when the simulations' steps differ.
    Learned properties (``learn``, and masses no simulation gives) get identities
    (:mod:`eqlgn.data`): one per species when the files have a ``species`` column, else one
    per particle of each simulation.
    """
    if method not in METHODS:
        raise unknown_name("derivative method", method, METHODS)
    unknown = sorted(set(learn) - set(LEARNABLE))
    if unknown:
        raise ConfigError(f"cannot learn {unknown}: learnable properties are m and q")
    if not simulations:
        raise DatasetError("no simulation to read")
    first = simulations[0]
    _, n, d = first.positions.shape
    for sim in simulations:
        if sim.positions.shape[2] != d:
            raise DatasetError(f"{sim.name} is {sim.positions.shape[2]}D but {first.name} is {d}D; one run reads "
                               "data of one dimension")
        if sim.positions.shape[1] != n:
            raise DatasetError(f"{sim.name} has {sim.positions.shape[1]} particle(s) but {first.name} has {n}; a GN "
                               "graph has one particle count: put simulations with other counts in another run")
    learned = _learned(simulations, learn)
    identities, identity, count, species = _identities(simulations, learned)
    for sim in simulations:
        if "m" not in learned and (sim.masses <= 0).any():
            raise DatasetError(f"{sim.name}: masses must be positive, got {sim.masses.min():g}")
    steps = []
    for sim in simulations:
        try:
            steps.append(uniform_step(sim.times))
        except DatasetError as exc:
            raise DatasetError(f"{sim.name}: {exc}") from None
    choice = choose_window([sim.positions for sim in simulations], steps) if method == "auto" else None
    layout = NodeLayout(d)
    nodes, accelerations, sim_ids, times, windows, label = [], [], [], [], [], ""
    for i, (sim, step) in enumerate(zip(simulations, steps)):
        try:
            if choice is not None:  # the data's window, then one per particle and snapshot up to it
                velocities, acc, keep, chosen = local_derivatives(sim.positions[None], step, choice)
                windows.append(chosen.ravel())
            else:
                velocities, acc, keep, label = differentiate(sim.positions[None], step, method, window, order)
        except (DatasetError, ConfigError) as exc:
            raise type(exc)(f"{sim.name}: {exc}") from None
        masses = identities[i] if "m" in learned else sim.masses
        charges = identities[i] if "q" in learned else (np.zeros(n) if sim.charges is None else sim.charges)
        nodes.append(layout.assemble(sim.positions[None, keep], velocities, charges[None, None, :],
                                     masses[None, None, :])[0])
        accelerations.append(acc[0])
        sim_ids.append(np.full(len(keep), i))
        times.append(sim.times[keep])
    if choice is not None:
        label = choice.label(np.concatenate(windows))
    common = float(np.median(steps))
    dt = common if all(abs(h - common) <= 1e-3 * common for h in steps) else None
    charge_values = [] if "q" in learned else sorted({float(q) for node in nodes for q in node[0, :, layout.charge]})
    meta = DatasetMeta(law=law, dim=d, n_particles=n, dt=dt, softening=0.0, sims=len(simulations),
                       integrator="trajectory file", derivatives=label, charge_choices=charge_values,
                       learned=list(learned), identity=identity, identities=count, species=species)
    return ParticleDataset(np.concatenate(nodes), np.concatenate(accelerations), np.concatenate(sim_ids),
                           np.concatenate(times), meta)


def _learned(simulations: Sequence[Simulation], learn: Sequence[str]) -> tuple[str, ...]:
    """The properties to learn: those asked for, and masses that the files do not give (all or none of
    the simulations give each property)."""
    out = set(learn)
    for what, get, absent in (("masses", lambda sim: sim.masses, "they are learned"),
                              ("charges", lambda sim: sim.charges, "they are 0, or learned with learn=['q']")):
        given = [get(sim) is not None for sim in simulations]
        if any(given) and not all(given):
            missing, present = simulations[given.index(False)].name, simulations[given.index(True)].name
            raise DatasetError(f"{missing} gives no {what} but {present} does; give {what} for every simulation, "
                               f"or for none (then {absent})")
    if simulations[0].masses is None:
        out.add("m")
    return tuple(p for p in LEARNABLE if p in out)


def _identities(simulations: Sequence[Simulation], learned: tuple[str, ...]
                ) -> tuple[list, str | None, int, list[str]]:
    """Per simulation, each particle's identity ``[n]`` (floats); what they name; how many there are; the species
    label of each identity (empty for per-particle identities).

    Species labels name one identity each; a species whose given mass or charge differs
    between particles is refused, naming the simulation.
    """
    with_species = [sim.species is not None for sim in simulations]
    if any(with_species) and not all(with_species):
        missing = simulations[with_species.index(False)].name
        raise DatasetError(f"{missing} has no species column but {simulations[with_species.index(True)].name} has; "
                           "give species for every simulation, or for none")
    if all(with_species):
        _check_species(simulations)
    if not learned:
        return [None] * len(simulations), None, 0, []
    if all(with_species):
        labels = sorted({label for sim in simulations for label in sim.species})
        index = {label: i for i, label in enumerate(labels)}
        return [np.array([index[label] for label in sim.species], dtype=float) for sim in simulations], \
            "species", len(labels), [str(label) for label in labels]
    n = simulations[0].positions.shape[1]
    return [np.arange(i * n, (i + 1) * n, dtype=float) for i in range(len(simulations))], "particle", \
        n * len(simulations), []


def _check_species(simulations: Sequence[Simulation]) -> None:
    """Every given mass and charge is the same for all particles of a species."""
    for what, get in (("mass", lambda s: s.masses), ("charge", lambda s: s.charges)):
        seen: dict[str, tuple[float, str]] = {}
        for sim in simulations:
            values = get(sim)
            if values is None:
                continue
            for label, value in zip(sim.species, values):
                if label in seen and abs(seen[label][0] - value) > 1e-9 * max(abs(value), 1.0):
                    raise DatasetError(f"{sim.name}: species {label!r} has {what} {value:g} here but "
                                       f"{seen[label][0]:g} in {seen[label][1]}; a species has one {what}")
                seen.setdefault(label, (float(value), sim.name))


def trajectories_of(data: ParticleDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Positions ``[S, T, n, D]``, times ``[T]``, masses and charges ``[S, n]`` of a simulated dataset."""
    sims = np.unique(data.sim_ids)
    order = np.lexsort((data.times, data.sim_ids))
    t = len(order) // len(sims)
    if t * len(sims) != len(order):
        raise DatasetError("simulations have different numbers of snapshots (pruned data?); save trajectories "
                           "before pruning")
    nodes = data.nodes[order].reshape(len(sims), t, data.n_particles, -1).astype(np.float64)
    times = data.times[order][:t].astype(np.float64)
    return nodes[..., : data.dim], times, nodes[:, 0, :, 2 * data.dim + 1], nodes[:, 0, :, 2 * data.dim]


def save_trajectories(data: ParticleDataset, path: str | os.PathLike) -> Path:
    """Write a dataset's trajectories as ``.csv`` (long format) or ``.npz`` (see module docstring)."""
    positions, times, masses, charges = trajectories_of(data)
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return atomic_write(path, lambda h: np.savez(h, positions=positions, times=times, masses=masses,
                                                     charges=charges))
    if path.suffix.lower() != ".csv":
        raise ConfigError(f"trajectory files end in .csv or .npz, got {str(path)!r}")
    s, t, n, d = positions.shape
    buffer = io.StringIO()
    buffer.write(",".join(["sim", "t", "particle", *"xyz"[:d], "q", "m"]) + "\n")
    for a in range(s):
        for b in range(t):
            for c in range(n):
                coords = ",".join(repr(float(v)) for v in positions[a, b, c])
                buffer.write(f"{a},{float(times[b])!r},{c},{coords},{float(charges[a, c])!r},{float(masses[a, c])!r}\n")
    return atomic_write_text(path, buffer.getvalue())


def add_noise(data: ParticleDataset, relative: float, on: str = "accelerations", seed: int = 0) -> ParticleDataset:
    """Add Gaussian noise of relative size ``relative`` to accelerations or positions.

    * accelerations: each particle's acceleration gets isotropic noise of standard deviation
      ``relative × |a|`` per component (so 5 % noise is 5 % of that acceleration);
    * positions: isotropic noise of standard deviation ``relative × median pair distance``
      (use it before estimating accelerations from the trajectories).
    """
    if on not in NOISE_TARGETS:
        raise unknown_name("noise target", on, NOISE_TARGETS)
    if not (np.isfinite(relative) and relative >= 0):
        raise ConfigError(f"relative noise must be a finite number >= 0, got {relative}")
    rng = np.random.default_rng(seed)
    nodes, accelerations = data.nodes.copy(), data.accelerations.copy()
    d = data.dim
    if on == "accelerations":
        size = np.linalg.norm(accelerations, axis=-1, keepdims=True)
        accelerations += relative * size * rng.normal(size=accelerations.shape)
    else:
        at = NodeLayout(d).position
        x = nodes[..., at]
        pairs = ~np.eye(data.n_particles, dtype=bool)
        scale = float(np.median(np.linalg.norm(x[:, :, None] - x[:, None], axis=-1)[:, pairs]))
        nodes[..., at] += relative * scale * rng.normal(size=x.shape)
    meta = DatasetMeta(**{**data.meta.__dict__, "noise": {"relative": float(relative), "on": on, "seed": seed}})
    return ParticleDataset(nodes, accelerations, data.sim_ids.copy(), data.times.copy(), meta)
