"""Run the EQL route with the one shared configuration on every law; table into docs/results.md.

Usage:
    python experiments/eql_laws.py --laws spring r1 r2 charge --seeds 0 1 --out runs/eql
    python experiments/eql_laws.py --report-only --out runs/eql --docs docs

Each job is ``eqlgn.run(law, dim, n, edge="eql", seed)`` with
``eqlgn.recommended_config("eql")``; a job whose ``result.json`` exists is skipped, so the
script resumes after a kill. Time on a 2-core CPU: about 2-4 minutes per job.
"""

from __future__ import annotations

import argparse
import datetime
import platform
from pathlib import Path

import eqlgn


def job_dir(out: Path, law: str, dim: int, n: int, seed: int) -> Path:
    return out / f"{law}-{dim}d-n{n}-seed{seed}"


def report(out: Path) -> str:
    """Markdown table of every result.json under ``out``."""
    rows = ["| law | D | n | seed | recovered | OOD R² per component | target | unrotated | terms "
            "| test MAE | seconds | equations |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(out.glob("*/result.json")):
        r = eqlgn.RunResult.load(path)
        j = r.judge
        eqs = "<br>".join(f"`{e[:160]}{'…' if len(e) > 160 else ''}`" for e in r.equations)
        terms = sum(e.count("+") + e.count(" - ") + 1 for e in r.equations)
        rows.append(f"| {r.law} | {r.dim} | {r.n_particles} | {r.seed} | "
                    f"{j.get('status', j['passed'])} | {', '.join(f'{v:.4f}' for v in j['ood_r2'])} | "
                    f"F/({j.get('receiver_factor', '1')}) | {'yes' if j.get('unrotated') else 'no'} | {terms} | "
                    f"{r.test_loss:.3f} | {r.seconds.total:.0f} | {eqs} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", nargs="+", default=["spring", "r1", "r2", "charge"])
    parser.add_argument("--dims", nargs="+", type=int, default=[2])
    parser.add_argument("--ns", nargs="+", type=int, default=[4])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--out", default="runs/eql")
    parser.add_argument("--docs", default=None, help="write the table to DOCS/eql_results_table.md")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    if not args.report_only:
        for law in args.laws:
            for dim in args.dims:
                for n in args.ns:
                    for seed in args.seeds:
                        target = job_dir(out, law, dim, n, seed)
                        if (target / "result.json").is_file():
                            continue
                        try:
                            result = eqlgn.run(law, dim, n, "eql", seed, out=target, progress=False)
                            print(law, dim, n, seed, result.judge, flush=True)
                        except eqlgn.EqlgnError as exc:  # record and go on with the grid
                            print(f"FAILED {law} {dim}D n={n} seed={seed}: {exc}", flush=True)
    table = report(out)
    stamp = f"{datetime.date.today()}, {platform.machine()} CPU, config {eqlgn.recommended_config('eql')}"
    print(table)
    if args.docs:
        Path(args.docs, "eql_results_table.md").write_text(f"<!-- generated: {stamp} -->\n" + table)


if __name__ == "__main__":
    main()
