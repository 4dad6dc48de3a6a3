"""Graph network (Cranmer et al. 2020): edge model -> sum over senders -> node model.

``GN(edge_model, node_model)`` predicts accelerations ``[B, n, D]`` from node features
``[B, n, F]``. The edge model sees receiver (1) and sender (2) features and returns a
message; messages are summed per receiver; the node model maps (node features, summed
message) to an acceleration. Any edge model with the :class:`EdgeModel` interface
plugs in (the MLP here, the EQL edge model elsewhere).

Variants (:data:`VARIANTS`) differ only in the message and its regulariser:

* ``standard``   100-dim messages, no regulariser.
* ``bottleneck`` message dim = D (spatial dimension), no regulariser.
* ``l1``         100-dim messages, L1 on messages (coefficient from the trainer schedule).
* ``kl``         the edge model outputs mean and log-variance of 100 messages; training
  samples ``m = mu + sigma * eps``, evaluation uses ``mu``; KL(N(mu, sigma^2) || N(0, 1)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from .eql import EQL
from .errors import unknown_name
from .features import RECEIVER_ONLY_INPUTS, check_inputs, input_symbol, relative_features
from .graph import aggregate, complete_edges

VARIANTS = ("standard", "bottleneck", "l1", "kl")


def check_variant(name: str) -> str:
    """Return ``name`` if it is a known variant, else raise a ConfigError listing them."""
    if name not in VARIANTS:
        raise unknown_name("variant", name, VARIANTS)
    return name


def message_dim_for(variant: str, dim: int, message_dim: int = 100) -> int:
    """Message width of a variant: ``dim`` for the bottleneck, ``message_dim`` otherwise."""
    return dim if check_variant(variant) == "bottleneck" else message_dim


def mlp(in_features: int, out_features: int, hidden: int = 300, layers: int = 3) -> nn.Sequential:
    """``layers`` hidden Linear+ReLU layers of width ``hidden``, then a Linear output."""
    sizes = [in_features] + [hidden] * layers
    blocks: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        blocks += [nn.Linear(a, b), nn.ReLU()]
    blocks.append(nn.Linear(sizes[-1], out_features))
    return nn.Sequential(*blocks)


class EdgeModel(nn.Module):
    """Interface of edge models: ``forward(receiver [..., F], sender [..., F]) -> [..., out]``.

    ``out_features`` is the raw output width (2 x message dim for the KL variant).
    """

    out_features: int

    def forward(self, receiver: torch.Tensor, sender: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def penalty(self, kind: str = "l1") -> torch.Tensor:
        """Regulariser of the edge model's own weights (0 for the MLP; for the EQL ``kind`` l1 or l12)."""
        return torch.zeros(())

    @property
    def sees_receiver(self) -> bool:
        """Whether the messages can depend on the receiver's own mass and charge (raw features: they can)."""
        return True


class MLPEdge(EdgeModel):
    """Cranmer's edge MLP on raw features: ``phi_e([x1, x2])``.

    Args:
        node_features: ``F`` per node.
        out_features: output width (message dim, or 2 x message dim for ``kl``).
        hidden: hidden width (paper: 300).
        layers: hidden layers (paper: 3).
    """

    def __init__(self, node_features: int, out_features: int, hidden: int = 300, layers: int = 3):
        super().__init__()
        self.out_features = out_features
        self.net = mlp(2 * node_features, out_features, hidden, layers)

    def forward(self, receiver: torch.Tensor, sender: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([receiver, sender], dim=-1))


class RelativeEdge(EdgeModel):
    """An edge model on named ``relative`` inputs (``dx, dy, r, inv_r, m2, ...``, see :mod:`eqlgn.features`).

    The inputs are multiplied by fixed per-input scales (set from training data with
    :meth:`set_scales`) — scaled, never shifted, so monomials stay monomials. Subclasses map the
    scaled inputs (:meth:`scaled`) to the message.
    """

    def __init__(self, inputs: list[str], dim: int, out_features: int, r_min: float = 1e-2):
        super().__init__()
        self.inputs = check_inputs(inputs, dim)
        self.dim, self.r_min, self.out_features = dim, r_min, out_features
        self.register_buffer("scales", torch.ones(len(self.inputs)))

    def features(self, receiver: torch.Tensor, sender: torch.Tensor) -> torch.Tensor:
        """Unscaled relative inputs ``[..., len(inputs)]``."""
        return relative_features(receiver, sender, self.inputs, self.dim, self.r_min)

    def scaled(self, receiver: torch.Tensor, sender: torch.Tensor) -> torch.Tensor:
        """The inputs times their scales."""
        return self.features(receiver, sender) * self.scales

    @torch.no_grad()
    def set_scales(self, receiver: torch.Tensor, sender: torch.Tensor, quantile: float = 0.99) -> None:
        """Scale each input by 1 / (its ``quantile`` of |value|) on the given edges.

        A high quantile keeps 99 % of scaled inputs within [-1, 1] even for heavy-tailed
        inputs such as 1/r³, so products of inputs cannot explode at initialisation.
        """
        values = self.features(receiver, sender).abs().flatten(0, -2)
        typical = torch.quantile(values, quantile, dim=0)
        self.scales.copy_(1.0 / typical.clamp_min(1e-6))

    @property
    def sees_receiver(self) -> bool:
        """Whether any input describes the receiver alone (its mass or charge)."""
        return bool(set(self.inputs) & set(RECEIVER_ONLY_INPUTS))


