"""Symbolic models of a trained GN: SR on its messages and node model, and their composition.

The classic route of Cranmer et al. (and Claim 3 of the 2024 reproduction):

1. :func:`fit_messages` — symbolic regression of each significant message component on
   the pair's vocabulary values (``dx, dy[, dz], r, m1, m2, q1, q2``);
2. :func:`fit_node_model` — symbolic regression of the node model: each predicted
   acceleration axis from the summed significant messages ``s1 .. sD`` and the receiver's
   ``m1, q1``;
3. :class:`ComposedModel` — the edge and node expressions composed into one symbolic model
   of the whole GN, ``a_i = node(sum_j edge(i, j), m_i, q_i)``, whose test loss is compared
   with the GN's, before and after refitting its constants on training data.

For the EQL route the edge expressions come from the weights (:func:`eqlgn.extract`) and
only the node model needs a search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy
import torch

from .analysis import MessageSample
from .batching import sample_batches
from .data import ParticleDataset
from .equations import SUMMED_SYMBOL_NAMES, evaluate, pair_values, to_vocabulary, torch_function
from .errors import ConfigError
from .features import RECEIVER_ONLY_INPUTS
from .graph import aggregate, complete_edges
from .layout import NodeLayout
from .models import GN
from .sr import SymbolicFit, fit_symbolic


def message_inputs(dim: int, receiver: bool = True) -> list[str]:
    """SR inputs for messages: ``dx, dy[, dz], r, m1, m2, q1, q2`` (division builds ``1/r``); without the
    receiver's ``m1, q1`` when the edge model does not see them (``receiver=False``)."""
    names = [f"d{a}" for a in "xyz"[:dim]] + ["r", "m1", "m2", "q1", "q2"]
    return names if receiver else [name for name in names if name not in RECEIVER_ONLY_INPUTS]


def node_inputs(components: int) -> list[str]:
    """SR inputs for the node model: summed messages ``s1 .. sK`` and the receiver's ``m1, q1``."""
    return list(SUMMED_SYMBOL_NAMES[:components]) + ["m1", "q1"]


def fit_messages(sample: MessageSample, components: Sequence[int], engine: str = "operon",
                 budget: int = 100, seed: int = 0, max_seconds: float | None = None,
                 receiver: bool = True) -> list[SymbolicFit]:
    """One symbolic-regression fit per significant message component (held-out edges); ``receiver=False``
    leaves the receiver's ``m1, q1`` out of the inputs (an edge model that does not see them)."""
    names = message_inputs(sample.dim, receiver)
    values = pair_values(sample.receiver, sample.sender, sample.dim)
    X = np.column_stack([values[n] for n in names])
    return [fit_symbolic(X, sample.messages[:, c], names, engine=engine, budget=budget, seed=seed + k,
                         max_seconds=max_seconds) for k, c in enumerate(components)]


