"""EQLRegressor: a formula from a plain table (eqlgn.regressor)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

from eqlgn import EQLRegressor
from eqlgn.eql import EQL
from eqlgn.errors import ConfigError, DatasetError
from eqlgn.regressor import _read, restart_penalties

FAST = {"steps": 30, "restarts": 1, "power_restarts": 0, "progress": False}


def table(rows: int = 1500, seed: int = 0, low: float = 1.0, high: float = 5.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, size=(rows, 3))


def test_hand_set_weights_read_as_the_formula():
    """An EQL whose weights are set by hand to 2·a·b/c (on scaled inputs) reads back as that formula."""
    X = table()
    model = EQLRegressor(**FAST)
    model.fit(X, X[:, 0] + X[:, 1], ["a", "b", "c"])  # fitted once, so its scales exist
    eql = EQL(6, 1, hidden_layers=1, units={"product": 1})
    with torch.no_grad():
        for linear in eql.linears():
            linear.weight.zero_()
            linear.bias.zero_()
        first = eql.hidden[0].linear.weight
        s = model._x_scale  # inputs a, b, c, 1/a, 1/b, 1/c, each times its scale
        first[0, 0] = 1.0  # a·s_a
        first[1, 1] = 1.0  # b·s_b
        eql.output.weight[0, 0] = 1.0
    names = [sympy.Symbol(n) for n in "abc"]
    symbols = names + [1 / v for v in names]
    values = dict(zip("abc", X.T))
    expected = float(s[0] * s[1] * model._y_scale[0]) * names[0] * names[1]
    target = float(s[0] * s[1] * model._y_scale[0]) * X[:, 0] * X[:, 1]  # the refit keeps what explains the data
    read = _read(eql, values, target[:, None], symbols, x_scale=model._x_scale, y_scale=model._y_scale,
                 floor=model.floor, digits=model.digits)
    ratio = sympy.simplify(read.expressions[0] / expected)
    assert ratio.is_number and abs(float(ratio) - 1) < 1e-3, read.expressions[0]


@pytest.mark.parametrize("name, truth", [
    ("product of three", lambda a, b, c: a * b * c),
    ("ratio", lambda a, b, c: a / b),
    ("sum of products", lambda a, b, c: a * b + 2 * b * c),
])
def test_planted_formulas_are_recovered_exactly_and_extrapolate(name, truth):
    X = table(seed=1)
    model = EQLRegressor(steps=1500, restarts=4, random_state=0, progress=False).fit(X, truth(*X.T), ["a", "b", "c"])
    a, b, c = sympy.symbols("a b c")
    found = model.sympy()
    assert sympy.simplify(found - truth(a, b, c)) == 0, f"{name}: found {found}"
    outside = table(seed=2, low=5.0, high=10.0)  # every variable past the fitted range
    assert model.score(outside, truth(*outside.T)) > 0.999999
    module = model.pytorch()  # the same formula as a torch module
    torch.testing.assert_close(module(torch.as_tensor(outside)), torch.as_tensor(model.predict(outside)))


def test_bad_input_gets_one_line_errors():
    X = table(50)
    y = X[:, 0] * X[:, 1]
    bad = X.copy()
    bad[7, 2] = np.nan
    cases = [
        (lambda: EQLRegressor(**FAST).fit(bad, y), DatasetError, "X contains NaN or inf .*row 7, column 2"),
        (lambda: EQLRegressor(**FAST).fit(X, y[:-1]), DatasetError, "y has shape \\(49,\\) but X has 50 samples"),
        (lambda: EQLRegressor(**FAST).fit(X[:, 0], y), DatasetError, "X must be 2D .*Reshape your data"),
        (lambda: EQLRegressor(**FAST).fit(X, np.full(50, 3.0)), DatasetError, "y has no variance"),
        (lambda: EQLRegressor(units={"cosine": 4}, **FAST).fit(X, y), ConfigError,
         "unknown EQL unit 'cosine'.*valid"),
        (lambda: EQLRegressor(**FAST).fit(X, y, ["a", "b"]), ConfigError, "2 names for 3 columns"),
        (lambda: EQLRegressor(**FAST).predict(X), ConfigError, "not fitted yet"),
        (lambda: EQLRegressor(**FAST).set_params(speed=3), ConfigError, "no parameter 'speed'"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message) as caught:
            call()
        assert "\n" not in str(caught.value)
    fitted = EQLRegressor(**FAST).fit(X, y)
    with pytest.raises(DatasetError, match="X has 2 features, but the regressor was fitted with 3"):
        fitted.predict(X[:, :2])


def test_scikit_learn_parameter_conventions():
    checks = pytest.importorskip("sklearn.utils.estimator_checks")
    model = EQLRegressor(**FAST)
    for check in (checks.check_no_attributes_set_in_init, checks.check_get_params_invariance,
                  checks.check_set_params, checks.check_parameters_default_constructible,
                  checks.check_estimators_nan_inf, checks.check_fit2d_predict1d, checks.check_fit_score_takes_y,
                  checks.check_n_features_in):
        check("EQLRegressor", model)
    from sklearn.base import clone

    copy = clone(EQLRegressor(steps=77, units={"identity": 2, "product": 1}))
    assert copy.steps == 77 and copy.units == {"identity": 2, "product": 1}


def test_a_sequence_of_penalties_gives_each_restart_its_own():
    """``penalty=(0, 10)``: restart 0 trains without the L1 term and fits a·b/c; restart 1's penalty of 10 drives
    every weight to zero, so it reads as nothing (relative error 1), and the fit keeps restart 0's formula."""
    X = table(800, seed=3)
    y = X[:, 0] * X[:, 1] / X[:, 2]
    model = EQLRegressor(penalty=(0.0, 10.0), restarts=2, power_restarts=0, steps=500, progress=False).fit(X, y)
    assert restart_penalties(model.penalty, model.restarts) == [0.0, 10.0]
    assert model.restarts_[0].error < 1e-3 and model.restarts_[1].error > 0.5
    assert model.validation_error_ == model.restarts_[0].error
    for bad, message in (((), "at least one value"), ((1e-3, -1.0), "l1")):
        with pytest.raises(ConfigError, match=message):
            EQLRegressor(penalty=bad, **FAST).fit(X, y)


