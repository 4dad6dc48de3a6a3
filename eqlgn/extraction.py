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
   significant digits;
4. flag the result "unrotated" when each component depends on one spatial axis only.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import sympy

from .analysis import MessageSample, analyze_messages, collect_messages
from .data import ParticleDataset
from .equations import SYMBOLS, complexity, evaluate, pair_values, to_vocabulary
from .errors import ConfigError
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
        dropped_terms: number of negligible terms removed per component.
    """

    expressions: list[sympy.Expr]
    components: list[int]
    unrotated: bool
    fidelity: float
    dropped_terms: list[int] = field(default_factory=list)

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
        import torch

        used = sorted({s.name for e in self.expressions for s in e.free_symbols})
        fns = [sympy.lambdify([SYMBOLS[n] for n in used], e, "torch") for e in self.expressions]

        def evaluate_torch(**values):
            first = next(iter(values.values()))
            cols = [torch.as_tensor(fn(*[values[n] for n in used])) * torch.ones_like(first) for fn in fns]
            return torch.stack(cols, dim=-1)

        return evaluate_torch

    def complexity(self) -> int:
        """Total expression-tree size."""
        return sum(complexity(e) for e in self.expressions)


def edge_values(sample: MessageSample) -> dict[str, np.ndarray]:
    """Vocabulary symbol values for every edge of a message sample."""
    return pair_values(sample.receiver, sample.sender, sample.dim)


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


def simplify_component(expr: sympy.Expr, values: dict[str, np.ndarray], scale: float,
                       tolerance: float = 1e-2, digits: int = 3, timeout: float = 10.0,
                       terms: list[sympy.Expr] | None = None) -> tuple[sympy.Expr, int]:
    """Expand (time-limited), drop negligible terms, round constants to ``digits`` digits.

    The expanded sum of monomials is kept as the final form: it is what the EQL computes,
    its terms can be compared with the true law one by one, and it never grows the
    huge rationals that ``nsimplify`` produces from trained weights.
    """
    if terms is not None:  # already expanded exactly from the weights
        expanded = sympy.Add(*[to_vocabulary(t) for t in terms])
    else:
        expanded = _with_timeout(lambda: sympy.expand(expr), timeout, expr)
    kept, dropped = prune_terms(expanded, values, scale, tolerance)
    return round_constants(kept, digits), dropped


def extract(model: GN, data: ParticleDataset, max_graphs: int = 2000, tolerance: float = 5e-2,
            digits: int = 3, timeout: float = 10.0) -> Equations:
    """Read the significant message components of an EQL GN as equations (see module docstring).

    Args:
        model: a trained GN whose edge model is an :class:`~eqlgn.models.EQLEdge`.
        data: held-out graphs (never the training set).
        max_graphs: graphs used to rank components and measure term contributions.
        tolerance: terms with RMS below ``tolerance`` × the component's std are dropped.
        digits: significant digits of the printed constants.
        timeout: seconds allowed to each SymPy expansion/simplification.
    """
    edge = model.edge_model
    if not isinstance(edge, EQLEdge):
        raise ConfigError("extract() reads equations from an EQL edge model; for an MLP edge model "
                          "use symbolic regression (sr) on its messages instead")
    sample = collect_messages(model, data, max_graphs)
    analysis = analyze_messages(sample)
    values = edge_values(sample)
    inside = values["r"] >= edge.r_min  # where the network's clamped 1/r equals the expression's
    values = {k: v[inside] for k, v in values.items()}
    messages = sample.messages[inside]
    raw = [to_vocabulary(e) for e in edge.to_sympy()]
    expressions, dropped, errors = [], [], []
    for c in analysis.components:
        exact = evaluate([raw[c]], values)[:, 0]
        message = messages[:, c]
        errors.append(float(np.max(np.abs(exact - message)) / max(np.max(np.abs(message)), 1e-12)))
        simple, n_dropped = simplify_component(raw[c], values, float(message.std()), tolerance, digits,
                                               timeout, terms=edge.expanded_terms(c))
        expressions.append(simple)
        dropped.append(n_dropped)
    axes = [{SYMBOLS[f"d{a}"], SYMBOLS[f"{a}1"], SYMBOLS[f"{a}2"]} for a in "xyz"[: data.dim]]
    unrotated = all(sum(bool(e.free_symbols & axis) for axis in axes) == 1 for e in expressions)
    return Equations(expressions, analysis.components, unrotated, max(errors), dropped)
