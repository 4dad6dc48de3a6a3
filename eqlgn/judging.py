"""Is a recovered vector of expressions the true force law, up to a linear map?

Criterion (docs/architecture.md, "What recovered means"). A vector ``phi`` of ``D``
message expressions is the law when there are a matrix ``A``, a vector ``b`` and a
**receiver-only factor** ``h`` in ``{1, m1, q1, m1·q1}`` with

    phi ≈ A · F / h + b

on states the judge samples itself, wider than the training data on every side, where

* the fit and its score are **scale-free**: each state is weighted by ``1 / S²``, ``S``
  the size of the force at that state (:meth:`eqlgn.laws.ForceLaw.force_scale`: ``|F|``,
  or for the spring the sum of its two terms' sizes, which does not vanish at the rest
  length), so every state counts by its *relative* error and a few close encounters with
  large masses cannot carry a wrong law. The score per component is the weighted R²
  (``1 - Σ w·res² / Σ w·(phi - mean_w phi)²``); every component needs ``R²_w ≥ 0.999``;
* ``A`` is well conditioned: on variables standardised by their weighted RMS, smallest /
  largest singular value above ``1e-2`` (``D`` copies of one component do not pass);
* ``F`` is the law unsoftened or softened as the simulator does (``r + 0.01`` in the
  potential), whichever fits better: both are the law;
* the test is repeated on the states of three judge seeds: **passed** when it passes on
  all three, **borderline** when on some, **failed** when on none.

The receiver-only factor is allowed because the node model sees the receiver's own mass
and charge and can undo it: ``m2·dx/r³`` is gravity, and ``q2·dx/r³`` (the sender's
field) is Coulomb's law.

Judge states (per seed, 20 000 pairs): separations ``r`` log-uniform on [0.02, 50]
(training pairs of the 2D-4 datasets: 1–99 % within [0.2, 5.4]), uniform directions,
masses log-uniform on [e^-5, e^5] (training: exp(N(0, 1)), within [e^-3.2, e^3.9]),
charges of magnitude log-uniform on [1/4, 4] with a random sign (training: ±1),
positions and velocities N(0, 10²). :func:`judge_coverage` prints where a dataset lies
relative to these ranges (:func:`judge_coverage`, ``eqlgn info DATA``).

:func:`judge_network` applies the same test to a trained GN's own messages on the same
states, so an equation's score can be set beside the network's it was read from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import sympy

from .equations import as_expression, complexity, evaluate
from .errors import ConfigError
from .fitting import linear_fit
from .laws import get_law
from .layout import NodeLayout

R2_THRESHOLD = 0.999
CONDITION_THRESHOLD = 1e-2
JUDGE_SEEDS = (12345, 12346, 12347)
SOFTENINGS = (0.0, 0.01)
RECEIVER_FACTORS = ("1", "m1", "q1", "m1*q1")
R_RANGE = (0.02, 50.0)
LOG_MASS_RANGE = (-5.0, 5.0)
CHARGE_RANGE = (0.25, 4.0)
SPREAD = 10.0  # standard deviation of judge positions and velocities
POWERS = {"r1": 2, "r2": 3, "charge": 3}  # power of r in the denominator of F = ... dx / r^k


@dataclass
class Verdict:
    """The judge's answer.

    Attributes:
        status: ``passed`` (every judge seed passes), ``borderline`` (some do) or ``failed``.
        passed: ``status == "passed"``.
        ood_r2: scale-free R² per component, the worst over the judge seeds.
        receiver_factor: the ``h`` of the best fit (``1``, ``m1``, ``q1`` or ``m1*q1``).
        softening: the softening of the best-fitting ``F`` (0 or 0.01).
        condition: smallest / largest singular value of the standardised A (worst seed).
        complexity: total expression-tree size of the components (``None`` for a network).
        samples: judge states per seed.
        seeds: the judge's sampling seeds.
        seeds_passed: whether each seed's states passed.
        criterion: name of the criterion (``scale-free``).
    """

    status: str
    passed: bool
    ood_r2: list[float]
    receiver_factor: str
    softening: float
    condition: float
    complexity: int | None
    samples: int
    seeds: list[int] = field(default_factory=list)
    seeds_passed: list[bool] = field(default_factory=list)
    criterion: str = "scale-free"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Fit:
    """One seed's best fit over receiver factors and softenings."""

    r2: list[float]
    condition: float
    factor: str
    softening: float

    @property
    def passed(self) -> bool:
        return bool(min(self.r2) >= R2_THRESHOLD and self.condition > CONDITION_THRESHOLD)


