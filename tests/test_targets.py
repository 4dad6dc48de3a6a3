"""A message's constant term: not part of the law, taken up exactly by the node model, left out of the report."""

from __future__ import annotations

import sympy
import torch

from eqlgn.equations import as_expression
from eqlgn.judging import judge
from eqlgn.models import build_gn
from eqlgn.targets import message_offset, target_for, without_offset


def test_the_constant_term_is_split_off_and_only_it():
    message = as_expression("-0.0416*dy*m2/r**2 - 0.0793")
    assert abs(message_offset(message) + 0.0793) < 1e-12
    assert sympy.simplify(without_offset(message) - as_expression("-0.0416*dy*m2/r**2")) == 0
    assert message_offset(as_expression("q2*dx/r**3")) == 0.0
    assert without_offset(as_expression("0.5")) == 0  # a message that is a constant says nothing of the law
    assert target_for("force").offsets([message]) == [message_offset(message)]
    cleaned = target_for("force").clean([as_expression("0.1234567*dx + 2")], 3)
    assert str(cleaned[0]) == "0.123*dx"


def test_a_constant_in_the_messages_is_taken_up_exactly_by_the_node_models_bias():
    torch.manual_seed(0)
    n, dim, features = 5, 2, 6
    gn = build_gn(features, dim, "bottleneck", message_dim=dim, hidden=16, layers=2).double().eval()
    nodes = torch.randn(7, n, features, dtype=torch.float64)
    before = gn(nodes).accelerations
    shift = torch.tensor([0.3, -1.7], dtype=torch.float64)
    gn.edge_model.register_forward_hook(lambda module, inputs, output: output + shift)
    first = gn.node_model.net[0]
    with torch.no_grad():  # the summed messages grew by (n - 1)·shift: the first bias gives it back
        first.bias -= (n - 1) * first.weight[:, features:] @ shift
    torch.testing.assert_close(gn(nodes).accelerations, before)


def test_the_judge_reads_a_message_without_its_constant_as_the_law():
    # a 3D r1 run of results/levers-report (sender64, seed 100): the law in every component, a constant in one;
    # the judge (unchanged) fails it on conditioning, and passes the identifiable part the run now reports
    read = ["-0.0416*dy*m2/r**2 - 0.0793", "-0.0371*dz*m2/r**2", "-0.0342*dx*m2/r**2 - 0.00527*dy*m2/r**2"]
    with_constant = judge(read, "r1", 3)
    assert not with_constant.passed and min(with_constant.ood_r2) > 0.999 and with_constant.condition < 0.01
    assert judge(target_for("force").clean([as_expression(e) for e in read], 3), "r1", 3).passed


def test_evaluate_sum_takes_the_reciprocal_of_a_sum_term_by_term():
    """``1 / (a + b + ...)``: the sum evaluated in pieces (as a dense EQL expansion is), then its reciprocal."""
    import numpy as np

    from eqlgn.equations import evaluate_sum

    x = sympy.Symbol("x")
    values = {"x": np.linspace(0.5, 0.9, 7)}
    dense = sympy.Add(*[sympy.Float(1e-3 * (k + 1)) * x ** k for k in range(300)])
    expected = sum(1e-3 * (k + 1) * values["x"] ** k for k in range(300))
    got = evaluate_sum(sympy.Pow(dense, -1, evaluate=False), values)
    np.testing.assert_allclose(got, 1 / expected)
    np.testing.assert_allclose(evaluate_sum(1 / (x + 1), values), 1 / (values["x"] + 1))
