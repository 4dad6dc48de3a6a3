"""Is a recovered vector of expressions the true force law, up to a linear map?

Criterion (DESIGN.md): there is a matrix ``A`` and a vector ``b`` with
``phi ≈ A · F / m1^k + b`` (``k`` = 0 or 1) on states the judge samples itself,
**wider than the training distribution**, with R² ≥ 0.98 for every component, and ``A``
well conditioned: on standardised variables, smallest / largest singular value > 1e-2
(so ``D`` copies of one force component do not pass).

Judge states: separations ``r`` log-uniform on [0.2, 6] (training pairs are Rayleigh
with σ = √2: 98 % inside), uniform directions, masses log-uniform on [e^-3, e^3]
(training: exp(N(0, 1))), charges from {-2, -1, 1, 2} (training: ±1), positions and
velocities N(0, 3²). The force is the law as written in the symbols, unsoftened.

:func:`judge_network` applies the same test to a trained GN's own messages on the same
states, so an equation's out-of-distribution R² can be set beside the network's it was
read from (does the equation extrapolate where the network does not?).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import sympy

from .analysis import linear_fit_r2
from .equations import as_expression, complexity, evaluate
from .errors import ConfigError
from .laws import get_law

R2_THRESHOLD = 0.98
CONDITION_THRESHOLD = 1e-2


@dataclass
class Verdict:
    """The judge's answer.

    Attributes:
        passed: R² ≥ 0.98 for every component and A well conditioned.
        ood_r2: out-of-distribution R² per component (for the better ``k``).
        k: power of ``1/m1`` of the target (0: F, 1: F/m1).
        condition: smallest / largest singular value of the standardised A.
        complexity: total expression-tree size of the components (``None`` for a network).
        samples: number of judge states.
    """

    passed: bool
    ood_r2: list[float]
    k: int
    condition: float
    complexity: int | None
    samples: int

    def to_dict(self) -> dict:
        return asdict(self)


def sample_states(dim: int, samples: int = 20000, seed: int = 12345) -> dict[str, np.ndarray]:
    """Values of every vocabulary symbol for ``samples`` random pairs (see module docstring)."""
    rng = np.random.default_rng(seed)
    r = np.exp(rng.uniform(np.log(0.2), np.log(6.0), samples))
    direction = rng.standard_normal((samples, dim))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    dx = direction * r[:, None]
    x1 = rng.normal(scale=3.0, size=(samples, dim))
    x2 = x1 - dx
    values = {"r": r}
    for i, axis in enumerate("xyz"[:dim]):
        values[f"d{axis}"] = dx[:, i]
        values[f"{axis}1"], values[f"{axis}2"] = x1[:, i], x2[:, i]
        values[f"v{axis}1"] = rng.normal(scale=3.0, size=samples)
        values[f"v{axis}2"] = rng.normal(scale=3.0, size=samples)
    for node in (1, 2):
        values[f"m{node}"] = np.exp(rng.uniform(-3.0, 3.0, samples))
        values[f"q{node}"] = rng.choice([-2.0, -1.0, 1.0, 2.0], size=samples)
    return values


def judge(expressions: Sequence[sympy.Expr | str], law: str, dim: int, samples: int = 20000,
          seed: int = 12345) -> Verdict:
    """Judge recovered message expressions against the true law (see module docstring).

    Args:
        expressions: ``D`` expressions (SymPy or strings in the symbol vocabulary).
        law: force-law name.
        dim: spatial dimension.
        samples: judge states to draw.
        seed: seed of the judge's own sampling (never the training data).
    """
    exprs = [as_expression(e) for e in expressions]
    if len(exprs) != dim:
        raise ConfigError(f"the judge needs {dim} expressions (one per significant component), got {len(exprs)}")
    values = sample_states(dim, samples, seed)
    return _verdict(evaluate(exprs, values), values, law, dim, sum(complexity(e) for e in exprs))


def state_nodes(values: dict[str, np.ndarray], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Node features ``[N, 2D+2]`` (x, v, q, m) of the receiver (1) and sender (2) of each judge state."""
    def node(i: int) -> np.ndarray:
        columns = [values[f"{a}{i}"] for a in "xyz"[:dim]] + [values[f"v{a}{i}"] for a in "xyz"[:dim]]
        return np.stack(columns + [values[f"q{i}"], values[f"m{i}"]], axis=1)

    return node(1), node(2)


def judge_network(model, components: Sequence[int], law: str, dim: int, samples: int = 20000,
                  seed: int = 12345, batch: int = 65536) -> Verdict:
    """The judge's test on a trained GN's own messages (components ``components``) on its states.

    Args:
        model: a trained :class:`eqlgn.models.GN` (any edge model; the mean for ``kl``).
        components: the significant message components (``result.json`` →
            ``significant_components``), one per spatial dimension.
        law, dim, samples, seed: as for :func:`judge`.
    """
    import torch

    if len(components) != dim:
        raise ConfigError(f"the judge needs {dim} message components, got {len(components)}")
    values = sample_states(dim, samples, seed)
    receiver, sender = state_nodes(values, dim)
    device = next(model.parameters()).device
    model.eval()
    parts = []
    with torch.no_grad():
        for start in range(0, samples, batch):
            r, s = (torch.as_tensor(a[start:start + batch], dtype=torch.float32, device=device)
                    for a in (receiver, sender))
            parts.append(model.edge_model(r, s)[:, list(components)].double().cpu().numpy())
    return _verdict(np.concatenate(parts), values, law, dim, None)


def _verdict(phi: np.ndarray, values: dict[str, np.ndarray], law: str, dim: int, size: int | None) -> Verdict:
    """Fit ``phi ≈ A F / m1^k + b`` for k = 0, 1 and keep the better (see module docstring)."""
    force_law = get_law(law)
    samples = len(phi)
    finite = np.isfinite(phi).all(axis=1)
    dx = np.stack([values[f"d{a}"] for a in "xyz"[:dim]], axis=1)
    force = force_law.force(dx, values["m1"], values["m2"], values["q1"], values["q2"], softening=0.0)
    best = None
    for k in (0, 1):
        target = force / values["m1"][:, None] ** k
        r2, a_matrix = _fit(phi[finite], target[finite]) if finite.mean() > 0.99 else ([-np.inf] * dim, None)
        condition = _condition(a_matrix, phi[finite], target[finite]) if a_matrix is not None else 0.0
        candidate = (min(r2), k, r2, condition)
        if best is None or candidate[0] > best[0]:
            best = candidate
    _, k, r2, condition = best
    passed = bool(min(r2) >= R2_THRESHOLD and condition > CONDITION_THRESHOLD)
    return Verdict(passed, [float(v) for v in r2], k, float(condition), size, samples)


def _fit(phi: np.ndarray, target: np.ndarray) -> tuple[list[float], np.ndarray]:
    """R² per component of ``phi ≈ A target + b`` and the ``[D, D]`` matrix A."""
    r2, rows = [], []
    for c in range(phi.shape[1]):
        value, coef = linear_fit_r2(phi[:, c], target)
        r2.append(value)
        rows.append(coef[:-1])
    return r2, np.array(rows)


def _condition(a_matrix: np.ndarray, phi: np.ndarray, target: np.ndarray) -> float:
    """Smallest / largest singular value of A on standardised variables."""
    scaled = a_matrix * target.std(axis=0)[None, :] / np.maximum(phi.std(axis=0)[:, None], 1e-300)
    singular = np.linalg.svd(scaled, compute_uv=False)
    return float(singular[-1] / singular[0]) if singular[0] > 0 else 0.0
