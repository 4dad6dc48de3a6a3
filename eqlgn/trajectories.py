"""Users' own data: particle trajectories from files, with velocities and accelerations estimated.

Two file formats, read by :func:`load_trajectories`:

* **CSV**, long format with a header ``sim,t,particle,x,y[,z],q,m``: one row per particle
  per time; ``q`` may be absent (then 0); extra columns are ignored.
* **npz** with ``positions [S, T, n, D]`` (or ``[T, n, D]`` for one simulation),
  ``times [T]``, ``masses [S, n]`` or ``[n]`` and optional ``charges`` of the same shape.

Velocities and accelerations are estimated from the positions (:func:`differentiate`) on
uniform time steps: ``central`` differences (second order in the step: errors ``h²/6 x'''``
and ``h²/12 x''''``) or a ``savgol`` Savitzky–Golay smoothing derivative for noisy
positions. The snapshots at the ends of every trajectory, where the stencil does not fit,
are dropped. The method is recorded in the dataset metadata (``derivatives``).

:func:`save_trajectories` writes a simulated dataset's positions in either format, so the
same pipeline can be tested on data with known truth; :func:`add_noise` perturbs
positions or accelerations by a relative amount.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from ._io import atomic_write, atomic_write_text
from .data import DatasetMeta, ParticleDataset
from .errors import ConfigError, DatasetError, unknown_name
from .layout import NodeLayout

METHODS = ("central", "savgol")
NOISE_TARGETS = ("positions", "accelerations")


def load_trajectories(path: str | os.PathLike, law: str | None = None, method: str = "central",
                      window: int = 7, order: int = 3) -> ParticleDataset:
    """Read a trajectory file (CSV or npz, see module docstring) into a dataset.

    Args:
        path: ``.csv`` or ``.npz`` file.
        law: the force law when known (kept in the metadata, used by the judge).
        method: ``central`` differences or ``savgol`` (Savitzky–Golay, for noisy data).
        window, order: Savitzky–Golay window (odd, in snapshots) and polynomial order.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"trajectory file {str(path)!r} does not exist")
    if path.suffix.lower() == ".csv":
        positions, times, masses, charges = _read_csv(path)
    elif path.suffix.lower() == ".npz":
        positions, times, masses, charges = _read_npz(path)
    else:
        raise DatasetError(f"{str(path)!r}: trajectory files are .csv (long format) or .npz; see "
                           "eqlgn.trajectories for the columns and arrays")
    return from_trajectories(positions, times, masses, charges, law=law, method=method, window=window, order=order)


def from_trajectories(positions: np.ndarray, times: np.ndarray, masses: np.ndarray, charges: np.ndarray | None = None,
                      law: str | None = None, method: str = "central", window: int = 7,
                      order: int = 3) -> ParticleDataset:
    """Build a dataset from positions ``[S, T, n, D]``, times ``[T]`` and masses/charges ``[S, n]``."""
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 4 or positions.shape[-1] not in (2, 3) or positions.shape[2] < 2:
        raise DatasetError(f"array 'positions' must be [S, T, n, D] with n >= 2 and D in (2, 3), "
                           f"got shape {positions.shape}")
    s, t, n, d = positions.shape
    times = np.asarray(times, dtype=np.float64)
    masses = np.asarray(masses, dtype=np.float64)
    charges = np.zeros((s, n)) if charges is None else np.asarray(charges, dtype=np.float64)
    _check_array("times", times, (t,))
    _check_array("masses", masses, (s, n))
    _check_array("charges", charges, (s, n))
    _check_array("positions", positions, positions.shape)
    if (masses <= 0).any():
        raise DatasetError("array 'masses' must hold positive values")
    step = uniform_step(times)
    velocities, accelerations, keep, label = differentiate(positions, step, method, window, order)
    nodes = NodeLayout(d).assemble(positions[:, keep], velocities, charges[:, None, :], masses[:, None, :])
    meta = DatasetMeta(law=law, dim=d, n_particles=n, dt=step, softening=0.0, sims=s,
                       integrator="trajectory file", derivatives=label, charge_choices=sorted(set(charges.ravel())))
    return ParticleDataset(nodes.reshape(s * len(keep), n, NodeLayout(d).width),
                           accelerations.reshape(s * len(keep), n, d),
                           np.repeat(np.arange(s), len(keep)), np.tile(times[keep], s), meta)


