"""Which expression of the symbolic-regression front to keep: each selection rule judged on finished MLP runs.

    python experiments/sr_selection.py runs/mlp-design/*/*

For every finished MLP + SR run directory (its ``sr_fits.json`` holds the whole Pareto front
of each significant message component; nothing is searched or trained again), the expression
of each component is chosen again with ``eqlgn.sr.choose`` at each tolerance below, cleaned and
judged as ``eqlgn run`` does, and the verdicts are printed side by side:

* ``1.5`` — PySR's ``model_selection="best"``: the largest score among the candidates whose
  validation loss is at most 1.5 × the best (the rule ``eqlgn run`` used before 2026-11-29);
* ``3`` — the same with a looser cap (``eqlgn.sr.SELECTION_TOLERANCE``, what ``eqlgn run`` uses now);
* ``10`` — looser still;
* ``inf`` — Cranmer et al. 2020's rule: the largest drop of log-loss per unit of complexity
  over the whole front.

Choose the rule on design seeds (0–4) and report it on report seeds (100–109).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import eqlgn
from eqlgn.pipeline import sr_equations
from eqlgn.sr import choose
from eqlgn.targets import target_for

TOLERANCES = (1.5, 3.0, 10.0, float("inf"))


def verdicts(path: Path, tolerances=TOLERANCES) -> tuple[eqlgn.RunResult, dict[float, tuple[str, list[str]]]]:
    """``(result, {tolerance: (judge status, equations)})`` of one finished MLP + SR run."""
    result = eqlgn.RunResult.load(path)
    fits = [eqlgn.SymbolicFit.from_dict(f) for f in json.loads((path / "sr_fits.json").read_text())]
    target = target_for(result.target)
    out = {}
    for tolerance in tolerances:
        chosen = [f.candidates[choose(f.candidates, tolerance)].expression for f in fits]
        expressions = sr_equations(target, chosen)
        verdict = target.verdict(expressions, result.law, result.dim)
        out[tolerance] = (verdict["status"], [str(e) for e in expressions])
    return result, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished MLP + SR run directories")
    parser.add_argument("--equations", action="store_true", help="print the chosen equations too")
    args = parser.parse_args(argv)
    passed = dict.fromkeys(TOLERANCES, 0)
    runs = [p for p in args.runs if (p / "sr_fits.json").is_file() and (p / "result.json").is_file()]
    print("| run | R² (worst) | " + " | ".join(f"tolerance {t}" for t in TOLERANCES) + " |")
    print("|---|---|" + "---|" * len(TOLERANCES))
    for path in runs:
        result, by_rule = verdicts(path)
        for t, (status, _) in by_rule.items():
            passed[t] += status == "passed"
        r2 = "–" if result.linear_fit_r2 is None else f"{result.linear_fit_r2:.3f}"
        print(f"| {path.name} | {r2} | " + " | ".join(s for s, _ in by_rule.values()) + " |", flush=True)
        if args.equations:
            for t, (_, equations) in by_rule.items():
                print(f"    {t}: {'; '.join(equations)}")
    print("| passed | | " + " | ".join(f"{passed[t]}/{len(runs)}" for t in TOLERANCES) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
