"""Complete directed graphs and sum aggregation of edge messages onto receivers.

Index convention (docs/architecture.md): an edge ``(i, j)`` carries a message from sender ``j`` to
receiver ``i``; particle 1 in a law's formula is the receiver. Edges of the complete
graph over ``n`` particles are listed **receiver-major** (all senders of receiver 0,
then of receiver 1, ...), ``E = n (n - 1)`` of them, which is what lets the dense path
sum messages with one reshape.

Aggregation methods (all give the same sums; the tests check them against a Python loop):

* ``dense``          reshape ``[B, E, M] -> [B, n, n-1, M]`` and sum (complete graphs only).
* ``index_add``      native ``Tensor.index_add`` over flattened edges (default sparse path).
* ``scatter_reduce`` native ``Tensor.scatter_reduce(reduce="sum")``.
* ``torch_scatter``  ``torch_scatter.scatter_add`` (optional extra ``eqlgn[scatter]``).
"""

from __future__ import annotations

import functools

import torch

from .errors import require, unknown_name

AGGREGATIONS = ("dense", "index_add", "scatter_reduce", "torch_scatter")


@functools.lru_cache(maxsize=64)
def _complete_edges_cpu(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    receivers = torch.arange(n).repeat_interleave(n - 1)
    offsets = torch.arange(n - 1).repeat(n)
    senders = offsets + (offsets >= receivers).long()  # skip the self-edge
    return receivers, senders


def complete_edges(n: int, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Receiver and sender indices ``[E]`` of the complete directed graph, receiver-major."""
    if n < 2:
        raise ValueError(f"a graph needs at least 2 nodes, got {n}")
    receivers, senders = _complete_edges_cpu(n)
    return receivers.to(device), senders.to(device)


def segment_sum(messages: torch.Tensor, index: torch.Tensor, num_nodes: int,
                method: str = "index_add") -> torch.Tensor:
    """Sum rows of ``messages [E, M]`` into ``[num_nodes, M]`` by ``index [E]`` (sparse path)."""
    out = messages.new_zeros(num_nodes, messages.shape[-1])
    if method == "index_add":
        return out.index_add(0, index, messages)
    if method == "scatter_reduce":
        return out.scatter_reduce(0, index[:, None].expand_as(messages), messages, reduce="sum")
    if method == "torch_scatter":
        torch_scatter = require("torch_scatter", "scatter", "aggregation='torch_scatter'")
        return torch_scatter.scatter_add(messages, index, dim=0, dim_size=num_nodes)
    raise unknown_name("sparse aggregation", method, AGGREGATIONS[1:])


def aggregate(messages: torch.Tensor, receivers: torch.Tensor, n: int,
              method: str = "dense") -> torch.Tensor:
    """Sum messages of a batch of complete graphs onto their receivers.

    Args:
        messages: ``[B, E, M]`` messages, edges in :func:`complete_edges` order.
        receivers: ``[E]`` receiver index of each edge (0..n-1).
        n: nodes per graph.
        method: one of :data:`AGGREGATIONS`.

    Returns:
        ``[B, n, M]`` summed messages per receiver.
    """
    batch, edges, width = messages.shape
    if method == "dense":
        return messages.reshape(batch, n, edges // n, width).sum(dim=2)
    if method not in AGGREGATIONS:
        raise unknown_name("aggregation", method, AGGREGATIONS)
    offsets = torch.arange(batch, device=messages.device)[:, None] * n
    index = (receivers[None, :] + offsets).reshape(-1)
    summed = segment_sum(messages.reshape(-1, width), index, batch * n, method)
    return summed.reshape(batch, n, width)
