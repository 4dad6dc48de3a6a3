"""EQL units and networks: SymPy equals forward, gradcheck, hand-set laws, frozen pruning."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

from eqlgn.eql import EQL, UNIT_TYPES
from eqlgn.equations import NUMPY_FUNCTIONS, SYMBOLS
from eqlgn.errors import ConfigError

NAMES = ["a", "b", "c", "d"]


def sympy_matches_forward(eql: EQL, x: torch.Tensor) -> float:
    exprs = eql.to_sympy(NAMES)
    fn = sympy.lambdify(sympy.symbols(NAMES), exprs, [NUMPY_FUNCTIONS, "numpy"])
    got = np.stack([np.broadcast_to(np.asarray(v, dtype=float), (len(x),)) for v in fn(*x.numpy().T)], -1)
    ref = eql(x).detach().numpy()
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-12))


@pytest.mark.parametrize("unit", [u for u in UNIT_TYPES if u != "constant"] + ["constant"])
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_sympy_equals_forward_before_and_after_pruning(unit, layers):
    torch.manual_seed(layers)
    units = {unit: 3} if unit != "constant" else {"identity": 2, "constant": 2}
    if unit == "division":
        units = {"identity": 2, "division": 2}
    eql = EQL(4, 3, layers, units, division_threshold=0.05).double()
    x = torch.randn(200, 4, dtype=torch.float64)
    assert sympy_matches_forward(eql, x) < 1e-9
    eql.prune(0.3)
    assert sympy_matches_forward(eql, x) < 1e-9


@pytest.mark.parametrize("unit", ["identity", "product", "square", "sin", "division"])
def test_gradcheck_float64(unit):
    torch.manual_seed(0)
    eql = EQL(4, 2, 2, {unit: 2, "identity": 1}, division_threshold=-10.0).double()  # θ below all b
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(eql, (x,))
    assert torch.autograd.gradcheck(lambda t: eql(t).sum() + eql.penalty(t), (x,))


def test_hand_set_weights_print_the_spring_law_exactly():
    """One hidden layer: identity(dx), product(dx, 1/r); output -2 dx + 2 dx / r."""
    eql = EQL(2, 1, 1, {"identity": 1, "product": 1}).double()
    with torch.no_grad():
        eql.hidden[0].linear.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
        eql.hidden[0].linear.bias.zero_()
        eql.output.weight.copy_(torch.tensor([[-2.0, 2.0]]))
        eql.output.bias.zero_()
    dx, r = SYMBOLS["dx"], SYMBOLS["r"]
    (expr,) = eql.to_sympy([dx, 1 / r])
    assert sympy.simplify(expr - (-2 * (r - 1) * dx / r)) == 0


def test_pruned_weights_stay_exactly_zero_through_finetuning():
    torch.manual_seed(0)
    eql = EQL(4, 2, 2)
    pruned = eql.prune(0.2)
    assert pruned > 0
    masks = [linear.weight_mask.clone() for linear in eql.linears()]
    optimizer = torch.optim.Adam(eql.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(50):
        x = torch.randn(32, 4)
        loss = (eql(x) - x[:, :2] * x[:, 2:]).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for linear, mask in zip(eql.linears(), masks):
        weight, _ = linear.effective()
        assert torch.all(weight[mask == 0] == 0)
    assert eql.active_weights() <= sum(int(m.sum()) for m in masks) + sum(
        len(linear.bias) for linear in eql.linears())


def test_bad_units_name_the_problem():
    with pytest.raises(ConfigError, match="unknown EQL unit 'prod'.*did you mean 'product'"):
        EQL(2, 1, 1, {"prod": 2})
    with pytest.raises(ConfigError, match="needs 2 input symbols"):
        EQL(2, 1, 1).to_sympy(["a"])


def test_polynomial_expansion_equals_sympy_expand():
    from eqlgn.eql import to_polynomials

    torch.manual_seed(4)
    eql = EQL(3, 2, 2, {"identity": 2, "product": 2, "square": 1, "constant": 1}).double()
    eql.prune(0.2)
    names = sympy.symbols("a b c")
    polys = to_polynomials(eql)
    for poly, expr in zip(polys, eql.to_sympy(list(names))):
        rebuilt = sum(coef * sympy.Mul(*[x**e for x, e in zip(names, mono)]) for mono, coef in poly.items())
        difference = sympy.expand(expr) - rebuilt
        assert all(abs(float(c)) < 1e-9 for c in sympy.Poly(difference, *names).coeffs()) if difference else True
    assert to_polynomials(EQL(2, 1, 1, {"sin": 1})) is None
