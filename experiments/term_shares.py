"""Typical share of every refitted term, without the size floor: the measurement that chose ``TERM_SHARE``.

    python experiments/term_shares.py runs/levers/*/*

For each finished EQL run directory (its trained model is loaded, nothing is retrained) the
significant message components are refitted on the validation split as ``eqlgn.extract``
does, but with the floor off (``share=0``), and each kept term is printed with its typical
share: median |term| over the edges / median |message| (``eqlgn.extraction.typical_share``).
Terms of recovered laws and stray terms are then told apart by the run's verdict and the
terms themselves (docs/method.md, "Terms too small to be the law").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import sympy

from eqlgn.equations import evaluate
from eqlgn.extraction import expand_component, read_edges, round_constants, sparse_refit, typical_share
from eqlgn.rundir import RunDirectory


def shares(path: Path) -> list[list[tuple[sympy.Expr, float]]]:
    """``[(term, typical share), ...]`` per significant component of the run in ``path``, refitted without the floor."""
    directory = RunDirectory(path)
    model, (train, val, _) = directory.model_and_splits()
    reading = read_edges(model, val if len(val) else train, 2000)
    values, messages = reading.values, reading.messages.astype(np.float64)
    out = []
    for c in reading.analysis.components:
        expanded = expand_component(reading.raw[c], 10.0, model.edge_model.expanded_terms(c))
        refitted, _ = sparse_refit(expanded, values, messages[:, c], share=0.0)
        if refitted is None:
            out.append([])
            continue
        terms = sympy.Add.make_args(refitted)
        sizes = typical_share(evaluate(terms, values), np.ones(len(terms)), messages[:, c])
        out.append([(round_constants(t, 3), float(s)) for t, s in zip(terms, sizes)])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished EQL run directories")
    args = parser.parse_args(argv)
    for path in args.runs:
        passed = json.loads((path / "result.json").read_text())["judge"]["passed"]
        components = " | ".join(" + ".join(f"{t} [{s:.3g}]" for t, s in terms) for terms in shares(path))
        print(f"{path} {'passed' if passed else 'failed'}: {components}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
