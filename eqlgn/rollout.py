"""Training on positions: the rollout loss, which fits observed positions instead of differentiated accelerations.

Accelerations estimated from positions amplify position noise by ~1/dt² (central differences)
or trade it for a bias (a smoothing window, :mod:`eqlgn.derivatives`): the window smooths the
true acceleration, and the network is asked to reproduce the smoothed one. The rollout loss
smooths **both sides alike**. In a **segment** of consecutive, evenly spaced snapshots of one
simulation, the GN predicts the acceleration ``a_j`` of every particle at the inner snapshots
(from the observed positions: teacher forcing, so a rollout cannot run away), and these are
integrated twice by the Störmer–Verlet rule the simulator uses::

    x_k = x_0 + k (x_1 - x_0) + dt² Σ_{j=1}^{k-1} (k - j) a_j

Both the observed and the integrated trajectory then go through the same linear filter ``A``, the
Savitzky–Golay second derivative of width ``W`` (odd) at every centre of the segment. ``A``
annihilates the part affine in ``k`` — the unknown initial position and velocity drop out — so
the residual, in acceleration units, is::

    error = | A x / dt²  -  A L a |        L[k, j] = (k - j) for 1 <= j < k

``A x / dt²`` is the observed positions' smoothed second derivative (fixed by the data, computed
once in float64: the **target**); ``A L a`` is the **same smoothing applied to the predicted
accelerations** — a bump of width ``W`` that sums to one — so a right law leaves no smoothing bias
however wide the window, while white position noise of size ``σ`` weighs about
``σ / (dt² W^2.5)``. ``W = 3`` is exactly the central-difference loss. A segment holds
``2 W + 1`` snapshots (``2 W - 1`` GN evaluations serve ``W + 2`` centres); segments start every
``W + 2`` snapshots, so every centre of a run is a target once.

What the rest of training sees: a :class:`WindowBatch` has the same two tensors as a
:class:`~eqlgn.batching.GraphBatch` (``inputs``, ``targets``) and its own ``error``, so the
objective, the EQL's phases, several starts (:mod:`eqlgn.multistart`) and checkpoints are
unchanged. Validation, start selection and the test loss stay acceleration MAEs against the
dataset's (estimated) accelerations; the message penalties are those of the GN's output.
Segments cross no gap: snapshots removed by pruning or a split, or an uneven time step, end a
run; a run shorter than a segment gives none.
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
    """Segments of snapshots as tensors on one device (see module docstring).

    Attributes:
        nodes: ``[B, 2 W - 1, n, F]`` node features of each segment's inner snapshots (observed positions).
        smoothed: ``[B, W + 2, n, D]`` each segment's target ``A x / dt²`` at its centres.
    """

    nodes: torch.Tensor
    smoothed: torch.Tensor

    @property
    def graphs_per_item(self) -> int:
        """Graphs the GN runs on per segment (:func:`~eqlgn.batching.iterate_batches` sizes batches in graphs)."""
        return self.nodes.shape[1]

    @property
    def inputs(self) -> torch.Tensor:
        """The graphs the GN runs on, ``[B (2 W - 1), n, F]``."""
        return self.nodes.flatten(0, 1)

    @property
    def targets(self) -> torch.Tensor:
        return self.smoothed

    def error(self, predicted: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``[B (W + 2), n, D]`` the residual in acceleration units (module docstring), from the predicted
        accelerations ``[B (2 W - 1), n, D]`` of the inner snapshots; tensors only (it runs under ``vmap``)."""
        window = targets.shape[1] - 2
        operator = _operator(window, predicted.dtype, predicted.device)
        inner = predicted.unflatten(0, (-1, operator.shape[1]))
        return (targets - torch.einsum("kj,bjnd->bknd", operator, inner)).abs().flatten(0, 1)


def segment_length(window: int) -> int:
    """Snapshots per segment for a filter of width ``window``."""
    return 2 * window + 1


@functools.lru_cache(maxsize=8)
def _filter(window: int) -> np.ndarray:
    """``A``: the Savitzky–Golay second derivative of width ``window`` at every centre of a segment (float64)."""
    from scipy.signal import savgol_coeffs

    length, half = segment_length(window), window // 2
    coefficients = savgol_coeffs(window, 2, deriv=2, use="dot")
    rows = np.zeros((length - 2 * half, length))
    for row in range(len(rows)):
        rows[row, row:row + window] = coefficients
    return rows


@functools.lru_cache(maxsize=8)
def _integrator(length: int) -> np.ndarray:
    """``L[k, j] = k - j`` for the inner snapshots ``1 <= j < k`` (columns: ``j = 1 .. length - 2``)."""
    k, j = np.meshgrid(np.arange(length), np.arange(1, length - 1), indexing="ij")
    return np.where(j < k, k - j, 0).astype(float)


@functools.lru_cache(maxsize=16)
def _operator(window: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``A L``: the filter applied to the twice-integrated inner accelerations (each row sums to one)."""
    operator = _filter(window) @ _integrator(segment_length(window))
    return torch.as_tensor(operator, dtype=dtype, device=device)


def check_window(window: int) -> None:
    """Refuse a filter that is even or too short to hold a curvature (odd ``W >= 3``)."""
    if window < MIN_WINDOW or window % 2 == 0:
        raise ConfigError(f"a rollout window is an odd number of snapshots >= {MIN_WINDOW}, got {window}; use "
                          "--rollout 0 to fit accelerations instead")


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


def segment_starts(length: int, window: int) -> list[int]:
    """Where segments begin in a run of ``length`` snapshots: each centre a target once, the last segment flush
    with the end (it may repeat a few centres)."""
    size = segment_length(window)
    if length < size:
        return []
    stride = size - 2 * (window // 2)
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def windows(data: ParticleDataset, window: int, device: str | torch.device = "cpu") -> WindowBatch:
    """The segments of ``data`` (module docstring) as one :class:`WindowBatch` on ``device``."""
    check_window(window)
    smoothing, size = _filter(window), segment_length(window)
    nodes, smoothed = [], []
    positions = data.positions.astype(np.float64)
    for rows, step in runs(data):
        for start in segment_starts(len(rows), window):
            picked = rows[start:start + size]
            nodes.append(data.nodes[picked[1:-1]])
            smoothed.append(np.einsum("kj,jnd->knd", smoothing, positions[picked]) / step**2)
    if not nodes:
        longest = max((len(rows) for rows, _ in runs(data)), default=0)
        raise DatasetError(f"no segment of {size} consecutive evenly spaced snapshots (window {window}) in the data "
                           f"(longest run: {longest}); use a shorter --rollout window, or --rollout 0 to fit "
                           "accelerations")
    return WindowBatch(torch.as_tensor(np.stack(nodes), device=device),
                       torch.as_tensor(np.stack(smoothed).astype(np.float32), device=device))
