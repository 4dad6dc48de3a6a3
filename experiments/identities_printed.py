"""What the inputs' identities change on readings whose models were not kept: their printed equations, read again.

    python experiments/identities_printed.py results/report-grid-2d8/*/result.json [--sims 100]

A diagnostic script (it uses :mod:`eqlgn.identities` and the refit directly). For each EQL
result.json whose printed equations the identities rewrite (``q² = 1`` on ±1 charges, ``r² = Σ d²``),
it simulates the run's law, dimension, particle count and seed (``--sims`` simulations, the same
distribution of pairs as the run's data), takes each printed equation as the reading (exact on its
own values there) and applies :func:`eqlgn.identities.simplest_reading` with the refit fitted to
those values, then judges the old and the new
equations. This is an estimate of a re-read: a re-read refits to the network's messages, which
the printed equation approximates; where the models exist, re-read them instead
(``experiments/sweep.py ... --reread``). Prints one row per changed run and the verdicts.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

import numpy as np
import sympy

import eqlgn
from eqlgn.equations import evaluate, pair_values
from eqlgn.extraction import round_constants, sparse_refit
from eqlgn.graph import complete_edges
from eqlgn.identities import simplest_reading
from eqlgn.recipes import EQL_RECOMMENDED

FLOOR = 0.01  # the refit's floor (extraction's default)
EDGES = 20000


def edge_values(law: str, dim: int, n: int, seed: int, sims: int) -> dict[str, np.ndarray]:
    """All ordered pairs of the first snapshots of a simulated dataset like the run's."""
    data = eqlgn.simulate(law, dim, n, sims, seed)
    receivers, senders = (index.numpy() for index in complete_edges(n))
    graphs = data.nodes[: max(1, EDGES // len(receivers))].astype(np.float64)
    receiver = graphs[:, receivers].reshape(-1, graphs.shape[-1])
    sender = graphs[:, senders].reshape(-1, graphs.shape[-1])
    values = pair_values(receiver, sender, dim)
    inside = values["r"] >= EQL_RECOMMENDED["r_min"]  # the pairs the EQL reads (its clamped inverse powers are exact)
    return {k: v[inside] for k, v in values.items()}


def read_again(record: dict, sims: int) -> list[sympy.Expr] | None:
    """The printed equations read again with the identities step; None when none changes."""
    dim = record["dim"]
    printed = [eqlgn.parse_equation(t) for t in record["equations"]]
    values = edge_values(record["law"], dim, record["n_particles"], record["seed"], sims)
    new = []
    for expression in printed:
        refit = partial(sparse_refit, values=values, target=evaluate([expression], values)[:, 0], floor=FLOOR)
        new.append(simplest_reading(expression, 0.0, values, dim, refit, FLOOR)[0])  # exact on its own values
    return None if all(a is b for a, b in zip(new, printed)) else new


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--sims", type=int, default=100)
    args = parser.parse_args(argv)
    print("| run | printed | verdict | read again | verdict |\n|---|---|---|---|---|")
    for path in args.results:
        record = json.loads(path.read_text())
        if record.get("edge_model") != "eql" or not record.get("equations"):
            continue
        new = read_again(record, args.sims)
        if new is None:
            continue
        before = eqlgn.judge(record["equations"], record["law"], record["dim"]).status
        after = eqlgn.judge(new, record["law"], record["dim"]).status
        shown = [str(round_constants(e, 3)) for e in new]
        print(f"| {path.parent.name} | {'; '.join(record['equations'])} | {before} | {'; '.join(shown)} | {after} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
