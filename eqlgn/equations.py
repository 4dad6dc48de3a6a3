"""The symbol vocabulary of every equation eqlgn prints or saves, and safe parsing.

Symbols (docs/architecture.md): ``x1 y1 z1 vx1 vy1 vz1 q1 m1 x2 y2 z2 vx2 vy2 vz2 q2 m2 dx dy dz r``
(1 = receiver, 2 = sender, ``dx = x1 - x2``, ``r = |x1 - x2|``).

``sympy.sympify`` evaluates Python, so a string read from a file is parsed only after
:func:`parse_equation` has checked it holds nothing but numbers, operators, parentheses,
these symbols and a fixed list of function names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy

from .errors import ConfigError
from .layout import NodeLayout


class GuardedDivision(sympy.Function):
    """EQL÷ division unit ``GuardedDivision(a, b, θ) = a / b`` where ``b > θ``, else 0.

    A named function rather than a ``Piecewise``: nested piecewise expressions make SymPy
    fold conditions combinatorially, while this stays a small tree. NumPy evaluation goes
    through :data:`NUMPY_FUNCTIONS`.
    """

    nargs = 3


def _guarded_division_numpy(a, b, theta):
    valid = np.asarray(b) > theta
    return np.where(valid, np.asarray(a) / np.where(valid, b, 1.0), 0.0)


NUMPY_FUNCTIONS = {"GuardedDivision": _guarded_division_numpy}
"""Extra modules for ``sympy.lambdify`` so every vocabulary function evaluates with NumPy."""



def _real_cube_root(x):
    return sympy.sign(x) * sympy.Abs(x) ** sympy.Rational(1, 3)


EDGE_SYMBOL_NAMES = tuple("x1 y1 z1 vx1 vy1 vz1 q1 m1 x2 y2 z2 vx2 vy2 vz2 q2 m2 dx dy dz r".split())
SUMMED_SYMBOL_NAMES = ("s1", "s2", "s3")
"""Node-model inputs: ``sK`` is the K-th significant message component summed over the
edges into the receiving particle (used only by node-model equations)."""
SYMBOL_NAMES = EDGE_SYMBOL_NAMES + SUMMED_SYMBOL_NAMES
SYMBOLS: dict[str, sympy.Symbol] = {name: sympy.Symbol(name, real=True) for name in SYMBOL_NAMES}
FUNCTIONS: dict[str, object] = {
    "sqrt": sympy.sqrt, "exp": sympy.exp, "log": sympy.log, "sin": sympy.sin, "cos": sympy.cos,
    "tan": sympy.tan, "tanh": sympy.tanh, "sinh": sympy.sinh, "cosh": sympy.cosh, "asin": sympy.asin,
    "acos": sympy.acos, "atan": sympy.atan, "Abs": sympy.Abs, "abs": sympy.Abs, "sign": sympy.sign,
    "floor": sympy.floor, "ceil": sympy.ceiling, "ceiling": sympy.ceiling, "cbrt": _real_cube_root,
    "Max": sympy.Max, "Min": sympy.Min, "max": sympy.Max, "min": sympy.Min,
    "GuardedDivision": GuardedDivision,
}
"""Function names an equation string may use (SymPy's printed names and operon's infix names)."""
_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|([A-Za-z_]\w*)|(\*\*|[-+*/^(),]))")


def symbol(name: str) -> sympy.Symbol:
    """The vocabulary symbol ``name`` (real-valued)."""
    try:
        return SYMBOLS[name]
    except KeyError:
        raise ConfigError(f"{name!r} is not in the symbol vocabulary: {' '.join(SYMBOL_NAMES)}") from None


def parse_equation(text: str) -> sympy.Expr:
    """Parse an equation string safely (only numbers, operators, vocabulary and known functions).

    Raises:
        ConfigError: naming the first character or name that is not allowed.
    """
    if not isinstance(text, str):
        raise ConfigError(f"an equation must be a string, got {type(text).__name__}")
    if len(text) > 20000:
        raise ConfigError("equation string is longer than 20000 characters")
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip() == "":
                break
            raise ConfigError(f"equation {text[:60]!r} has a character not allowed at position {position}: "
                              f"{text[position]!r}")
        name = match.group(2)
        if name is not None and name not in SYMBOLS and name not in FUNCTIONS:
            raise ConfigError(f"equation {text[:60]!r} uses {name!r}, which is neither a vocabulary "
                              f"symbol ({' '.join(SYMBOL_NAMES)}) nor an allowed function")
        position = match.end()
    try:
        return sympy.sympify(text.replace("^", "**"), locals={**SYMBOLS, **FUNCTIONS})
    except (sympy.SympifyError, SyntaxError, TypeError) as exc:
        raise ConfigError(f"equation {text[:60]!r} does not parse: {exc}") from None


def as_expression(value: sympy.Expr | str) -> sympy.Expr:
    """A SymPy expression from an expression or a (safely parsed) string."""
    return parse_equation(value) if isinstance(value, str) else sympy.sympify(value)


def to_vocabulary(expr: sympy.Expr) -> sympy.Expr:
    """Replace any plain ``Symbol('dx')`` by the vocabulary's real symbol of the same name."""
    swap = {s: SYMBOLS[s.name] for s in expr.free_symbols if s.name in SYMBOLS and s != SYMBOLS[s.name]}
    return expr.xreplace(swap) if swap else expr


