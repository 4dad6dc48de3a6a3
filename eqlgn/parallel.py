"""Data-parallel training on torch.distributed (DDP), for datasets or sweeps that outgrow one device.

Launch any training entry point with ``torchrun``::

    torchrun --nproc_per_node 2 -m eqlgn train --law spring --steps 4000 --out runs/ddp

Every process holds the whole dataset and draws the same global batch (same seed);
process ``r`` of ``W`` trains on rows ``r, r + W, ...`` of it and DDP averages the
gradients. The loss is a mean over graphs and the slices are equally large (the batch
size must be a multiple of ``W``), so a step equals a single-process step on the global
batch, up to the order of floating-point sums (tested with 2 CPU processes on gloo).
The last batch of an epoch may hold any number of graphs: it is cut to a multiple of
``W`` (at most ``W - 1`` graphs, a different few each epoch since the order is reshuffled,
wait for the next epoch) and skipped by every process alike when fewer than ``W``
remain, so no process ever gets an empty slice or waits alone in the gradient all-reduce.
Backend: NCCL on CUDA (one GPU per process, ``LOCAL_RANK``), gloo on CPU. Only rank 0
writes checkpoints, logs and run files.
"""

from __future__ import annotations

import os

import torch

from .errors import ConfigError


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_writer() -> bool:
    """Whether this process writes files (rank 0, or the only process)."""
    return rank() == 0


def setup(device: torch.device) -> tuple[int, int, torch.device]:
    """Join the process group when launched by torchrun; returns ``(rank, world size, device)``."""
    if not launched():
        return 0, 1, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return torch.distributed.get_rank(), torch.distributed.get_world_size(), device


def check_batch(batch_size: int, world: int) -> None:
    """Refuse a global batch that does not split evenly over the processes."""
    if batch_size % world:
        raise ConfigError(f"batch_size {batch_size} does not split over {world} processes; use a multiple of {world}")


def check_data(n_graphs: int, world: int) -> None:
    """Refuse a training set with fewer graphs than processes (no process could take a step)."""
    if n_graphs < world:
        raise ConfigError(f"a training set of {n_graphs} graph(s) cannot be shared by {world} processes; "
                          f"use at least {world} graphs or fewer processes")


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model in DistributedDataParallel (gradients averaged across processes)."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard(batch, rank: int, world: int):
    """This process's slice ``rank::world`` of a global :class:`~eqlgn.batching.GraphBatch` (or windows of
    snapshots, :class:`~eqlgn.rollout.WindowBatch`).

    The batch is first cut to a multiple of ``world`` graphs so the slices are equally
    large; ``None`` when it holds fewer than ``world`` graphs (every process then skips it).
    """
    import dataclasses

    usable = batch.nodes.shape[0] // world * world
    if usable == 0:
        return None
    return type(batch)(**{f.name: getattr(batch, f.name)[:usable][rank::world] for f in dataclasses.fields(batch)})
