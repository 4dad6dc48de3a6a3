"""Try a lever on a recipe (EQL, or MLP + operon): the same runs with some recipe flags changed, on design seeds.

    python experiments/levers.py --laws charge --seeds 0 1 2 3 --lever products32 --out runs/levers
    python experiments/levers.py --dim 3 --n 4 --laws r2 --seeds 0 1 --lever node64 --out runs/levers
    python experiments/levers.py --base first --laws charge --seeds 0 1 --lever init2 --out runs/levers
    python experiments/levers.py --edge mlp --variant bottleneck --laws spring r1 --seeds 0 1 --lever mlp-sender

With ``--edge mlp`` the base is ``eqlgn.recommended_config("mlp", variant=VARIANT)`` and each job's messages are
fitted by operon (``eqlgn.run(..., "mlp", sr="operon")``) in ``OUT/mlp-VARIANT/LEVER/...``; the row adds the
messages' linear-fit R² and sparsity ratio.

A lever is a name in :data:`LEVERS` (flags for ``eqlgn.recommended_config("eql", ...)``, a flag that
depends on the dimension given as a function of it); ``baseline`` is the base unchanged. The base is
the recipe (``--base recipe``) or the first recipe (``--base first``: node MLP 3 × 128 and the input set
with the receiver's m1, q1, 1/m1, as it stood until 2026-12-06), under which the levers of
results/levers-design were run. A lever's flags are absolute, so a lever that sets both (sender64)
gives the same configuration on either base. Each job is ``eqlgn.run(law, dim, n, "eql", seed)`` (2D, 4
particles unless ``--dim``/``--n`` say otherwise) in ``OUT/LEVER/LAW-seedS`` for 2D-4 and
``OUT/LEVER/LAW-DIMd-nN-seedS`` otherwise (skipped when its result.json exists); two at a time. Prints one
row per job: status, GN test MAE, seconds, the starts' validation MAEs at the selection,
equations. With ``--reread`` finished runs are read and judged again from their trained
models (after a change of the extractor), not retrained.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import eqlgn
from eqlgn.features import RECEIVER_ONLY_INPUTS, both_particles_inputs


def sender_inputs(dim: int) -> list[str]:
    """The shared input set without the receiver's own properties (the recipe's set since 2026-12-06)."""
    return [name for name in first_inputs(dim) if name not in RECEIVER_ONLY_INPUTS]


first_inputs = both_particles_inputs  # the first recipe's input set, with the receiver's m1, q1, 1/m1


BASES: dict[str, dict] = {
    "recipe": {},
    "first": {"node_hidden": 128, "inputs": first_inputs},
}
"""What a lever changes: the recipe, or the first recipe (before 2026-12-06) under which results/levers-design ran."""


LEVERS: dict[str, dict] = {
    "baseline": {},
    "products16": {"eql_product": 16},
    "products32": {"eql_product": 32},
    "steps32k": {"steps": 32000},
    "lr1e-2": {"max_lr": 1e-2},
    "init2": {"eql_init": 2.0},
    "starts4": {"starts": 4},
    "starts8h2": {"starts": 8, "halving_rounds": 2},
    # generic pair products as two more inputs (the same for every law): the message can carry q1·q2 itself,
    # so the node model need not multiply by the receiver's charge sign (docs/method.md, the charge diagnosis)
    "pairs": {"inputs": lambda dim: first_inputs(dim) + ["q1q2", "m1m2"]},
    # each particle's error relative to its own acceleration above the batch median (Lemos et al. 2022)
    "relative": {"loss_weighting": "relative"},
    # the same for the first quarter only (the GN fits under it; the powers are read under the absolute loss)
    "relative25": {"loss_weighting": "relative", "relative_until": 0.25},
    # the smoothed L1/2 penalty on EQL weights in place of L1, same coefficient (Kim et al.'s DeepSymReg)
    "l12": {"eql_penalty": "l12"},
    # EQL÷'s phases (Sahoo et al. 2018): no penalty for the first quarter, penalty until 95 %, then frozen zeros
    "eqldiv": {"prune_at": 0.95},
    # a node MLP half as wide: the node model is most of a step's arithmetic (docs/performance.md)
    "node64": {"node_hidden": 64},
    # the same with the sender's and the pair's inputs only (no m1, q1, 1/m1): the node model sees the receiver's
    # own mass and charge, and a receiver-only term in a message (c·q1, a factor a + b/m1, q1² = 1) is a freedom
    # the node model can undo, not part of the law (docs/method.md, "Receiver-only inputs")
    "sender64": {"node_hidden": 64, "inputs": sender_inputs},
    # twice the starts, paid for by the narrower node MLP (about the recipe's time per run)
    "node64starts8": {"node_hidden": 64, "starts": 8},
    # a third EQL layer, with skip connections so the second layer's degree-3 paths stay open
    "skip3": {"eql_layers": 3, "eql_skip": True},
    # MLP levers (--edge mlp): the edge MLP on the sender's relative inputs instead of both particles' raw features
    "mlp-sender": {"mlp_inputs": "sender"},
    # the same at the 2024 reproduction's batch size, as many steps as the recipe's time allows
    "mlp-sender-b64": {"mlp_inputs": "sender", "batch_size": 64, "steps": 16000},
    # the same with the reproduction's L1 schedule 0.01 -> 0.1 (l1 variant only)
    "mlp-sender-l1low": {"mlp_inputs": "sender", "l1": 0.01, "l1_end": 0.1},
    # L1 from 0: the messages fit before the penalty grows (at 0.05 from the first step it zeroes every random
    # initial message before the network has found the force; l1 variant only)
    "mlp-sender-warm": {"mlp_inputs": "sender", "l1": 0.0, "l1_end": 0.5},
}


def flags_of(lever: str, dim: int, base: str = "recipe") -> dict:
    """A lever's recipe flags on ``base`` for ``dim`` dimensions (a flag given as a function of the dimension is
    called)."""
    flags = BASES[base] | LEVERS[lever]
    return {key: value(dim) if callable(value) else value for key, value in flags.items()}


def job(law: str, seed: int, lever: str, out: str, cell: tuple[int, int] = (2, 4), reread: bool = False,
        base: str = "recipe", variant: str | None = None) -> tuple:
    """One run (``variant`` given: the MLP recipe of that variant + operon); its row's values."""
    import torch

    torch.set_num_threads(1)
    dim, n = cell
    edge = "eql" if variant is None else "mlp"
    name = f"{law}-seed{seed}" if cell == (2, 4) else f"{law}-{dim}d-n{n}-seed{seed}"
    target = Path(out) / ("" if variant is None else f"mlp-{variant}") / lever / name
    finished = (target / "result.json").is_file()
    if finished and not reread:
        result = eqlgn.RunResult.load(target)
    else:  # a run read again keeps the settings it was trained with (levers older than a recipe change)
        flags = flags_of(lever, dim, base) | ({} if variant is None else {"variant": variant})
        config = (eqlgn.RunResult.load(target).config.train if finished
                  else eqlgn.recommended_config(edge, seed=seed, **flags))
        result = eqlgn.run(law, dim, n, edge, seed, out=target, train=config, resume=finished, progress=False,
                           sr=None if variant is None else "operon")
    scores = result.selection.scores if result.selection is not None else []
    if variant is not None:  # the messages' linear fit and sparsity in place of the starts' scores
        scores = [v for v in (result.linear_fit_r2, result.sparsity_ratio) if v is not None]
    return lever, law, seed, result.status, result.test_loss, result.seconds.total, result.equations, scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", nargs="+", default=["charge"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--lever", nargs="+", default=["baseline"], choices=sorted(LEVERS))
    parser.add_argument("--dim", type=int, default=2, choices=[2, 3])
    parser.add_argument("--n", type=int, default=4, help="particles per simulation")
    parser.add_argument("--base", default="recipe", choices=sorted(BASES),
                        help="the recipe, or the first recipe under which results/levers-design ran")
    parser.add_argument("--edge", default="eql", choices=["eql", "mlp"])
    parser.add_argument("--variant", default="l1", help="the MLP GN's variant (--edge mlp)")
    parser.add_argument("--out", default="runs/levers")
    parser.add_argument("--reread", action="store_true",
                        help="read and judge finished runs again from their trained models (no retraining)")
    args = parser.parse_args(argv)
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        variant = args.variant if args.edge == "mlp" else None
        futures = [pool.submit(job, law, seed, lever, args.out, (args.dim, args.n), args.reread, args.base, variant)
                   for lever in args.lever for law in args.laws for seed in args.seeds]
        for future in futures:
            lever, law, seed, status, loss, seconds, equations, scores = future.result()
            shown, at_selection = "; ".join(equations)[:200], " ".join(f"{s:.2f}" for s in scores)
            print(f"| {lever} | {law} | {seed} | {status} | {loss:.3f} | {seconds:.0f} | {at_selection} | {shown} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