def evaluate(exprs: Sequence[sympy.Expr], values: Mapping[str, np.ndarray]) -> np.ndarray:
    """Evaluate expressions with NumPy on arrays of their symbols, ``[N, len(exprs)]``.

    Symbols are the vocabulary's, or any others (an :class:`~eqlgn.regressor.EQLRegressor`'s ``x0, x1, ...``)."""
    exprs = [to_vocabulary(as_expression(e)) for e in exprs]
    args = sorted({s for e in exprs for s in e.free_symbols}, key=lambda s: s.name)
    used = [s.name for s in args]
    unknown = [name for name in used if name not in values]
    if unknown:
        raise ConfigError(f"cannot evaluate: no values for symbol(s) {unknown}")
    length = len(next(iter(values.values())))
    columns = []
    for expr in exprs:
        fn = sympy.lambdify(args, expr, [NUMPY_FUNCTIONS, "numpy"])
        column = np.asarray(fn(*[values[name] for name in used]), dtype=np.float64)
        columns.append(np.broadcast_to(column, (length,)))
    return np.stack(columns, axis=-1)


def evaluate_sum(expression: sympy.Expr | str, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """One expression's values ``[N]``, evaluated term by term and summed (a dense expansion of thousands of
    terms compiles in pieces where one lambdified function would not); the reciprocal of a sum, ``1 / (a + b +
    ...)``, as the reciprocal of the sum so evaluated."""
    expression = as_expression(expression)
    if expression.is_Pow and expression.exp == -1 and expression.base.is_Add:
        with np.errstate(divide="ignore"):
            return 1.0 / evaluate_sum(expression.base, values)
    return evaluate(list(sympy.Add.make_args(expression)), values).sum(axis=1)


def pair_values(receiver: np.ndarray, sender: np.ndarray, dim: int) -> dict[str, np.ndarray]:
    """Vocabulary symbol values of particle pairs from their node features (NumPy or torch).

    Args:
        receiver: ``[N, F]`` features of particle 1 (position, velocity, q, m; see
            :mod:`eqlgn.data`).
        sender: ``[N, F]`` features of particle 2.
        dim: spatial dimension.

    Returns:
        ``{symbol name: [N] values}`` for ``x1 .. m1``, ``x2 .. m2``, ``dx ..`` and ``r``.
    """
    layout = NodeLayout(dim)
    dx = receiver[:, layout.position] - sender[:, layout.position]
    values = {"r": (dx**2).sum(axis=1) ** 0.5}  # NumPy arrays or torch tensors alike
    for node, features in ((1, receiver), (2, sender)):
        for name in layout.names():
            values[f"{name}{node}"] = features[:, layout.column(name)]
    for i, axis in enumerate(layout.axes):
        values[f"d{axis}"] = dx[:, i]
    return values


def complexity(expr: sympy.Expr) -> int:
    """Number of nodes of the expression tree (PySR-style size)."""
    return int(sum(1 for _ in sympy.preorder_traversal(expr)))


def unrotated(expressions: Sequence[sympy.Expr], dim: int) -> bool:
    """Whether each expression depends on exactly one spatial axis (``dx`` or ``x1``/``x2``, ...).

    A GN may learn messages that are any linear map of the force; "unrotated" ones line up
    with the coordinate axes, which is what makes them readable one component at a time.
    """
    axes = [{f"d{a}", f"{a}1", f"{a}2"} for a in "xyz"[:dim]]
    return all(sum(bool({s.name for s in as_expression(e).free_symbols} & axis) for axis in axes) == 1
               for e in expressions)


def torch_function(exprs: Sequence[sympy.Expr], params: Sequence[sympy.Symbol] = ()):
    """Expressions compiled once to torch: ``f(values, theta=()) -> [N, len(exprs)]``.

    ``values`` maps vocabulary symbol names to tensors ``[N]`` (extra names are ignored);
    ``theta`` gives the values of ``params`` (constants being fitted), so the result is
    differentiable in both. Constant expressions are broadcast to ``[N]``.
    """
    import torch

    exprs = [to_vocabulary(as_expression(e)) for e in exprs]
    used = sorted({s.name for e in exprs for s in e.free_symbols if s.name in SYMBOLS})
    fns = [sympy.lambdify([list(params), [SYMBOLS[name] for name in used]], e, "torch") for e in exprs]

    def evaluate_torch(values: Mapping[str, Any], theta: Sequence = ()) -> Any:
        like = next(iter(values.values()))
        args = [values[name] for name in used]
        return torch.stack([torch.as_tensor(fn(list(theta), args)) * torch.ones_like(like) for fn in fns], dim=-1)

    return evaluate_torch
