"""The EQL on its own: ``EQLRegressor``, a formula from a plain table, with scikit-learn's conventions.

The same engine as the GN's EQL edge model (one implementation, two faces): the network is
:class:`eqlgn.eql.EQL` (identity, product, power, square, sin, division, constant units), trained in
the phases of :class:`eqlgn.phases.EQLPhaseSchedule` (warm-up, L1 on the weights, pruning,
fine-tuning), expanded exactly from its weights (:func:`eqlgn.eql.to_polynomials`, or SymPy with
a time limit for non-polynomial units) and refitted sparsely (terms chosen on half the rows, scored on the other)
(:func:`eqlgn.extraction.sparse_refit`: backward elimination, the forward path, no term
typically below 5 % of the target). What differs from the GN: the target is the table's ``y``
(not a message), and the inputs are the table's columns and, with ``reciprocals`` (default), the
reciprocal ``1/x`` of every column of one sign — the GN's ``inv_r`` inputs, so that a law such as
``q / (4 π ε r)`` is a monomial the polynomial units reach and the exact expansion reads — each
scaled by its 99th percentile of |value| (scaled, never shifted, so monomials stay monomials), the
target by its standard deviation.

**Restarts** train side by side as one batched model (``torch.func.vmap`` over stacked
parameters, as :mod:`eqlgn.multistart` does for GNs): ``restarts`` initialisations cost far less
than as many fits. Restart ``k`` trains with the ``k``-th L1 coefficient of ``penalty`` in turn
(default :data:`PENALTY_PATH`, 1e-3 to 3e-2: a path of penalties for the price of the restarts; a
weak penalty leaves a network that fits but reads as hundreds of terms, a strong one a sparse
network). Each gives a formula; the kept one is the simplest (fewest terms) of those
whose validation error is within ``2 ×`` the best's (or below ``floor``). The refit's backward
elimination drops terms in bulk while more than :data:`REFIT_BULK_ABOVE` remain
(:func:`eqlgn.extraction.backward_elimination`): a dense restart costs seconds to read, not minutes.

**Power restarts** (``power_restarts``, default 4) train beside them a one-layer network of identity and power
units (:data:`POWER_UNITS`; Durbin & Rumelhart's product units ``prod |x_i| ** e_i``, their exponents rounded to
whole numbers from the pruning on, so that the fine-tuning fits the rest to them): a monomial of any degree, such
as ``m q⁴ / (ε² h² n²)``, which two product layers (degree 4) cannot express. Their formulas compete with the
others' on the same terms (validation error, then fewest terms).

**The reciprocal target** (``reciprocal_target``): where ``y`` keeps one sign, every restart trains on ``1 / y``
too, and the reciprocal of its formula competes with the rest (its error measured on ``y``). A sum in a
denominator, out of the units' reach as ``y``, is often a sum of monomials as ``1 / y``: ``pr V / (Γ - 1)`` is
``1 / (Γ / (pr V) - 1 / (pr V))``, ``ω₀ / (1 - v / c)`` is ``1 / (1 / ω₀ - v / (c ω₀))``. It doubles the training.

``fit`` validates its input with one-line errors (NaN/inf, shapes, a target without variance,
an unknown unit); ``predict`` evaluates the **formula**, not the network: what you read is what
predicts.
"""

from __future__ import annotations

import copy
import inspect
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sympy
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .config import EQLPhases
from .eql import EQL, to_polynomials
from .equations import GuardedDivision, evaluate, evaluate_sum
from .errors import ConfigError
from .extraction import expand_component, round_constants, sparse_refit
from .phases import EQLPhaseSchedule
from .tabular import check_table, variable_names_of

SELECTION_FACTOR = 2.0  # restarts within this factor of the best validation error compete on complexity
PENALTY_PATH = (1e-3, 3e-3, 1e-2, 3e-2)
"""The default L1 coefficients, one per restart in turn (chosen on the Feynman formulas' design seed 1; docs)."""
POWER_UNITS = {"identity": 8, "power": 4}
"""The units of the one-layer power network (``power_restarts``): monomials of any degree, e.g. ``m q⁴/(ε² h² n²)``."""
REFIT_BULK_ABOVE = 40  # the refit's backward elimination drops terms in bulk above this many (extraction.py)
TOGETHER_TERMS = 12  # a reciprocal formula of at most this many terms is written as one fraction


