"""Gravity trajectories from REBOUND (an outside N-body code), written as eqlgn trajectory CSVs.

    pip install rebound
    python experiments/rebound_trajectories.py --dim 2 --sims 300 --steps 200 --ragged --out data/rebound/g2d.csv
    eqlgn run --data data/rebound/g2d.csv --law r2 --edge eql

IAS15, G = 1, ``n`` bodies with positions and velocities drawn from N(0, 1) and masses from
exp(N(0, 1)) (the draws of eqlgn's simulator, so the data cover the same range), no
softening; a snapshot every ``dt``. ``--ragged`` draws each simulation's number of snapshots
uniformly between ``steps // 2`` and ``steps``; ``--noise REL`` adds Gaussian position noise
of ``REL`` × the median pair distance; ``--species K`` gives the bodies K species of one mass
each (a ``species`` column). Columns ``sim,t,particle,x,y[,z],m`` and the
exact accelerations at the snapshot positions ``ax,ay[,az]`` (Newton's sum, computed here),
which eqlgn's reader ignores (extra columns) and tests compare with the estimated ones.
Nothing here uses eqlgn: the trajectories are another code's, the point of the check.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from pathlib import Path

import numpy as np


def simulate(dim: int = 2, n: int = 4, sims: int = 300, steps: int = 200, dt: float = 0.01, seed: int = 0,
             ragged: bool = False, noise: float = 0.0, species: int = 0) -> list[list[float]]:
    """Rows ``[sim, t, particle, x, y[, z], m, ax, ay[, az]]`` of ``sims`` REBOUND simulations.

    ``noise``: Gaussian noise of standard deviation ``noise`` × the median pair distance of
    all snapshots added to the written positions (the accelerations stay the exact ones).
    ``species``: when positive, every body is one of that many species, each with one mass drawn
    from exp(N(0, 1)); the species index is the row's last value.
    """
    import rebound

    rng = np.random.default_rng(seed)
    species_masses = np.exp(rng.standard_normal(species)) if species else None
    rows = []
    for s in range(sims):
        length = int(rng.integers(steps // 2, steps + 1)) if ragged else steps
        pos, vel = rng.standard_normal((n, dim)), rng.standard_normal((n, dim))
        kinds = rng.integers(0, species, n) if species else None
        masses = species_masses[kinds] if species else np.exp(rng.standard_normal(n))
        sim = rebound.Simulation()
        sim.G, sim.integrator = 1.0, "ias15"
        for i in range(n):
            x, v = np.zeros(3), np.zeros(3)
            x[:dim], v[:dim] = pos[i], vel[i]
            sim.add(m=float(masses[i]), x=x[0], y=x[1], z=x[2], vx=v[0], vy=v[1], vz=v[2])
        for k in range(length):
            sim.integrate(k * dt, exact_finish_time=1)
            x = np.array([(p.x, p.y, p.z)[:dim] for p in sim.particles])
            for i, a in enumerate(newton(x, masses)):
                rows.append([s, k * dt, i, *x[i], masses[i], *a] + ([kinds[i]] if species else []))
    if noise > 0:
        table = np.array(rows)
        positions = table[:, 3:3 + dim].reshape(-1, n, dim)  # rows come n at a time, one snapshot each
        pairs = np.linalg.norm(positions[:, :, None] - positions[:, None], axis=-1)[:, ~np.eye(n, dtype=bool)]
        table[:, 3:3 + dim] += noise * float(np.median(pairs)) * rng.standard_normal((len(table), dim))
        rows = table.tolist()
    return rows


def newton(x: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Accelerations ``sum_j m_j (x_j - x_i) / |x_j - x_i|^3`` (G = 1) at positions ``x [n, D]``."""
    d = x[None, :, :] - x[:, None, :]  # d[i, j] = x_j - x_i
    r = np.linalg.norm(d, axis=-1)
    np.fill_diagonal(r, np.inf)
    return (masses[None, :, None] * d / r[..., None] ** 3).sum(axis=1)


def write(rows: list[list[float]], dim: int, path: str | os.PathLike, species: bool = False) -> Path:
    """The rows as a CSV with a header, written atomically (``species``: the rows end with a species index)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = "xyz"[:dim]
    handle = tempfile.NamedTemporaryFile("w", newline="", dir=path.parent, suffix=".tmp", delete=False)
    with handle:
        writer = csv.writer(handle)
        header = ["sim", "t", "particle", *axes, "m", *(f"a{a}" for a in axes)]
        writer.writerow(header + (["species"] if species else []))
        end = len(rows[0]) - (1 if species else 0)
        writer.writerows([int(r[0]), repr(float(r[1])), int(r[2]), *(repr(float(v)) for v in r[3:end])]
                         + ([f"s{int(r[-1])}"] if species else []) for r in rows)
    os.replace(handle.name, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2, choices=[2, 3])
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--sims", type=int, default=300)
    parser.add_argument("--steps", type=int, default=200, help="snapshots per simulation (the most, with --ragged)")
    parser.add_argument("--dt", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ragged", action="store_true", help="simulations of random lengths, steps/2 to steps")
    parser.add_argument("--noise", type=float, default=0.0,
                        help="position noise, relative to the median pair distance (default 0)")
    parser.add_argument("--species", type=int, default=0,
                        help="bodies of this many species, one mass each, written in a species column (default 0: "
                             "every body its own mass)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    rows = simulate(args.dim, args.n, args.sims, args.steps, args.dt, args.seed, args.ragged, args.noise, args.species)
    print(f"wrote {write(rows, args.dim, args.out, args.species > 0)} ({args.sims} simulations, {len(rows)} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
