"""Equation Learner (EQL) networks: layers whose units are identity, product, constant, ...

An EQL layer (Martius & Lampert 2016; Sahoo et al. 2018 for EQL÷) is a linear map
``z = W x + b`` followed by units applied to **slices** of ``z``:

==========  ===============================  ============================
unit        pre-activations used             output
==========  ===============================  ============================
identity    1                                ``z``
product     2 (``a`` and ``b``)              ``a * b``
square      1                                ``z ** 2``
sin         1                                ``sin(z)``
division    2 (``a`` and ``b``)              ``a / b`` where ``b > θ``, else 0
power       0 (reads the layer's inputs)     ``prod_i |x_i| ** e_i`` over the layer's inputs ``x``
constant    0                                ``1``
==========  ===============================  ============================

The units act on contiguous slices, so a layer is one matmul plus a few elementwise ops
(no Python loop over units). After the hidden layers a linear output layer gives the
result; with sparse weights the whole network *is* a formula, and :meth:`EQL.to_sympy`
reads it out. Weights carry a mask: :meth:`EQL.prune` zeroes small weights and freezes
them at exactly zero for the rest of training.

Power units are Durbin & Rumelhart's (1989) product units, ``exp(E log|x|)`` over the layer's inputs ``x``,
with a trainable exponent matrix ``E`` (a masked linear map, pruned and penalised like every weight): one unit
is a monomial of any degree (``m q⁴ / (ε² h² n²)``) in a handful of weights, where product units need a layer per
doubling of the degree. ``|x|`` is floored at :data:`POWER_FLOOR` and the exponent sum capped at
:data:`POWER_LOG_CAP` so that a unit stays finite while it trains. (Over the layer's identity units
instead, they would put sums in denominators, ``pr V / (Γ - 1)``; tried so on four Feynman formulas (design
seed 1), they did not: the identities' exponents stayed below 1, the fit settled on expansions in ``1/Γ``.)

Division units follow EQL÷: outside ``b > θ`` they output 0 and :meth:`EQL.penalty`
adds ``sum(max(θ - b, 0))`` so training pushes denominators above the threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sympy
import torch
from torch import nn

from .equations import GuardedDivision
from .errors import ConfigError, unknown_name

UNIT_TYPES = ("identity", "product", "power", "square", "sin", "division", "constant")
_ARITY = {"identity": 1, "product": 2, "power": 0, "square": 1, "sin": 1, "division": 2, "constant": 0}
POWER_FLOOR = 1e-4  # |z| below this reads as this in a power unit's log
POWER_LOG_CAP = 30.0  # a power unit's log-output is capped here (e^30 ~ 1e13)
DEFAULT_UNITS: dict[str, int] = {"identity": 16, "product": 8}


L12_SMOOTHING = 0.01
"""Below this |w| the L1/2 penalty is a polynomial (finite gradient at zero)."""


def smoothed_l12(w: torch.Tensor, a: float = L12_SMOOTHING) -> torch.Tensor:
    """``|w|^(1/2)``, smoothed below ``a`` to ``(-w^4 / (8 a^3) + 3 w^2 / (4 a) + 3 a / 8)^(1/2)`` (equal value
    and slope at ``|w| = a``): the smoothed L1/2 regulariser of Wu et al. 2014, used by Kim et al.'s DeepSymReg."""
    inner = -w.pow(4) / (8 * a ** 3) + 3 * w.pow(2) / (4 * a) + 3 * a / 8
    return torch.where(w.abs() >= a, w.abs(), inner).sqrt()


@dataclass(frozen=True)
class UnitLayout:
    """Where each unit type reads its pre-activations and writes its outputs."""

    counts: tuple[tuple[str, int], ...]

    @classmethod
    def from_mapping(cls, units: Mapping[str, int]) -> UnitLayout:
        for name, count in units.items():
            if name not in _ARITY:
                raise unknown_name("EQL unit", name, UNIT_TYPES)
            if int(count) < 0:
                raise ConfigError(f"EQL unit count for {name!r} must be >= 0, got {count}")
        ordered = tuple((name, int(units[name])) for name in UNIT_TYPES if units.get(name, 0) > 0)
        if not ordered:
            raise ConfigError("an EQL layer needs at least one unit")
        return cls(ordered)

    def count(self, name: str) -> int:
        """How many units of type ``name`` the layer has."""
        return dict(self.counts).get(name, 0)

    @property
    def pre_width(self) -> int:
        """Width of the linear map's output (pre-activations)."""
        return sum(_ARITY[name] * count for name, count in self.counts)

    @property
    def out_width(self) -> int:
        """Width of the layer's output (one value per unit)."""
        return sum(count for _, count in self.counts)

    def slices(self) -> Iterator[tuple[str, int, int, int]]:
        """``(unit name, count, start, stop)`` of each unit type's pre-activations."""
        start = 0
        for name, count in self.counts:
            stop = start + _ARITY[name] * count
            yield name, count, start, stop
            start = stop


