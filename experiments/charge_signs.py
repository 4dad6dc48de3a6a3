"""How often the charges' starting signs are right: ``eqlgn.property_starts.charge_signs`` on simulated Coulomb data.

    python experiments/charge_signs.py --seeds 0 1 2 --sims 200 --docs docs

For each setting (dimension, particles, position noise, whether the masses are withheld too) and seed,
eqlgn's simulator writes the charge law's trajectories (charges ±1) to CSV, with Gaussian position noise of
REL × the median pair distance where asked (read back with ``--derivative auto``, as a run reads them), and
reads them back with the charges withheld. Reported: the share of simulations whose every charge has the
right sign up to the one flip the law leaves free (a guess gets 1 in ``2^(n-1)``), after the vote alone
(``rounds=0``) and after the sign-pattern search (the default), and the seconds the start took. Nothing is
trained; a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from tables import write_section

import eqlgn
from eqlgn.properties import signs_right
from eqlgn.property_starts import charge_signs

# (dim, particles, position noise, withheld properties)
SETTINGS = [(2, 4, 0.0, ("q",)), (2, 4, 0.0, ("m", "q")), (2, 4, 1e-4, ("q",)), (2, 4, 1e-3, ("q",)),
            (2, 3, 0.0, ("q",)), (2, 8, 0.0, ("q",)), (3, 4, 0.0, ("q",)), (3, 6, 1e-4, ("q",))]
MARK_BEGIN, MARK_END = "<!-- charge-signs:begin -->", "<!-- charge-signs:end -->"


def measure(dim: int, n: int, noise: float, learn: tuple[str, ...], seed: int, sims: int,
            folder: Path) -> tuple[float, float, float]:
    """(share right after the vote, after the search, seconds of the search) for one setting and seed."""
    data = eqlgn.simulate("charge", dim, n, sims, seed=seed, progress=False, cache_dir="data/cache")
    path = eqlgn.save_trajectories(eqlgn.add_noise(data, noise, "positions", seed=seed),
                                   folder / f"charge-{dim}d-n{n}-{noise}-seed{seed}.csv")
    method = "auto" if noise else "central"
    read = eqlgn.load_trajectories(path, law="charge", method=method, learn=list(learn))
    truth = eqlgn.load_trajectories(path, law="charge", method=method).charges.ravel()
    ids, sims_of = read.identities_of("q").astype(int), np.repeat(read.sim_ids, n)
    vote = signs_right(charge_signs(read, rounds=0)[ids].ravel(), truth, sims_of)
    started = time.perf_counter()
    search = signs_right(charge_signs(read)[ids].ravel(), truth, sims_of)
    return vote, search, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sims", type=int, default=200)
    parser.add_argument("--docs", default=None, help="write the table into DOCS/results.md")
    args = parser.parse_args()
    lines = [f"Simulations ({args.sims} per seed, seeds {', '.join(map(str, args.seeds))}) whose charges all have "
             "the right sign, up to one flip each; median over seeds (min–max). Regenerate with "
             "`python experiments/charge_signs.py`.\n",
             "| dim | n | position noise | withheld | a guess | vote alone | vote + pattern search | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as folder:
        for dim, n, noise, learn in SETTINGS:
            rows = np.array([measure(dim, n, noise, learn, seed, args.sims, Path(folder)) for seed in args.seeds])
            cells = [f"{np.median(c):.3f} ({c.min():.3f}–{c.max():.3f})" for c in rows[:, :2].T]
            lines.append(f"| {dim} | {n} | {noise:g} | {', '.join(learn)} | {2.0 ** (1 - n):.3f} | {cells[0]} | "
                         f"{cells[1]} | {np.median(rows[:, 2]):.1f} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.docs:
        write_section(Path(args.docs) / "results.md", text, MARK_BEGIN, MARK_END)


if __name__ == "__main__":
    main()
