"""Hamiltonian GN: the true potential reproduces the simulator; gradients through the EQL energy; judge."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

import eqlgn
from eqlgn.equations import SYMBOLS as S
from eqlgn.errors import ConfigError
from eqlgn.hamiltonian import HamiltonianGN, judge_potential
from eqlgn.models import EdgeModel, EQLEdge


class TruePotential(EdgeModel):
    """Edge 'model' that is the law's pair potential U(r), softened as the simulator does."""

    out_features = 1

    def __init__(self, law: str, softening: float):
        super().__init__()
        self.law, self.eps = law, softening

    def forward(self, receiver, sender):
        r = (receiver[..., :2] - sender[..., :2]).norm(dim=-1, keepdim=True)
        q1, q2, m1, m2 = receiver[..., 4:5], sender[..., 4:5], receiver[..., 5:6], sender[..., 5:6]
        if self.law == "spring":
            return (r - 1) ** 2
        rs = r + self.eps
        return {"r1": m1 * m2 * torch.log(rs), "r2": -m1 * m2 / rs, "charge": q1 * q2 / rs}[self.law]


@pytest.mark.parametrize("law", ["spring", "r1", "r2", "charge"])
def test_true_potential_reproduces_the_simulator(law):
    data = eqlgn.simulate(law, 2, 4, 4, seed=3, steps=20, progress=False)
    eps = data.meta.softening if data.meta.softened else 0.0
    model = HamiltonianGN(TruePotential(law, eps), dim=2).double().eval()
    predicted = model(torch.as_tensor(data.nodes, dtype=torch.float64)).accelerations.detach().numpy()
    scale = np.abs(data.accelerations).max()
    np.testing.assert_allclose(predicted, data.accelerations, atol=1e-4 * scale, rtol=1e-3)


def test_gradients_flow_through_the_eql_energy_float64(small_spring):
    edge = EQLEdge(["dx", "dy", "r", "inv_r", "m1", "m2"], 2, 1, hidden_layers=2)
    model = HamiltonianGN(edge, dim=2).double().train()
    nodes = torch.as_tensor(small_spring.nodes[:3], dtype=torch.float64)
    name = "edge_model.eql.output.weight"
    weight = dict(model.named_parameters())[name].detach().clone().requires_grad_(True)

    def accelerations(w):
        return torch.func.functional_call(model, {name: w}, (nodes,)).accelerations

    assert torch.autograd.gradcheck(accelerations, (weight,), eps=1e-6, atol=1e-5)
    out = model(nodes)
    (out.accelerations.sum() + out.penalty).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.edge_model.parameters()
               if p.requires_grad)


@pytest.mark.parametrize("law, potential", [
    ("spring", (S["r"] - 1) ** 2), ("r1", S["m1"] * S["m2"] * sympy.log(S["r"])),
    ("r2", -S["m1"] * S["m2"] / S["r"]), ("charge", S["q1"] * S["q2"] / S["r"])])
def test_judge_passes_the_potential_up_to_scale_and_offset(law, potential):
    verdict = judge_potential([0.37 * potential - 2.5], law, 2)
    assert verdict.passed and min(verdict.ood_r2) > 0.999999 and verdict.receiver_factor == "1"


def test_judge_fails_the_wrong_power_and_a_wrong_rest_length():
    assert not judge_potential([-S["m1"] * S["m2"] / S["r"] ** 2], "r2", 2).passed
    assert not judge_potential([S["r"] ** 2], "spring", 2).passed
    assert not judge_potential([(S["r"] - 1.1) ** 2], "spring", 2).passed  # rest length off by 10 %
    assert not judge_potential([(S["r"] - 1) ** 2 / S["m1"]], "spring", 2).passed  # no receiver factor
    with pytest.raises(ConfigError, match="one expression"):
        judge_potential([S["r"], S["r"]], "spring", 2)


def test_hamiltonian_run_writes_a_potential_result(tmp_path):
    config = eqlgn.recommended_config("eql", model="hamiltonian", steps=30)
    result = eqlgn.run("spring", 2, 3, edge="eql", out=tmp_path / "run", sims=10, train=config, cache_dir=None,
                       progress=False)
    assert result.target == "potential" and len(result.equations) == 1
    assert result.judge["target"] == "potential" and len(result.judge["ood_r2"]) == 2  # the force -dU/dx1
    # potentials are not refitted (their unidentifiable parts would take the terms): weights form only
    assert result.equations == result.equations_weights and result.judge["refit_error"] is None
    assert result.judge["weights_form"]["ood_r2"] == result.judge["ood_r2"]
    with pytest.raises(ConfigError, match="one scalar edge output"):
        eqlgn.recommended_config("mlp", model="hamiltonian")


def test_a_pair_energy_sees_both_particles_and_a_message_the_senders_only():
    from eqlgn.build import build_model

    hamiltonian = eqlgn.recommended_config("eql", model="hamiltonian")
    force = eqlgn.recommended_config("eql")
    assert (hamiltonian.network.node.hidden, force.network.node.hidden) == (128, 64)
    energy_inputs = build_model(hamiltonian, 6, 2).edge_model.inputs
    message_inputs = build_model(force, 6, 2).edge_model.inputs
    receiver_only = set(eqlgn.features.RECEIVER_ONLY_INPUTS)
    assert receiver_only <= set(energy_inputs) and not receiver_only & set(message_inputs)
    assert set(energy_inputs) - receiver_only == set(message_inputs)  # q1·q2/r needs q1; F/q1 does not


def test_only_the_part_symmetric_under_swapping_the_particles_is_judged():
    from eqlgn.hamiltonian import symmetric_part

    antisymmetric = 0.3 * S["dx"] - 0.59 * S["dx"] * S["r"] + S["m1"] - S["m2"]
    assert symmetric_part(antisymmetric) == 0
    learned = (S["r"] - 1) ** 2 + antisymmetric  # cancels in H, so it cannot be learned away
    assert sympy.simplify(symmetric_part(learned) - sympy.expand((S["r"] - 1) ** 2)) == 0
    assert judge_potential([learned], "spring", 2).passed


def test_position_free_terms_carry_no_force_and_are_not_judged():
    from eqlgn.hamiltonian import identifiable_part

    learned = (S["r"] - 1) ** 2 + 0.4 * S["m1"] ** 2 + 0.4 * S["m2"] ** 2 + S["m1"] * S["m2"]
    assert sympy.expand(identifiable_part(learned) - (S["r"] - 1) ** 2) == -1  # the constant goes too
    assert judge_potential([learned], "spring", 2).passed
