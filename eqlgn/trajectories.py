"""Users' own data: particle trajectories from files, with velocities and accelerations estimated.

Two file formats, read by :func:`load_trajectories`:

* **CSV**, long format with a header ``sim,t,particle,x,y[,z],q,m``: one row per particle
  per time; ``q`` may be absent (then 0); extra columns are ignored. Simulations may have
  different lengths and time steps (ragged); within one, every particle has a row at every
  time of that simulation (particles that enter or leave are refused, naming the row).
* **npz** with ``positions [S, T, n, D]`` (or ``[T, n, D]`` for one simulation),
  ``times [T]``, ``masses [S, n]`` or ``[n]`` and optional ``charges`` of the same shape.

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

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._io import atomic_write, atomic_write_text
from .data import DatasetMeta, ParticleDataset
from .derivatives import METHODS, choose_window, differentiate, uniform_step
from .errors import ConfigError, DatasetError, unknown_name
from .layout import NodeLayout

NOISE_TARGETS = ("positions", "accelerations")
SUFFIXES = (".csv", ".npz")


@dataclass
class Simulation:
    """One simulation's trajectories as read from a file.

    Attributes:
        positions: ``[T, n, D]`` at ``times``.
        times: ``[T]``, uniform steps (checked when differentiated).
        masses, charges: ``[n]``.
        name: where it came from, for messages (``'run1.csv' sim 3``).
    """

    positions: np.ndarray
    times: np.ndarray
    masses: np.ndarray
    charges: np.ndarray
    name: str


def trajectory_files(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The files named by ``paths``: files as given, a folder's ``.csv`` / ``.npz`` files sorted by name."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise DatasetError("no trajectory file given")
    files: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not found:
                raise DatasetError(f"folder {str(item)!r} holds no .csv or .npz trajectory file")
            files += found
        elif not item.is_file():
            raise DatasetError(f"trajectory file {str(item)!r} does not exist")
        else:
            files.append(item)
    repeated = [str(f) for i, f in enumerate(files) if f.resolve() in {g.resolve() for g in files[:i]}]
    if repeated:
        raise DatasetError(f"trajectory file {repeated[0]!r} is named twice")
    return files


def load_trajectories(paths: str | os.PathLike | Sequence[str | os.PathLike], law: str | None = None,
                      method: str = "central", window: int = 7, order: int = 3) -> ParticleDataset:
    """Read trajectory files (CSV or npz, see module docstring) into one dataset.

    Args:
        paths: a ``.csv`` or ``.npz`` file, a folder of them, or a list of files and folders.
        law: the force law when known (kept in the metadata, used by the judge).
        method: ``central`` differences, ``savgol`` (Savitzky–Golay, for noisy data) or ``auto``
            (the window chosen from the data, :mod:`eqlgn.derivatives`).
        window, order: Savitzky–Golay window (odd, in snapshots) and polynomial order.
    """
    simulations: list[Simulation] = []
    for path in trajectory_files(paths):
        if path.suffix.lower() == ".csv":
            simulations += _read_csv(path)
        elif path.suffix.lower() == ".npz":
            simulations += _read_npz(path)
        else:
            raise DatasetError(f"{str(path)!r}: trajectory files are .csv (long format) or .npz; see "
                               "eqlgn.trajectories for the columns and arrays")
    return from_simulations(simulations, law=law, method=method, window=window, order=order)


def from_trajectories(positions: np.ndarray, times: np.ndarray, masses: np.ndarray, charges: np.ndarray | None = None,
                      law: str | None = None, method: str = "central", window: int = 7,
                      order: int = 3) -> ParticleDataset:
    """Build a dataset from positions ``[S, T, n, D]``, times ``[T]`` and masses/charges ``[S, n]``."""
    return from_simulations(_split_arrays(positions, times, masses, charges, "array"), law=law, method=method,
                            window=window, order=order)


def _split_arrays(positions, times, masses, charges, source: str) -> list[Simulation]:
    """Checked rectangular arrays -> one :class:`Simulation` per row of ``positions``."""
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 4 or positions.shape[-1] not in (2, 3) or positions.shape[2] < 2:
        raise DatasetError(f"array 'positions' must be [S, T, n, D] with n >= 2 and D in (2, 3), "
                           f"got shape {positions.shape}")
    s, t, n, _ = positions.shape
    times = np.asarray(times, dtype=np.float64)
    masses = np.asarray(masses, dtype=np.float64)
    charges = np.zeros((s, n)) if charges is None else np.asarray(charges, dtype=np.float64)
    _check_array("times", times, (t,))
    _check_array("masses", masses, (s, n))
    _check_array("charges", charges, (s, n))
    _check_array("positions", positions, positions.shape)
    return [Simulation(positions[i], times, masses[i], charges[i], f"{source} sim {i}") for i in range(s)]


def from_simulations(simulations: Sequence[Simulation], law: str | None = None, method: str = "central",
                     window: int = 7, order: int = 3) -> ParticleDataset:
    """One dataset from simulations of any lengths (the same particle count and dimension), differentiated one by one.

    The dataset's ``dt`` is the common time step, or ``None`` when the simulations' steps differ.
    """
    if method not in METHODS:
        raise unknown_name("derivative method", method, METHODS)
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
        if (sim.masses <= 0).any():
            raise DatasetError(f"{sim.name}: masses must be positive, got {sim.masses.min():g}")
    steps = []
    for sim in simulations:
        try:
            steps.append(uniform_step(sim.times))
        except DatasetError as exc:
            raise DatasetError(f"{sim.name}: {exc}") from None
    label = None
    if method == "auto":  # one estimator for the whole dataset, chosen from all its simulations
        choice = choose_window([sim.positions for sim in simulations], steps)
        method, window, order, label = choice.method, choice.window, 3, choice.label()
    layout = NodeLayout(d)
    nodes, accelerations, sim_ids, times = [], [], [], []
    for i, (sim, step) in enumerate(zip(simulations, steps)):
        try:
            velocities, acc, keep, used = differentiate(sim.positions[None], step, method, window, order)
        except (DatasetError, ConfigError) as exc:
            raise type(exc)(f"{sim.name}: {exc}") from None
        label = label or used
        nodes.append(layout.assemble(sim.positions[None, keep], velocities, sim.charges[None, None, :],
                                     sim.masses[None, None, :])[0])
        accelerations.append(acc[0])
        sim_ids.append(np.full(len(keep), i))
        times.append(sim.times[keep])
    common = float(np.median(steps))
    dt = common if all(abs(h - common) <= 1e-3 * common for h in steps) else None
    charge_values = sorted({float(q) for sim in simulations for q in sim.charges})
    meta = DatasetMeta(law=law, dim=d, n_particles=n, dt=dt, softening=0.0, sims=len(simulations),
                       integrator="trajectory file", derivatives=label, charge_choices=charge_values)
    return ParticleDataset(np.concatenate(nodes), np.concatenate(accelerations), np.concatenate(sim_ids),
                           np.concatenate(times), meta)


def _check_array(name: str, array: np.ndarray, shape: tuple) -> None:
    if array.shape != tuple(shape):
        raise DatasetError(f"array {name!r} has shape {array.shape}, expected {tuple(shape)}")
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DatasetError(f"array {name!r} holds {int(bad.sum())} NaN/inf values (first at index {first})")


def _read_npz(path: Path) -> list[Simulation]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except Exception as exc:
        raise DatasetError(f"{str(path)!r} is truncated or not an npz file ({type(exc).__name__})") from None
    missing = [k for k in ("positions", "times", "masses") if k not in arrays]
    if missing:
        raise DatasetError(f"{str(path)!r}: missing array(s) {missing}; expected positions [S, T, n, D], "
                           "times [T], masses [S, n] or [n], optional charges")
    for name, array in arrays.items():
        if array.dtype.kind not in "fiu":
            raise DatasetError(f"{str(path)!r}: array {name!r} is not numeric ({array.dtype})")
    positions = arrays["positions"]
    if positions.ndim == 3:
        positions = positions[None]
    if positions.ndim != 4:
        raise DatasetError(f"array 'positions' must be [S, T, n, D] or [T, n, D], got shape {positions.shape}")
    s, _, n, _ = positions.shape
    masses = np.broadcast_to(arrays["masses"], (s, n)) if arrays["masses"].shape == (n,) else arrays["masses"]
    charges = arrays.get("charges")
    if charges is not None and charges.shape == (n,):
        charges = np.broadcast_to(charges, (s, n))
    return _split_arrays(positions, arrays["times"], masses, charges, repr(str(path)))


def _read_csv(path: Path) -> list[Simulation]:
    """Long-format CSV -> one :class:`Simulation` per value of ``sim`` (in increasing order)."""
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        dim = 3 if "z" in header else 2
        required = ["sim", "t", "particle", "x", "y"] + (["z"] if dim == 3 else []) + ["m"]
        missing = [c for c in required if c not in header]
        if missing:
            raise DatasetError(f"{str(path)!r}: header lacks column(s) {missing}; expected "
                               "sim,t,particle,x,y[,z],q,m (q optional)")
        columns = {c: header.index(c) for c in required + (["q"] if "q" in header else [])}
        rows = [(number, row) for number, row in enumerate(reader, start=2) if row]
    if not rows:
        raise DatasetError(f"{str(path)!r} has a header but no rows")
    values = np.empty((len(rows), len(columns)))
    names = list(columns)
    for i, (number, row) in enumerate(rows):
        try:
            values[i] = [float(row[columns[c]]) for c in names]
        except (ValueError, IndexError):
            raise DatasetError(f"{str(path)!r} row {number}: expected numbers in columns {names}, got {row}") from None
        if not np.isfinite(values[i]).all():
            raise DatasetError(f"{str(path)!r} row {number}: NaN or inf in {row}")
    return _assemble(path, values, names, [number for number, _ in rows], dim)


def _assemble(path: Path, values: np.ndarray, names: list[str], rows: list[int], dim: int) -> list[Simulation]:
    col = {c: values[:, names.index(c)] for c in names}
    rows = np.asarray(rows)
    order = np.argsort(col["sim"], kind="stable")
    sims, starts = np.unique(col["sim"][order], return_index=True)
    return [_one_simulation(path, sim, {c: v[part] for c, v in col.items()}, rows[part], dim)
            for sim, part in zip(sims, np.split(order, starts[1:]))]


def _one_simulation(path: Path, sim: float, col: dict[str, np.ndarray], rows: np.ndarray, dim: int) -> Simulation:
    """The rows of one simulation (file order) -> positions [T, n, D] on its own times."""
    times, particles = np.unique(col["t"]), np.unique(col["particle"])
    t, n = len(times), len(particles)
    ti, pi = np.searchsorted(times, col["t"]), np.searchsorted(particles, col["particle"])
    count = np.zeros((t, n), dtype=int)
    np.add.at(count, (ti, pi), 1)
    if (count > 1).any():
        keys = ti * n + pi
        repeated = np.ones(len(keys), dtype=bool)
        repeated[np.unique(keys, return_index=True)[1]] = False
        k = int(np.argmax(repeated))
        raise DatasetError(f"{str(path)!r} row {rows[k]}: particle {col['particle'][k]:g} at t={col['t'][k]:g} in sim "
                           f"{sim:g} appears more than once")
    if (count == 0).any():
        b, c = (int(v) for v in np.argwhere(count == 0)[0])
        first = rows[int(np.argmax(pi == c))]
        raise DatasetError(f"{str(path)!r}: no row for particle {particles[c]:g} at t={times[b]:g} in sim {sim:g}, "
                           f"though it has rows at other times of that simulation (from row {first}); particles that "
                           "enter or leave a simulation are not supported: split the simulation where its set of "
                           "particles changes, or leave the particle out")
    positions = np.empty((t, n, dim))
    for k, axis in enumerate("xyz"[:dim]):
        positions[ti, pi, k] = col[axis]
    first = np.unique(pi, return_index=True)[1]  # the first row of each particle
    masses, charges = col["m"][first], col["q"][first] if "q" in col else np.zeros(n)
    changed = np.abs(masses[pi] - col["m"]) > 1e-9 * np.abs(col["m"])
    if changed.any():
        k = int(np.argmax(changed))
        raise DatasetError(f"{str(path)!r} row {rows[k]}: the mass of particle {col['particle'][k]:g} "
                           "changes over time")
    return Simulation(positions, times, masses, charges, f"{str(path)!r} sim {sim:g} (from row {rows.min()})")


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
