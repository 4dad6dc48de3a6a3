"""Edge inputs built from receiver (1) and sender (2) node features.

Two kinds (``features=``):

* ``raw`` — the concatenation ``[x1, x2]`` of both node feature vectors (Cranmer et al.).
* ``relative`` — named physical inputs from the symbol vocabulary (docs/architecture.md), computed per edge:
  ``dx dy dz`` (``x1 - x2``), ``r``, ``inv_r`` (1/r), ``inv_r2`` (1/r²), ``inv_r3`` (1/r³),
  ``m1 m2 q1 q2``, ``inv_m1`` (1/m1), the pair products ``q1q2`` (q1·q2) and ``m1m2`` (m1·m2),
  and the raw coordinates ``x1 ... vz2`` if wanted.

The inverse powers use ``max(r, r_min)`` so a close encounter cannot produce an infinite
input; ``r_min`` (default 1e-2, the simulator's softening) is saved with the run.
:data:`DERIVED` maps each derived name to its SymPy form over the base symbols, so an
equation read from an EQL over these inputs is written back in ``dx, dy, r, m1, ...``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy
import torch

from .equations import SYMBOLS
from .errors import ConfigError, unknown_name
from .layout import NodeLayout

_BASE = {"x": 0, "y": 1, "z": 2}
DERIVED_NAMES = ("r", "inv_r", "inv_r2", "inv_r3", "inv_m1", "q1q2", "m1m2")


RECEIVER_ONLY_INPUTS = ("m1", "q1", "inv_m1")
"""Inputs that describe the receiver alone. They are not in the default set: the node model sees the
receiver's own mass and charge, so a receiver-only term in a message (c·q1, a factor a + b/m1) is a
freedom the node model can undo, not part of the pair's law (docs/method.md, "Receiver-only inputs")."""


def both_particles_inputs(dim: int) -> list[str]:
    """The separation, its inverse powers and both particles' properties (the first recipe's set, until 2026-12-06)."""
    return ["dx", "dy", "dz"][:dim] + ["r", "inv_r", "inv_r2", "inv_r3", "m1", "m2", "q1", "q2", "inv_m1"]


def default_relative_inputs(dim: int, kind: str = "force") -> list[str]:
    """The one input set used for every law: the separation, its inverse powers and the sender's m2, q2
    (docs/method.md says why). A Hamiltonian GN's pair energy (``kind="hamiltonian"``) is symmetric in the
    pair (``q1·q2/r``), so it also gets the receiver's :data:`RECEIVER_ONLY_INPUTS`."""
    both = both_particles_inputs(dim)
    return both if kind == "hamiltonian" else [name for name in both if name not in RECEIVER_ONLY_INPUTS]


_r = SYMBOLS["r"]
DERIVED: dict[str, sympy.Expr] = {
    "inv_r": 1 / _r, "inv_r2": _r**-2, "inv_r3": _r**-3, "inv_m1": 1 / SYMBOLS["m1"],
    "q1q2": SYMBOLS["q1"] * SYMBOLS["q2"], "m1m2": SYMBOLS["m1"] * SYMBOLS["m2"],
}


def vocabulary(dim: int) -> list[str]:
    """Every name a ``relative`` input may use for ``dim`` dimensions."""
    axes = list(_BASE)[:dim]
    per_node = axes + [f"v{a}" for a in axes] + ["q", "m"]
    nodes = [f"{f}{i}" for i in (1, 2) for f in per_node]
    return [f"d{a}" for a in axes] + list(DERIVED_NAMES) + nodes


def check_inputs(names: Sequence[str], dim: int) -> list[str]:
    """Validate a list of relative input names; raise ConfigError naming the bad one."""
    valid = vocabulary(dim)
    names = list(names)
    if not names:
        raise ConfigError("the relative input list is empty")
    for name in names:
        if name not in valid:
            raise unknown_name(f"edge input for {dim}D", name, valid)
    if len(set(names)) != len(names):
        raise ConfigError(f"edge inputs repeat a name: {names}")
    return names


def input_symbol(name: str) -> sympy.Expr:
    """SymPy form of one input over the base vocabulary (``inv_r`` -> ``1/r``)."""
    return DERIVED.get(name, SYMBOLS.get(name, sympy.Symbol(name, real=True)))


def relative_features(receiver: torch.Tensor, sender: torch.Tensor, names: Sequence[str], dim: int,
                      r_min: float = 1e-2) -> torch.Tensor:
    """Per-edge inputs ``[..., len(names)]`` from node features ``[..., 2D+2]`` of 1 and 2."""
    layout = NodeLayout(dim)
    dx = receiver[..., layout.position] - sender[..., layout.position]
    r = dx.pow(2).sum(-1).sqrt()
    r_safe = r.clamp_min(r_min)
    derived = {"r": lambda: r, "inv_r": lambda: 1 / r_safe, "inv_r2": lambda: r_safe.pow(-2),
               "inv_r3": lambda: r_safe.pow(-3), "inv_m1": lambda: 1 / receiver[..., layout.mass],
               "q1q2": lambda: receiver[..., layout.charge] * sender[..., layout.charge],
               "m1m2": lambda: receiver[..., layout.mass] * sender[..., layout.mass]}  # only those named are computed
    axes = list(_BASE)[:dim]
    columns = []
    for name in names:
        if name in derived:
            columns.append(derived[name]())
        elif name[0] == "d" and name[1:] in axes:
            columns.append(dx[..., _BASE[name[1:]]])
        else:
            node = receiver if name[-1] == "1" else sender
            columns.append(node[..., layout.column(name[:-1])])
    return torch.stack(columns, dim=-1)
