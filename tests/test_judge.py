"""The judge: passes the true law under linear maps, fails near misses."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from eqlgn.equations import SYMBOLS, parse_equation
from eqlgn.errors import ConfigError
from eqlgn.judging import judge

dx, dy, dz, r, m1, m2, q1, q2 = (SYMBOLS[n] for n in "dx dy dz r m1 m2 q1 q2".split())


def true_force(law: str, dim: int) -> list[sympy.Expr]:
    d = [dx, dy, dz][:dim]
    return {
        "spring": [-2 * (r - 1) * c / r for c in d],
        "r1": [-m1 * m2 * c / r**2 for c in d],
        "r2": [-m1 * m2 * c / r**3 for c in d],
        "charge": [q1 * q2 * c / r**3 for c in d],
    }[law]


def mix(exprs, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(len(exprs), len(exprs)))
    b = rng.normal(size=len(exprs))
    return [sum(sympy.Float(a[i, j]) * e for j, e in enumerate(exprs)) + sympy.Float(b[i])
            for i in range(len(exprs))]


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("law", ["spring", "r1", "r2", "charge"])
@pytest.mark.parametrize("over_m1", [False, True])
def test_true_law_under_a_random_linear_map_passes(law, dim, over_m1):
    exprs = [e / m1 if over_m1 else e for e in true_force(law, dim)]
    verdict = judge(mix(exprs, seed=dim), law, dim)
    assert verdict.passed, verdict
    assert min(verdict.ood_r2) > 0.9999
    assert verdict.k == int(over_m1)


def test_inverse_square_presented_as_inverse_cube_fails():
    wrong = [-m2 * c / r**3 for c in (dx, dy)]  # r2's shape, judged against r1 (1/r)
    assert not judge(wrong, "r1", 2).passed
    wrong = [-m2 * c / r**2 for c in (dx, dy)]  # r1's shape, judged against r2
    assert not judge(wrong, "r2", 2).passed


def test_spring_without_rest_length_fails():
    verdict = judge(mix([-2 * dx, -2 * dy], seed=0), "spring", 2)
    assert not verdict.passed and min(verdict.ood_r2) < 0.98


def test_two_copies_of_one_component_fail():
    force = true_force("spring", 2)
    verdict = judge([force[0], 3 * force[0] + 1], "spring", 2)
    assert min(verdict.ood_r2) > 0.999  # each copy alone fits perfectly ...
    assert verdict.condition < 1e-2 and not verdict.passed  # ... but A is singular


def test_strings_are_parsed_safely_and_wrong_counts_rejected():
    assert judge(["-2*(r-1)*dx/r", "-2*(r - 1)*dy/r"], "spring", 2).passed
    with pytest.raises(ConfigError, match="needs 2 expressions"):
        judge(["dx"], "spring", 2)
    with pytest.raises(ConfigError, match="neither a vocabulary symbol"):
        parse_equation("__import__('os').system('true')")
    with pytest.raises(ConfigError, match="not allowed"):
        parse_equation("dx; 1")
    assert parse_equation("2*dx^2") == 2 * dx**2
