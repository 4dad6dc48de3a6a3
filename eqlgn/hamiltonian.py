"""Hamiltonian graph network: learn the pair potential energy, read it from EQL weights.

Cranmer et al. 2020 also trained a (flattened) Hamiltonian GN and recovered pair
potentials by symbolic regression on its edge outputs. Here the edge model outputs a
scalar pair energy ``U(i, j)`` (MLP or EQL, the same edge models as the force GN), the
node model a scalar self energy ``T(i)`` of the particle's momentum ``p = m v`` and mass,
and

    H = 1/2 Σ_{i != j} U(i, j) + Σ_i T(i),        a_i = -(∂H/∂x_i) / m_i,

by autograd (every unordered pair is visited twice, hence the 1/2). With an EQL edge
model the learned ``U`` *is* an expression: :func:`eqlgn.extract` reads it from the
weights and :func:`judge_potential` checks ``U_learned ≈ a·U_true + c`` out of
distribution. Training uses the force GN's datasets and loss, plus the original's small
penalties on the total energy and on the pair energy's gradient with respect to the
non-canonical inputs (velocities), which a pair potential must not depend on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy
import torch
from torch import nn

from .equations import as_expression, evaluate
from .errors import ConfigError
from .graph import complete_edges
from .laws import get_law
from .models import EdgeModel, GNOutput, mlp


class KineticEnergy(nn.Module):
    """Self energy ``T(p, m)`` of each particle (an MLP of its momentum and mass)."""

    def __init__(self, dim: int, hidden: int = 128, layers: int = 2):
        super().__init__()
        self.dim = dim
        self.net = mlp(dim + 1, 1, hidden, layers)

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        d = self.dim
        mass = nodes[..., 2 * d + 1 : 2 * d + 2]
        return self.net(torch.cat([nodes[..., d : 2 * d] * mass, mass], dim=-1))


class HamiltonianGN(nn.Module):
    """Hamiltonian GN over batches of complete graphs (see module docstring).

    Args:
        edge_model: maps ``(receiver, sender) -> [.., 1]`` pair energy.
        dim: spatial dimension.
        kinetic: the self-energy model (default :class:`KineticEnergy`).
        energy_weight: weight of the penalty on ``H²`` (keeps the free additive constant small).
        canonical_weight: weight of the penalty on ``|∂U/∂v|²``.
    """

    variant = "standard"
    message_dim = 1
    aggregation = "dense"

    def __init__(self, edge_model: EdgeModel, dim: int, kinetic: nn.Module | None = None,
                 energy_weight: float = 1e-6, canonical_weight: float = 1e-3):
        super().__init__()
        if edge_model.out_features != 1:
            raise ConfigError(f"a Hamiltonian GN's edge model outputs one pair energy, not {edge_model.out_features}")
        self.edge_model, self.dim = edge_model, dim
        self.node_model = kinetic or KineticEnergy(dim)
        self.energy_weight, self.canonical_weight = energy_weight, canonical_weight

    def edge_outputs(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pair energies ``[B, E, 1]`` plus the receiver/sender indices ``[E]``."""
        receivers, senders = complete_edges(nodes.shape[1], nodes.device)
        return self.edge_model(nodes[:, receivers], nodes[:, senders]), receivers, senders

    def energy(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Total energy ``H [B]`` and the pair energies ``[B, E, 1]``."""
        pair, _, _ = self.edge_outputs(nodes)
        return 0.5 * pair.sum(dim=(1, 2)) + self.node_model(nodes).sum(dim=(1, 2)), pair

    def forward(self, nodes: torch.Tensor) -> GNOutput:
        """Accelerations ``-∂H/∂x / m`` for ``nodes [B, n, F]`` (autograd, also under ``no_grad``)."""
        d = self.dim
        with torch.enable_grad():
            positions = nodes[..., :d].detach().requires_grad_(True)
            velocities = nodes[..., d : 2 * d].detach().requires_grad_(self.training)
            state = torch.cat([positions, velocities, nodes[..., 2 * d :]], dim=-1)
            total, pair = self.energy(state)
            force = torch.autograd.grad(total.sum(), positions, create_graph=self.training)[0]
        accelerations = -force / nodes[..., 2 * d + 1 : 2 * d + 2]
        penalty = None
        if self.training:
            pair_velocity = torch.autograd.grad(pair.sum(), velocities, create_graph=True, allow_unused=True)[0]
            canonical = pair_velocity.pow(2).mean() if pair_velocity is not None else total.new_zeros(())
            penalty = self.energy_weight * total.pow(2).mean() + self.canonical_weight * canonical
        return GNOutput(accelerations, pair if self.training else pair.detach(), penalty=penalty)


@dataclass
class PotentialVerdict:
    """Is a learned pair energy the true potential up to scale and offset?"""

    passed: bool
    ood_r2: float
    scale: float
    offset: float
    samples: int

    def to_dict(self) -> dict:
        return {"passed": self.passed, "ood_r2": [self.ood_r2], "k": 0, "condition": 1.0, "scale": self.scale,
                "offset": self.offset, "samples": self.samples, "target": "potential"}


def symmetric_part(expr: sympy.Expr | str) -> sympy.Expr:
    """``(U(1, 2) + U(2, 1)) / 2``: the only part of a pair energy the Hamiltonian sees.

    H sums the edge energy over both orderings of every pair, so a term that changes sign
    when the particles are swapped (``dx -> -dx``, ``m1 <-> m2``, ...) cancels in H and is
    invisible to training; the pair potential is the symmetric part.
    """
    from .equations import SYMBOLS

    expr = as_expression(expr)
    swap = {SYMBOLS[f"d{a}"]: -SYMBOLS[f"d{a}"] for a in "xyz"}
    for name in ("x", "y", "z", "vx", "vy", "vz", "q", "m"):
        swap[SYMBOLS[f"{name}1"]], swap[SYMBOLS[f"{name}2"]] = SYMBOLS[f"{name}2"], SYMBOLS[f"{name}1"]
    return sympy.expand((expr + expr.xreplace(swap)) / 2)


def identifiable_part(expr: sympy.Expr | str) -> sympy.Expr:
    """The symmetric part without additive terms free of positions (``dx``, ``r``, ``x1``, ...).

    A term of the pair energy that does not depend on the particles' positions (a function
    of the masses and charges only) exerts no force, so accelerations cannot determine it;
    like the additive constant it is left out before the potential is judged.
    """
    from .equations import SYMBOLS

    positional = {SYMBOLS[name] for name in ("dx", "dy", "dz", "r", "x1", "y1", "z1", "x2", "y2", "z2")}
    return sympy.Add(*[t for t in sympy.Add.make_args(symmetric_part(expr)) if t.free_symbols & positional])


def true_potential(law: str, values: dict[str, np.ndarray]) -> np.ndarray:
    """The law's pair potential (unsoftened) on the vocabulary values of sampled pairs."""
    import jax

    jax.config.update("jax_enable_x64", True)
    potential = get_law(law).potential
    return np.asarray(potential(values["r"], values["m1"], values["m2"], values["q1"], values["q2"]))


