"""How well a run's learned masses and charges match the truth, up to what the law leaves free.

    python experiments/learned_properties.py RUN_DIR TRUTH [TRUTH ...]

``RUN_DIR`` is a run that learned properties (its ``properties.csv``); ``TRUTH`` the same
trajectory files with the true ``m`` (and ``q``) columns, read in the same order (the run's
``data_source.paths``), so that simulations are numbered alike. Prints, per learned property,
the agreement (``eqlgn.properties.agreement``: log-R² after one global factor for masses, R²
after a factor and a sign for charges — a sign per simulation for per-particle charges, and a
factor per simulation for both where both are learned per particle) over the
particles or species that training saw, and how many it did not see; for masses also the median
``|log(m_learned / m_true)|`` and the fraction within 10 % (``eqlgn.properties.MassErrors``), which
one badly fixed simulation does not decide as it can decide a log-R².
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import eqlgn
from eqlgn.plots import plot_learned_properties
from eqlgn.properties import MassErrors, agreement, signs_right


@dataclass(frozen=True)
class Match:
    """One learned property against the truth: :func:`eqlgn.properties.agreement`, the identities compared and
    never trained, the masses' per-particle errors, and for per-particle charges the share of simulations whose
    signs are all right up to the flip (``None`` where it does not apply)."""

    agreement: float
    compared: int
    untrained: int
    mass_errors: MassErrors | None = None
    signs_right: float | None = None
    values: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None  # learned, truth, simulation or None
    per_simulation: bool = False  # compared up to a factor per simulation (masses and charges both learned)


def compare(run: Path, truth_paths: list[Path], min_snapshots: int = 1) -> dict[str, Match]:
    """``{property: Match}`` for each property the run learned, over the identities seen in at least
    ``min_snapshots`` training snapshots (``untrained`` counts the others)."""
    truth = eqlgn.load_trajectories(truth_paths)
    by_place = {}
    for snapshot in np.unique(truth.sim_ids, return_index=True)[1]:
        for particle in range(truth.n_particles):
            by_place[int(truth.sim_ids[snapshot]), particle] = (float(truth.masses[snapshot, particle]),
                                                                float(truth.charges[snapshot, particle]))
    with open(run / "properties.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    identity = json.loads((run / "result.json").read_text())["data"]["learned"]["identity"]
    out = {}
    for name, column in (("m", 0), ("q", 1)):
        if name not in rows[0]:
            continue
        seen = [r for r in rows if int(r["snapshots"]) >= max(min_snapshots, 1)]
        learned = np.array([float(r[name]) for r in seen])
        true = np.array([by_place[int(r["sim"]), int(r["particle"])][column] for r in seen])
        sims = np.array([int(r["sim"]) for r in seen]) if identity == "particle" else None
        groups = sims if name == "q" else None  # a sign per simulation
        factors = sims if {"m", "q"} <= set(rows[0]) else None  # m -> c m, q -> sqrt(c) q per simulation
        errors = MassErrors.of(learned, true, factors) if name == "m" else None
        signs = signs_right(learned, true, groups) if groups is not None else None
        out[name] = Match(agreement(learned, true, name, groups, factors), len(seen), len(rows) - len(seen), errors,
                          signs, (learned, true, groups), factors is not None)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("truth", nargs="+", type=Path)
    parser.add_argument("--min-snapshots", type=int, default=1,
                        help="compare only identities seen in at least this many training snapshots (the run's "
                             "poorly fixed ones have fewer than 10)")
    parser.add_argument("--plot", type=Path, default=None, help="write learned against true values to this PNG")
    args = parser.parse_args(argv)
    found = compare(args.run, args.truth, args.min_snapshots)
    if args.plot:
        print(f"figure: {plot_learned_properties({n: m.values for n, m in found.items()}, args.plot, str(args.run))}")
    for name, match in found.items():
        what = "log-R² after one global factor" if name == "m" else "R² after a factor and a sign"
        if match.per_simulation:
            what = what.replace("one global factor", "a factor") + " per simulation (both learned)"
        print(f"{args.run} {name}: {what} {match.agreement:.4f} over {match.compared} identities (particles or "
              f"species; {match.untrained} seen in fewer than {max(args.min_snapshots, 1)} training snapshots)")
        if match.mass_errors is not None:
            print(f"  after the median factor: median abs log error {match.mass_errors.median_log_error:.3g}, "
                  f"{match.mass_errors.within_10_percent:.1%} within 10 %")
        if match.signs_right is not None:
            print(f"  simulations whose charges all have the right sign (up to one flip each): {match.signs_right:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
