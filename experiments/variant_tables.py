"""The 2024 reproduction's variant tables: every MLP-GN variant on every 2D law, beside its published outcome.

Usage:
    python experiments/variant_tables.py --measure runs/report-variants runs/report-mlp --keep results   # model.pt
    python experiments/variant_tables.py --runs results/report-variants results/report-mlp --docs docs

``--measure`` loads each finished MLP run under the folders (``model.pt``), collects its messages on the run's test
split twice — as recorded (IQR-pruned snapshots, the run's own data) and without pruning (every test snapshot) — and
writes ``messages.json`` beside ``result.json``: the linear-fit R² of the top-D components against the force and
the sparsity ratio on each. Without ``--measure`` the tables are made from ``result.json`` + ``messages.json`` alone
(both are kept in ``results/``): per law and variant the seeds recovered, the GN's test MAE, R² plain and pruned
(worst component), the sparsity ratio, medians over seeds; and every run's figures. ``--docs`` writes them between
``<!-- variant-tables:begin -->`` and ``<!-- variant-tables:end -->`` in DOCS/results.md.

Daloglu's reproduction (2024) reports, with 50 epochs on a GPU: the L1-linear and bottleneck GNs with PySR recover all
four 2D laws (8/8, its Table 4) and their messages are sparse in all eight (its Table 5); the column "reproduction"
gives that, and "–" where its per-variant figures are not reproduced here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from collections import defaultdict
from pathlib import Path

from tables import keep, write_section

import eqlgn
from eqlgn._io import atomic_write_json
from eqlgn.analysis import analyze
from eqlgn.rundir import RunDirectory

BEGIN, END = "<!-- variant-tables:begin -->", "<!-- variant-tables:end -->"
MESSAGES_FILE = "messages.json"
VARIANTS = ("mlp-standard", "mlp-bottleneck", "mlp-kl", "mlp-l1-constant", "mlp-l1-linear", "mlp-l1-triangle")
REPRODUCTION = {"mlp-bottleneck": "recovered, sparse (Tables 4–5)", "mlp-l1-linear": "recovered, sparse (Tables 4–5)"}


def measure(run: Path) -> dict:
    """R² and sparsity of the run's messages on its test split, pruned as recorded and unpruned."""
    directory = RunDirectory(run)
    record = directory.read()
    model = directory.trained().model
    figures = {}
    for name, prune in (("pruned", True), ("plain", False)):
        test = directory.splits(dataclasses.replace(record, prune_outliers=prune))[2]
        analysis, _ = analyze(model, test)
        figures[name] = {"r2": analysis.r2, "target": analysis.target, "sparsity_ratio": analysis.sparsity_ratio,
                         "snapshots": len(test)}
    atomic_write_json(run / MESSAGES_FILE, figures)
    return figures


def collect(roots: list[str], seeds: set[int], system: tuple[int, int] = (2, 4)
            ) -> dict[tuple[str, str], dict[int, tuple[eqlgn.RunResult, dict]]]:
    """``{(law, gn): {seed: (result, messages)}}`` of the MLP force runs of ``system`` (dim, n) on ``seeds``."""
    found: dict = defaultdict(dict)
    for root in roots:
        for path in sorted(Path(root).rglob("result.json")):
            result = eqlgn.RunResult.load(path)
            if result.edge_model != "mlp" or result.seed not in seeds or (result.dim, result.n_particles) != system:
                continue
            messages = path.parent / MESSAGES_FILE
            found[result.law, result.route.name.split("+")[0]][result.seed] = (
                result, json.loads(messages.read_text()) if messages.is_file() else None)
    return found


def _worst(messages: dict | None, which: str) -> float | None:
    return None if messages is None else min(messages[which]["r2"])


def _median(values: list, fmt: str) -> str:
    values = [v for v in values if v is not None]
    return format(statistics.median(values), fmt) if values else "–"