def test_squares_reach_a_monomial_of_degree_five_that_two_product_layers_without_them_cannot():
    X = table(1500, seed=4)
    y = X[:, 0] ** 2 * X[:, 1] ** 2 / X[:, 2]
    model = EQLRegressor(squares=True, penalty=(1e-3, 1e-2), steps=1500, restarts=4, power_restarts=0,
                         progress=False).fit(X, y)
    a, b, c = sympy.symbols("x0 x1 x2")
    assert sympy.simplify(model.sympy() - a**2 * b**2 / c) == 0, model.sympy()


def test_power_restarts_reach_a_monomial_of_degree_seven_that_two_product_layers_cannot():
    """a³ b² / c² (degree 7): two product layers reach degree 4, whatever their training; one power unit with
    exponents (3, 2, -2) is the formula, and a power restart is the one kept."""
    X = table(1500, seed=5)
    y = X[:, 0] ** 3 * X[:, 1] ** 2 / X[:, 2] ** 2
    a, b, c = sympy.symbols("x0 x1 x2")
    settings = {"steps": 1500, "restarts": 2, "random_state": 0, "progress": False}
    model = EQLRegressor(power_restarts=4, **settings).fit(X, y)
    assert sympy.simplify(model.sympy() - a**3 * b**2 / c**2) == 0, model.sympy()
    kept = [k for k, r in enumerate(model.restarts_) if r.expressions == model.expressions_]
    assert kept and kept[0] >= model.restarts  # a power restart (they follow the others)
    outside = table(seed=6, low=5.0, high=10.0)
    assert model.score(outside, outside[:, 0] ** 3 * outside[:, 1] ** 2 / outside[:, 2] ** 2) > 0.999999
    without = EQLRegressor(power_restarts=0, **settings).fit(X, y)
    assert sympy.simplify(without.sympy() - a**3 * b**2 / c**2) != 0
    with pytest.raises(ConfigError, match="power_restarts must be an integer >= 0"):
        EQLRegressor(**{**FAST, "power_restarts": -1}).fit(X, y)


def test_reciprocal_target_reaches_a_sum_in_a_denominator():
    """a b / (c + 1): out of reach of products and powers of the inputs, a sum of two monomials as 1 / y
    (c / (a b) + 1 / (a b)). Tried only where y keeps one sign."""
    X = table(1500, seed=7)
    y = X[:, 0] * X[:, 1] / (X[:, 2] + 1)
    a, b, c = sympy.symbols("x0 x1 x2")
    settings = {"steps": 1500, "restarts": 2, "power_restarts": 2, "random_state": 0, "progress": False}
    model = EQLRegressor(reciprocal_target=True, **settings).fit(X, y)
    assert sympy.simplify(model.sympy() - a * b / (c + 1)) == 0, model.sympy()
    assert len(model.restarts_) == 2 * (2 + 2)  # every restart on y and on 1 / y
    outside = table(seed=8, low=5.0, high=10.0)
    assert model.score(outside, outside[:, 0] * outside[:, 1] / (outside[:, 2] + 1)) > 0.999999
    without = EQLRegressor(**settings).fit(X, y)
    assert sympy.simplify(without.sympy() - a * b / (c + 1)) != 0 and len(without.restarts_) == 2 + 2
    both_signs = EQLRegressor(reciprocal_target=True, **{**settings, "steps": 30}).fit(X, y - np.median(y))
    assert len(both_signs.restarts_) == 2 + 2  # 1 / y would cross a pole: not tried
