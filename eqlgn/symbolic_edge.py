"""An edge model that *is* the recovered law: SymPy expressions with trainable constants.

:class:`SymbolicEdge` evaluates the extracted message expressions on every edge (float64,
through :func:`eqlgn.equations.torch_function`), with every floating-point constant a
trainable parameter, and has the interface of the other edge models: put it in place of
the EQL, and the GN computes with the formula. :func:`symbolic_network` does that to a
trained GN, fine-tunes the node model with the constants held (the node model was trained on
the network's messages, which differ from the formula's away from the bulk of the pairs), then
the constants and the node model end to end, and reports both test losses beside the neural
GN's. A right law keeps the loss; a wrong one loses it (pykan
checks its snapped formulas the same way).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import sympy
import torch

from .equations import as_expression, pair_values, to_vocabulary, torch_function
from .models import GN, EdgeModel


class SymbolicEdge(EdgeModel):
    """Messages from expressions: expression ``k`` fills message component ``components[k]``, the rest are 0.

    Args:
        expressions: SymPy expressions (or strings) over the pair vocabulary.
        dim: spatial dimension.
        out_features: message width of the GN it serves.
        components: message component of each expression (default ``0, 1, ...``).
        r_min: ``r`` is clamped to at least this (the EQL edge clamps inverse powers alike; 0: exact).
    """

    def __init__(self, expressions: Sequence, dim: int, out_features: int, components: Sequence[int] | None = None,
                 r_min: float = 0.0):
        super().__init__()
        exprs = [to_vocabulary(as_expression(e)) for e in expressions]
        constants, params, self.templates = [], [], []
        for k, expr in enumerate(exprs):  # each expression's constants are its own parameters
            own = sorted(expr.atoms(sympy.Float), key=float)
            names = sympy.symbols(f"c{k}_0:{len(own)}") if own else ()
            self.templates.append(expr.xreplace(dict(zip(own, names))))
            constants += own
            params += list(names)
        self.params = tuple(params)
        self.theta = torch.nn.Parameter(torch.tensor([float(c) for c in constants], dtype=torch.float64))
        self.evaluate = torch_function(self.templates, self.params)
        self.dim, self.out_features, self.r_min = dim, out_features, r_min
        self.components = list(components) if components is not None else list(range(len(exprs)))

    def forward(self, receiver: torch.Tensor, sender: torch.Tensor) -> torch.Tensor:
        shape = receiver.shape[:-1]
        values = pair_values(receiver.reshape(-1, receiver.shape[-1]).double(),
                             sender.reshape(-1, sender.shape[-1]).double(), self.dim)
        if self.r_min > 0:
            values["r"] = values["r"].clamp_min(self.r_min)
        messages = self.evaluate(values, self.theta)
        out = messages.new_zeros(messages.shape[0], self.out_features)
        out[:, self.components] = messages
        return out.to(receiver.dtype).reshape(*shape, self.out_features)

    def to_sympy(self) -> list[sympy.Expr]:
        """The expressions with the current constants."""
        values = {p: sympy.Float(float(v), 6) for p, v in zip(self.params, self.theta.detach())}
        return [t.xreplace(values) for t in self.templates]


@dataclass
class SymbolicNetwork:
    """The GN with the formula in place of its edge model, before and after fine-tuning.

    Attributes:
        test_loss_as_read: test MAE with the expressions as extracted (node model unchanged; ``None``
            when not finite).
        test_loss_finetuned: test MAE after fine-tuning constants and node model end to end
            (``None`` when fine-tuning diverged: the formula is not a usable model).
        gn_test_loss: the neural GN's test MAE.
        ratio: ``test_loss_finetuned / gn_test_loss`` (``None`` when fine-tuning diverged).
        steps: fine-tuning steps.
        equations_finetuned: the expressions with their fine-tuned constants.
    """

    test_loss_as_read: float | None
    test_loss_finetuned: float | None
    gn_test_loss: float
    ratio: float | None
    steps: int
    equations_finetuned: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def symbolic_network(model: GN, expressions: Sequence, components: Sequence[int], splits: tuple, steps: int,
                     seed: int = 0, gn_loss: float | None = None) -> SymbolicNetwork:
    """Put the expressions in place of ``model``'s edge model, score, fine-tune on train, score on test.

    Fine-tuning: half the ``steps`` on the node model alone (constants held), then half on both.
    Measured (docs/method.md, "The network is the formula"): on a recovered r2 run whose read
    formula gave 53× the GN's loss, joint fine-tuning from the start pulled one component's
    constants to a hundredth and ended at 16×; holding them first ended at 0.73×.

    ``splits`` = (train, val, test); ``model`` is not changed (its node model is copied).
    ``gn_loss``: the neural GN's test MAE when the caller has it (measured here otherwise).
    """
    from .errors import EqlgnError
    from .extraction import round_constants
    from .objective import evaluate

    train, val, test = splits
    device = next(model.parameters()).device
    edge = SymbolicEdge(expressions, test.dim, model.edge_model.out_features, components,
                        getattr(model.edge_model, "r_min", 0.0))
    network = GN(edge, copy.deepcopy(model.node_model), model.variant, model.aggregation).to(device)
    gn_loss = evaluate(model, test, device) if gn_loss is None else gn_loss
    as_read = evaluate(network, test, device)
    try:
        network = finetune(network, train, val, steps // 2, seed, hold_constants=True)  # node model first
        network = finetune(network, train, val, steps - steps // 2, seed)  # then both
        finetuned = evaluate(network, test, device)
    except EqlgnError:  # the loss or the weights became non-finite
        finetuned = None
    if finetuned is not None and not math.isfinite(finetuned):
        finetuned = None
    ratio = None if finetuned is None or gn_loss <= 0 else finetuned / gn_loss
    return SymbolicNetwork(as_read if math.isfinite(as_read) else None, finetuned, gn_loss, ratio, steps,
                           [str(round_constants(e, 4)) for e in edge.to_sympy()])


def finetune(network: GN, train, val, steps: int, seed: int = 0, hold_constants: bool = False) -> GN:
    """Train a GN whose edge model is a :class:`SymbolicEdge` for ``steps`` (at least 1) at a small learning rate.

    ``hold_constants``: the formula's constants are held (only the node model learns); they
    are trainable again afterwards.
    """
    from .recipes import recommended_config
    from .train import fit

    theta = network.edge_model.theta
    config = recommended_config("mlp", variant=network.variant, steps=max(steps, 1), max_lr=1e-3, seed=seed,
                                device=str(theta.device))  # optimiser and budget only: the network is given
    theta.requires_grad_(not hold_constants)
    try:
        return fit(train, config, val=val, model=network, progress=False).model
    finally:
        theta.requires_grad_(True)
