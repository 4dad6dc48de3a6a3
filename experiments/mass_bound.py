"""How well can per-particle masses be known from trajectories when the law is *given*? A ceiling for learning them.

    python experiments/mass_bound.py data/rebound/g2d-ragged.csv [--train-fraction 0.8] [--learned RUN_DIR]

For gravity (G = 1, no softening, the REBOUND files of ``rebound_trajectories.py``) each
particle's acceleration is linear in the other particles' masses, ``a_i = Σ_j m_j (x_j − x_i)/r³``,
so one simulation's masses are a least-squares solve over its snapshots (each snapshot's rows
scaled by its largest acceleration, as ``eqlgn.property_starts.inertial_masses`` does, so that close
encounters do not decide alone). Solved two ways and scored with the library's agreement
(log-R² after one global factor, ``eqlgn.properties.agreement``) over all particles:

* the accelerations eqlgn trains on (estimated from positions by the reader's default estimator, the
  outlying snapshots IQR-pruned as ``eqlgn run`` does), by least squares and by least absolute deviations;
* the exact accelerations the file also carries (``ax, ay[, az]``: Newton's sum, written by REBOUND's script).

``--train-fraction`` keeps only the first fraction of each simulation's snapshots (about what a
training split sees). If the first line is below the issue's 0.99, the data, not the learning,
limit the learned masses. ``--learned RUN_DIR`` (a run of ``eqlgn run --data FILE --learn m`` on
the same file, per particle) scores its ``properties.csv`` over every particle training saw and
over the simulations where the law-given solve is well posed (all its masses positive).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

import eqlgn
from eqlgn.properties import MassErrors, agreement


def solve_masses(positions: np.ndarray, accelerations: np.ndarray, robust: int = 0) -> np.ndarray:
    """Least-squares masses of one simulation from ``[T, n, D]`` positions and accelerations (Newton, G = 1);
    ``robust`` > 0: that many reweighting passes towards least absolute deviations."""
    delta = positions[:, None, :, :] - positions[:, :, None, :]  # x_j - x_i  [T, i, j, D]
    r = np.linalg.norm(delta, axis=-1)
    np.einsum("tii->ti", r)[...] = np.inf  # no self-force
    design = delta / r[..., None] ** 3  # [T, i, j, D]
    scale = 1.0 / np.maximum(np.linalg.norm(accelerations, axis=-1).max(axis=1), 1e-300)  # per snapshot
    rows = (design * scale[:, None, None, None]).transpose(0, 1, 3, 2).reshape(-1, positions.shape[1])
    target = (accelerations * scale[:, None, None]).reshape(-1)
    masses = np.linalg.lstsq(rows, target, rcond=None)[0]
    for _ in range(robust):  # least absolute deviations by reweighting (training's loss is L1, too)
        weight = 1.0 / np.sqrt(np.maximum(np.abs(rows @ masses - target), 1e-9))
        masses = np.linalg.lstsq(rows * weight[:, None], target * weight, rcond=None)[0]
    return masses


def exact_accelerations(path: str, dim: int) -> dict[tuple[int, float, int], np.ndarray]:
    """``(sim, t, particle) -> a`` from the file's own ``ax, ay[, az]`` columns."""
    axes = ["ax", "ay", "az"][:dim]
    with open(path) as handle:
        return {(int(row["sim"]), round(float(row["t"]), 5), int(row["particle"])):
                np.array([float(row[a]) for a in axes]) for row in csv.DictReader(handle)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--train-fraction", type=float, default=1.0)
    parser.add_argument("--learned", type=Path, help="a run that learned the masses per particle from FILE")
    args = parser.parse_args(argv)
    data, dropped = eqlgn.load_trajectories([args.file]).prune_outliers()  # as eqlgn run does
    exact = exact_accelerations(args.file, data.dim)
    found = {"estimated": [], "robust": [], "exact": []}
    truth, well_posed = [], set()
    negative = 0
    for sim in np.unique(data.sim_ids):
        rows = np.flatnonzero(data.sim_ids == sim)
        rows = rows[: max(2, int(round(args.train_fraction * len(rows))))]
        positions = data.positions[rows].astype(np.float64)
        true_a = np.array([[exact[int(sim), round(float(data.times[k]), 5), p] for p in range(data.n_particles)]
                           for k in rows])
        estimated = data.accelerations[rows].astype(np.float64)
        for name, accelerations, robust in (("estimated", estimated, 0), ("robust", estimated, 30),
                                            ("exact", true_a, 0)):
            masses = solve_masses(positions, accelerations, robust)
            if name == "robust":
                negative += int((masses <= 0).any())
                well_posed |= {int(sim)} if (masses > 0).all() else set()
            found[name].append(masses)
        truth.append(data.masses[rows[0]].astype(np.float64))
    truth = np.concatenate(truth)
    print(f"{args.file}: {len(np.unique(data.sim_ids))} simulations, {len(truth)} particles, first "
          f"{args.train_fraction:g} of each simulation's snapshots ({dropped} outlying snapshots pruned)")
    print("| masses from | log-R² after one global factor (non-positive masses at 1e-12) | the same, over the "
          "simulations whose masses all came out positive | median abs log error | particles off by > 10 % |")
    print("|---|---|---|---|---|")
    for name, label in (("estimated", "least squares, Newton's law given, the estimated accelerations eqlgn trains on"),
                        ("robust", "least absolute deviations, the same"),
                        ("exact", "least squares, Newton's law given, the exact accelerations")):
        masses = np.concatenate(found[name])
        positive = np.repeat([(m > 0).all() for m in found[name]], data.n_particles)
        errors = MassErrors.of(np.maximum(masses, 1e-12), truth)
        print(f"| {label} | {errors.log_r2:.4f} | {agreement(masses[positive], truth[positive], 'm'):.4f} | "
              f"{errors.median_log_error:.2g} | {round((1 - errors.within_10_percent) * errors.particles)} |")
    print(f"simulations with a non-positive mass (least absolute deviations): {negative}")
    if args.learned:
        rows = [r for r in csv.DictReader(open(args.learned / "properties.csv")) if int(r["snapshots"]) > 0]
        true = {(int(s), p): float(data.masses[np.flatnonzero(data.sim_ids == s)[0], p])
                for s in np.unique(data.sim_ids) for p in range(data.n_particles)}
        rows = [r for r in rows if (int(r["sim"]), int(r["particle"])) in true]  # pruned-away simulations drop out
        learned = np.array([float(r["m"]) for r in rows])
        target = np.array([true[int(r["sim"]), int(r["particle"])] for r in rows])
        posed = np.array([int(r["sim"]) in well_posed for r in rows])
        errors = MassErrors.of(learned, target)
        print(f"learned ({args.learned}): log-R² {errors.log_r2:.4f} over {len(rows)} particles; "
              f"{agreement(learned[posed], target[posed], 'm'):.4f} over the {int(posed.sum())} of well-posed "
              f"simulations; median abs log error {errors.median_log_error:.2g}, "
              f"{errors.within_10_percent:.0%} of particles within 10 %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
