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


class _LawEdge:
    """Factory of an edge model whose message components 1..D are the true force mixed linearly; 0 is noise."""

    @staticmethod
    def build(law: str, dim: int):
        import torch

        from eqlgn.laws import get_law
        from eqlgn.models import EdgeModel

        class LawEdge(EdgeModel):
            def __init__(self):
                super().__init__()
                self.out_features = dim + 1
                self.mix = torch.nn.Parameter(torch.tensor(np.random.default_rng(0).normal(size=(dim, dim))))

            def forward(self, receiver, sender):
                d = dim
                force = get_law(law).force((receiver[..., :d] - sender[..., :d]).double().numpy(),
                                           receiver[..., 2 * d + 1].double().numpy(),
                                           sender[..., 2 * d + 1].double().numpy(),
                                           receiver[..., 2 * d].double().numpy(),
                                           sender[..., 2 * d].double().numpy(), 0.0)
                noise = torch.sin(37.0 * receiver[..., :1].double())
                return torch.cat([noise, torch.as_tensor(force) @ self.mix.T], dim=-1)

        return LawEdge()


@pytest.mark.parametrize("law", ["spring", "charge"])
def test_judge_network_passes_a_network_that_is_the_law_and_fails_its_noise_component(law):
    from eqlgn import judge_network
    from eqlgn.models import build_gn

    gn = build_gn(6, 2, "bottleneck", edge=_LawEdge.build(law, 2), hidden=8, layers=1)
    verdict = judge_network(gn, [1, 2], law, 2, samples=4000)
    assert verdict.passed and min(verdict.ood_r2) > 0.999 and verdict.complexity is None, verdict
    assert not judge_network(gn, [0, 1], law, 2, samples=4000).passed
    with pytest.raises(ConfigError, match="2 message components"):
        judge_network(gn, [1], law, 2)


def test_judge_network_agrees_with_the_judge_of_the_eql_equation_read_from_the_same_weights():
    import torch

    from eqlgn import judge_network
    from eqlgn.features import default_relative_inputs
    from eqlgn.models import EQLEdge, build_gn

    torch.manual_seed(3)
    edge = EQLEdge(default_relative_inputs(2), 2, 4, r_min=0.1)
    edge.scales.copy_(torch.rand(len(edge.inputs)) + 0.5)
    gn = build_gn(6, 2, "bottleneck", edge=edge, hidden=8, layers=1)
    network = judge_network(gn, [0, 3], "r1", 2, samples=4000)
    expressions = edge.to_sympy()
    equation = judge([expressions[0], expressions[3]], "r1", 2, samples=4000)
    np.testing.assert_allclose(network.ood_r2, equation.ood_r2, rtol=1e-3, atol=1e-6)
    assert network.k == equation.k
