"""The judge: passes the true law under linear maps, fails near misses."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from eqlgn.equations import SYMBOLS, parse_equation
from eqlgn.errors import ConfigError
from eqlgn.judging import judge, near_misses, true_law, under_linear_map

dx, dy, dz, r, m1, m2, q1, q2 = (SYMBOLS[n] for n in "dx dy dz r m1 m2 q1 q2".split())


def true_force(law: str, dim: int, power=None, rest=1) -> list[sympy.Expr]:
    return true_law(law, dim, power, rest)


mix = under_linear_map


LAWS = ["spring", "r1", "r2", "charge"]
POWER = {"r1": 2, "r2": 3, "charge": 3}


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("factor", ["1", "m1", "q1", "m1*q1"])
def test_true_law_under_a_random_linear_map_and_any_receiver_factor_passes(law, dim, factor):
    h = {"1": 1, "m1": m1, "q1": q1, "m1*q1": m1 * q1}[factor]
    verdict = judge(mix([e / h for e in true_force(law, dim)], seed=dim), law, dim)
    assert verdict.passed and verdict.status == "passed", verdict
    assert min(verdict.ood_r2) > 0.99999 and verdict.seeds_passed == [True] * 3
    assert verdict.receiver_factor == factor


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("law", ["r1", "r2", "charge"])
def test_the_law_softened_as_the_simulator_does_passes(law, dim):
    k = POWER[law]
    softened = [e * r**k / (r * (r + sympy.Float(0.01)) ** (k - 1)) for e in true_force(law, dim)]
    verdict = judge(mix(softened, seed=1), law, dim)
    assert verdict.passed and verdict.softening == 0.01, verdict


NEAR_MISSES = [(law, dim, name) for dim in (2, 3) for law in LAWS for name in near_misses(law, dim)]


@pytest.mark.parametrize("law, dim, name", NEAR_MISSES)
def test_near_misses_fail(law, dim, name):
    verdict = judge(mix(near_misses(law, dim)[name], seed=5), law, dim)
    assert verdict.status == "failed" and not verdict.passed, (name, verdict)


def test_a_verdict_that_flips_with_the_judge_seed_is_borderline_never_passed():
    """Rest length off by 4.4 %, judged on 200 states per seed: scores 0.99904, 0.99910, 0.99898."""
    verdict = judge(true_force("spring", 2, rest=sympy.Float(1.044)), "spring", 2, samples=200, seeds=(1, 2, 3))
    assert verdict.status == "borderline" and not verdict.passed, verdict
    assert any(verdict.seeds_passed) and not all(verdict.seeds_passed)


def test_two_copies_of_one_component_fail_on_conditioning():
    force = true_force("spring", 2)
    verdict = judge([force[0], 3 * force[0] + 1], "spring", 2)
    assert min(verdict.ood_r2) > 0.999  # each copy alone fits perfectly ...
    assert verdict.condition < 1e-2 and not verdict.passed  # ... but A is singular


def test_strings_are_parsed_safely_and_wrong_counts_rejected():
    assert judge(["-2*(r-1)*dx/r", "-2*(r - 1)*dy/r"], "spring", 2).passed
    assert judge(["q2*dx/r**3", "q2*dy/r**3"], "charge", 2).passed  # the sender's field: Coulomb's law
    with pytest.raises(ConfigError, match="needs 2 expressions"):
        judge(["dx"], "spring", 2)
    with pytest.raises(ConfigError, match="neither a vocabulary symbol"):
        parse_equation("__import__('os').system('true')")
    with pytest.raises(ConfigError, match="not allowed"):
        parse_equation("dx; 1")
    assert parse_equation("2*dx^2") == 2 * dx**2


def test_the_judge_states_lie_beyond_the_training_data_on_every_side():
    import eqlgn
    data = eqlgn.simulate("r2", 2, 4, 50, seed=0, progress=False)
    cover = eqlgn.judge_coverage(data)
    assert cover.judge_r_below > 0.1 and cover.judge_r_above > 0.1
    assert cover.judge_mass_beyond > 0.1 and cover.judge_charge_new > 0.9
    assert "judge ranges" in cover.report()


def test_eqlgn_info_prints_and_plots_the_data_against_the_judge_ranges(tmp_path, capsys):
    import eqlgn
    from eqlgn.cli import main

    path = eqlgn.simulate("spring", 2, 3, 20, seed=0, progress=False).save(tmp_path / "data.npz")
    assert main(["info", str(path), "--plot", str(tmp_path / "coverage.png")]) == 0
    out = capsys.readouterr().out
    assert "judge states with r below the training 1st percentile" in out
    assert (tmp_path / "coverage.png").stat().st_size > 1000


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
    assert verdict.passed and min(verdict.ood_r2) > 0.9999 and verdict.complexity is None, verdict
    assert not judge_network(gn, [0, 1], law, 2, samples=4000).passed
    with pytest.raises(ConfigError, match="2 message components"):
        judge_network(gn, [1], law, 2)


def test_judge_network_agrees_with_the_judge_of_the_eql_equation_read_from_the_same_weights():
    import torch

    from eqlgn import judge_network
    from eqlgn.features import default_relative_inputs
    from eqlgn.models import EQLEdge, build_gn

    torch.manual_seed(3)
    edge = EQLEdge(default_relative_inputs(2), 2, 4, r_min=0.01)  # below the judge's smallest r (0.02)
    edge.scales.copy_(torch.rand(len(edge.inputs)) + 0.5)
    gn = build_gn(6, 2, "bottleneck", edge=edge, hidden=8, layers=1)
    network = judge_network(gn, [0, 3], "r1", 2, samples=4000)
    expressions = edge.to_sympy()
    equation = judge([expressions[0], expressions[3]], "r1", 2, samples=4000)
    np.testing.assert_allclose(network.ood_r2, equation.ood_r2, rtol=1e-3, atol=1e-6)
    assert network.receiver_factor == equation.receiver_factor