@torch.no_grad()
def node_sample(model: GN, data: ParticleDataset, components: Sequence[int], max_graphs: int = 2000,
                seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Node-model inputs and outputs on up to ``max_graphs`` graphs.

    Returns:
        ``({s1.., m1, q1: [N]}, accelerations [N, D])`` with ``N`` = graphs × particles;
        the accelerations are the GN's predictions (what the node model computes).
    """
    if len(components) > len(SUMMED_SYMBOL_NAMES):
        raise ConfigError(f"the node model can be fitted on at most {len(SUMMED_SYMBOL_NAMES)} message "
                          f"components, got {len(components)}")
    device = next(model.parameters()).device
    model.eval()
    sums, nodes, accelerations = [], [], []
    for batch in sample_batches(data, max_graphs, seed, device):
        raw, receivers, _ = model.edge_outputs(batch.nodes)
        summed = aggregate(raw[..., : model.message_dim], receivers, batch.nodes.shape[1], model.aggregation)
        sums.append(summed[..., list(components)].flatten(0, 1).cpu().numpy())
        nodes.append(batch.nodes.flatten(0, 1).cpu().numpy())
        accelerations.append(model(batch.nodes).accelerations.flatten(0, 1).cpu().numpy())
    summed_values, node_features = np.concatenate(sums).astype(np.float64), np.concatenate(nodes)
    at = NodeLayout(data.dim)
    values = _summed_values(summed_values)
    values.update(m1=node_features[:, at.mass].astype(np.float64), q1=node_features[:, at.charge].astype(np.float64))
    return values, np.concatenate(accelerations).astype(np.float64)


def fit_node_model(model: GN, data: ParticleDataset, components: Sequence[int], engine: str = "operon",
                   budget: int = 100, seed: int = 0, max_seconds: float | None = None) -> list[SymbolicFit]:
    """One symbolic-regression fit per acceleration axis of the node model."""
    values, accelerations = node_sample(model, data, components, seed=seed)
    names = node_inputs(len(components))
    X = np.column_stack([values[n] for n in names])
    return [fit_symbolic(X, accelerations[:, axis], names, engine=engine, budget=budget, seed=seed + 100 + axis,
                         max_seconds=max_seconds) for axis in range(data.dim)]


@dataclass
class ComposedModel:
    """A whole GN as equations: ``a_i = node(sum_{j != i} edge(i, j), m_i, q_i)``.

    Attributes:
        edge: ``K`` message expressions over the pair vocabulary (``dx, r, m1, m2, ...``).
        node: ``D`` acceleration expressions over ``s1 .. sK`` and the receiver's symbols.
        dim: spatial dimension ``D``.
    """

    edge: list[sympy.Expr]
    node: list[sympy.Expr]
    dim: int

    def __post_init__(self) -> None:
        self.edge = [to_vocabulary(sympy.sympify(e)) for e in self.edge]
        self.node = [to_vocabulary(sympy.sympify(e)) for e in self.node]
        if len(self.node) != self.dim:
            raise ConfigError(f"a composed model needs {self.dim} node expressions, got {len(self.node)}")

    def predict(self, nodes: np.ndarray) -> np.ndarray:
        """Accelerations ``[B, n, D]`` for node features ``nodes [B, n, F]`` (NumPy, float64)."""
        edge, node = (lambda values: evaluate(self.edge, values)), (lambda values: evaluate(self.node, values))
        return compose_forward(np.asarray(nodes, dtype=np.float64), edge, node, self.dim)

    def loss(self, data: ParticleDataset, max_graphs: int | None = None) -> float:
        """Mean absolute error of the accelerations (the GN's test metric)."""
        subset = data if max_graphs is None or len(data) <= max_graphs else data.subset(np.arange(max_graphs))
        with np.errstate(all="ignore"):
            error = np.abs(self.predict(subset.nodes) - subset.accelerations)
        return float(np.mean(error)) if np.isfinite(error).all() else float("inf")

    def refit(self, data: ParticleDataset, max_graphs: int = 2000, steps: int = 50) -> ComposedModel:
        """Refit every constant of the edge and node expressions on ``data`` (L-BFGS, squared error).

        The structure is kept; only the numbers change, as the original authors refit the
        constants of the composed model on training data.
        """
        exprs = self.edge + self.node
        constants = sorted({f for e in exprs for f in e.atoms(sympy.Float)}, key=float)
        if not constants:
            return ComposedModel(self.edge, self.node, self.dim)
        params = sympy.symbols(f"c0:{len(constants)}")
        swap = dict(zip(constants, params))
        templates = [e.xreplace(swap) for e in exprs]
        theta = torch.tensor([float(c) for c in constants], dtype=torch.float64, requires_grad=True)
        subset = data if len(data) <= max_graphs else data.subset(np.arange(max_graphs))
        nodes = torch.as_tensor(subset.nodes, dtype=torch.float64)
        target = torch.as_tensor(subset.accelerations, dtype=torch.float64)
        edge_fn = torch_function(templates[: len(self.edge)], params)
        node_fn = torch_function(templates[len(self.edge):], params)

        def forward(theta: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
            return compose_forward(nodes, lambda v: edge_fn(v, theta), lambda v: node_fn(v, theta), self.dim)

        optimizer = torch.optim.LBFGS([theta], max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = ((forward(theta, nodes) - target) ** 2).mean()
            loss.backward()
            return loss

        start = theta.detach().clone()
        optimizer.step(closure)
        if not torch.isfinite(theta).all():
            theta = start
        fitted = {p: sympy.Float(float(v), 6) for p, v in zip(params, theta.detach())}
        refitted = [t.xreplace(fitted) for t in templates]
        return ComposedModel(refitted[: len(self.edge)], refitted[len(self.edge):], self.dim)


def _summed_values(summed):
    """``{s1: summed[:, 0], s2: ...}`` for ``summed [N, K]`` (NumPy or torch)."""
    return {name: summed[:, k] for k, name in enumerate(SUMMED_SYMBOL_NAMES[: summed.shape[1]])}


def compose_forward(nodes, edge, node, dim: int):
    """The GN's computation with symbolic parts, for NumPy arrays and torch tensors alike.

    ``edge(values) -> [E·B, K]`` messages from pair values, summed over each receiver's
    senders (the edge order of :func:`eqlgn.graph.complete_edges`), then
    ``node(values) -> [B·n, D]`` from the receiver's values and ``s1 .. sK``; returns ``[B, n, D]``.
    """
    b, n, f = nodes.shape
    receivers, senders = complete_edges(n)
    if isinstance(nodes, np.ndarray):
        receivers, senders = receivers.numpy(), senders.numpy()
    pairs = pair_values(nodes[:, receivers].reshape(-1, f), nodes[:, senders].reshape(-1, f), dim)
    messages = edge(pairs).reshape(b, n, n - 1, -1).sum(2)
    flat = nodes.reshape(-1, f)
    values = pair_values(flat, flat, dim)
    values.update(_summed_values(messages.reshape(b * n, -1)))
    return node(values).reshape(b, n, dim)
