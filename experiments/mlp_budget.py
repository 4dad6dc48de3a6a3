"""The MLP L1 route's messages against its budget: message R² and sparsity per L1 schedule, steps, batch and LR.

    python experiments/mlp_budget.py --laws spring r1 r2 charge --seeds 0 1 \\
        --l1 0.01:0.1 0.05:0.5 --steps 4000 16000 --batch 64 256 --max-lr 1e-3 3e-3 --jobs 2 --out runs/mlp-budget
    python experiments/mlp_budget.py --laws r1 r2 --seeds 0 --l1 0.05:0.5 --steps 32000 --batch 64 \\
        --starts 4 --select-at 0.5 --jobs 2 --out runs/mlp-budget

The 2024 reproduction reached messages linear in the force (R² 0.97) and sparse (the top-D
message standard deviations ≥ 100× the next) with a linear L1 schedule 0.01 → 0.1 after about
586 000 steps at batch 64; the question here is which setting gets there soonest. Every
combination of the flags is one job: the MLP GN of variant ``l1`` with a linear schedule
``START:END`` (``eqlgn.recommended_config("mlp", l1=START, l1_end=END, ...)``), 2D, 4 particles,
trained by ``eqlgn.train_run`` into ``OUT/LAW-l1START-ENDsSTEPSbBATCHlrLR-seedS`` and analysed on its
test split (``eqlgn.analyze_run``: the worst R² of the top-D messages against the force, and the
sparsity ratio). Finished jobs (``analysis.json`` present) are skipped, so a killed scan resumes;
a job that raises counts as a failure and is listed. One table, best R² first per law, is
printed and written to ``OUT/table.md``. Use design seeds only: the recipe chosen from it is
reported on report seeds elsewhere.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import eqlgn


@dataclass(frozen=True)
class Setting:
    law: str
    l1: tuple[float, float]
    steps: int
    batch: int
    max_lr: float
    seed: int
    starts: int = 1
    select_at: float = 0.25

    @property
    def name(self) -> str:
        prefix = "" if self.starts == 1 else f"starts{self.starts}-select{round(100 * self.select_at)}-"
        return (f"{prefix}{self.law}-l1{self.l1[0]:g}-{self.l1[1]:g}s{self.steps}b{self.batch}lr{self.max_lr:g}"
                f"-seed{self.seed}")


def schedule(text: str) -> tuple[float, float]:
    """``START:END`` -> (start, end) of a linear L1 schedule."""
    try:
        start, end = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"an L1 schedule is START:END, e.g. 0.01:0.1; got {text!r}") from None
    return start, end


def run_one(setting: Setting, out: str, sims: int) -> dict:
    """Train and analyse one setting (skipped when its analysis exists); its row, or how it failed."""
    import torch

    torch.set_num_threads(1)
    target = Path(out) / setting.name
    row = {"name": setting.name, "law": setting.law}
    try:
        if not (target / "analysis.json").is_file():
            config = eqlgn.recommended_config("mlp", l1=setting.l1[0], l1_end=setting.l1[1], steps=setting.steps,
                                              batch_size=setting.batch, max_lr=setting.max_lr, seed=setting.seed,
                                              starts=setting.starts, select_at=setting.select_at)
            started = time.perf_counter()
            eqlgn.train_run(eqlgn.SimulationConfig(law=setting.law, dim=2, n=4, sims=sims, seed=setting.seed),
                            config, target, prune_outliers=True, resume=(target / "checkpoint.pt").is_file(),
                            progress=False)
            eqlgn.analyze_run(target, figures=False)
            (target / "seconds.json").write_text(json.dumps(time.perf_counter() - started))
        analysis = json.loads((target / "analysis.json").read_text())
        record = json.loads((target / "run.json").read_text())
        seconds = target / "seconds.json"
        return {**row, "r2": min(analysis["r2"]), "sparsity": analysis["sparsity_ratio"],
                "test_mae": record["test_loss"],
                "seconds": json.loads(seconds.read_text()) if seconds.is_file() else None}
    except Exception as exc:  # a crash is a failure of that setting, listed with its cause
        return {**row, "failed": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def table(rows: list[dict]) -> str:
    lines = ["| law | setting | R² (worst top-D) | sparsity ratio | test MAE | seconds |", "|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: (r["law"], -r.get("r2", -1e9))):
        if "failed" in row:
            lines.append(f"| {row['law']} | {row['name']} | failed: {row['failed']} | | | |")
            continue
        seconds = "–" if row["seconds"] is None else f"{row['seconds']:.0f}"
        lines.append(f"| {row['law']} | {row['name']} | {row['r2']:.3f} | {row['sparsity']:.3g} | "
                     f"{row['test_mae']:.3g} | {seconds} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--laws", nargs="+", default=["spring", "r1", "r2", "charge"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--l1", nargs="+", type=schedule, default=[(0.01, 0.1)], help="linear schedules START:END")
    parser.add_argument("--steps", nargs="+", type=int, default=[4000])
    parser.add_argument("--batch", nargs="+", type=int, default=[256])
    parser.add_argument("--max-lr", nargs="+", type=float, default=[3e-3])
    parser.add_argument("--starts", nargs="+", type=int, default=[1],
                        help="starts side by side, the best by validation MAE kept at --select-at")
    parser.add_argument("--select-at", nargs="+", type=float, default=[0.25])
    parser.add_argument("--sims", type=int, default=1000, help="simulations per dataset")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", default="runs/mlp-budget")
    args = parser.parse_args(argv)
    settings = [Setting(*values) for values in itertools.product(args.laws, args.l1, args.steps, args.batch,
                                                                  args.max_lr, args.seeds, args.starts,
                                                                  args.select_at)]
    if args.jobs <= 1:
        rows = [run_one(s, args.out, args.sims) for s in settings]
    else:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            rows = list(pool.map(run_one, settings, [args.out] * len(settings), [args.sims] * len(settings)))
    text = table(rows)
    print(text)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "table.md").write_text(text)
    return 1 if any("failed" in r for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
