"""Reading trajectory files: each simulation of a CSV or npz file as a :class:`Simulation`.

The formats are those of :mod:`eqlgn.trajectories` (which turns simulations into a dataset):
long-format CSV ``sim,t,particle,x,y[,z][,q][,m][,species]`` and npz arrays ``positions``,
``times``, optional ``masses``, ``charges``, ``species``. Every fault is one line naming the
file and the row (CSV) or the array (npz). :func:`trajectory_files` expands folders.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DatasetError

SUFFIXES = (".csv", ".npz")


@dataclass
class Simulation:
    """One simulation's trajectories as read from a file.

    Attributes:
        positions: ``[T, n, D]`` at ``times``.
        times: ``[T]``, uniform steps (checked when differentiated).
        masses, charges: ``[n]``; ``None`` where the file does not give them.
        name: where it came from, for messages (``'run1.csv' sim 3``).
        species: ``[n]`` species labels (strings), or ``None`` without a ``species`` column.
    """

    positions: np.ndarray
    times: np.ndarray
    masses: np.ndarray | None
    charges: np.ndarray | None
    name: str
    species: np.ndarray | None = None


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


def split_arrays(positions, times, masses, charges, source: str, species=None) -> list[Simulation]:
    """Checked rectangular arrays -> one :class:`Simulation` per row of ``positions``."""
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 4 or positions.shape[-1] not in (2, 3) or positions.shape[2] < 2:
        raise DatasetError(f"array 'positions' must be [S, T, n, D] with n >= 2 and D in (2, 3), "
                           f"got shape {positions.shape}")
    s, t, n, _ = positions.shape
    times = np.asarray(times, dtype=np.float64)
    _check_array("times", times, (t,))
    _check_array("positions", positions, positions.shape)
    given = {}
    for name, values in (("masses", masses), ("charges", charges)):
        if values is not None:
            given[name] = np.asarray(values, dtype=np.float64)
            _check_array(name, given[name], (s, n))
    if species is not None:
        species = np.asarray(species).astype(str).astype(object)
        if species.shape != (s, n):
            raise DatasetError(f"array 'species' has shape {species.shape}, expected {(s, n)}")
    return [Simulation(positions[i], times, given["masses"][i] if "masses" in given else None,
                       given["charges"][i] if "charges" in given else None, f"{source} sim {i}",
                       None if species is None else species[i]) for i in range(s)]


def _check_array(name: str, array: np.ndarray, shape: tuple) -> None:
    if array.shape != tuple(shape):
        raise DatasetError(f"array {name!r} has shape {array.shape}, expected {tuple(shape)}")
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DatasetError(f"array {name!r} holds {int(bad.sum())} NaN/inf values (first at index {first})")


def read_npz(path: Path) -> list[Simulation]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except Exception as exc:
        raise DatasetError(f"{str(path)!r} is truncated or not an npz file ({type(exc).__name__})") from None
    missing = [k for k in ("positions", "times") if k not in arrays]
    if missing:
        raise DatasetError(f"{str(path)!r}: missing array(s) {missing}; expected positions [S, T, n, D], "
                           "times [T], optional masses [S, n] or [n] (learned when absent), charges, species")
    for name, array in arrays.items():
        if array.dtype.kind not in "fiu" and name != "species":
            raise DatasetError(f"{str(path)!r}: array {name!r} is not numeric ({array.dtype})")
    positions = arrays["positions"]
    if positions.ndim == 3:
        positions = positions[None]
    if positions.ndim != 4:
        raise DatasetError(f"array 'positions' must be [S, T, n, D] or [T, n, D], got shape {positions.shape}")
    s, _, n, _ = positions.shape
    per_sim = {}
    for name in ("masses", "charges", "species"):
        value = arrays.get(name)
        per_sim[name] = np.broadcast_to(value, (s, n)) if value is not None and value.shape == (n,) else value
    return split_arrays(positions, arrays["times"], per_sim["masses"], per_sim["charges"], repr(str(path)),
                         per_sim["species"])


def read_csv(path: Path) -> list[Simulation]:
    """Long-format CSV -> one :class:`Simulation` per value of ``sim`` (in increasing order)."""
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        dim = 3 if "z" in header else 2
        required = ["sim", "t", "particle", "x", "y"] + (["z"] if dim == 3 else [])
        missing = [c for c in required if c not in header]
        if missing:
            raise DatasetError(f"{str(path)!r}: header lacks column(s) {missing}; expected "
                               "sim,t,particle,x,y[,z][,q][,m][,species] (m, q left out are learned or zero)")
        columns = {c: header.index(c) for c in required + [c for c in ("q", "m") if c in header]}
        species_column = header.index("species") if "species" in header else None
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
    species = None
    if species_column is not None:
        try:
            species = np.array([row[species_column].strip() for _, row in rows], dtype=object)
        except IndexError:
            number = next(n for n, row in rows if len(row) <= species_column)
            raise DatasetError(f"{str(path)!r} row {number}: no value in column 'species'") from None
        empty = np.flatnonzero(species == "")
        if len(empty):
            raise DatasetError(f"{str(path)!r} row {rows[empty[0]][0]}: no value in column 'species'")
    return _assemble(path, values, names, [number for number, _ in rows], dim, species)


def _assemble(path: Path, values: np.ndarray, names: list[str], rows: list[int], dim: int,
              species: np.ndarray | None) -> list[Simulation]:
    col = {c: values[:, names.index(c)] for c in names}
    if species is not None:
        col["species"] = species
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
    constant = {}
    for name, what in (("m", "mass"), ("q", "charge"), ("species", "species")):
        if name not in col:
            continue
        constant[name] = col[name][first]
        changed = constant[name][pi] != col[name]
        if name == "m":
            changed = np.abs(constant[name][pi] - col[name]) > 1e-9 * np.abs(col[name])
        if changed.any():
            k = int(np.argmax(changed))
            raise DatasetError(f"{str(path)!r} row {rows[k]}: the {what} of particle {col['particle'][k]:g} "
                               "changes over time")
    return Simulation(positions, times, constant.get("m"), constant.get("q"),
                      f"{str(path)!r} sim {sim:g} (from row {rows.min()})", constant.get("species"))
