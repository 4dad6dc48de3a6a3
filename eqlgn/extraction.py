"""Read the force law from a trained EQL edge model: SymPy straight from the pruned weights.

Steps (no symbolic-regression search):

1. run the GN on held-out graphs and pick the ``D`` most significant message components
   (largest standard deviation, :mod:`eqlgn.analysis`);
2. read each as a SymPy expression from the masked EQL weights over the input symbols,
   derived inputs substituted back (``inv_r -> 1/r``), and check that it evaluates to the
   network's own output (relative error reported, should be < 1e-4);
3. expand (exactly, from the weights, for polynomial EQLs; with ``sympy.expand`` under a
   time limit otherwise), drop additive terms whose RMS on the held-out edges is below
   ``tolerance`` × the component's standard deviation, round constants to ``digits``
   significant digits — the **weights form**;
4. **sparse refit** (default on): the EQL often writes a law such as ``m2·dx/r²`` as a
   short series in neighbouring powers of ``r`` that agrees inside the training range and
   drifts outside it. The expanded terms are refitted to the network's own messages by
   least squares with backward elimination (drop, one at a time, the term whose removal
   hurts the fit least, scored on a held-out half of the edges), and the number of terms
   is chosen where one more term buys the largest relative drop in error, errors below
   ``floor`` (1 % of the message's spread, the GN's own error level) counting as equal.
   A model of a forward path (the best single term, then the most useful term added, up to
   four) replaces the chosen one when it has no more terms and no larger held-out error: a
   law the network writes as a blend of neighbouring powers is then read as its single power.
   A chosen term whose **typical size** (median |term| over the edges) is below ``share``
   (5 %) of the message's typical size (median |message|) is then dropped and the rest
   refitted, until every term left is above it: such a term (``6e-5/r⁶`` beside
   ``q2·dx/r³``) only mimics the network's error on the few closest pairs, where an RMS
   score weighs it most (docs/method.md).
   The refitted terms are then rewritten with the identities the inputs obey (``q1² = 1`` when
   the charges are ±1, ``r² = dx² + dy²``) and refitted once more; the rewritten reading replaces
   the first when it is simpler and no less accurate (:mod:`eqlgn.identities`).
   Only the EQL's own terms are used and only held-out training-distribution edges are
   seen: nothing is searched beyond the weights, and the judge's states are never used;
5. flag the result "unrotated" when each component depends on one spatial axis only.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import sympy

from .analysis import MessageAnalysis, MessageSample, analyze_messages, collect_messages
from .data import ParticleDataset
from .equations import complexity, evaluate, pair_values, to_vocabulary, torch_function, unrotated
from .errors import ConfigError
from .identities import simplest_reading
from .models import GN, EQLEdge


@dataclass
class Equations:
    """Recovered message equations, one per significant component.

    Attributes:
        expressions: simplified SymPy expressions in the symbol vocabulary.
        components: message components they describe.
        unrotated: each component depends on one spatial axis only.
        fidelity: largest relative error of the raw (unsimplified) expressions against the
            network's own messages on held-out edges.
        dropped_terms: number of negligible terms removed per component (weights form).
        weights_expressions: the weights form of each component (step 3), before the sparse
            refit; equal to ``expressions`` when the refit is off.
        refit_error: held-out relative RMS error of each refitted component against the
            network's messages (``None`` when the refit is off).
    """

    expressions: list[sympy.Expr]
    components: list[int]
    unrotated: bool
    fidelity: float
    dropped_terms: list[int] = field(default_factory=list)
    weights_expressions: list[sympy.Expr] = field(default_factory=list)
    refit_error: list[float] | None = None

    def sympy(self) -> list[sympy.Expr]:
        """The expressions as SymPy objects."""
        return list(self.expressions)

    def strings(self) -> list[str]:
        """Plain strings that :func:`eqlgn.equations.parse_equation` reads back."""
        return [str(e) for e in self.expressions]

    def latex(self) -> list[str]:
        """LaTeX forms."""
        return [sympy.latex(e) for e in self.expressions]

    def pretty(self) -> str:
        """Human-readable block, one line per component."""
        return "\n".join(f"  message {c}: {sympy.sstr(e)}" for c, e in zip(self.components, self.expressions))

    def torch(self) -> Callable:
        """A function mapping tensors of the used symbols (keyword arguments) to a ``[N, D]`` tensor."""
        evaluate_torch = torch_function(self.expressions)
        return lambda **values: evaluate_torch(values)

    def pytorch(self, dim: int):
        """The equations as a torch edge model (:class:`eqlgn.symbolic_edge.SymbolicEdge`): message
        ``k`` is expression ``k``, every constant a trainable parameter."""
        from .symbolic_edge import SymbolicEdge

        return SymbolicEdge(self.expressions, dim, len(self.expressions))

    def complexity(self) -> int:
        """Total expression-tree size."""
        return sum(complexity(e) for e in self.expressions)


def edge_values(sample: MessageSample) -> dict[str, np.ndarray]:
    """Vocabulary symbol values for every edge of a message sample."""
    return pair_values(sample.receiver, sample.sender, sample.dim)


@dataclass
class EdgeReading:
    """What the steps after the first read (steps 1–2 of the module docstring, before any expansion).

    Attributes:
        analysis: the message analysis (``analysis.components``: the significant components).
        values: vocabulary symbol values of the held-out edges with ``r >= r_min`` (where the
            network's clamped inverse powers equal the expression's).
        messages: the network's messages on those edges, ``[edges, message dim]``.
        raw: every message component as a SymPy expression from the masked weights.
    """

    analysis: MessageAnalysis
    values: dict[str, np.ndarray]
    messages: np.ndarray
    raw: list[sympy.Expr]


def read_edges(model: GN, data: ParticleDataset, max_graphs: int = 2000) -> EdgeReading:
    """Run an EQL GN on held-out graphs and read its messages, their inputs and its raw formulas."""
    edge = model.edge_model
    if not isinstance(edge, EQLEdge):
        raise ConfigError("extract() reads equations from an EQL edge model; for an MLP edge model "
                          "use symbolic regression (sr) on its messages instead")
    sample = collect_messages(model, data, max_graphs)
    values = edge_values(sample)
    inside = values["r"] >= edge.r_min
    return EdgeReading(analyze_messages(sample), {k: v[inside] for k, v in values.items()}, sample.messages[inside],
                       [to_vocabulary(e) for e in edge.to_sympy()])


def _with_timeout(fn: Callable[[], sympy.Expr], seconds: float, fallback: sympy.Expr) -> sympy.Expr:
    """Run a SymPy transformation under a wall-clock limit (main thread, POSIX); else return fallback."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        return fn()

    def stop(signum, frame):
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    except TimeoutError:
        return fallback
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def round_constants(expr: sympy.Expr, digits: int) -> sympy.Expr:
    """Round every Float in ``expr`` to ``digits`` significant digits."""
    swap = {f: sympy.Float(float(f"{float(f):.{digits}g}"), digits) for f in expr.atoms(sympy.Float)}
    return expr.xreplace(swap)