def summary_table(found: dict, seeds: list[int], laws: list[str]) -> str:
    lines = ["| law | GN variant | recovered (operon) | test MAE | R² plain | R² pruned | sparsity ratio | "
             "sparse (≥ 100) | reproduction |", "|---|---|---|---|---|---|---|---|---|"]
    for law in laws:
        for gn in VARIANTS:
            runs = found.get((law, gn), {})
            done = [runs[s] for s in seeds if s in runs]
            passed = sum(r.status == "passed" for r, _ in done)
            missing = len(seeds) - len(done)
            ratios = [r.sparsity_ratio for r, _ in done]
            lines.append(
                f"| {law} | {gn[4:]} | {passed}/{len(seeds)}{f' ({missing} missing)' if missing else ''} | "
                f"{_median([r.test_loss for r, _ in done], '.3f')} | "
                f"{_median([_worst(m, 'plain') for _, m in done], '.3f')} | "
                f"{_median([_worst(m, 'pruned') for _, m in done], '.3f')} | {_median(ratios, '.3g')} | "
                f"{sum((x or 0) >= 100 for x in ratios)}/{len(done)} | {REPRODUCTION.get(gn, '–')} |")
    return "\n".join(lines) + "\n"


def runs_table(found: dict, seeds: list[int], laws: list[str]) -> str:
    lines = ["| law | GN variant | seed | verdict | test MAE | R² plain (per component) | R² pruned | sparsity ratio | "
             "equations |", "|---|---|---|---|---|---|---|---|---|"]
    for law in laws:
        for gn in VARIANTS:
            for seed in seeds:
                if seed not in found.get((law, gn), {}):
                    lines.append(f"| {law} | {gn[4:]} | {seed} | missing (counts as failed) | | | | | |")
                    continue
                r, m = found[law, gn][seed]
                r2 = {k: "–" if m is None else ", ".join(f"{v:.3f}" for v in m[k]["r2"]) for k in ("plain", "pruned")}
                eqs = "; ".join(f"`{e[:60]}{'…' if len(e) > 60 else ''}`" for e in r.equations)
                lines.append(f"| {law} | {gn[4:]} | {seed} | {r.status} | {r.test_loss:.3f} | {r2['plain']} | "
                             f"{r2['pruned']} | {r.sparsity_ratio:.3g} | {eqs} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--runs", nargs="+", default=[])
    parser.add_argument("--measure", nargs="+", default=[], metavar="RUNS",
                        help="write messages.json into every finished MLP run under these folders (loads model.pt)")
    parser.add_argument("--keep", default=None, metavar="DEST",
                        help="after --measure, copy the small files of those runs into DEST (e.g. results)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[100, 101, 102])
    parser.add_argument("--laws", nargs="+", default=["spring", "r1", "r2", "charge"])
    parser.add_argument("--docs", default=None, help="write the tables into DOCS/results.md between their markers")
    args = parser.parse_args()
    for root in args.measure:
        for path in sorted(Path(root).rglob("result.json")):
            if eqlgn.RunResult.load(path).edge_model == "mlp" and (path.parent / "model.pt").is_file():
                figures = measure(path.parent)
                print(f"{path.parent.name}: R² plain {figures['plain']['r2']}, pruned {figures['pruned']['r2']}")
    if args.keep:
        print(f"kept {keep(args.measure, Path(args.keep))} files in {args.keep}")
    if not args.runs:
        return
    found = collect(args.runs, set(args.seeds))
    if not found:
        parser.error(f"no 2D, 4-particle MLP run on seeds {args.seeds} under {args.runs}")
    text = (f"Generated by `python experiments/variant_tables.py` on seeds {', '.join(map(str, args.seeds))} "
            "(medians over seeds; R² of the worst of the two top components).\n\n"
            + summary_table(found, args.seeds, args.laws) + "\nEvery run:\n\n"
            + runs_table(found, args.seeds, args.laws))
    if args.docs:
        write_section(Path(args.docs) / "results.md", text, BEGIN, END)
    print(text)


if __name__ == "__main__":
    main()
