"""Train the four MLP-GN variants (and the three L1 schedules) on one law; write figures and a table.

Usage:
    python experiments/variants.py --law spring --steps 8000 --out runs/variants

Writes per run: sparsity and message-scatter figures and analysis.json; at the end a
markdown table (test MAE, linear-fit R², sparsity ratio, seconds) and a loss-curve figure.
Copy figures into docs/figures with ``--docs docs`` (the docs page embeds them).
Budget on a 2-core CPU: about 2-3 minutes per run at the defaults below.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import eqlgn
from eqlgn.analysis import analyze
from eqlgn.objective import evaluate
from eqlgn.plots import plot_loss_curves, plot_message_scatter, plot_sparsity
from eqlgn.simulator import SimulationConfig
from eqlgn.sources import prepare_data

RUNS = [("standard", "constant"), ("bottleneck", "constant"), ("kl", "constant"),
        ("l1", "constant"), ("l1", "linear"), ("l1", "triangle")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--law", default="spring")
    parser.add_argument("--sims", type=int, default=500)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--l1", type=float, default=0.05)
    parser.add_argument("--l1-end", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/variants")
    parser.add_argument("--docs", default=None, help="docs folder to copy figures and the table into")
    args = parser.parse_args()
    out = Path(args.out)
    train, val, test = prepare_data(SimulationConfig(law=args.law, sims=args.sims, seed=args.seed),
                                    prune_outliers=args.law != "spring", split_seed=args.seed)
    rows, histories = [], {}
    for variant, schedule in RUNS:
        name = variant if variant != "l1" else f"l1-{schedule}"
        l1 = {"schedule": schedule, "l1": args.l1, "l1_end": args.l1_end} if variant == "l1" else {}
        config = eqlgn.TrainConfig.from_flags(variant=variant, hidden=args.hidden, batch_size=256, steps=args.steps,
                                              max_lr=3e-3, seed=args.seed, **l1)
        start = time.perf_counter()
        trained = eqlgn.fit(train, config, val=val, out=out / name, progress=None)
        seconds = time.perf_counter() - start
        analysis, sample = analyze(trained.model, test)
        plot_sparsity(analysis, out / name / "sparsity.png", title=f"{args.law}: {name}")
        plot_message_scatter(sample, analysis, out / name / "messages.png")
        histories[name] = trained.history
        row = {"run": name, "test_mae": evaluate(trained.model, test, trained.model.edge_model.net[0].weight.device),
               "r2": analysis.r2, "target": analysis.target, "sparsity_ratio": analysis.sparsity_ratio,
               "seconds": seconds}
        (out / name / "analysis.json").write_text(json.dumps(analysis.to_dict(), indent=2))
        rows.append(row)
        print(row, flush=True)
    plot_loss_curves(histories, out / "loss_curves.png", title=f"{args.law} 2D n=4: validation MAE per variant")
    table = ["| run | test MAE | linear-fit R² (top-D) | target | sparsity ratio | seconds |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['run']} | {r['test_mae']:.4f} | {', '.join(f'{v:.3f}' for v in r['r2'])} | "
                     f"{r['target']} | {r['sparsity_ratio']:.3g} | {r['seconds']:.0f} |")
    (out / "table.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    if args.docs:
        figures = Path(args.docs) / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "loss_curves.png", figures / f"variants_{args.law}_loss.png")
        for r in rows:
            shutil.copy(out / r["run"] / "sparsity.png", figures / f"variants_{args.law}_{r['run']}_sparsity.png")
        shutil.copy(out / "table.md", Path(args.docs) / f"variants_{args.law}_table.md")


if __name__ == "__main__":
    main()