class RelativeMLPEdge(RelativeEdge):
    """An edge MLP on scaled ``relative`` inputs (the separation, its inverse powers, the sender's properties)
    instead of both particles' raw features: translation invariance and the inverse powers are given, not learned.

    Args:
        inputs: relative input names, in order.
        dim: spatial dimension.
        out_features: output width (message dim, or 2 x message dim for ``kl``).
        hidden, layers: the MLP's size.
        r_min: clamp of ``r`` inside inverse powers.
    """

    def __init__(self, inputs: list[str], dim: int, out_features: int, hidden: int = 300, layers: int = 3,
                 r_min: float = 1e-2):
        super().__init__(inputs, dim, out_features, r_min)
        self.net = mlp(len(self.inputs), out_features, hidden, layers)

    def forward(self, receiver: torch.Tensor, sender: torch.Tensor) -> torch.Tensor:
        return self.net(self.scaled(receiver, sender))


class EQLEdge(RelativeEdge):
    """Equation-Learner edge model on ``relative`` inputs: the message *is* a formula.

    The scaled inputs (:class:`RelativeEdge`) are fed to an :class:`~eqlgn.eql.EQL`.

    Args:
        inputs: relative input names, in order.
        dim: spatial dimension.
        out_features: message width (2 x message dim for ``kl``).
        hidden_layers: EQL hidden layers.
        units: EQL unit counts per hidden layer.
        init_scale: EQL initialisation width multiplier.
        r_min: clamp of ``r`` inside inverse powers.
        skip: EQL skip connections (see :class:`~eqlgn.eql.EQL`).
    """

    def __init__(self, inputs: list[str], dim: int, out_features: int, hidden_layers: int = 2,
                 units: dict[str, int] | None = None, init_scale: float = 1.0, r_min: float = 1e-2, *,
                 skip: bool = False):
        super().__init__(inputs, dim, out_features, r_min)
        self.eql = EQL(len(self.inputs), out_features, hidden_layers, units, init_scale, skip=skip)

    def forward(self, receiver: torch.Tensor, sender: torch.Tensor) -> torch.Tensor:
        return self.eql(self.scaled(receiver, sender))

    def penalty(self, kind: str = "l1") -> torch.Tensor:
        """L1 (or smoothed L1/2, ``kind="l12"``) of the EQL weights (the trainer multiplies it by its coefficient)."""
        return self.eql.l12() if kind == "l12" else self.eql.l1()

    def expanded_terms(self, component: int) -> list | None:
        """Additive terms (SymPy monomials over ``dx, r, m1, ...``) of one output, expanded
        exactly from the weights; None when the EQL has non-polynomial units."""
        import sympy

        from .eql import to_polynomials

        polys = to_polynomials(self.eql)
        if polys is None:
            return None
        symbols = [float(s) * input_symbol(name) for s, name in zip(self.scales.tolist(), self.inputs)]
        terms = []
        for monomial, coef in polys[component].items():
            if coef != 0:
                terms.append(sympy.Float(coef) * sympy.Mul(*[x**e for x, e in zip(symbols, monomial) if e]))
        return terms

    def to_sympy(self) -> list:
        """One SymPy expression per output over the base symbols (``dx, r, m1, ...``)."""
        symbols = [float(s) * input_symbol(name) for s, name in zip(self.scales.tolist(), self.inputs)]
        return self.eql.to_sympy(symbols)


class NodeMLP(nn.Module):
    """Cranmer's node MLP: ``phi_v([x, sum of messages]) -> acceleration``."""

    def __init__(self, node_features: int, message_dim: int, dim: int,
                 hidden: int = 300, layers: int = 3):
        super().__init__()
        self.net = mlp(node_features + message_dim, dim, hidden, layers)

    def forward(self, nodes: torch.Tensor, summed: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([nodes, summed], dim=-1))


