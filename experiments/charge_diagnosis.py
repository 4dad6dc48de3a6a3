"""Why Coulomb's law does not fit: first-order gradient signal at initialisation, per law.

For each law (2D, 4 particles) and each of ``--seeds`` initialisations of the recommended
EQL GN (``eqlgn.recommended_config("eql")``), the gradient of the training loss on 2048
held-out graphs with respect to the first EQL layer's weights is split by input: the
RMS gradient of the weights that read ``m2``, ``q2``, ``dx`` ... Hypothesis (issue 17):
with charges ±1 drawn symmetrically, no product lacking ``q2`` correlates with the force,
so the weights reading ``q2`` get no first-order signal at initialisation; for r2 the
sender's mass is positive and ``dx/r³`` alone already correlates.

It also computes, on the data themselves, the correlation of each candidate partial
product with the true force component (no network): the signal gradient descent can
follow before the third factor is in place.

    python experiments/charge_diagnosis.py --seeds 10 --docs docs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import eqlgn
from eqlgn.batching import to_tensors
from eqlgn.graph import complete_edges
from eqlgn.objective import training_loss
from eqlgn.phases import EQLPhaseSchedule

LAWS = ("spring", "r1", "r2", "charge")
WATCH = ("dx", "dy", "r", "inv_r3", "m1", "m2", "q1", "q2")


def gradients(law: str, seeds: int) -> dict[str, float]:
    """RMS gradient of the first-layer weights reading each input, mean over initialisations."""
    data = eqlgn.simulate(law, 2, 4, 200, seed=7, progress=False, cache_dir="data/cache")
    data, _ = data.prune_outliers()
    batch = to_tensors(data.subset(np.arange(min(2048, len(data)))))
    receivers, senders = complete_edges(4)
    totals: dict[str, list[float]] = {name: [] for name in WATCH}
    for seed in range(seeds):
        config = eqlgn.recommended_config("eql", seed=seed, device="cpu")
        model = eqlgn.build_model(config, 6, 2)
        model.edge_model.set_scales(batch.nodes[:, receivers], batch.nodes[:, senders])
        model.train()
        loss, _, _ = training_loss(model, batch, config, 0, EQLPhaseSchedule(config.schedule.phases, 1000))
        loss.backward()
        grad = model.edge_model.eql.hidden[0].linear.weight.grad  # [pre-activations, inputs]
        inputs = model.edge_model.inputs
        scale = grad.pow(2).mean().sqrt().item()
        for name in WATCH:
            column = grad[:, inputs.index(name)]
            totals[name].append(column.pow(2).mean().sqrt().item() / scale)
    return {name: float(np.mean(v)) for name, v in totals.items()}


def partial_correlations(law: str) -> dict[str, float]:
    """|corr| of partial products with the true force's x component, over training pairs."""
    data = eqlgn.simulate(law, 2, 4, 200, seed=7, progress=False, cache_dir="data/cache")
    data, _ = data.prune_outliers()
    receivers, senders = complete_edges(4)
    receiver = data.nodes[:, receivers.numpy()].reshape(-1, 6).astype(np.float64)
    sender = data.nodes[:, senders.numpy()].reshape(-1, 6).astype(np.float64)
    at = eqlgn.NodeLayout(2)
    dx = receiver[:, at.position] - sender[:, at.position]
    r = np.linalg.norm(dx, axis=1)
    m2, q2 = sender[:, at.mass], sender[:, at.charge]
    force = eqlgn.get_law(law).force(dx, receiver[:, at.mass], m2, receiver[:, at.charge], q2, 0.01)[:, 0]
    force = force / receiver[:, at.charge] if law == "charge" else force  # the message may be F/q1
    candidates = {"dx": dx[:, 0], "dx/r³": dx[:, 0] / r**3, "m2·dx": m2 * dx[:, 0], "q2·dx": q2 * dx[:, 0],
                  "q2/r³": q2 / r**3, "m2·dx/r³": m2 * dx[:, 0] / r**3, "q2·dx/r³": q2 * dx[:, 0] / r**3}
    return {name: float(abs(np.corrcoef(value, force)[0, 1])) for name, value in candidates.items()}


ORACLES = {
    "spring": ["(r - 1)*dx/r"],
    "r2": ["m2*dx/r**3"],
    "charge": ["q2*dx/r**3", "q1*q2*dx/r**3", "q1*q2*dx/(m1*r**3)"],
}
"""Message forms handed to the node model: the law's x component (y alike). For charge,
``q2·dx/r³`` leaves ``q1/m1`` to the node MLP, ``q1·q2·dx/r³`` leaves ``1/m1`` (as for the
spring), the last one is the acceleration itself."""


def oracle_edge(expression: str, dim: int = 2):
    """An edge model whose D messages are a given expression (x, and y by symmetry) without free constants."""
    from eqlgn.equations import SYMBOLS, parse_equation
    from eqlgn.symbolic_edge import SymbolicEdge

    x = parse_equation(expression)
    return SymbolicEdge([x, x.subs({SYMBOLS["dx"]: SYMBOLS["dy"]}, simultaneous=True)], dim, dim)


def oracle_fit(law: str, expression: str, steps: int, seed: int = 0) -> float:
    """Test MAE of a GN whose edge computes ``expression`` exactly and whose node MLP is trained."""
    from eqlgn.models import GN, NodeMLP

    data = eqlgn.simulate(law, 2, 4, 1000, seed=seed, progress=False, cache_dir="data/cache")
    data, _ = data.prune_outliers()
    train, val, test = data.split(seed=seed)
    config = eqlgn.recommended_config("mlp", variant="bottleneck", steps=steps, seed=seed, device="cpu")
    torch.manual_seed(seed)
    model = GN(oracle_edge(expression), NodeMLP(6, 2, 2, 128, 3), "bottleneck")
    trained = eqlgn.fit(train, config, val=val, model=model, progress=False)
    from eqlgn.objective import evaluate

    return evaluate(trained.model, test, torch.device("cpu"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=4000, help="node-model training steps with an oracle edge")
    parser.add_argument("--docs", default=None, help="write DOCS/charge_diagnosis.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    lines = ["| law | " + " | ".join(f"∂L/∂W[{n}]" for n in WATCH) + " |", "|---|" + "---|" * len(WATCH)]
    for law in LAWS:
        g = gradients(law, args.seeds)
        lines.append(f"| {law} | " + " | ".join(f"{g[n]:.3f}" for n in WATCH) + " |")
    lines += ["", "| law | " + " | ".join(f"corr({n}, F)" for n in partial_correlations("spring")) + " |",
              "|---|" + "---|" * 7]
    for law in ("r2", "charge"):
        c = partial_correlations(law)
        lines.append(f"| {law} | " + " | ".join(f"{v:.3f}" for v in c.values()) + " |")
    lines += ["", "| law | message given to the node model | GN test MAE (oracle edge, node MLP trained) |",
              "|---|---|---|"]
    for law, forms in ORACLES.items():
        for form in forms:
            lines.append(f"| {law} | `{form}` | {oracle_fit(law, form, args.steps):.4f} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.docs:
        path = Path(args.docs) / "charge_diagnosis.md"
        path.write_text(f"<!-- generated by experiments/charge_diagnosis.py --seeds {args.seeds} --steps {args.steps} "
                        "-->\n" + text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