def uniform_step(times: np.ndarray) -> float:
    """The common time step; refuses fewer than 3 times, unsorted or non-uniform times."""
    if len(times) < 3:
        raise DatasetError(f"a trajectory needs at least 3 time steps to estimate accelerations, got {len(times)}")
    steps = np.diff(times)
    if (steps <= 0).any():
        i = int(np.argmax(steps <= 0))
        raise DatasetError(f"times must increase: t[{i}]={times[i]:g} is followed by t[{i + 1}]={times[i + 1]:g}")
    step = float(np.median(steps))
    worst = int(np.argmax(np.abs(steps - step)))
    if abs(steps[worst] - step) > 1e-3 * step:  # float32 times round at ~1e-6 of a step
        raise DatasetError(f"time steps are not uniform (step {step:g}, but t[{worst + 1}] - t[{worst}] = "
                           f"{steps[worst]:g}); resample the trajectories to a uniform time grid")
    return step


def differentiate(positions: np.ndarray, step: float, method: str = "central", window: int = 7,
                  order: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Velocities and accelerations of ``positions [S, T, n, D]`` along time (axis 1).

    Returns:
        ``(velocities, accelerations, kept time indices, label)``; the ends are dropped.
    """
    if method not in METHODS:
        raise unknown_name("derivative method", method, METHODS)
    t = positions.shape[1]
    if method == "central":
        keep = np.arange(1, t - 1)
        velocities = (positions[:, 2:] - positions[:, :-2]) / (2 * step)
        accelerations = (positions[:, 2:] - 2 * positions[:, 1:-1] + positions[:, :-2]) / step**2
        return velocities, accelerations, keep, "central differences"
    if window % 2 == 0 or window <= order or window > t:
        raise ConfigError(f"Savitzky-Golay window must be odd, larger than the order ({order}) and at most the "
                          f"number of time steps ({t}); got {window}")
    from scipy.signal import savgol_filter

    half = window // 2
    keep = np.arange(half, t - half)
    velocities = savgol_filter(positions, window, order, deriv=1, delta=step, axis=1)[:, keep]
    accelerations = savgol_filter(positions, window, order, deriv=2, delta=step, axis=1)[:, keep]
    return velocities, accelerations, keep, f"savgol(window={window}, order={order})"


def _check_array(name: str, array: np.ndarray, shape: tuple) -> None:
    if array.shape != tuple(shape):
        raise DatasetError(f"array {name!r} has shape {array.shape}, expected {tuple(shape)}")
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DatasetError(f"array {name!r} holds {int(bad.sum())} NaN/inf values (first at index {first})")


def _read_npz(path: Path) -> tuple[np.ndarray, ...]:
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
    return positions, arrays["times"], masses, charges


def _read_csv(path: Path) -> tuple[np.ndarray, ...]:
    """Long-format CSV -> positions [S, T, n, D], times [T], masses [S, n], charges [S, n]."""
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


def _assemble(path: Path, values: np.ndarray, names: list[str], rows: list[int], dim: int) -> tuple[np.ndarray, ...]:
    col = {c: values[:, names.index(c)] for c in names}
    sims, times, particles = np.unique(col["sim"]), np.unique(col["t"]), np.unique(col["particle"])
    s, t, n = len(sims), len(times), len(particles)
    si, ti, pi = (np.searchsorted(u, col[c]) for u, c in ((sims, "sim"), (times, "t"), (particles, "particle")))
    count = np.zeros((s, t, n), dtype=int)
    np.add.at(count, (si, ti, pi), 1)
    if (count > 1).any():
        keys = (si * t + ti) * n + pi
        repeated = np.ones(len(keys), dtype=bool)
        repeated[np.unique(keys, return_index=True)[1]] = False
        k = int(np.argmax(repeated))
        raise DatasetError(f"{str(path)!r} row {rows[k]}: particle {col['particle'][k]:g} at t={col['t'][k]:g} in sim "
                           f"{col['sim'][k]:g} appears more than once")
    if (count == 0).any():
        a, b, c = (int(v) for v in np.argwhere(count == 0)[0])
        raise DatasetError(f"{str(path)!r}: no row for particle {particles[c]:g} at t={times[b]:g} in sim {sims[a]:g} "
                           "(every particle needs a row at every time of its simulation; ragged simulations "
                           "go in separate files)")
    positions = np.empty((s, t, n, dim))
    for k, axis in enumerate("xyz"[:dim]):
        positions[si, ti, pi, k] = col[axis]
    masses, charges = np.empty((s, n)), np.zeros((s, n))
    first = np.unique(si * n + pi, return_index=True)[1]  # the first row of each particle
    masses[si[first], pi[first]] = col["m"][first]
    if "q" in col:
        charges[si[first], pi[first]] = col["q"][first]
    changed = np.abs(masses[si, pi] - col["m"]) > 1e-9 * np.abs(col["m"])
    if changed.any():
        k = int(np.argmax(changed))
        raise DatasetError(f"{str(path)!r} row {rows[k]}: the mass of particle {col['particle'][k]:g} "
                           "changes over time")
    return positions, times, masses, charges


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
