"""Datasets as torch tensors and batches of whole graphs (the NumPy contract is :mod:`eqlgn.data`).

* :func:`to_tensors` — a dataset as one :class:`GraphBatch` on a device (moved once);
* :func:`iterate_batches` — seeded batches of graphs from those tensors, with the random
  translation augmentation of Cranmer et al.;
* :func:`batches` — both at once;
* :func:`epoch_seed` — the seed of a training epoch's order and augmentation;
* :func:`sample_batches` — a seeded random subset of up to ``max_graphs`` graphs, in
  order, batched (what message collection and node-model fitting read).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np
import torch

from .data import ParticleDataset
from .errors import DatasetError
from .layout import NodeLayout


@dataclass
class GraphBatch:
    """A batch of ``B`` complete graphs of the same size, as tensors on one device.

    Attributes:
        nodes: ``[B, n, F]`` node features (order: :class:`eqlgn.layout.NodeLayout`).
        accelerations: ``[B, n, D]`` targets.
    """

    nodes: torch.Tensor
    accelerations: torch.Tensor

    graphs_per_item = 1  # one graph per item (a window of snapshots, eqlgn.rollout, holds several)

    @property
    def inputs(self) -> torch.Tensor:
        """The graphs the GN runs on."""
        return self.nodes

    @property
    def targets(self) -> torch.Tensor:
        return self.accelerations

    @staticmethod
    def error(predicted: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Absolute acceleration error per particle and component (tensors only: it runs under ``vmap``)."""
        return (predicted - targets).abs()


def to_tensors(data: ParticleDataset, device: str | torch.device = "cpu") -> GraphBatch:
    """The whole dataset as one :class:`GraphBatch` on ``device`` (float32)."""
    return GraphBatch(torch.as_tensor(data.nodes, device=device), torch.as_tensor(data.accelerations, device=device))


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of a training epoch's batch order and augmentation (a run's, and each of its starts')."""
    return seed * 100003 + epoch


def iterate_batches(
    data,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    augment: float = 0.0,
    dim: int | None = None,
) -> Iterator[GraphBatch]:
    """Yield batches of graphs from tensors that already sit on their device.

    Args:
        data: all graphs, ``nodes [S, n, F]`` and ``accelerations [S, n, D]`` (a :class:`GraphBatch`), or
            another batch of the same make whose items hold ``graphs_per_item`` graphs each (windows of
            snapshots, :class:`eqlgn.rollout.WindowBatch`); every field is indexed along its first axis.
        batch_size: graphs per batch (the last batch may be smaller); ``batch_size // graphs_per_item``
            items (at least one) for batches of several graphs per item.
        shuffle: draw a random order (``torch.Generator`` seeded with ``seed``).
        seed: seed for the order and the augmentation, so epochs are reproducible.
        augment: standard deviation of one random translation per item (graph or window) added to
            the positions (Cranmer et al. add such a shift); 0 disables it.
        dim: spatial dimension (defaults to the acceleration width).
    """
    if batch_size <= 0:
        raise DatasetError(f"batch_size must be positive, got {batch_size}")
    count = data.nodes.shape[0]
    dim = dim or data.targets.shape[-1]
    batch_size = max(1, batch_size // data.graphs_per_item)
    names = [f.name for f in fields(data)]
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
    order = order.to(data.nodes.device)
    for start in range(0, count, batch_size):
        index = order[start : start + batch_size]
        items = {name: getattr(data, name)[index] for name in names}
        if augment > 0:
            shift = torch.randn(len(index), 1, dim, generator=generator) * augment
            nodes = items["nodes"].clone()
            nodes[..., NodeLayout(dim).position] += shift.view(len(index), *[1] * (nodes.dim() - 2), dim).to(
                nodes.device)
            items["nodes"] = nodes
        yield type(data)(**items)


def batches(data: ParticleDataset, batch_size: int, device: str | torch.device = "cpu", shuffle: bool = True,
            seed: int = 0, augment: float = 0.0) -> Iterator[GraphBatch]:
    """Iterate over a dataset in batches of whole graphs on ``device`` (moved once; see :func:`iterate_batches`)."""
    return iterate_batches(to_tensors(data, device), batch_size, shuffle, seed, augment, data.dim)


def sample_batches(data: ParticleDataset, max_graphs: int, seed: int, device: str | torch.device,
                   batch_size: int = 2048) -> Iterator[GraphBatch]:
    """Batches (in order) of a random subset of up to ``max_graphs`` graphs chosen with ``seed``."""
    pick = np.random.default_rng(seed).choice(len(data), size=min(max_graphs, len(data)), replace=False)
    return iterate_batches(to_tensors(data.subset(np.sort(pick)), device), batch_size, shuffle=False)