class MaskedLinear(nn.Module):
    """``y = x (W * mask)^T + b * bias_mask``; masked entries are exactly zero and get no gradient."""

    def __init__(self, in_features: int, out_features: int, init_scale: float = 1.0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * init_scale / np.sqrt(in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.register_buffer("weight_mask", torch.ones(out_features, in_features))
        self.register_buffer("bias_mask", torch.ones(out_features))

    def effective(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The weight and bias actually applied (masks included)."""
        bias = None if self.bias is None else self.bias * self.bias_mask
        return self.weight * self.weight_mask, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.effective()
        return nn.functional.linear(x, weight, bias)

    @torch.no_grad()
    def prune(self, threshold: float) -> int:
        """Zero and freeze every weight and bias with ``|w| < threshold``; return how many."""
        before = int(self.weight_mask.sum() + self.bias_mask.sum())
        self.weight_mask.mul_((self.weight.abs() >= threshold).float())
        self.weight.mul_(self.weight_mask)
        if self.bias is not None:
            self.bias_mask.mul_((self.bias.abs() >= threshold).float())
            self.bias.mul_(self.bias_mask)
        return before - int(self.weight_mask.sum() + self.bias_mask.sum())


class EQLLayer(nn.Module):
    """One hidden EQL layer: masked linear map, then units on slices of its output.

    Args:
        in_features: input width.
        units: unit type -> count, e.g. ``{"identity": 16, "product": 8}``.
        init_scale: multiplies the ``N(0, 1/in)`` weight initialisation; product units
            get gradients proportional to their other operand, so a wider start helps.
        division_threshold: θ of the division units.
    """

    def __init__(self, in_features: int, units: Mapping[str, int], init_scale: float = 1.0,
                 division_threshold: float = 1e-3):
        super().__init__()
        self.layout = UnitLayout.from_mapping(units)
        self.linear = MaskedLinear(in_features, self.layout.pre_width, init_scale)
        self.division_threshold = division_threshold
        self.out_features = self.layout.out_width
        powers = self.layout.count("power")  # exponents: [power units, layer inputs]
        self.exponents = MaskedLinear(in_features, powers, bias=False) if powers else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x)
        outputs = []
        for name, count, start, stop in self.layout.slices():
            if name == "constant":
                outputs.append(z.new_ones(*z.shape[:-1], count))
            elif name == "power":
                logs = x.abs().clamp_min(POWER_FLOOR).log()
                outputs.append(self.exponents(logs).clamp_max(POWER_LOG_CAP).exp())
            else:
                outputs.append(_apply_unit(name, z[..., start:stop], count, self.division_threshold))
        return torch.cat(outputs, dim=-1)

    def denominators(self, x: torch.Tensor) -> torch.Tensor | None:
        """Pre-activations feeding division denominators (for the EQL÷ penalty)."""
        for name, count, start, stop in self.layout.slices():
            if name == "division":
                return self.linear(x)[..., start + count : stop]
        return None

    def unit_expressions(self, z: list[sympy.Expr], inputs: list[sympy.Expr]) -> list[sympy.Expr]:
        """SymPy outputs of the units for SymPy pre-activations ``z`` of the layer's ``inputs``."""
        out = []
        for name, count, start, stop in self.layout.slices():
            part = z[start:stop]
            if name == "constant":
                out += [sympy.Integer(1)] * count
            elif name == "identity":
                out += part
            elif name == "product":
                out += [a * b for a, b in zip(part[:count], part[count:])]
            elif name == "power":
                out += power_expressions(self.exponents, inputs)
            elif name == "square":
                out += [a**2 for a in part]
            elif name == "sin":
                out += [sympy.sin(a) for a in part]
            else:  # division: a / b where b exceeds θ, else 0 (as in the forward pass)
                theta = sympy.Float(self.division_threshold)
                out += [GuardedDivision(a, b, theta) if b != 0 else sympy.Integer(0)
                        for a, b in zip(part[:count], part[count:])]
        return out


def power_expressions(exponents: MaskedLinear, inputs: list[sympy.Expr]) -> list[sympy.Expr]:
    """SymPy outputs of power units: ``prod |z_i| ** e_i`` (whole exponents printed as integers)."""
    weight, _ = exponents.effective()
    out = []
    for row in weight.detach().cpu().double().numpy():
        factors = [sympy.Abs(z) ** (sympy.Integer(int(e)) if e == round(e) else sympy.Float(e))
                   for e, z in zip(row, inputs) if e != 0]
        out.append(sympy.Mul(*factors))
    return out


def _apply_unit(name: str, part: torch.Tensor, count: int, threshold: float) -> torch.Tensor:
    if name == "identity":
        return part
    if name == "product":
        return part[..., :count] * part[..., count:]
    if name == "square":
        return part**2
    if name == "sin":
        return torch.sin(part)
    numerator, denominator = part[..., :count], part[..., count:]
    valid = denominator > threshold
    safe = torch.where(valid, denominator, torch.ones_like(denominator))
    return torch.where(valid, numerator / safe, torch.zeros_like(numerator))


class EQL(nn.Module):
    """An Equation Learner network: ``hidden_layers`` EQL layers and a linear output layer.

    Args:
        in_features: number of inputs.
        out_features: number of outputs.
        hidden_layers: number of EQL layers (each product layer doubles the reachable degree).
        units: unit counts per hidden layer (one mapping for all layers, or one per layer);
            default ``{"identity": 16, "product": 8}`` (Li & Kim's 16 identity / 8 product;
            their 8 constant units are replaced by the per-layer bias, which is equivalent).
        init_scale: initialisation width multiplier (see :class:`EQLLayer`).
        division_threshold: θ of division units.
        skip: skip connections: every layer after the first, and the output layer, also reads the
            network's inputs (after the previous layer's units), so a deeper network keeps the
            low-degree paths of a shallower one.

    Example:
        >>> eql = EQL(in_features=6, out_features=2, hidden_layers=2)
        >>> exprs = eql.to_sympy(["dx", "dy", "r", "inv_r", "m1", "m2"])
    """

    def __init__(self, in_features: int, out_features: int, hidden_layers: int = 2,
                 units: Mapping[str, int] | Sequence[Mapping[str, int]] | None = None,
                 init_scale: float = 1.0, division_threshold: float = 1e-3, skip: bool = False):
        super().__init__()
        if in_features <= 0 or out_features <= 0 or hidden_layers < 0:
            raise ConfigError("EQL needs in_features > 0, out_features > 0 and hidden_layers >= 0")
        units = DEFAULT_UNITS if units is None else units
        per_layer = [units] * hidden_layers if isinstance(units, Mapping) else list(units)
        if len(per_layer) != hidden_layers:
            raise ConfigError(f"got unit counts for {len(per_layer)} layers, expected {hidden_layers}")
        self.in_features, self.out_features, self.skip = in_features, out_features, skip
        layers, width = [], in_features
        for spec in per_layer:
            layer = EQLLayer(width, spec, init_scale, division_threshold)
            layers.append(layer)
            width = layer.out_features + (in_features if skip else 0)
        self.hidden = nn.ModuleList(layers)
        self.output = MaskedLinear(width, out_features, init_scale=1.0)

    def _joined(self, outputs: torch.Tensor | list, inputs: torch.Tensor | list) -> torch.Tensor | list:
        """What the next layer reads: the units' outputs, then the network's inputs with skip connections."""
        if not self.skip:
            return outputs
        return torch.cat([outputs, inputs], dim=-1) if isinstance(outputs, torch.Tensor) else outputs + inputs

    def linears(self) -> list[MaskedLinear]:
        """Every masked linear map, input to output (a layer's power exponents after its linear map)."""
        maps = [m for layer in self.hidden for m in (layer.linear, layer.exponents) if m is not None]
        return maps + [self.output]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., in_features] -> [..., out_features]``."""
        h = x
        for layer in self.hidden:
            h = self._joined(layer(h), x)
        return self.output(h)

    def _weights_sum(self, size: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``sum size(w)`` over all effective weights and biases."""
        total = self.output.weight.new_zeros(())
        for linear in self.linears():
            weight, bias = linear.effective()
            total = total + size(weight).sum() + (size(bias).sum() if bias is not None else 0.0)
        return total

    def l1(self) -> torch.Tensor:
        """Sum of |w| over all effective weights and biases (the sparsity penalty)."""
        return self._weights_sum(torch.abs)

    def l12(self, smoothing: float = L12_SMOOTHING) -> torch.Tensor:
        """Smoothed L1/2 of all effective weights and biases (:func:`smoothed_l12`): a stronger pull to zero
        than :meth:`l1` on small weights, a weaker one on large weights."""
        return self._weights_sum(lambda w: smoothed_l12(w, smoothing))

    def penalty(self, x: torch.Tensor) -> torch.Tensor:
        """EQL÷ penalty ``sum max(θ - b, 0)`` over division denominators for inputs ``x``."""
        total, h = x.new_zeros(()), x
        for layer in self.hidden:
            denominators = layer.denominators(h)
            if denominators is not None:
                total = total + torch.relu(layer.division_threshold - denominators).sum()
            h = self._joined(layer(h), x)
        return total

    @torch.no_grad()
    def prune(self, threshold: float) -> int:
        """Zero and freeze every weight with ``|w| < threshold``; returns how many were pruned."""
        return sum(linear.prune(threshold) for linear in self.linears())

    def active_weights(self) -> int:
        """Number of unmasked non-zero weights and biases."""
        count = 0
        for linear in self.linears():
            weight, bias = linear.effective()
            count += int((weight != 0).sum()) + (int((bias != 0).sum()) if bias is not None else 0)
        return count

    def to_sympy(self, input_symbols: Sequence[str | sympy.Symbol]) -> list[sympy.Expr]:
        """The network as one SymPy expression per output, built from the masked weights.

        Args:
            input_symbols: one name or Symbol per input, in input order.

        Returns:
            ``out_features`` SymPy expressions (weights as Floats; zero weights skipped).
        """
        if len(input_symbols) != self.in_features:
            raise ConfigError(f"to_sympy needs {self.in_features} input symbols, got {len(input_symbols)}")
        inputs = [sympy.Symbol(s) if isinstance(s, str) else s for s in input_symbols]
        values = inputs
        for layer in self.hidden:
            values = self._joined(layer.unit_expressions(_linear_sympy(layer.linear, values), values), inputs)
        return _linear_sympy(self.output, values)


Polynomial = dict[tuple[int, ...], float]
"""Sparse polynomial: exponent tuple over the inputs -> coefficient."""


def _poly_linear(linear: MaskedLinear, values: list[Polynomial], n_inputs: int) -> list[Polynomial]:
    weight, bias = linear.effective()
    weight = weight.detach().cpu().double().numpy()
    bias = np.zeros(weight.shape[0]) if bias is None else bias.detach().cpu().double().numpy()
    zero = (0,) * n_inputs
    out = []
    for row, b in zip(weight, bias):
        poly: Polynomial = {zero: float(b)} if b != 0 else {}
        for w, value in zip(row, values):
            if w == 0:
                continue
            for monomial, coef in value.items():
                poly[monomial] = poly.get(monomial, 0.0) + w * coef
        out.append(poly)
    return out


def _poly_product(a: Polynomial, b: Polynomial) -> Polynomial:
    out: Polynomial = {}
    for ma, ca in a.items():
        for mb, cb in b.items():
            key = tuple(x + y for x, y in zip(ma, mb))
            out[key] = out.get(key, 0.0) + ca * cb
    return out


def to_polynomials(eql: EQL) -> list[Polynomial] | None:
    """The network expanded into sparse polynomials of its inputs, or None if it has
    non-polynomial units (sin, division, power). Exact, and far faster than ``sympy.expand``."""
    n = eql.in_features
    allowed = {"identity", "product", "square", "constant"}
    if any(name not in allowed for layer in eql.hidden for name, _ in layer.layout.counts):
        return None
    inputs: list[Polynomial] = [{tuple(int(i == j) for j in range(n)): 1.0} for i in range(n)]
    values = inputs
    for layer in eql.hidden:
        z = _poly_linear(layer.linear, values, n)
        values = []
        for name, count, start, stop in layer.layout.slices():
            part = z[start:stop]
            if name == "constant":
                values += [{(0,) * n: 1.0}] * count
            elif name == "identity":
                values += part
            elif name == "product":
                values += [_poly_product(a, b) for a, b in zip(part[:count], part[count:])]
            else:  # square
                values += [_poly_product(a, a) for a in part]
        values = eql._joined(values, inputs)
    return _poly_linear(eql.output, values, n)


def _linear_sympy(linear: MaskedLinear, values: list[sympy.Expr]) -> list[sympy.Expr]:
    weight, bias = linear.effective()
    weight = weight.detach().cpu().double().numpy()
    bias = np.zeros(weight.shape[0]) if bias is None else bias.detach().cpu().double().numpy()
    out = []
    for row, b in zip(weight, bias):
        terms = [sympy.Float(w) * v for w, v in zip(row, values) if w != 0 and v != 0]
        if b != 0:
            terms.append(sympy.Float(b))
        out.append(sympy.Add(*terms) if terms else sympy.Integer(0))
    return out