@dataclass(frozen=True)
class Restart:
    """One restart's formulas (one per target, in the original units) and their validation error."""

    expressions: list[sympy.Expr]
    error: float
    terms: int


class _Loss(nn.Module):
    """One restart's loss (mean squared error + phase penalties) on a batch: the module stacked and vmap-ed."""

    def __init__(self, eql: EQL, penalty: float = 0.0):
        super().__init__()
        self.eql, self.l1 = eql, 0.0  # l1: 1 in the sparsify phase, else 0 (the phase schedule's switch)
        self.register_buffer("strength", torch.tensor(float(penalty)))  # this restart's L1 coefficient

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        error = ((self.eql(x) - y) ** 2).mean()
        loss = error + self.eql.penalty(x)
        if self.l1 > 0:
            loss = loss + self.l1 * self.strength * self.eql.l1()
        return loss, error


class EQLRegressor:
    """A closed-form formula ``y = f(X)`` learned by an Equation Learner (see module docstring).

    Args:
        units: unit counts per hidden layer, e.g. ``{"identity": 8, "product": 4, "division": 2}``
            (unit names: identity, product, power, square, sin, division, constant).
        hidden_layers: EQL layers (each product layer doubles the reachable degree).
        penalty: L1 coefficient on the weights in the sparsify phase; a sequence gives restart ``k`` the
            ``k % len``-th value (a path of penalties, chosen among like the restarts: on validation error and
            complexity).
        steps: optimiser steps (Adam, one-cycle learning rate).
        restarts: initialisations trained side by side; the kept one is chosen on validation error and complexity.
        batch_size: rows per step.
        max_lr: peak learning rate.
        prune_threshold: weights below this (on scaled inputs) are zeroed and frozen at ``prune_at`` of the steps.
        warmup: fraction of steps before the L1 penalty starts.
        prune_at: fraction of steps at which small weights are pruned.
        power_restarts: further restarts of a one-layer network of identity and power units
            (:data:`POWER_UNITS`: Durbin & Rumelhart's product units ``prod |x_i| ** e_i``, exponents rounded to whole
            numbers from the pruning on), chosen among like the others: a monomial of any degree in few weights.
        reciprocals: add ``1/x`` of every column whose values share one sign as an input.
        squares: add the square of every input (``x²``, and ``1/x²`` with ``reciprocals``) as an input.
        reciprocal_target: where ``y`` keeps one sign, train every restart on ``1 / y`` too and offer the reciprocal
            of its formula: ``pr V / (Γ - 1)`` is ``1 / (Γ / (pr V) - 1 / (pr V))``, a sum of monomials.
        floor: relative error below which the refit counts formulas as equally good.
        digits: significant digits of the printed constants.
        random_state: seeds the initialisations, the validation split and the batches.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ...
        progress: show a progress bar (default: when stderr is a terminal).
    """

    def __init__(self, units: Mapping[str, int] | None = None, *, hidden_layers: int = 2,
                 penalty: float | Sequence[float] = PENALTY_PATH,
                 steps: int = 3000, restarts: int = 8, power_restarts: int = 4, batch_size: int = 256,
                 max_lr: float = 1e-2,
                 prune_threshold: float = 0.05, warmup: float = 0.25, prune_at: float = 0.9, reciprocals: bool = True,
                 squares: bool = False, reciprocal_target: bool = False, floor: float = 0.01,
                 digits: int = 4, random_state: int | None = 0, device: str = "auto", progress: bool | None = None):
        self.units, self.hidden_layers, self.penalty, self.steps = units, hidden_layers, penalty, steps
        self.restarts, self.power_restarts, self.batch_size, self.max_lr = restarts, power_restarts, batch_size, max_lr
        self.prune_threshold = prune_threshold
        self.warmup, self.prune_at, self.reciprocals, self.squares = warmup, prune_at, reciprocals, squares
        self.reciprocal_target = reciprocal_target
        self.floor, self.digits = floor, digits
        self.random_state, self.device, self.progress = random_state, device, progress

    # -- scikit-learn's parameter protocol ------------------------------------------------

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's arguments as set (scikit-learn's ``get_params``)."""
        return {name: getattr(self, name) for name in inspect.signature(type(self).__init__).parameters
                if name != "self"}

    def set_params(self, **params) -> EQLRegressor:
        """Set constructor arguments by name (scikit-learn's ``set_params``); an unknown name is a ValueError."""
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                raise ConfigError(f"EQLRegressor has no parameter {name!r}; valid: {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self):
        """scikit-learn's estimator tags (a regressor, several targets allowed), without inheriting from sklearn."""
        from sklearn.utils import InputTags, RegressorTags, Tags, TargetTags

        return Tags(estimator_type="regressor", target_tags=TargetTags(required=True, multi_output=True),
                    regressor_tags=RegressorTags(), input_tags=InputTags())

    def __repr__(self) -> str:
        defaults = {k: p.default for k, p in inspect.signature(type(self).__init__).parameters.items() if k != "self"}
        changed = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v is not defaults[k]
                            and v != defaults[k])
        return f"EQLRegressor({changed})"

    # -- fitting ----------------------------------------------------------------------------

    def fit(self, X, y, variable_names: Sequence[str] | None = None) -> EQLRegressor:
        """Learn the formula from ``X [n_samples, n_features]`` and ``y [n_samples]`` (or ``[n_samples, k]``)."""
        X, Y = check_table(X, y)
        self.n_features_in_ = X.shape[1]
        self._single = np.ndim(y) == 1
        names = variable_names_of(variable_names, X.shape[1])
        self.variable_names_ = names
        _check_settings(self)
        device = torch.device("cuda" if self.device == "auto" and torch.cuda.is_available() else
                              ("cpu" if self.device == "auto" else self.device))
        one_sign = (X > 0).all(axis=0) | (X < 0).all(axis=0)
        self._inverted = np.flatnonzero(one_sign) if self.reciprocals else np.zeros(0, dtype=int)
        inputs = self._design(X)
        self._x_scale = 1.0 / np.maximum(np.quantile(np.abs(inputs), 0.99, axis=0), 1e-12)
        self._y_scale = np.maximum(Y.std(axis=0), 1e-300)
        values = dict(zip(names, X.T))  # the refit chooses terms on half the rows and scores them on the other half
        symbols = [sympy.Symbol(n) for n in names] + [1 / sympy.Symbol(names[j]) for j in self._inverted]
        symbols += [s**2 for s in symbols] if self.squares else []
        candidates = self._candidates(inputs, Y, values, symbols, device)
        if self.reciprocal_target and ((Y > 0).all(axis=0) | (Y < 0).all(axis=0)).all():
            candidates += [_reciprocal(c, values, Y) for c in self._candidates(inputs, 1 / Y, values, symbols, device)]
        self.restarts_ = candidates
        best = min(c.error for c in candidates)
        near = [c for c in candidates if c.error <= max(SELECTION_FACTOR * best, self.floor)]
        chosen = min(near, key=lambda c: (c.terms, c.error))
        self.expressions_ = chosen.expressions
        self.validation_error_ = chosen.error
        return self

    def _design(self, X: np.ndarray) -> np.ndarray:
        """The network's inputs: the columns, then the reciprocals of those of one sign, then (``squares``) the
        squares of both."""
        inputs = np.concatenate([X, 1.0 / X[:, self._inverted]], axis=1)
        return np.concatenate([inputs, inputs**2], axis=1) if self.squares else inputs

    def _candidates(self, inputs: np.ndarray, Y: np.ndarray, values: dict, symbols: list, device: torch.device
                    ) -> list[Restart]:
        """Every restart (and power restart) trained on ``Y`` and read as formulas."""
        scale = np.maximum(Y.std(axis=0), 1e-300)
        networks = self._train(inputs, Y / scale, device, self.hidden_layers, self.units, self.restarts)
        if self.power_restarts:
            networks += self._train(inputs, Y / scale, device, 1, POWER_UNITS, self.power_restarts)
        return [_read(network, values, Y, symbols, x_scale=self._x_scale, y_scale=scale, floor=self.floor,
                      digits=self.digits) for network in networks]

    def _train(self, X: np.ndarray, Y: np.ndarray, device: torch.device, layers: int, units, restarts: int
               ) -> list[EQL]:
        """``restarts`` networks of ``layers`` layers of ``units`` trained side by side (one vmap-ed model)."""
        from tqdm.auto import tqdm

        networks = []
        for k in range(restarts):
            torch.manual_seed((0 if self.random_state is None else self.random_state) * 100003 + k)
            networks.append(EQL(X.shape[1], Y.shape[1], layers, units, init_scale=1.0).to(device))
        wrappers = [_Loss(n, penalty) for n, penalty in zip(networks, restart_penalties(self.penalty, restarts))]
        params, buffers = stack_module_state(wrappers)
        params = {k: v.detach().requires_grad_() for k, v in params.items()}
        base = copy.deepcopy(wrappers[0]).to("meta")
        batched = vmap(lambda p, b, x, t: functional_call(base, (p, b), (x, t)), in_dims=(0, 0, None, None))
        x = torch.as_tensor(X * self._x_scale, dtype=torch.float32, device=device)
        t = torch.as_tensor(Y, dtype=torch.float32, device=device)  # scaled by _candidates
        optimizer = torch.optim.Adam(params.values(), lr=self.max_lr)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.max_lr, total_steps=self.steps)
        phases = EQLPhaseSchedule(EQLPhases(1.0, self.warmup, self.prune_at, self.prune_threshold), self.steps)
        generator = torch.Generator().manual_seed(0 if self.random_state is None else self.random_state)
        show = sys.stderr.isatty() if self.progress is None else self.progress
        for step in tqdm(range(self.steps), desc="EQLRegressor", unit="step", disable=not show):
            if step == phases.prune_step:
                _prune(params, buffers, self.prune_threshold)
            base.l1 = phases.weight_penalty(step)
            rows = torch.randint(len(x), (min(self.batch_size, len(x)),), generator=generator).to(device)
            loss, _ = batched(params, buffers, x[rows], t[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            optimizer.step()
            scheduler.step()
            if step >= phases.prune_step:
                _whole_exponents(params)
        if not all(torch.isfinite(v).all() for v in params.values()):
            raise ConfigError("training diverged (NaN/inf weights); lower max_lr or use fewer product layers")
        for k, network in enumerate(networks):
            network.load_state_dict({name[len("eql."):]: value.detach()[k] for name, value in
                                     (params | buffers).items() if name.startswith("eql.")})
            network.eval()
        return networks

    # -- using the formula -------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "expressions_"):
            raise ConfigError("this EQLRegressor is not fitted yet; call fit(X, y) first")

    def predict(self, X) -> np.ndarray:
        """The formula's values on ``X`` (``[n_samples]``, or ``[n_samples, k]`` for several targets)."""
        self._check_fitted()
        X, _ = check_table(X, None, self.n_features_in_)
        values = dict(zip(self.variable_names_, X.T))
        out = np.stack([evaluate_sum(e, values) for e in self.expressions_], axis=1)
        return out[:, 0] if self._single else out

    def score(self, X, y) -> float:
        """R² of the formula on ``(X, y)`` (averaged over targets)."""
        predicted = self.predict(X).reshape(len(X), -1)
        y = np.asarray(y, dtype=float).reshape(len(X), -1)
        residual = ((y - predicted) ** 2).sum(axis=0)
        total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        return float(np.mean(1 - residual / np.maximum(total, 1e-300)))

    def sympy(self):
        """The formula (one SymPy expression, or a list for several targets), variables as named in ``fit``."""
        self._check_fitted()
        return self.expressions_[0] if self._single else list(self.expressions_)

    def latex(self):
        """The formula in LaTeX (one string, or a list)."""
        self._check_fitted()
        texts = [sympy.latex(e) for e in self.expressions_]
        return texts[0] if self._single else texts

    def pytorch(self) -> nn.Module:
        """The formula as a torch module, ``X [N, n_features] -> [N]`` (or ``[N, k]``), constants trainable."""
        self._check_fitted()
        return FormulaModule(self.expressions_, self.variable_names_, self._single)


def _check_settings(model: EQLRegressor) -> None:
    """Every setting of ``model`` valid, or a one-line error naming it."""
    for name in ("steps", "restarts", "batch_size"):
        if not isinstance(getattr(model, name), (int, np.integer)) or getattr(model, name) < 1:
            raise ConfigError(f"{name} must be a positive integer, got {getattr(model, name)!r}")
    if not isinstance(model.power_restarts, (int, np.integer)) or model.power_restarts < 0:
        raise ConfigError(f"power_restarts must be an integer >= 0, got {model.power_restarts!r}")
    if model.hidden_layers < 0:
        raise ConfigError(f"hidden_layers must be >= 0, got {model.hidden_layers}")
    for penalty in penalty_values(model.penalty):
        EQLPhases(penalty, model.warmup, model.prune_at, model.prune_threshold)  # checks the phase settings


def _reciprocal(restart: Restart, values: dict[str, np.ndarray], Y: np.ndarray) -> Restart:
    """A restart fitted to ``1 / y`` as a formula for ``y``: its reciprocal (one fraction where the formula has at
    most :data:`TOGETHER_TERMS` terms), the error measured on ``y`` itself."""
    expressions, errors = [], []
    for k, e in enumerate(restart.expressions):
        short = len(sympy.Add.make_args(e)) <= TOGETHER_TERMS
        expressions.append(sympy.Integer(0) if e == 0 else sympy.together(1 / e) if short else
                           sympy.Pow(e, -1, evaluate=False))
        errors.append(1.0 if e == 0 else _relative_error(expressions[-1], values, Y[:, k]))
    return Restart(expressions, float(max(errors)), restart.terms)


def penalty_values(penalty: float | Sequence[float]) -> list[float]:
    """The L1 coefficients of ``penalty`` (one value, or a sequence of at least one)."""
    values = [penalty] if np.isscalar(penalty) else list(penalty)
    if not values:
        raise ConfigError("penalty needs at least one value")
    return [float(v) for v in values]


def restart_penalties(penalty: float | Sequence[float], restarts: int) -> list[float]:
    """Each restart's L1 coefficient: the values of ``penalty`` in turn."""
    values = penalty_values(penalty)
    return [values[k % len(values)] for k in range(restarts)]


class FormulaModule(nn.Module):
    """Formulas over named columns as a torch module; every constant a trainable parameter."""

    def __init__(self, expressions: Sequence[sympy.Expr], names: Sequence[str], single: bool):
        super().__init__()
        constants, templates = [], []
        for expression in expressions:
            swap = {}
            for value in sorted(expression.atoms(sympy.Float), key=float):
                swap[value] = sympy.Symbol(f"_c{len(constants)}")
                constants.append(float(value))
            templates.append(expression.xreplace(swap))
        self.constants = nn.Parameter(torch.tensor(constants, dtype=torch.float32))
        symbols = [sympy.Symbol(n) for n in names]
        parameters = [sympy.Symbol(f"_c{i}") for i in range(len(constants))]
        self._functions = [sympy.lambdify([symbols, parameters], t, "torch") for t in templates]
        self._single = single

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = list(x.unbind(-1))
        constants = list(self.constants.unbind(0))
        out = torch.stack([torch.as_tensor(f(columns, constants), dtype=x.dtype, device=x.device)
                           * torch.ones(x.shape[:-1], dtype=x.dtype, device=x.device) for f in self._functions], -1)
        return out[..., 0] if self._single else out


def _read(network: EQL, values: dict[str, np.ndarray], Y: np.ndarray, symbols: list, *, x_scale: np.ndarray,
          y_scale: np.ndarray, floor: float, digits: int) -> Restart:
    """A restart's formulas in the original units, sparsely refitted (error: on the refit's held-out half)."""
    scaled = [sympy.Float(float(s)) * v for s, v in zip(x_scale, symbols)]
    polynomials = to_polynomials(network)
    raw = None if polynomials is not None else network.to_sympy(scaled)
    expressions, errors, terms = [], [], 0
    for k in range(Y.shape[1]):
        if polynomials is not None:
            parts = [sympy.Float(c) * sympy.Mul(*[v**int(e) for v, e in zip(scaled, m)])
                     for m, c in polynomials[k].items() if c != 0]
            expanded = sympy.expand(sympy.Add(*parts))
        else:
            expanded = expand_component(_plain_abs(_plain_division(raw[k], values), values))
        expanded = expanded * float(y_scale[k])
        if expanded == 0:
            expression, error = sympy.Integer(0), 1.0
        else:
            expression, error = sparse_refit(expanded, values, Y[:, k], floor, seed=0, bulk_above=REFIT_BULK_ABOVE)
            expression = expanded if expression is None else expression
        error = _relative_error(expression, values, Y[:, k]) if not np.isfinite(error) else error
        expressions.append(_whole_numbers(round_constants(expression, digits)))
        errors.append(error)
        terms += len(sympy.Add.make_args(expression))
    return Restart(expressions, float(max(errors)), terms)


def _prune(params: dict, buffers: dict, threshold: float) -> None:
    """Prune every restart's small weights and biases (masks in the stacked buffers; eqlgn.eql.MaskedLinear)."""
    with torch.no_grad():
        for name, value in params.items():
            mask_name = name[: -len("weight")] + "weight_mask" if name.endswith("weight") else \
                name[: -len("bias")] + "bias_mask"
            if mask_name in buffers:
                buffers[mask_name].mul_((value.abs() >= threshold).float())
                value.mul_(buffers[mask_name])


def _whole_exponents(params: dict) -> None:
    """Round every power unit's exponents to whole numbers (from the pruning on: the fine-tuning fits the rest of
    the network to them, and the formula reads ``x ** 2``, not ``x ** 1.97``)."""
    with torch.no_grad():
        for name, value in params.items():
            if ".exponents." in name:
                value.copy_(value.round())


def _plain_abs(expression: sympy.Expr, values: dict) -> sympy.Expr:
    """``|b|`` of a power unit as ``b`` (or ``-b``) where ``b`` keeps one sign on the rows (innermost first)."""
    for absolute in sorted(expression.atoms(sympy.Abs), key=sympy.count_ops):
        inside = evaluate([absolute.args[0]], values)[:, 0]
        if (inside > 0).all() or (inside < 0).all():
            plain = absolute.args[0] if (inside > 0).all() else -absolute.args[0]
            return _plain_abs(expression.xreplace({absolute: plain}), values)
    return expression


def _plain_division(expression: sympy.Expr, values: dict) -> sympy.Expr:
    """Division units as plain ``a / b`` where their denominators stay above θ on the rows (EQL÷ trains them so)."""
    swap = {}
    for guarded in expression.atoms(GuardedDivision):
        a, b, theta = guarded.args
        if (evaluate([b], values)[:, 0] > float(theta)).all():
            swap[guarded] = a / b
    return expression.xreplace(swap) if swap else expression


def _whole_numbers(expression: sympy.Expr) -> sympy.Expr:
    """Constants that are whole numbers at the printed precision written as integers (``1.0*x0`` -> ``x0``)."""
    swap = {f: sympy.Integer(round(float(f))) for f in expression.atoms(sympy.Float) if float(f) == round(float(f))}
    return expression.xreplace(swap) if swap else expression


def _relative_error(expression: sympy.Expr, values: dict, target: np.ndarray) -> float:
    predicted = evaluate_sum(expression, values)
    return float(np.sqrt(np.mean((predicted - target) ** 2)) / max(float(target.std()), 1e-300))
