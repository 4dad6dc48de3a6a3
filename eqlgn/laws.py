"""Force-law registry: name -> pairwise potential (JAX), true pairwise force (NumPy).

Conventions (docs/architecture.md): particle 1 receives, particle 2 sends, ``dx = x1 - x2``,
``r = |x1 - x2|``. The potentials are those of Cranmer et al. 2020:

=========  ==========================  =========================================
name       potential U(r)              force on 1 from 2, F = -dU/dx1
=========  ==========================  =========================================
spring     (r - 1)^2                   -2 (r - 1) dx / r
r1         m1 m2 log r                 -m1 m2 dx / r^2
r2         -m1 m2 / r                  -m1 m2 dx / r^3
charge     q1 q2 / r                   +q1 q2 dx / r^3
=========  ==========================  =========================================

The singular laws (r1, r2, charge) are softened in the simulator as in the seeds:
``r`` in the potential is replaced by ``r + softening`` (default 0.01) while the
direction stays ``dx / r``. The spring is never softened.

The JAX potential drives the simulator through ``jax.grad``; the NumPy force is
written out by hand, so the two are independent and the tests cross-check them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import unknown_name


@dataclass(frozen=True)
class ForceLaw:
    """One pairwise force law.

    Attributes:
        name: registry key.
        formula: the potential, human readable.
        force_formula: the force on particle 1 from particle 2, human readable.
        softened: whether ``r`` is replaced by ``r + softening`` in the potential.
        default_dt: integration step used by the original study for this law.
        potential: ``(r, m1, m2, q1, q2) -> U`` written with ``jax.numpy``; ``r`` is
            already softened when ``softened`` is true.
        dpotential_dr: ``(r, m1, m2, q1, q2) -> dU/dr`` in NumPy (hand-derived).
        message_form: what a GN message should be proportional to (up to a linear map).
        dpotential_dr_scale: ``(r, m1, m2, q1, q2) -> S >= |dU/dr|``, the sum of the
            magnitudes of the additive terms of ``dU/dr`` (``2r + 2`` for the spring's
            ``2r - 2``). It is the size the judge measures errors against: it equals
            ``|dU/dr|`` for one-term laws and does not vanish where terms cancel (the
            spring at its rest length).
    """

    name: str
    formula: str
    force_formula: str
    softened: bool
    default_dt: float
    potential: Callable
    dpotential_dr: Callable
    message_form: str
    dpotential_dr_scale: Callable

    def force(
        self,
        dx: np.ndarray,
        m1: np.ndarray,
        m2: np.ndarray,
        q1: np.ndarray,
        q2: np.ndarray,
        softening: float = 0.01,
    ) -> np.ndarray:
        """True force on particle 1 from particle 2 (NumPy, float64).

        Args:
            dx: ``[..., D]`` displacement ``x1 - x2``.
            m1, m2, q1, q2: ``[...]`` masses and charges of receiver (1) and sender (2).
            softening: added to ``r`` inside the potential for softened laws.

        Returns:
            ``[..., D]`` force vector ``-dU/dx1``.
        """
        dx = np.asarray(dx, dtype=np.float64)
        r = np.linalg.norm(dx, axis=-1)
        r_eff = r + softening if self.softened else r
        args = (np.asarray(a, dtype=np.float64) for a in (m1, m2, q1, q2))
        dudr = self.dpotential_dr(r_eff, *args)
        return -(dudr / r)[..., None] * dx

    def force_scale(self, r: np.ndarray, m1: np.ndarray, m2: np.ndarray, q1: np.ndarray, q2: np.ndarray,
                    softening: float = 0.01) -> np.ndarray:
        """``[...]`` size of the force that errors are measured against (see ``dpotential_dr_scale``)."""
        r = np.asarray(r, dtype=np.float64)
        r_eff = r + softening if self.softened else r
        args = (np.asarray(a, dtype=np.float64) for a in (m1, m2, q1, q2))
        return np.abs(self.dpotential_dr_scale(r_eff, *args))


def _spring_u(r, m1, m2, q1, q2):
    return (r - 1.0) ** 2


def _r1_u(r, m1, m2, q1, q2):
    import jax.numpy as jnp

    return m1 * m2 * jnp.log(r)


def _r2_u(r, m1, m2, q1, q2):
    return -m1 * m2 / r


def _charge_u(r, m1, m2, q1, q2):
    return q1 * q2 / r


LAWS: dict[str, ForceLaw] = {
    "spring": ForceLaw(
        name="spring",
        formula="U = (r - 1)^2",
        force_formula="F = -2 (r - 1) dx / r",
        softened=False,
        default_dt=1e-2,
        potential=_spring_u,
        dpotential_dr=lambda r, m1, m2, q1, q2: 2.0 * (r - 1.0),
        message_form="(r - 1) dx / r",
        dpotential_dr_scale=lambda r, m1, m2, q1, q2: 2.0 * np.abs(r) + 2.0,
    ),
    "r1": ForceLaw(
        name="r1",
        formula="U = m1 m2 log r",
        force_formula="F = -m1 m2 dx / r^2",
        softened=True,
        default_dt=5e-3,
        potential=_r1_u,
        dpotential_dr=lambda r, m1, m2, q1, q2: m1 * m2 / r,
        message_form="m2 dx / r^2 (times m1, or divided by nothing)",
        dpotential_dr_scale=lambda r, m1, m2, q1, q2: m1 * m2 / r,
    ),
    "r2": ForceLaw(
        name="r2",
        formula="U = -m1 m2 / r",
        force_formula="F = -m1 m2 dx / r^3",
        softened=True,
        default_dt=1e-3,
        potential=_r2_u,
        dpotential_dr=lambda r, m1, m2, q1, q2: m1 * m2 / r**2,
        message_form="m2 dx / r^3 (times m1, or divided by nothing)",
        dpotential_dr_scale=lambda r, m1, m2, q1, q2: m1 * m2 / r**2,
    ),
    "charge": ForceLaw(
        name="charge",
        formula="U = q1 q2 / r",
        force_formula="F = q1 q2 dx / r^3",
        softened=True,
        default_dt=1e-3,
        potential=_charge_u,
        dpotential_dr=lambda r, m1, m2, q1, q2: -q1 * q2 / r**2,
        message_form="q1 q2 dx / r^3 (or divided by m1)",
        dpotential_dr_scale=lambda r, m1, m2, q1, q2: q1 * q2 / r**2,
    ),
}


def get_law(name: str) -> ForceLaw:
    """Look up a force law by name.

    Raises:
        ConfigError: for an unknown name, listing the valid ones and the closest.
    """
    try:
        return LAWS[name]
    except (KeyError, TypeError):
        raise unknown_name("force law", name, LAWS) from None