def sample_states(dim: int, samples: int = 20000, seed: int = JUDGE_SEEDS[0]) -> dict[str, np.ndarray]:
    """Values of every vocabulary symbol for ``samples`` random pairs (see module docstring)."""
    rng = np.random.default_rng(seed)
    r = np.exp(rng.uniform(np.log(R_RANGE[0]), np.log(R_RANGE[1]), samples))
    direction = rng.standard_normal((samples, dim))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    dx = direction * r[:, None]
    x1 = rng.normal(scale=SPREAD, size=(samples, dim))
    x2 = x1 - dx
    values = {"r": r}
    for i, axis in enumerate("xyz"[:dim]):
        values[f"d{axis}"] = dx[:, i]
        values[f"{axis}1"], values[f"{axis}2"] = x1[:, i], x2[:, i]
        values[f"v{axis}1"] = rng.normal(scale=SPREAD, size=samples)
        values[f"v{axis}2"] = rng.normal(scale=SPREAD, size=samples)
    for node in (1, 2):
        values[f"m{node}"] = np.exp(rng.uniform(*LOG_MASS_RANGE, samples))
        magnitude = np.exp(rng.uniform(np.log(CHARGE_RANGE[0]), np.log(CHARGE_RANGE[1]), samples))
        values[f"q{node}"] = magnitude * rng.choice([-1.0, 1.0], size=samples)
    return values


def judge(expressions: Sequence[sympy.Expr | str], law: str, dim: int, samples: int = 20000,
          seeds: Sequence[int] = JUDGE_SEEDS, factors: Sequence[str] = RECEIVER_FACTORS) -> Verdict:
    """Judge recovered message expressions against the true law (see module docstring).

    Args:
        expressions: ``D`` expressions (SymPy or strings in the symbol vocabulary).
        law: force-law name.
        dim: spatial dimension.
        samples: judge states per seed.
        seeds: the judge's own sampling seeds (never the training data's).
        factors: the receiver-only factors allowed (a subset of :data:`RECEIVER_FACTORS`).
    """
    exprs = [as_expression(e) for e in expressions]
    if len(exprs) != dim:
        raise ConfigError(f"the judge needs {dim} expressions (one per significant component), got {len(exprs)}")
    get_law(law)
    fits = []
    for seed in seeds:
        values = sample_states(dim, samples, seed)
        fits.append(best_fit(evaluate(exprs, values), values, law, dim, factors))
    return _verdict(fits, sum(complexity(e) for e in exprs), samples, seeds)