def judge_potential(expressions: Sequence[sympy.Expr | str], law: str, dim: int, samples: int = 20000,
                    seed: int = 12345, threshold: float = 0.98) -> PotentialVerdict:
    """Fit ``U_learned ≈ a·U_true + c`` on the judge's own wider states; pass at R² ≥ ``threshold``.

    ``U_learned`` is the expression's identifiable part (:func:`identifiable_part`): symmetric
    under swapping the particles, without position-free terms. The true potential keeps
    its mass and charge factors, which do depend on the pair.
    """
    from .judging import sample_states

    if len(expressions) != 1:
        raise ConfigError(f"a pair potential is one expression, got {len(expressions)}")
    values = sample_states(dim, samples, seed)
    learned = evaluate([identifiable_part(expressions[0])], values)[:, 0]
    truth = true_potential(law, values)
    finite = np.isfinite(learned) & np.isfinite(truth)
    if finite.mean() < 0.99:
        return PotentialVerdict(False, float("-inf"), 0.0, 0.0, samples)
    design = np.column_stack([truth[finite], np.ones(finite.sum())])
    (scale, offset), *_ = np.linalg.lstsq(design, learned[finite], rcond=None)
    residual = learned[finite] - design @ np.array([scale, offset])
    total = ((learned[finite] - learned[finite].mean()) ** 2).sum()
    r2 = float(1 - (residual**2).sum() / total) if total > 0 else 0.0
    return PotentialVerdict(bool(r2 >= threshold and abs(scale) > 1e-8), r2, float(scale), float(offset), samples)
