"""Training on positions: the rollout loss, which fits observed positions instead of differentiated accelerations.

Accelerations estimated from positions amplify position noise by ~1/dt² (central differences)
or trade it for a bias (a smoothing window, :mod:`eqlgn.derivatives`). The rollout loss never
differentiates the data. In a **window** of ``W`` consecutive, evenly spaced snapshots of one
simulation, the GN predicts the acceleration ``a_j`` of every particle at the ``W - 2`` inner
snapshots (from the observed positions: teacher forcing, so a rollout cannot run away), and
these are integrated twice by the Störmer–Verlet rule the simulator uses::

    x_k = x_0 + k (x_1 - x_0) + dt² Σ_{j=1}^{k-1} (k - j) a_j        k = 0 .. W-1

The integrated trajectory is compared with the observed one after the **best initial position
and velocity** are chosen by least squares: the part of ``x_k`` that is affine in ``k`` is
projected out (``P``, the projector onto what no line ``c0 + c1 k`` explains). The residual,
divided by ``dt²``, is in acceleration units::

    error = | P x / dt²  -  P L a |  /  c        L[k, j] = (k - j) for 1 <= j < k

``P x / dt²`` is fixed by the data (computed once, in float64, per window: the **projected
target**); ``c`` is the mean of ``|P L 1|``, so a constant acceleration error ``δ`` costs ``δ``.
With ``W = 3`` this is exactly the central-difference loss; longer windows compare the predicted
curvature with the observed path over ``W`` snapshots, so white position noise of size ``σ``
weighs about ``σ / (dt² W^2.5)`` instead of ``σ / dt²`` — with no smoothing bias, because the
curvature is the model's own (docs/method.md, "Training on positions").

What the rest of training sees: a :class:`WindowBatch` has the same two tensors as a
:class:`~eqlgn.batching.GraphBatch` (``inputs``, ``targets``) and its own ``error``, so the
objective, the EQL's phases, several starts (:mod:`eqlgn.multistart`) and checkpoints are
unchanged. Validation, start selection and the test loss stay acceleration MAEs against the
dataset's (estimated) accelerations; the message penalties are those of the GN's output.
Windows cross no gap: snapshots removed by pruning or a split, or an uneven time step, end a
window; a simulation shorter than ``W`` snapshots gives none.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from .data import ParticleDataset
from .errors import ConfigError, DatasetError

MIN_WINDOW = 3


@dataclass
class WindowBatch:
    """Windows of snapshots as tensors on one device (see module docstring).

    Attributes:
        nodes: ``[B, W - 2, n, F]`` node features of each window's inner snapshots (observed positions).
        projected: ``[B, W, n, D]`` each window's projected target ``P x / dt²``.
    """

    nodes: torch.Tensor
    projected: torch.Tensor

    @property
    def graphs_per_item(self) -> int:
        """Graphs the GN runs on per window (:func:`~eqlgn.batching.iterate_batches` sizes batches in graphs)."""
        return self.nodes.shape[1]

    @property
    def inputs(self) -> torch.Tensor:
        """The graphs the GN runs on, ``[B (W - 2), n, F]``."""
        return self.nodes.flatten(0, 1)

    @property
    def targets(self) -> torch.Tensor:
        return self.projected

    def error(self, predicted: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``[B W, n, D]`` the rollout residual in acceleration units (module docstring), from the predicted
        accelerations ``[B (W - 2), n, D]`` of the inner snapshots; tensors only (it runs under ``vmap``)."""
        window = targets.shape[1]
        operator, scale = _operator(window, predicted.dtype, predicted.device)
        inner = predicted.unflatten(0, (-1, window - 2))
        integrated = torch.einsum("kj,bjnd->bknd", operator, inner)
        return ((targets - integrated).abs() / scale).flatten(0, 1)


@functools.lru_cache(maxsize=8)
def _projector(window: int) -> np.ndarray:
    """``P``: removes the part of a length-``window`` sequence that is affine in its index (float64)."""
    basis = np.stack([np.ones(window), np.arange(window, dtype=float)], axis=1)
    return np.eye(window) - basis @ np.linalg.pinv(basis)


@functools.lru_cache(maxsize=8)
def _integrator(window: int) -> np.ndarray:
    """``L[k, j] = k - j`` for the inner snapshots ``1 <= j < k`` (columns: ``j = 1 .. window - 2``)."""
    k, j = np.meshgrid(np.arange(window), np.arange(1, window - 1), indexing="ij")
    return np.where(j < k, k - j, 0).astype(float)


@functools.lru_cache(maxsize=16)
def _operator(window: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, float]:
    """``P L`` as a tensor and ``c``, the mean ``|P L 1|`` (a unit constant acceleration error costs 1)."""
    operator = _projector(window) @ _integrator(window)
    scale = float(np.abs(operator.sum(axis=1)).mean())
    return torch.as_tensor(operator, dtype=dtype, device=device), scale


def check_window(window: int) -> None:
    """Refuse a window too short to hold a curvature (``W >= 3``)."""
    if window < MIN_WINDOW:
        raise ConfigError(f"a rollout window needs at least {MIN_WINDOW} snapshots, got {window}; use --rollout 0 "
                          "to fit accelerations instead")


def runs(data: ParticleDataset) -> list[tuple[np.ndarray, float]]:
    """Every run of consecutive, evenly spaced snapshots of one simulation: ``(rows in time order, step)``."""
    found = []
    for sim in np.unique(data.sim_ids):
        rows = np.flatnonzero(data.sim_ids == sim)
        rows = rows[np.argsort(data.times[rows], kind="stable")]
        if len(rows) < 2:
            continue
        steps = np.diff(data.times[rows].astype(np.float64))
        step = float(np.median(steps))
        if step <= 0:
            continue
        breaks = np.flatnonzero(np.abs(steps - step) > 1e-3 * step) + 1  # a gap, a repeat or an uneven step
        found.extend((part, step) for part in np.split(rows, breaks) if len(part) >= 2)
    return found


def window_starts(length: int, window: int) -> range:
    """Where windows begin in a run of ``length`` snapshots: half-overlapping inner parts, the last flush with
    the end, so every inner snapshot is inside a window's inner part."""
    if length < window:
        return range(0)
    stride = max(1, (window - 2) // 2)
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts  # type: ignore[return-value]


def windows(data: ParticleDataset, window: int, device: str | torch.device = "cpu") -> WindowBatch:
    """The windows of ``data`` (module docstring) as one :class:`WindowBatch` on ``device``."""
    check_window(window)
    projector = _projector(window)
    nodes, projected = [], []
    positions = data.positions.astype(np.float64)
    for rows, step in runs(data):
        for start in window_starts(len(rows), window):
            picked = rows[start:start + window]
            nodes.append(data.nodes[picked[1:-1]])
            projected.append(np.einsum("kj,jnd->knd", projector, positions[picked]) / step**2)
    if not nodes:
        longest = max((len(rows) for rows, _ in runs(data)), default=0)
        raise DatasetError(f"no window of {window} consecutive evenly spaced snapshots in the data (longest run: "
                           f"{longest}); use a shorter --rollout window, or --rollout 0 to fit accelerations")
    return WindowBatch(torch.as_tensor(np.stack(nodes), device=device),
                       torch.as_tensor(np.stack(projected).astype(np.float32), device=device))
