"""Edge inputs: every name of the vocabulary is computed from the node columns it names."""

import pytest
import sympy
import torch

from eqlgn.equations import SYMBOLS
from eqlgn.errors import ConfigError
from eqlgn.features import check_inputs, input_symbol, relative_features, vocabulary
from eqlgn.layout import NodeLayout


def pairs(dim: int, n: int = 5):
    gen = torch.Generator().manual_seed(dim)
    nodes = torch.randn(2, n, NodeLayout(dim).width, generator=gen)
    nodes[..., NodeLayout(dim).mass] = nodes[..., NodeLayout(dim).mass].abs() + 0.5
    receiver = nodes[:, :, None, :].expand(2, n, n, -1)
    sender = nodes[:, None, :, :].expand(2, n, n, -1)
    return receiver, sender


@pytest.mark.parametrize("dim", [2, 3])
def test_every_input_is_its_symbolic_form_evaluated_on_the_pair(dim):
    layout = NodeLayout(dim)
    receiver, sender = pairs(dim)
    names = vocabulary(dim)
    values = relative_features(receiver, sender, names, dim, r_min=1e-6)
    env = {f"{column}{node}": tensor[..., layout.column(column)]
           for node, tensor in (("1", receiver), ("2", sender)) for column in layout.names()}
    delta = receiver[..., layout.position] - sender[..., layout.position]
    env |= {f"d{axis}": delta[..., k] for k, axis in enumerate(layout.axes)}
    env["r"] = delta.pow(2).sum(-1).sqrt()
    for i, name in enumerate(names):
        form = input_symbol(name)
        symbols = sorted(form.free_symbols, key=str)
        fn = sympy.lambdify(symbols, form)
        got, want = values[..., i], fn(*(env[str(s)] for s in symbols))
        off_diagonal = ~torch.eye(receiver.shape[1], dtype=torch.bool)  # r = 0 on the diagonal
        assert torch.allclose(got[:, off_diagonal], torch.as_tensor(want)[:, off_diagonal], rtol=1e-5), name


def test_pair_products_read_as_products_of_the_two_nodes_properties():
    assert input_symbol("q1q2") == SYMBOLS["q1"] * SYMBOLS["q2"]
    assert input_symbol("m1m2") == SYMBOLS["m1"] * SYMBOLS["m2"]
    assert check_inputs(["dx", "q1q2", "m1m2"], 2) == ["dx", "q1q2", "m1m2"]
    with pytest.raises(ConfigError, match="q1q3"):
        check_inputs(["dx", "q1q3"], 2)
