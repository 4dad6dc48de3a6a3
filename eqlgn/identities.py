"""Identities the inputs obey, and the simplest reading they allow (step 4b of :mod:`eqlgn.extraction`).

An EQL can write a law in a form that equals it on every edge it was shown and nowhere else, and
then the form it happened to learn is read. Two identities do this in practice:

* **data identities**: an input whose size is one constant ``c`` on every edge (charges drawn as
  ±1) obeys ``s² = c²``; so ``dx·q1²`` *is* ``dx`` on those data. The data cannot tell them apart
  and the simpler form is the reading a scientist would write (the judge, which samples other
  charges, rightly fails the other);
* **geometry**: ``r² = dx² + dy² (+ dz²)`` on every edge, so ``dy·dx²/r² + dy³/r²`` is ``dy``.

:func:`reduce_identities` rewrites an expression with both — every power of a constant-size input
to degree 0 or 1 (``s^k = c^(k−j)·s^j``, ``j = k mod 2``) and every power ≥ 2 of the last axis's
offset through the others (``dy² = r² − dx²``) — and expands it, so terms that were one function
written two ways add up or cancel. :func:`simplest_reading` refits the rewritten terms (the
caller's refit, on the same edges and target) and keeps the result only if it is **simpler**
(smaller expression tree) **and no less accurate** (held-out error no larger up to rounding, or
below the refit's floor): a reading is never traded for a worse fit, and an input that varies is never
touched. Nothing is searched beyond the reading's own terms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import sympy

from .equations import complexity, symbol

CONSTANT_SIZE = 1e-9
"""An input is of constant size when ``max |s| − min |s|`` is at most this fraction of ``max |s|``."""
SAME_ERROR = 1e-6
"""Relative slack on the held-out error: the same fit written with other terms differs by rounding only."""


def data_identities(values: Mapping[str, np.ndarray]) -> dict[sympy.Symbol, float]:
    """The inputs whose size is one nonzero constant on every edge, with that size (``q1: 1.0`` for ±1 charges)."""
    sizes = {}
    for name, column in values.items():
        size = np.abs(np.asarray(column, dtype=np.float64))
        if size.size and np.isfinite(size).all() and size.max() > 0 and np.ptp(size) <= CONSTANT_SIZE * size.max():
            sizes[symbol(name)] = float(size.max())
    return sizes


def reduce_identities(expression: sympy.Expr, sizes: Mapping[sympy.Symbol, float], dim: int) -> sympy.Expr:
    """``expression`` with the data identities ``s² = c²`` and ``r² = Σ d²`` applied, expanded (module docstring)."""
    offsets = [symbol(f"d{axis}") for axis in "xyz"[:dim]]
    last, others = offsets[-1], offsets[:-1]
    square = symbol("r") ** 2 - sum(d**2 for d in others)

    def power(base: sympy.Expr, exp: sympy.Expr) -> sympy.Expr:
        if base in sizes and exp.is_Integer:
            odd = int(exp) % 2
            size = sympy.Integer(1) if sizes[base] == 1.0 else sympy.Float(sizes[base])
            return size ** (int(exp) - odd) * base**odd
        if base == last and exp.is_Integer and int(exp) >= 2:
            return square ** (int(exp) // 2) * base ** (int(exp) % 2)
        return base**exp

    rewritten = expression.replace(lambda e: e.is_Pow, lambda e: power(e.base, e.exp))
    return sympy.expand(rewritten)


def simplest_reading(expression: sympy.Expr, error: float, values: Mapping[str, np.ndarray], dim: int,
                     refit: Callable[[sympy.Expr], tuple[sympy.Expr | None, float]],
                     floor: float) -> tuple[sympy.Expr, float]:
    """The refitted reading of ``expression`` under the inputs' identities, if simpler and no less accurate.

    Args:
        expression: a refitted reading (a sum of terms) and ``error`` its held-out relative error.
        values: the input values of the edges the reading was refitted on.
        dim: spatial dimension (which offsets ``r`` is made of).
        refit: the refit of the caller (same edges, target and split): terms -> (expression, held-out error).
        floor: errors below it count as equal (the refit's own floor).
    """
    reduced = reduce_identities(expression, data_identities(values), dim)
    if reduced == sympy.expand(expression) or reduced == 0:  # no identity applies: the reading stays as it is
        return expression, error
    candidate, candidate_error = refit(reduced)
    if candidate is None or complexity(candidate) >= complexity(expression):
        return expression, error
    if candidate_error > max(error, floor) * (1 + SAME_ERROR):  # NaN (too few edges to score) compares False
        return expression, error
    return candidate, candidate_error
