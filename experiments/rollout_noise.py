"""The loss floor of the true law on noisy positions: estimated accelerations against the rollout loss.

    python experiments/rollout_noise.py --laws spring r1 r2 charge --seed 0 \\
        --noise 0 1e-4 1e-3 1e-2 --windows 3 7 15 31

For each law, a simulated dataset (2D, 4 particles; ``--sims`` simulations of the simulator's
default length) gets Gaussian position noise of REL × the median pair distance
(``eqlgn.add_noise``). Two numbers per noise level, both "the loss a perfect model gets",
relative to the mean |a|:

* ``auto``: mean |a_est - a| of the accelerations ``--derivative auto`` estimates from the noisy
  positions (the window chosen from the data, one per particle and snapshot; noise and bias);
* ``W=…``: the mean rollout residual (``eqlgn/rollout.py``) of the exact accelerations on windows
  of W noisy snapshots (W = 3 is the central-difference loss).

This is how the window of the ``rollout-REL`` conditions (``ROLLOUT_WINDOW`` in
``experiments/common.py``) was chosen, on design seed 0. Pure NumPy/torch: seconds per law.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import eqlgn
from eqlgn.derivatives import differentiate
from eqlgn.rollout import runs, segment_length, segment_starts, windows
from eqlgn.trajectories import trajectories_of


def estimate_floor(noisy: eqlgn.ParticleDataset, clean: eqlgn.ParticleDataset) -> float:
    """Mean |a_est - a| / mean |a| of the ``auto`` estimator."""
    positions, times, _, _ = trajectories_of(noisy)
    _, estimated, keep, _ = differentiate(positions, float(times[1] - times[0]), "auto")
    order = np.lexsort((clean.times, clean.sim_ids))
    truth = clean.accelerations[order].reshape(positions.shape[0], positions.shape[1], clean.n_particles, -1)
    truth = truth[:, keep]
    return float(np.abs(estimated - truth).mean() / np.abs(truth).mean())


def rollout_floor(noisy: eqlgn.ParticleDataset, clean: eqlgn.ParticleDataset, window: int) -> float:
    """Mean rollout residual of the exact accelerations / mean |a|."""
    batch, size = windows(noisy, window), segment_length(window)
    inner = [clean.accelerations[rows[s + 1:s + size - 1]] for rows, _ in runs(clean)
             for s in segment_starts(len(rows), window)]
    residual = batch.error(torch.as_tensor(np.stack(inner)).flatten(0, 1), batch.targets)
    return float(residual.mean()) / float(np.abs(clean.accelerations).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--laws", nargs="+", default=["spring", "r1", "r2", "charge"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sims", type=int, default=100)
    parser.add_argument("--noise", nargs="+", type=float, default=[0.0, 1e-4, 1e-3, 1e-2])
    parser.add_argument("--windows", nargs="+", type=int, default=[3, 7, 15, 31])
    args = parser.parse_args()
    print(f"seed {args.seed}, {args.sims} simulations, 2D, 4 particles; loss floor / mean |a|\n")
    print("| law | position noise | auto | " + " | ".join(f"W={w}" for w in args.windows) + " |")
    print("|---|---|---|" + "---|" * len(args.windows))
    for law in args.laws:
        clean = eqlgn.simulate(law, 2, 4, args.sims, seed=args.seed, progress=False)
        for relative in args.noise:
            noisy = eqlgn.add_noise(clean, relative, "positions", seed=args.seed + 1)
            cells = [f"{estimate_floor(noisy, clean):.3g}"] + [f"{rollout_floor(noisy, clean, w):.3g}"
                                                                for w in args.windows]
            print(f"| {law} | {relative:g} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