@dataclass
class GNOutput:
    """What a GN forward pass returns.

    Attributes:
        accelerations: ``[B, n, D]`` predictions.
        messages: ``[B, E, M]`` messages actually summed (sampled for ``kl`` in training).
        mean: ``[B, E, M]`` message means (``kl`` only, else ``None``).
        logvar: ``[B, E, M]`` message log-variances (``kl`` only, else ``None``).
        penalty: a model's own regulariser to add to the loss (Hamiltonian GN), else ``None``.
    """

    accelerations: torch.Tensor
    messages: torch.Tensor
    mean: torch.Tensor | None = None
    logvar: torch.Tensor | None = None
    penalty: torch.Tensor | None = None


@runtime_checkable
class GraphNetwork(Protocol):
    """What the trainer, the extraction and the analysis need of a network.

    :class:`GN` and :class:`eqlgn.hamiltonian.HamiltonianGN` both satisfy it: an edge model
    whose outputs are read as messages (a force GN) or pair energies (a Hamiltonian GN), a
    node model, the variant and message width the trainer's regulariser and the analysis
    use, and a forward pass that returns a :class:`GNOutput`.
    """

    edge_model: EdgeModel
    node_model: nn.Module
    variant: str
    message_dim: int

    def edge_outputs(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw edge outputs ``[B, E, out]`` and receiver/sender indices ``[E]``."""
        ...

    def __call__(self, nodes: torch.Tensor) -> GNOutput: ...


class GN(nn.Module):
    """Graph network over batches of complete graphs (a :class:`GraphNetwork`).

    Args:
        edge_model: an :class:`EdgeModel`; its output width is ``message_dim`` (or twice
            that for the ``kl`` variant).
        node_model: maps ``(nodes [B, n, F], summed [B, n, M]) -> [B, n, D]``.
        variant: one of :data:`VARIANTS`.
        aggregation: one of :data:`eqlgn.graph.AGGREGATIONS`.
    """

    def __init__(self, edge_model: EdgeModel, node_model: nn.Module, variant: str = "l1",
                 aggregation: str = "dense"):
        super().__init__()
        self.edge_model = edge_model
        self.node_model = node_model
        self.variant = check_variant(variant)
        self.aggregation = aggregation
        self.message_dim = edge_model.out_features // (2 if variant == "kl" else 1)

    def edge_outputs(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw edge outputs ``[B, E, out]`` plus the receiver/sender indices ``[E]``."""
        receivers, senders = complete_edges(nodes.shape[1], nodes.device)
        raw = self.edge_model(nodes[:, receivers], nodes[:, senders])
        return raw, receivers, senders

    def forward(self, nodes: torch.Tensor) -> GNOutput:
        """Predict accelerations for ``nodes [B, n, F]``."""
        raw, receivers, _ = self.edge_outputs(nodes)
        mean = logvar = None
        messages = raw
        if self.variant == "kl":
            mean, logvar = kl_parts(raw, self.message_dim)
            messages = mean
            if self.training:
                messages = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        summed = aggregate(messages, receivers, nodes.shape[1], self.aggregation)
        return GNOutput(self.node_model(nodes, summed), messages, mean, logvar)


LOGVAR_BOUND = 10.0
"""The KL messages' log-variances are bounded softly to ±this (``b·tanh(x/b)``; variances e^-10 to e^10 around
messages of order 1): an edge input far beyond its training scale (``1/r³`` of a close pair on the sender's
relative inputs) would otherwise push ``exp(logvar)`` past float32 within a few steps."""


def kl_parts(raw: torch.Tensor, message_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, bounded log-variance) of the ``kl`` variant's raw edge outputs ``[..., 2·message_dim]``."""
    return raw[..., :message_dim], LOGVAR_BOUND * torch.tanh(raw[..., message_dim:] / LOGVAR_BOUND)


def kl_to_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise KL(N(mean, exp(logvar)) || N(0, 1)) = (mean^2 + e^logvar - logvar - 1) / 2."""
    return 0.5 * (mean**2 + torch.exp(logvar) - logvar - 1.0)


def build_gn(node_features: int, dim: int, variant: str = "l1", message_dim: int = 100,
             hidden: int = 300, layers: int = 3, aggregation: str = "dense",
             edge: EdgeModel | None = None, node_hidden: int | None = None) -> GN:
    """A GN with Cranmer et al.'s MLPs (paper sizes by default) or the given edge model."""
    width = message_dim_for(variant, dim, message_dim)
    edge = edge or MLPEdge(node_features, width * (2 if variant == "kl" else 1), hidden, layers)
    node = NodeMLP(node_features, width, dim, node_hidden or hidden, layers)
    return GN(edge, node, variant, aggregation)
