"""Graph aggregation paths, GN equivariance, and the index convention against the simulator."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import eqlgn
from eqlgn.graph import AGGREGATIONS, aggregate, complete_edges
from eqlgn.laws import get_law
from eqlgn.models import GN, EdgeModel, build_gn, kl_to_standard_normal


def loop_aggregate(messages: torch.Tensor, receivers: torch.Tensor, n: int) -> torch.Tensor:
    out = torch.zeros(messages.shape[0], n, messages.shape[-1], dtype=messages.dtype)
    for b in range(messages.shape[0]):
        for e in range(messages.shape[1]):
            out[b, receivers[e]] += messages[b, e]
    return out


def test_complete_edges_receiver_major_without_self_loops():
    receivers, senders = complete_edges(4)
    assert receivers.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert senders.tolist() == [1, 2, 3, 0, 2, 3, 0, 1, 3, 0, 1, 2]
    assert len(set(zip(receivers.tolist(), senders.tolist()))) == 12


@pytest.mark.parametrize("method", AGGREGATIONS)
@pytest.mark.parametrize("n", [2, 5])
def test_every_aggregation_equals_a_python_loop(method, n):
    if method == "torch_scatter" and importlib.util.find_spec("torch_scatter") is None:
        pytest.skip("torch_scatter not installed (optional extra 'scatter')")
    receivers, _ = complete_edges(n)
    messages = torch.randn(3, n * (n - 1), 7, dtype=torch.float64)
    expected = loop_aggregate(messages, receivers, n)
    torch.testing.assert_close(aggregate(messages, receivers, n, method), expected)


def test_missing_torch_scatter_says_what_to_install():
    if importlib.util.find_spec("torch_scatter") is not None:
        pytest.skip("torch_scatter is installed")
    from eqlgn.errors import MissingDependencyError

    receivers, _ = complete_edges(3)
    with pytest.raises(MissingDependencyError, match=r"pip install 'eqlgn\[scatter\]'"):
        aggregate(torch.randn(1, 6, 2), receivers, 3, "torch_scatter")


@pytest.mark.parametrize("variant", ["standard", "bottleneck", "l1", "kl"])
def test_gn_is_permutation_equivariant(variant):
    torch.manual_seed(0)
    gn = build_gn(6, 2, variant, message_dim=16, hidden=32, layers=2).eval()
    nodes = torch.randn(5, 4, 6)
    perm = torch.tensor([2, 0, 3, 1])
    a = gn(nodes).accelerations
    b = gn(nodes[:, perm]).accelerations
    torch.testing.assert_close(b, a[:, perm], rtol=1e-5, atol=1e-5)


class TrueForceEdge(EdgeModel):
    """Edge 'model' that is the exact force law: message = F(1 <- 2)."""

    def __init__(self, law: str, dim: int, softening: float):
        super().__init__()
        self.law, self.dim, self.softening, self.out_features = get_law(law), dim, softening, dim

    def forward(self, receiver, sender):
        d = self.dim
        force = self.law.force((receiver[..., :d] - sender[..., :d]).numpy(), receiver[..., 2 * d + 1].numpy(),
                               sender[..., 2 * d + 1].numpy(), receiver[..., 2 * d].numpy(),
                               sender[..., 2 * d].numpy(), self.softening)
        return torch.as_tensor(force)


class DivideByMass(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, nodes, summed):
        return summed / nodes[..., 2 * self.dim + 1 : 2 * self.dim + 2]


@pytest.mark.parametrize("law", ["spring", "r1", "r2", "charge"])
@pytest.mark.parametrize("method", ["dense", "index_add"])
def test_gn_with_true_law_reproduces_the_simulator(law, method):
    import eqlgn

    data = eqlgn.simulate(law, 2, 5, 4, seed=2, steps=20, progress=False)
    gn = GN(TrueForceEdge(law, 2, data.meta.softening), DivideByMass(2), "bottleneck", method)
    predicted = gn(torch.as_tensor(data.nodes, dtype=torch.float64)).accelerations.numpy()
    scale = np.abs(data.accelerations).max()
    np.testing.assert_allclose(predicted, data.accelerations, atol=1e-4 * scale, rtol=1e-3)


def test_kl_closed_form_and_sampling():
    mean = torch.tensor([0.0, 1.0, -2.0])
    logvar = torch.tensor([0.0, np.log(4.0), np.log(0.25)], dtype=torch.float32)
    expected = torch.tensor([0.0, 0.5 * (1 + 4 - np.log(4) - 1), 0.5 * (4 + 0.25 - np.log(0.25) - 1)],
                            dtype=torch.float32)
    torch.testing.assert_close(kl_to_standard_normal(mean, logvar), expected)
    torch.manual_seed(0)
    gn = build_gn(6, 2, "kl", message_dim=8, hidden=16, layers=1)
    nodes = torch.randn(2, 3, 6)
    gn.train()
    a, b = gn(nodes), gn(nodes)
    assert not torch.equal(a.messages, b.messages)  # sampled in training
    gn.eval()
    c = gn(nodes)
    torch.testing.assert_close(c.messages, c.mean)  # mean at evaluation
    assert c.messages.shape == (2, 6, 8)


def test_kl_log_variances_are_bounded_so_the_senders_inputs_train():
    """The KL GN on the sender's relative inputs (1/r³ of a close pair far beyond its training scale) overflowed
    exp(logvar) at step 6 on spring, 50 simulations, seed 0; the bounded log-variance trains."""
    from eqlgn.models import LOGVAR_BOUND, kl_parts
    from eqlgn.simulator import SimulationConfig
    from eqlgn.sources import prepare_data

    mean, logvar = kl_parts(torch.tensor([[0.5, -1e4, 1.0, 1e4]]), 2)
    assert mean.tolist() == [[0.5, -1e4]] and logvar[0, 0].item() == pytest.approx(1.0, rel=0.01)
    assert logvar[0, 1].item() == pytest.approx(LOGVAR_BOUND)
    assert torch.isfinite(kl_to_standard_normal(mean, logvar)).all()
    torch.set_num_threads(1)
    train, val, _ = prepare_data(SimulationConfig(law="spring", sims=50, seed=0), prune_outliers=True, split_seed=0)
    config = eqlgn.recommended_config("mlp", variant="kl", steps=30, seed=0, device="cpu")
    history = eqlgn.fit(train, config, val=val, progress=False).history
    assert np.isfinite([h["objective"] for h in history]).all() and len(history) > 0


def test_an_mlp_on_the_senders_inputs_cannot_see_the_receivers_mass_or_charge_nor_where_the_pair_is():
    from eqlgn import recommended_config
    from eqlgn.build import build_model
    from eqlgn.config import TrainConfig
    from eqlgn.errors import ConfigError
    from eqlgn.layout import NodeLayout
    from eqlgn.models import MLPEdge, RelativeMLPEdge
    from eqlgn.symbolic import message_inputs

    layout = NodeLayout(2)
    config = recommended_config("mlp", mlp_inputs="sender", seed=3)
    edge = build_model(config, layout.width, 2).edge_model
    assert isinstance(edge, RelativeMLPEdge) and not edge.sees_receiver
    assert isinstance(build_model(recommended_config("mlp", mlp_inputs="raw"), layout.width, 2).edge_model, MLPEdge)
    assert TrainConfig.from_dict(config.to_dict()).network.edge.inputs == "sender"
    torch.manual_seed(0)
    receiver, sender = torch.randn(64, layout.width), torch.randn(64, layout.width)
    receiver[:, layout.mass] = sender[:, layout.mass] = 1.5
    edge.set_scales(receiver, sender)
    assert not torch.allclose(edge.scales, torch.ones_like(edge.scales))
    before = edge(receiver, sender)
    moved = receiver.clone(), sender.clone()
    for node in moved:
        node[:, layout.position] += torch.tensor([3.0, -2.0])
    moved[0][:, layout.mass] *= 4.0
    moved[0][:, layout.charge] *= -1.0
    assert torch.allclose(edge(*moved), before, atol=1e-5)
    moved[1][:, layout.mass] *= 4.0  # the sender's mass is an input
    assert not torch.allclose(edge(*moved), before, atol=1e-3)
    assert message_inputs(2, receiver=False) == ["dx", "dy", "r", "m2", "q2"]
    with pytest.raises(ConfigError, match="MLP edge inputs"):
        recommended_config("mlp", mlp_inputs="both")
