"""How much imperfect data recovery survives: estimated accelerations and noise; table into docs/results.md.

Usage:
    python experiments/robustness.py --laws spring r1 r2 charge --seeds 0 1 2 \\
        --routes eql mlp-bottleneck+operon --out runs/robustness --docs docs

For each law (2D, 4 particles), seed and route, the same simulated data under these
conditions (``--conditions``):

* ``trajectories`` — positions only: the trajectories are written to CSV, read back and
  their accelerations estimated by central differences (no exact accelerations used);
* ``noise-0``, ``noise-0.01``, ``noise-0.05``, ``noise-0.1`` — exact accelerations with
  Gaussian noise of that relative size per particle (``eqlgn.add_noise``).

Each job is ``eqlgn.run(law, data=...)`` in ``OUT/LAW-CONDITION-ROUTE-seedS``; finished jobs
are skipped, so the script resumes after a kill. Time on 2 CPU cores: 3-8 minutes per job
(EQL, 16 000 steps) — the full grid (4 laws x 5 conditions x 3 seeds x 2 routes) is about
10 CPU-hours; a GPU or a subset (``--laws spring --seeds 0``) is the practical way.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import Route
from tables import write_section

import eqlgn

CONDITIONS = ("trajectories", "noise-0", "noise-0.01", "noise-0.05", "noise-0.1")
MARK_BEGIN, MARK_END = "<!-- robustness:begin -->", "<!-- robustness:end -->"


def condition_data(law: str, seed: int, condition: str, work: Path) -> eqlgn.ParticleDataset:
    """The dataset of one condition (see module docstring)."""
    data = eqlgn.simulate(law, 2, 4, 1000, seed=seed, progress=False, cache_dir="data/cache")
    if condition == "trajectories":
        path = eqlgn.save_trajectories(data, work / f"{law}-seed{seed}.csv")
        return eqlgn.load_trajectories(path, law=law)
    if not condition.startswith("noise-"):
        raise eqlgn.ConfigError(f"unknown condition {condition!r}; valid: {', '.join(CONDITIONS)}")
    return eqlgn.add_noise(data, float(condition[len("noise-"):]), "accelerations", seed=seed)


def run_job(law: str, seed: int, condition: str, route_name: str, out: Path) -> dict | None:
    target = out / f"{law}-{condition}-{route_name}-seed{seed}"
    if (target / "result.json").is_file():
        return json.loads((target / "result.json").read_text())
    route = Route.parse(route_name)
    try:
        data = condition_data(law, seed, condition, out)
        result = eqlgn.run(law, edge=route.edge, seed=seed, out=target, train=route.config(seed),
                           sr=route.engine, data=data, resume=True, progress=False)
    except eqlgn.EqlgnError as exc:
        print(f"FAILED {target.name}: {exc}", flush=True)
        return None
    print(f"{target.name}: passed={result['judge']['passed']} ood_r2={result['judge']['ood_r2']}", flush=True)
    return result


def table(out: Path, laws: list[str], routes: list[str], conditions: list[str]) -> str:
    """Seeds recovered / run per law, route and condition."""
    lines = ["| law | route | " + " | ".join(conditions) + " |", "|---|---|" + "---|" * len(conditions)]
    for law in laws:
        for route in routes:
            cells = []
            for condition in conditions:
                runs = [json.loads(p.read_text()) for p in out.glob(f"{law}-{condition}-{route}-seed*/result.json")]
                passed = sum(bool(r["judge"] and r["judge"]["passed"]) for r in runs)
                cells.append(f"{passed}/{len(runs)}" if runs else "–")
            lines.append(f"| {law} | {route} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", nargs="+", default=["spring", "r1", "r2", "charge"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--routes", nargs="+", default=["eql", "mlp-bottleneck+operon"])
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    parser.add_argument("--out", default="runs/robustness")
    parser.add_argument("--docs", default=None, help="write the table into DOCS/results.md")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for seed in args.seeds:
            for law in args.laws:
                for condition in args.conditions:
                    for route in args.routes:
                        run_job(law, seed, condition, route, out)
    text = table(out, args.laws, args.routes, args.conditions)
    print(text)
    if args.docs:
        write_section(Path(args.docs) / "results.md",
                      f"## Robustness: estimated accelerations and noise (2D, 4 particles)\n\n{text}",
                      MARK_BEGIN, MARK_END)

if __name__ == "__main__":
    main()
