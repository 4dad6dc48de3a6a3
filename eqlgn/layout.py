"""The node-feature layout: the one place that says where position, velocity, charge and mass sit.

Every node of every graph is a row ``[x (D), v (D), q, m]``: positions, velocities,
charge, mass, for ``D`` = 2 or 3 spatial dimensions. NumPy and torch code alike index
node features through :class:`NodeLayout` (slices and column numbers work on both).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AXES = ("x", "y", "z")


@dataclass(frozen=True)
class NodeLayout:
    """Columns of the node features for ``dim`` spatial dimensions.

    Attributes:
        dim: spatial dimension ``D``.
    """

    dim: int

    @property
    def position(self) -> slice:
        """Columns ``0 .. D-1``."""
        return slice(0, self.dim)

    @property
    def velocity(self) -> slice:
        """Columns ``D .. 2D-1``."""
        return slice(self.dim, 2 * self.dim)

    @property
    def charge(self) -> int:
        """Column ``2D``."""
        return 2 * self.dim

    @property
    def mass(self) -> int:
        """Column ``2D + 1``."""
        return 2 * self.dim + 1

    @property
    def width(self) -> int:
        """Number of node features, ``2D + 2``."""
        return 2 * self.dim + 2

    @property
    def axes(self) -> tuple[str, ...]:
        """Axis names ``x, y[, z]``."""
        return AXES[: self.dim]

    def names(self) -> list[str]:
        """Column names: ``x, y[, z], vx, vy[, vz], q, m``."""
        return list(self.axes) + [f"v{a}" for a in self.axes] + ["q", "m"]

    def assemble(self, positions: np.ndarray, velocities: np.ndarray, charges: np.ndarray,
                 masses: np.ndarray) -> np.ndarray:
        """Node features ``[..., 2D+2]`` from positions and velocities ``[..., D]`` and charges and
        masses ``[...]`` (broadcast to the positions' leading shape)."""
        lead = np.shape(positions)[:-1]
        columns = [positions, velocities, np.broadcast_to(charges, lead)[..., None],
                   np.broadcast_to(masses, lead)[..., None]]
        return np.concatenate(columns, axis=-1)

    def column(self, name: str) -> int:
        """The column of one feature name (``x``, ``vy``, ``q``, ``m``, ...)."""
        names = self.names()
        if name not in names:
            raise ValueError(f"unknown node feature {name!r} in {self.dim}D; one of {names}")
        return names.index(name)