def state_nodes(values: dict[str, np.ndarray], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Node features ``[N, 2D+2]`` (x, v, q, m) of the receiver (1) and sender (2) of each judge state."""
    def node(i: int) -> np.ndarray:
        return np.stack([values[f"{name}{i}"] for name in NodeLayout(dim).names()], axis=1)

    return node(1), node(2)


def judge_network(model, components: Sequence[int], law: str, dim: int, samples: int = 20000,
                  seeds: Sequence[int] = JUDGE_SEEDS, batch: int = 65536) -> Verdict:
    """The judge's test on a trained GN's own messages (components ``components``) on its states.

    Args:
        model: a trained :class:`eqlgn.models.GN` (any edge model; the mean for ``kl``).
        components: the significant message components (``result.json`` →
            ``significant_components``), one per spatial dimension.
        law, dim, samples, seeds: as for :func:`judge`.
    """
    import torch

    if len(components) != dim:
        raise ConfigError(f"the judge needs {dim} message components, got {len(components)}")
    device = next(model.parameters()).device
    model.eval()
    fits = []
    for seed in seeds:
        values = sample_states(dim, samples, seed)
        receiver, sender = state_nodes(values, dim)
        parts = []
        with torch.no_grad():
            for start in range(0, samples, batch):
                r, s = (torch.as_tensor(a[start:start + batch], dtype=torch.float32, device=device)
                        for a in (receiver, sender))
                parts.append(model.edge_model(r, s)[:, list(components)].double().cpu().numpy())
        fits.append(best_fit(np.concatenate(parts), values, law, dim))
    return _verdict(fits, None, samples, seeds)


def receiver_factor(name: str, values: dict[str, np.ndarray]) -> np.ndarray:
    """``[N]`` value of the receiver-only factor ``name`` (one of :data:`RECEIVER_FACTORS`)."""
    ones = np.ones_like(values["r"])
    return {"1": ones, "m1": values["m1"], "q1": values["q1"], "m1*q1": values["m1"] * values["q1"]}[name]


def best_fit(phi: np.ndarray, values: dict[str, np.ndarray], law: str, dim: int,
             factors: Sequence[str] = RECEIVER_FACTORS) -> _Fit:
    """Fit ``phi ≈ A F / h + b`` (scale-free) for every ``h`` and softening; keep the best."""
    force_law = get_law(law)
    finite = np.isfinite(phi).all(axis=1)
    if finite.mean() < 0.99:
        return _Fit([-np.inf] * dim, 0.0, factors[0], 0.0)
    dx = np.stack([values[f"d{a}"] for a in "xyz"[:dim]], axis=1)
    args = (values["m1"], values["m2"], values["q1"], values["q2"])
    best = None
    for softening in SOFTENINGS if force_law.softened else (0.0,):
        force = force_law.force(dx, *args, softening=softening)
        scale = force_law.force_scale(values["r"], *args, softening=softening)
        for name in factors:
            h = receiver_factor(name, values)
            target, size = force / h[:, None], scale / np.abs(h)
            keep = finite & (size > 0) & np.isfinite(size)
            r2, condition = scale_free_fit(phi[keep], target[keep], size[keep])
            candidate = _Fit(r2, condition, name, softening)
            if best is None or _rank(candidate) > _rank(best):
                best = candidate
    return best


def _rank(fit: _Fit) -> tuple[bool, float]:
    """Order of preference: a passing fit, then the best worst component."""
    return fit.passed, min(fit.r2)


def scale_free_fit(phi: np.ndarray, target: np.ndarray, size: np.ndarray) -> tuple[list[float], float]:
    """Weighted least squares ``phi ≈ A target + b`` with weights ``1 / size²``.

    Args:
        phi: ``[N, D]`` values to explain.
        target: ``[N, D]`` the law (already divided by the receiver factor).
        size: ``[N]`` positive size of the law at each state.

    Returns:
        The weighted R² of each component and the condition of ``A`` (smallest / largest
        singular value with both sides standardised by their weighted RMS).
    """
    w = 1.0 / size**2
    coef, r2 = linear_fit(phi, target, w)
    a_matrix = coef[:-1].T  # [D out, D in]
    rms_target = np.sqrt((w[:, None] * target**2).sum(axis=0) / w.sum())
    rms_phi = np.sqrt((w[:, None] * phi**2).sum(axis=0) / w.sum())
    scaled = a_matrix * rms_target[None, :] / np.maximum(rms_phi[:, None], 1e-300)
    singular = np.linalg.svd(scaled, compute_uv=False)
    condition = float(singular[-1] / singular[0]) if singular[0] > 0 and np.isfinite(singular).all() else 0.0
    return r2, condition


def _verdict(fits: list[_Fit], size: int | None, samples: int, seeds: Sequence[int]) -> Verdict:
    """Combine the fits of the judge seeds into one verdict."""
    passes = [f.passed for f in fits]
    status = "passed" if all(passes) else "borderline" if any(passes) else "failed"
    worst = min(fits, key=lambda f: (f.passed, min(f.r2)))
    r2 = np.min(np.array([f.r2 for f in fits]), axis=0)
    return Verdict(status, status == "passed", [float(v) for v in r2], worst.factor, worst.softening,
                   float(min(f.condition for f in fits)), size, samples, [int(s) for s in seeds], passes)


@dataclass
class Coverage:
    """Where a dataset's pairs lie relative to the judge's sampling ranges.

    Attributes:
        r_percentiles: training pair separations at the 0.1, 1, 50, 99 and 99.9 percentiles.
        r_inside: fraction of training pairs with ``r`` inside the judge's range.
        judge_r_below, judge_r_above: fraction of judge states with ``r`` below the training
            data's 1st / above its 99th percentile.
        log_mass: training ``ln m`` minimum and maximum.
        judge_mass_beyond: fraction of judge states whose receiver mass lies outside the
            training masses' range.
        charges: distinct training charge values (up to 10).
        judge_charge_new: fraction of judge receiver charges that no training charge equals.
    """

    r_percentiles: list[float]
    r_inside: float
    judge_r_below: float
    judge_r_above: float
    log_mass: list[float]
    judge_mass_beyond: float
    charges: list[float]
    judge_charge_new: float

    def report(self) -> str:
        p = self.r_percentiles
        return "\n".join([
            f"judge ranges vs these data ({'; '.join(_range_text())}):",
            f"  training r: 0.1% {p[0]:.3g}, 1% {p[1]:.3g}, median {p[2]:.3g}, 99% {p[3]:.3g}, 99.9% {p[4]:.3g}; "
            f"{self.r_inside:.1%} of training pairs inside the judge's r range",
            f"  judge states with r below the training 1st percentile: {self.judge_r_below:.1%}, "
            f"above its 99th: {self.judge_r_above:.1%}",
            f"  training ln m in [{self.log_mass[0]:.2f}, {self.log_mass[1]:.2f}]; judge masses beyond that range: "
            f"{self.judge_mass_beyond:.1%}",
            f"  training charges {self.charges}; judge charges equal to none of them: {self.judge_charge_new:.1%}",
        ])


def _range_text() -> list[str]:
    return [f"r log-uniform on [{R_RANGE[0]}, {R_RANGE[1]}]",
            f"ln m uniform on [{LOG_MASS_RANGE[0]:g}, {LOG_MASS_RANGE[1]:g}]",
            f"|q| log-uniform on [{CHARGE_RANGE[0]}, {CHARGE_RANGE[1]}], random sign"]


def training_pairs(data) -> tuple[np.ndarray, np.ndarray]:
    """Separations ``r`` of every particle pair of every snapshot, and every particle's mass, of a dataset."""
    layout = NodeLayout(data.dim)
    i, j = np.triu_indices(data.n_particles, 1)
    x = data.nodes[..., layout.position]
    return np.linalg.norm(x[:, i] - x[:, j], axis=-1).ravel(), data.nodes[..., layout.mass].ravel()


def judge_coverage(data, samples: int = 20000) -> Coverage:
    """Compare a :class:`~eqlgn.data.ParticleDataset`'s pairs with the judge's states (first judge seed)."""
    d = data.dim
    r, masses = training_pairs(data)
    charges = np.unique(data.nodes[..., NodeLayout(d).charge].ravel())
    learned = data.meta.learned  # their columns hold identities, not values (eqlgn.properties)
    masses = masses[:0] if "m" in learned else masses
    charges = charges[:0] if "q" in learned else charges
    values = sample_states(d, samples, JUDGE_SEEDS[0])
    percentiles = np.percentile(r, [0.1, 1, 50, 99, 99.9]) if len(r) else np.full(5, np.nan)
    log_mass = [float(np.log(masses.min())), float(np.log(masses.max()))] if len(masses) else [np.nan, np.nan]
    inside = float(np.mean((r >= R_RANGE[0]) & (r <= R_RANGE[1]))) if len(r) else 0.0
    beyond = float(np.mean((np.log(values["m1"]) < log_mass[0]) | (np.log(values["m1"]) > log_mass[1])))
    new = float(np.mean(~np.isin(values["q1"], charges)))
    return Coverage([float(v) for v in percentiles], inside, float(np.mean(values["r"] < percentiles[1])),
                    float(np.mean(values["r"] > percentiles[3])), log_mass, beyond,
                    [float(c) for c in charges[:10]], new)


def true_law(law: str, dim: int, power: float | sympy.Expr | None = None,
             rest: float | sympy.Expr = 1) -> list[sympy.Expr]:
    """The law's force on particle 1 as ``D`` expressions (unsoftened).

    Args:
        law: force-law name.
        dim: spatial dimension.
        power: the power of ``r`` in the denominator (default: the law's own; spring: unused).
        rest: the spring's rest length.
    """
    from .equations import SYMBOLS

    get_law(law)
    axes = [SYMBOLS[f"d{a}"] for a in "xyz"[:dim]]
    r, m1, m2, q1, q2 = (SYMBOLS[n] for n in ("r", "m1", "m2", "q1", "q2"))
    if law == "spring":
        return [-2 * (r - rest) * c / r for c in axes]
    power = POWERS[law] if power is None else power
    factor = q1 * q2 if law == "charge" else -m1 * m2
    return [factor * c / r**power for c in axes]


def near_misses(law: str, dim: int) -> dict[str, list[sympy.Expr]]:
    """Expressions that resemble the law and are not it: the judge must fail every one.

    For every law: an added mass-free ``dx`` term, and two copies of one component. Spring:
    rest length off by ±10 %, no rest length, another law's shape. The others: the power
    of ``r`` off by ±0.2, another law's power, and a wrong power of the sender's mass or
    charge (``m2**0.8``; ``q2**3``, which equals ``q2`` on training charges ±1).
    """
    from .equations import SYMBOLS

    axes = [SYMBOLS[f"d{a}"] for a in "xyz"[:dim]]
    r, m2, q2 = SYMBOLS["r"], SYMBOLS["m2"], SYMBOLS["q2"]
    force = true_law(law, dim)
    cases = {"added mass-free dx term": [e + c for e, c in zip(force, axes)],
             "two copies of one component": [force[0] * (i + 1) + i for i in range(dim)]}
    if law == "spring":
        cases.update({"rest length +10%": true_law(law, dim, rest=sympy.Rational(11, 10)),
                      "rest length -10%": true_law(law, dim, rest=sympy.Rational(9, 10)),
                      "no rest length": [-2 * c for c in axes],
                      "another law's shape (dx/r^3)": [c / r**3 for c in axes]})
        return cases
    power = POWERS[law]
    cases.update({"power +0.2": true_law(law, dim, power=power + sympy.Rational(1, 5)),
                  "power -0.2": true_law(law, dim, power=power - sympy.Rational(1, 5)),
                  "another law's power": true_law(law, dim, power=3 if law == "r1" else 2)})
    if law == "charge":
        cases["q2**3 for q2"] = [e.subs(q2, q2**3) for e in force]
    else:
        cases["m2**0.8 for m2"] = [e.subs(m2, m2 ** sympy.Rational(4, 5)) for e in force]
    return cases


def under_linear_map(expressions: Sequence[sympy.Expr], seed: int) -> list[sympy.Expr]:
    """``A·phi + b`` with a random well-conditioned ``A`` (a rotation times scales in [0.5, 2]) and bias ``b``.

    Messages are learned only up to such a map, so the judge must pass the law under any of them.
    """
    rng = np.random.default_rng(seed)
    size = len(expressions)
    rotation, _ = np.linalg.qr(rng.normal(size=(size, size)))
    a = rotation * rng.uniform(0.5, 2.0, size=size)[None, :]
    b = rng.normal(size=size)
    return [sum(sympy.Float(a[i, j]) * e for j, e in enumerate(expressions)) + sympy.Float(b[i]) for i in range(size)]
