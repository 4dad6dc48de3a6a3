"""Hamiltonian graph network: learn the pair potential energy, read it from EQL weights.

Cranmer et al. 2020 also trained a (flattened) Hamiltonian GN and recovered pair
potentials by symbolic regression on its edge outputs. Here the edge model outputs a
scalar pair energy ``U(i, j)`` (MLP or EQL, the same edge models as the force GN), the
node model a scalar self energy ``T(i)`` of the particle's momentum ``p = m v`` and mass,
and

    H = 1/2 Σ_{i != j} U(i, j) + Σ_i T(i),        a_i = -(∂H/∂x_i) / m_i,

by autograd (every unordered pair is visited twice, hence the 1/2). With an EQL edge
model the learned ``U`` *is* an expression: :func:`eqlgn.extract` reads it from the
weights and :func:`judge_potential` checks that its force ``-dU/dx1`` is the law's, with
the force judge's scale-free criterion, out of distribution. Training uses the force GN's
datasets and loss, plus the original's small penalties on the total energy and on the
pair energy's gradient with respect to the non-canonical inputs (velocities), which a
pair potential must not depend on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy
import torch
from torch import nn

from .equations import SYMBOLS, as_expression, complexity
from .errors import ConfigError
from .graph import complete_edges
from .layout import NodeLayout
from .models import EdgeModel, GNOutput, mlp


class KineticEnergy(nn.Module):
    """Self energy ``T(p, m)`` of each particle (an MLP of its momentum and mass)."""

    def __init__(self, dim: int, hidden: int = 128, layers: int = 2):
        super().__init__()
        self.dim = dim
        self.net = mlp(dim + 1, 1, hidden, layers)

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        at = NodeLayout(self.dim)
        mass = nodes[..., at.mass : at.mass + 1]
        return self.net(torch.cat([nodes[..., at.velocity] * mass, mass], dim=-1))


class HamiltonianGN(nn.Module):
    """Hamiltonian GN over batches of complete graphs (see module docstring); a
    :class:`~eqlgn.models.GraphNetwork` whose one edge output (its "message") is the pair energy.

    Args:
        edge_model: maps ``(receiver, sender) -> [.., 1]`` pair energy.
        dim: spatial dimension.
        kinetic: the self-energy model (default :class:`KineticEnergy`).
        energy_weight: weight of the penalty on ``H²`` (keeps the free additive constant small).
        canonical_weight: weight of the penalty on ``|∂U/∂v|²``.
    """

    def __init__(self, edge_model: EdgeModel, dim: int, kinetic: nn.Module | None = None,
                 energy_weight: float = 1e-6, canonical_weight: float = 1e-3):
        super().__init__()
        if edge_model.out_features != 1:
            raise ConfigError(f"a Hamiltonian GN's edge model outputs one pair energy, not {edge_model.out_features}")
        self.edge_model, self.dim = edge_model, dim
        self.variant, self.message_dim = "standard", 1  # one unregularised output: the pair energy
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
        at = NodeLayout(self.dim)
        with torch.enable_grad():
            positions = nodes[..., at.position].detach().requires_grad_(True)
            velocities = nodes[..., at.velocity].detach().requires_grad_(self.training)
            state = torch.cat([positions, velocities, nodes[..., at.charge :]], dim=-1)
            total, pair = self.energy(state)
            force = torch.autograd.grad(total.sum(), positions, create_graph=self.training)[0]
        accelerations = -force / nodes[..., at.mass : at.mass + 1]
        penalty = None
        if self.training:
            pair_velocity = torch.autograd.grad(pair.sum(), velocities, create_graph=True, allow_unused=True)[0]
            canonical = pair_velocity.pow(2).mean() if pair_velocity is not None else total.new_zeros(())
            penalty = self.energy_weight * total.pow(2).mean() + self.canonical_weight * canonical
        return GNOutput(accelerations, pair if self.training else pair.detach(), penalty=penalty)


def symmetric_part(expr: sympy.Expr | str) -> sympy.Expr:
    """``(U(1, 2) + U(2, 1)) / 2``: the only part of a pair energy the Hamiltonian sees.

    H sums the edge energy over both orderings of every pair, so a term that changes sign
    when the particles are swapped (``dx -> -dx``, ``m1 <-> m2``, ...) cancels in H and is
    invisible to training; the pair potential is the symmetric part.
    """
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
    positional = {SYMBOLS[name] for name in ("dx", "dy", "dz", "r", "x1", "y1", "z1", "x2", "y2", "z2")}
    return sympy.Add(*[t for t in sympy.Add.make_args(symmetric_part(expr)) if t.free_symbols & positional])


def potential_force(expr: sympy.Expr | str, dim: int) -> list[sympy.Expr]:
    """The force on particle 1 of a pair energy, ``-dU/dx1`` (``D`` expressions).

    ``U`` may use ``dx``, ``r`` and the absolute positions; ``dx = x1 - x2`` and
    ``r = |dx|`` are written out before differentiating, so every way the energy depends on
    ``x1`` counts.
    """
    axes = "xyz"[:dim]
    expr = as_expression(expr)
    diffs = {SYMBOLS[f"d{a}"]: SYMBOLS[f"{a}1"] - SYMBOLS[f"{a}2"] for a in axes}
    radius = sympy.sqrt(sum(d**2 for d in diffs.values()))
    written = expr.xreplace({SYMBOLS["r"]: radius}).xreplace(diffs)
    back = {value: key for key, value in diffs.items()}
    forces = []
    for a in axes:
        force = -sympy.diff(written, SYMBOLS[f"{a}1"])
        forces.append(force.xreplace({radius: SYMBOLS["r"]}).xreplace(back))
    return forces


def judge_potential(expressions: Sequence[sympy.Expr | str], law: str, dim: int, samples: int = 20000,
                    seeds: Sequence[int] | None = None):
    """Judge a learned pair energy by the force it exerts, with the force judge's criterion.

    ``U_learned`` is the expression's identifiable part (:func:`identifiable_part`):
    symmetric under swapping the particles, without position-free terms. Its force
    ``-dU/dx1`` (:func:`potential_force`) must be the law's force up to a linear map and
    offset, scale-free, on the judge's wider states (:func:`eqlgn.judging.judge`), with no
    receiver factor: a Hamiltonian's pair energy is not divided by anything. Judging the
    force rather than ``U`` itself makes the score independent of the free additive
    constant of a potential (``log r`` has no natural size).

    Returns:
        an :class:`eqlgn.judging.Verdict` (its complexity is that of the identifiable energy).
    """
    from .judging import JUDGE_SEEDS, judge

    if len(expressions) != 1:
        raise ConfigError(f"a pair potential is one expression, got {len(expressions)}")
    energy = identifiable_part(expressions[0])
    verdict = judge(potential_force(energy, dim), law, dim, samples, seeds or JUDGE_SEEDS, factors=("1",))
    verdict.complexity = complexity(energy)
    return verdict
