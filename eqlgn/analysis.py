"""Message analysis: which message components matter and are they linear in the true force?

Cranmer et al. 2020 (sec. 4): with a sparsity-inducing message regulariser, only ``D``
message components stay active, and each is a linear combination of the true pairwise
force. Here we collect per-edge messages on held-out graphs, rank components by standard
deviation (by mean KL for the ``kl`` variant), fit the top ``D`` components linearly
(with intercept) to the true force ``F`` and to ``F / m1``, and report R^2 per component
and the sparsity ratio (smallest of the top-D spreads over the (D+1)-th largest).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from .batching import sample_batches
from .data import ParticleDataset
from .fitting import linear_fit
from .laws import get_law
from .layout import NodeLayout
from .models import GN, kl_parts, kl_to_standard_normal


@dataclass
class MessageSample:
    """Per-edge messages with the features of their two end nodes.

    Attributes:
        messages: ``[N, M]`` message (mean for ``kl``) of each edge.
        kl: ``[N, M]`` per-edge KL of each component (``kl`` variant) or ``None``.
        receiver: ``[N, F]`` receiver (particle 1) features.
        sender: ``[N, F]`` sender (particle 2) features.
        force: ``[N, D]`` true force on 1 from 2 (from the law's NumPy formula), or ``None``
            for data of unknown law (users' own trajectories).
        dim: spatial dimension.
    """

    messages: np.ndarray
    kl: np.ndarray | None
    receiver: np.ndarray
    sender: np.ndarray
    force: np.ndarray | None
    dim: int

    @property
    def dx(self) -> np.ndarray:
        """``[N, D]`` displacement ``x1 - x2``."""
        at = NodeLayout(self.dim).position
        return self.receiver[:, at] - self.sender[:, at]

    @property
    def m1(self) -> np.ndarray:
        """``[N]`` receiver masses."""
        return self.receiver[:, NodeLayout(self.dim).mass]


@torch.no_grad()
def collect_messages(model: GN, data: ParticleDataset, max_graphs: int = 5000,
                     seed: int = 0) -> MessageSample:
    """Run ``model`` on up to ``max_graphs`` graphs of ``data`` and record every edge."""
    law = get_law(data.meta.law) if data.meta.law is not None else None
    device = next(model.parameters()).device
    model.eval()
    parts: dict[str, list[np.ndarray]] = {"messages": [], "kl": [], "receiver": [], "sender": []}
    for batch in sample_batches(data, max_graphs, seed, device):
        raw, receivers, senders = model.edge_outputs(batch.nodes)
        if model.variant == "kl":
            mean, logvar = kl_parts(raw, model.message_dim)
            parts["kl"].append(kl_to_standard_normal(mean, logvar).flatten(0, 1).cpu().numpy())
            raw = mean
        parts["messages"].append(raw.flatten(0, 1).cpu().numpy())
        parts["receiver"].append(batch.nodes[:, receivers].flatten(0, 1).cpu().numpy())
        parts["sender"].append(batch.nodes[:, senders].flatten(0, 1).cpu().numpy())
    arrays = {k: np.concatenate(v).astype(np.float64) if v else None for k, v in parts.items()}
    at = NodeLayout(data.dim)
    r, s = arrays["receiver"], arrays["sender"]
    force = None if law is None else law.force(r[:, at.position] - s[:, at.position], r[:, at.mass], s[:, at.mass],
                                               r[:, at.charge], s[:, at.charge], data.meta.softening)
    return MessageSample(arrays["messages"], arrays["kl"], r, s, force, data.dim)


def linear_fit_r2(y: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Least-squares fit ``y ≈ x @ a + b`` (:func:`eqlgn.fitting.linear_fit`); returns (R^2, ``[a..., b]``)."""
    coef, r2 = linear_fit(y, x)
    return r2[0], coef[:, 0]


@dataclass
class MessageAnalysis:
    """Summary of the messages of a trained GN.

    Attributes:
        components: indices of the ``D`` most significant components, most significant first.
        ranking: indices of up to 15 top components (for the sparsity figure).
        spread: std (or mean KL for ``kl``) of the ``ranking`` components.
        r2_force: R^2 of each significant component fitted linearly to ``F``.
        r2_force_over_m1: the same with ``F / m1`` as target.
        target: ``"F"`` or ``"F/m1"``, whichever fits better on average.
        r2: R^2 per component against ``target``.
        sparsity_ratio: smallest top-D spread over the (D+1)-th largest spread.
        criterion: ``"std"`` or ``"kl"``.
    """

    components: list[int]
    ranking: list[int]
    spread: list[float]
    r2_force: list[float]
    r2_force_over_m1: list[float]
    target: str
    r2: list[float]
    sparsity_ratio: float
    criterion: str

    def to_dict(self) -> dict:
        return asdict(self)

    def report(self) -> str:
        """Human-readable lines: R^2 per component and the sparsity ratio."""
        r2 = ", ".join(f"{c}: {v:.4f}" for c, v in zip(self.components, self.r2))
        return (f"significant components (by {self.criterion}): {self.components}\n"
                f"linear fit to {self.target}: R^2 = {r2}\n"
                f"sparsity ratio (top-{len(self.components)} {self.criterion} / next): "
                f"{self.sparsity_ratio:.3g}")


def analyze_messages(sample: MessageSample, dim: int | None = None) -> MessageAnalysis:
    """Rank components, fit the top ``D`` to the true force and report sparsity."""
    dim = dim or sample.dim
    if sample.kl is not None:
        score, criterion = sample.kl.mean(axis=0), "kl"
    else:
        score, criterion = sample.messages.std(axis=0), "std"
    order = np.argsort(-score)
    components = [int(i) for i in order[:dim]]
    ratio = float(score[order[dim - 1]] / max(score[order[dim]], 1e-30)) if len(order) > dim else np.inf
    if sample.force is None:  # unknown law: no force to compare with
        r2_f = r2_m = r2 = [float("nan")] * len(components)
        target = "unknown"
    else:
        over_m1 = sample.force / sample.m1[:, None]
        r2_f = [linear_fit_r2(sample.messages[:, c], sample.force)[0] for c in components]
        r2_m = [linear_fit_r2(sample.messages[:, c], over_m1)[0] for c in components]
        target, r2 = ("F", r2_f) if np.mean(r2_f) >= np.mean(r2_m) else ("F/m1", r2_m)
    return MessageAnalysis(components, [int(i) for i in order[:15]], [float(score[i]) for i in order[:15]],
                           r2_f, r2_m, target, r2, ratio, criterion)


def analyze(model: GN, data: ParticleDataset, max_graphs: int = 5000) -> tuple[MessageAnalysis, MessageSample]:
    """Collect messages of ``model`` on ``data`` and analyse them (see :func:`analyze_messages`)."""
    sample = collect_messages(model, data, max_graphs)
    return analyze_messages(sample), sample
