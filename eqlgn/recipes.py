"""The recommended recipes: one shared configuration per edge model, the same for every law.

A recipe is a set of flags (:data:`eqlgn.config.FLAGS`) that :func:`recommended_config`
turns into a :class:`~eqlgn.config.TrainConfig`; the CLI's defaults for ``eqlgn run`` are
these. docs/method.md says how each was chosen and on which seeds.
"""

from __future__ import annotations

from typing import Any

from .config import EDGES, TrainConfig
from .errors import unknown_name

EQL_RECOMMENDED: dict[str, Any] = {
    "edge": "eql", "variant": "bottleneck", "hidden": 128, "layers": 3, "batch_size": 256,
    "steps": 16000, "max_lr": 3e-3, "r_min": 0.1, "grad_clip": 1.0, "eql_l1": 0.1,
    "prune_threshold": 0.05, "starts": 4, "node_hidden": 64,
}
"""The EQL recipe (flags), the same for every law (docs/method.md says how it was chosen)."""

HAMILTONIAN_EQL: dict[str, Any] = {"node_hidden": 128}
"""What the EQL recipe changes for a Hamiltonian GN (``model="hamiltonian"``): its kinetic-energy MLP keeps the
width it was measured with; the 64-wide node MLP was chosen for the force GN's node model (docs/method.md)."""


MLP_RECOMMENDED: dict[str, Any] = {
    "edge": "mlp", "variant": "l1", "schedule": "linear", "l1": 0.0, "l1_end": 0.5, "hidden": 128,
    "batch_size": 256, "steps": 4000, "max_lr": 3e-3, "mlp_inputs": "sender",
}
"""The MLP recipe at a CPU budget (variant ``l1``; ``variant="bottleneck"`` drops the L1 schedule), the same for
every law: the edge MLP on the sender's relative inputs, L1 from 0 to 0.5. Chosen on design seeds 0–1
(docs/method.md, "The MLP route's recipe"): the bottleneck recovers 5 of 8 laws, the L1 GN 4 of 8, and the L1
messages are not sparse at this budget."""

MLP_CONSTANT_L1 = 0.01
"""The L1 coefficient of the MLP recipe's ``constant`` schedule (the recipe's linear schedule starts at 0, which held
constant is no penalty at all): Cranmer et al.'s constant 1e-2, not chosen on design seeds. The ``triangle`` schedule
keeps the recipe's 0 → 0.5 (at mid-training) → 0."""


def recommended_config(edge: str = "eql", **flags: Any) -> TrainConfig:
    """The one shared configuration per edge model (the same for every law), with ``flags`` changed.

    ``eql`` gives :data:`EQL_RECOMMENDED`, ``mlp`` gives :data:`MLP_RECOMMENDED` (the L1 GN
    with a linear schedule at a CPU budget, or with ``variant`` the bottleneck GN; Cranmer et al.'s paper
    settings are the defaults of :meth:`TrainConfig.from_flags`). Recipe settings that stop applying (the
    L1 schedule after ``variant="bottleneck"``) are dropped; a flag that does not apply is an error.
    """
    if edge not in EDGES:
        raise unknown_name("edge model", edge, EDGES)
    base = EQL_RECOMMENDED if edge == "eql" else MLP_RECOMMENDED
    if edge == "eql" and flags.get("model") == "hamiltonian":
        base = base | HAMILTONIAN_EQL
    if edge == "mlp" and flags.get("schedule") == "constant" and "l1" not in flags:
        flags = flags | {"l1": MLP_CONSTANT_L1}
    return TrainConfig.from_flags(defaults=base, **flags)