def prune_terms(expr: sympy.Expr, values: dict[str, np.ndarray], scale: float,
                tolerance: float) -> tuple[sympy.Expr, int]:
    """Drop additive terms whose RMS over ``values`` is below ``tolerance * scale``."""
    terms = sympy.Add.make_args(expr)
    if len(terms) == 1:
        return expr, 0
    contributions = evaluate(terms, values)
    rms = np.sqrt(np.nanmean(contributions**2, axis=0))
    keep = [t for t, v in zip(terms, rms) if v >= tolerance * scale]
    return sympy.Add(*keep), len(terms) - len(keep)


def expand_component(expr: sympy.Expr, timeout: float = 10.0, terms: list[sympy.Expr] | None = None) -> sympy.Expr:
    """The component as a sum of monomials: ``terms`` (expanded exactly from the weights) or a time-limited expand."""
    if terms is not None:
        return sympy.Add(*[to_vocabulary(t) for t in terms])
    return _with_timeout(lambda: sympy.expand(expr), timeout, expr)


class HeldOutScorer:
    """``scorer(kept)``: relative RMS error on the rows outside ``fit_rows`` of the columns ``kept`` fitted on them.

    Works on Gram matrices of standardised columns, built once, so each call costs a
    K×K solve whatever the number of rows. :meth:`without_each` scores every model with one
    column fewer from one inverse (the screen of :func:`backward_elimination`).
    """

    def __init__(self, columns: np.ndarray, target: np.ndarray, fit_rows: np.ndarray):
        scale = np.sqrt(np.mean(columns**2, axis=0))
        scale[~(scale > 0)] = 1.0
        z = columns / scale
        fit, held = fit_rows, ~fit_rows
        self.gram, self.moment = z[fit].T @ z[fit], z[fit].T @ target[fit]
        self.gram_held, self.moment_held = z[held].T @ z[held], z[held].T @ target[held]
        self.energy, self.count = float(target[held] @ target[held]), int(held.sum())
        self.spread = float(target[held].std())
        self.ridge = 1e-10 * max(float(np.trace(self.gram)) / len(self.gram), 1e-300)

    def _relative(self, residual: np.ndarray | float) -> np.ndarray:
        return np.sqrt(np.maximum(residual, 0.0) / self.count) / max(self.spread, 1e-300)

    def __call__(self, kept: list[int]) -> float:
        idx = np.ix_(kept, kept)
        coef = np.linalg.solve(self.gram[idx] + self.ridge * np.eye(len(kept)), self.moment[kept])
        residual = self.energy - 2 * coef @ self.moment_held[kept] + coef @ self.gram_held[idx] @ coef
        return float(self._relative(residual))

    def without_each(self, kept: list[int]) -> np.ndarray:
        """The error of ``kept`` less its ``p``-th column, for every ``p``, from one inverse of the Gram matrix.

        With ``H`` the inverse of the (ridged) Gram matrix of ``kept`` and ``a`` its coefficients, the fit without
        column ``p`` has the coefficients ``a − a_p·H[:, p] / H[p, p]`` (block inversion: the same as solving the
        smaller system). ``H`` gets one step of iterative refinement: the monomials of an EQL are nearly collinear
        (Gram conditions of 1e10 and more), where a plain inverse's screen was off by 1e-3 and missed the best
        removal (tests/test_eql.py). Equal to calling the scorer on each subset up to rounding, at the cost of
        a few K×K products instead of K solves.
        """
        idx = np.ix_(kept, kept)
        gram = self.gram[idx] + self.ridge * np.eye(len(kept))
        inverse = np.linalg.inv(gram)
        inverse = inverse + inverse @ (np.eye(len(kept)) - gram @ inverse)  # one refinement: collinear monomials
        coef = np.linalg.solve(gram, self.moment[kept])
        moment_held, gram_held = self.moment_held[kept], self.gram_held[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            steps = inverse / np.diag(inverse)[None, :]  # column p: how the coefficients move when p leaves
            full = self.energy - 2 * coef @ moment_held + coef @ gram_held @ coef
            cross = steps.T @ moment_held - steps.T @ (gram_held @ coef)
            curvature = np.sum(steps * (gram_held @ steps), axis=0)
            residual = full + 2 * coef * cross + coef**2 * curvature
        return np.where(np.isfinite(residual), self._relative(residual), np.inf)


def held_out_scorer(columns: np.ndarray, target: np.ndarray, fit_rows: np.ndarray) -> HeldOutScorer:
    """The scorer of a least-squares path: :class:`HeldOutScorer` (fitted on ``fit_rows``, scored on the others)."""
    return HeldOutScorer(columns, target, fit_rows)


SubsetPath = list[tuple[list[int], float]]
"""A least-squares path: ``[(kept column indices, held-out relative error), ...]``."""


SCREENED = 8  # columns whose removal backward elimination scores exactly at each step, after the screen
BULK_SHARE = 8  # above ``bulk_above`` columns, backward elimination drops 1/BULK_SHARE of them per step


def backward_elimination(error: Callable[[list[int]], float], count: int, bulk_above: int | None = None) -> SubsetPath:
    """Least-squares path from all ``count`` columns down to one, dropping the least useful column each time.

    ``error`` scores a set of columns (:func:`held_out_scorer`: fitted on one half of the
    rows, relative RMS error on the other), each call a K×K solve whatever the number of edges.
    Scoring every removal by a solve costs about K⁵/15 operations over the path (minutes at
    K ≈ 300, the size of an untrained 2D EQL), so a scorer with
    ``without_each`` first screens all removals from one inverse, and the :data:`SCREENED`
    best are scored exactly by ``error``; the column dropped is the exact scores' best, the
    same as scoring all unless rounding moves the best out of the screened few.

    With ``bulk_above`` (and a screen), while more than ``bulk_above`` columns are kept each step
    drops the ``1/``:data:`BULK_SHARE` of them whose single removals the screen scores best, so
    a path from K columns costs about ``K³ log K`` operations instead of ``K⁴`` (the path then
    skips sizes above ``bulk_above``); below it, one column a step as above.

    Returns:
        the path from K columns down to 1.
    """
    kept = list(range(count))
    path = [(list(kept), error(kept))]
    screen = getattr(error, "without_each", None)
    while screen is not None and bulk_above is not None and len(kept) > bulk_above:
        drop = min(max(1, len(kept) // BULK_SHARE), len(kept) - bulk_above)
        worst = set(np.argsort(screen(kept), kind="stable")[:drop].tolist())
        kept = [k for p, k in enumerate(kept) if p not in worst]
        path.append((kept, error(kept)))
    while len(kept) > 1:
        candidates = [[k for k in kept if k != j] for j in kept]
        if screen is not None and len(kept) > SCREENED:
            best = np.sort(np.argsort(screen(kept), kind="stable")[:SCREENED])  # kept in column order (ties)
            candidates = [candidates[p] for p in best]
        kept = min(candidates, key=error)
        path.append((kept, error(kept)))
    return path


FORWARD_TERMS = 4  # sizes for which the forward path is searched too (docs/method.md, "Two paths to few terms")


def forward_selection(error: Callable[[list[int]], float], count: int, max_terms: int = FORWARD_TERMS) -> SubsetPath:
    """Least-squares path from one of ``count`` columns up to ``max_terms``, adding the most useful each time.

    Its first model is the best single column, which backward elimination can miss: a law
    the network writes as a blend of neighbouring powers (``a/r² + b/r⁴`` for ``c/r³``) keeps
    the blend to the end of the backward path, whose last single term is then one of the
    blend's, not the term that fits best alone. Scored like :func:`backward_elimination`.

    Returns:
        the path from 1 column up to ``max_terms``.
    """
    kept: list[int] = []
    path = []
    for _ in range(min(max_terms, count)):
        kept = min((kept + [j] for j in range(count) if j not in kept), key=error)
        path.append((kept, error(kept)))
    return path


def dominating(chosen: tuple[list[int], float], candidates: SubsetPath) -> tuple[list[int], float]:
    """The smallest of ``candidates`` with no more terms and no larger error than ``chosen``; else ``chosen``.

    The forward path may only replace the backward path's choice by a model that is at
    least as small and at least as accurate: the size rule (:func:`choose_size`) was made for
    one nested path, and the relative drop between models of different paths means nothing.
    """
    better = [c for c in candidates if len(c[0]) <= len(chosen[0]) and c[1] <= chosen[1]]
    return min(better, key=lambda c: (len(c[0]), c[1])) if better else chosen


def choose_size(errors: list[float], floor: float = 0.01) -> int:
    """Index into ``errors`` (relative errors of models with 1, 2, ... terms) of the chosen model.

    The model whose extra term buys the largest relative drop in error,
    ``log(max(e[k-1], floor) / max(e[k], floor))`` (``e[-1]`` = 1, the zero model); the
    smallest such model on ties. Errors below ``floor`` count as equal, so terms that only
    reproduce the network's last fraction of a percent are never worth their place.
    """
    best, chosen, previous = -np.inf, 0, 1.0
    for k, value in enumerate(errors):
        gain = np.log(max(previous, floor) / max(value, floor))
        if gain > best + 1e-12:
            best, chosen = gain, k
        previous = value
    return chosen


MAX_REFIT_TERMS = 350
TERM_SHARE = 0.05  # chosen on design seeds 0-4 (docs/method.md, "Terms too small to be the law")


def typical_share(columns: np.ndarray, coef: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each fitted term's typical size over the rows, median |coef·column|, over the target's, median |target|."""
    return np.median(np.abs(columns * coef), axis=0) / max(float(np.median(np.abs(target))), 1e-300)


def _least_squares(columns: np.ndarray, target: np.ndarray) -> np.ndarray:
    scale = np.sqrt(np.mean(columns**2, axis=0))
    scale[~(scale > 0)] = 1.0
    coef, *_ = np.linalg.lstsq(columns / scale, target, rcond=None)
    return coef / scale


def sparse_refit(expanded: sympy.Expr, values: dict[str, np.ndarray], target: np.ndarray, floor: float = 0.01,
                 seed: int = 0, max_terms: int = MAX_REFIT_TERMS,
                 share: float = TERM_SHARE, forward: int = FORWARD_TERMS,
                 bulk_above: int | None = None) -> tuple[sympy.Expr | None, float]:
    """Refit the additive terms of ``expanded`` to ``target`` keeping the fewest that explain it (step 4).

    :func:`choose_size` picks a model of the backward path; a model of the forward path (up to
    ``forward`` terms; 0: none) replaces it when it has no more terms and no larger held-out
    error (:func:`dominating`). ``bulk_above``: see :func:`backward_elimination` (``None``: one term a step).

    Backward elimination with its screen costs a few K×K products per step (3 s on one core at
    K = 294, the monomials of an untrained 2D EQL; scoring every removal, about a minute); a component of
    more than ``max_terms`` terms — an EQL that training did not make sparse — is not refitted.

    Terms of the chosen model whose typical size is below ``share`` of the target's
    (:func:`typical_share`) are dropped and the others refitted, again until none is below;
    the largest always stays.

    Returns:
        The refitted expression (unrounded) and its held-out relative error; ``(None, nan)``
        when there are more than ``max_terms`` terms.
    """
    terms = list(sympy.Add.make_args(expanded))
    if len(terms) > max_terms:
        return None, float("nan")
    columns = evaluate(terms, values)
    rows = np.isfinite(columns).all(axis=1) & np.isfinite(target)
    if rows.sum() < 4 * len(terms):  # too few edges to choose among the terms: keep them as they are
        return sympy.Add(*terms), float("nan")
    columns, target = columns[rows], target[rows]
    fit_rows = np.random.default_rng(seed).random(len(target)) < 0.5
    score = held_out_scorer(columns, target, fit_rows)
    path = backward_elimination(score, len(terms), bulk_above)[::-1]  # 1 term first
    chosen = path[choose_size([e for _, e in path], floor)]
    kept, held_error = dominating(chosen, forward_selection(score, len(terms), forward))
    coef = _least_squares(columns[:, kept], target)
    while True:  # drop the typically small terms, refit the rest, until every kept term is large enough
        sizes = typical_share(columns[:, kept], coef, target)
        large = [k for k, size in zip(kept, sizes) if size >= share] or [kept[int(np.argmax(sizes))]]
        if len(large) == len(kept):
            break
        kept = large
        held_error = score(kept)
        coef = _least_squares(columns[:, kept], target)
    return sympy.Add(*[sympy.Float(float(c)) * terms[k] for c, k in zip(coef, kept)]), held_error


def extract(model: GN, data: ParticleDataset, max_graphs: int = 2000, tolerance: float = 5e-2,
            digits: int = 3, timeout: float = 10.0, refit: bool = True, floor: float = 0.01,
            share: float = TERM_SHARE, *, forward: int = FORWARD_TERMS) -> Equations:
    """Read the significant message components of an EQL GN as equations (see module docstring).

    Args:
        model: a trained GN whose edge model is an :class:`~eqlgn.models.EQLEdge`.
        data: held-out graphs (never the training set).
        max_graphs: graphs used to rank components and measure term contributions.
        tolerance: terms with RMS below ``tolerance`` × the component's std are dropped.
        digits: significant digits of the printed constants.
        timeout: seconds allowed to each SymPy expansion/simplification.
        refit: apply the sparse refit (step 4); off: the weights form is the result.
        floor: relative error below which the refit counts models as equal.
        share: refitted terms typically smaller than this fraction of the message are dropped.
        forward: terms up to which the refit's forward path is walked (0: backward elimination alone).
    """
    reading = read_edges(model, data, max_graphs)
    values, messages, raw = reading.values, reading.messages, reading.raw
    weights, refitted, dropped, errors, refit_errors = [], [], [], [], []
    for c in reading.analysis.components:
        exact = evaluate([raw[c]], values)[:, 0]
        message = messages[:, c]
        errors.append(float(np.max(np.abs(exact - message)) / max(np.max(np.abs(message)), 1e-12)))
        expanded = expand_component(raw[c], timeout, model.edge_model.expanded_terms(c))
        kept, n_dropped = prune_terms(expanded, values, float(message.std()), tolerance)
        weights.append(round_constants(kept, digits))
        dropped.append(n_dropped)
        if refit:
            refit_terms = partial(sparse_refit, values=values, target=message.astype(np.float64), floor=floor,
                                  share=share, forward=forward)
            expression, held_error = refit_terms(expanded)
            if expression is not None:
                expression, held_error = simplest_reading(expression, held_error, values, data.dim, refit_terms, floor)
            refitted.append(weights[-1] if expression is None else round_constants(expression, digits))
            refit_errors.append(held_error)
    expressions = refitted if refit else weights
    return Equations(expressions, reading.analysis.components, unrotated(expressions, data.dim), max(errors), dropped,
                     weights, refit_errors if refit else None)
