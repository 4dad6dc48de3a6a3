"""What a network's edge output means, as two small strategies: a force or a pair potential.

A force GN's messages are (a linear map of) the pairwise force: read with the EQL sparse
refit, reported without their constant terms (:func:`message_offset`), judged by
:func:`eqlgn.judging.judge`. A Hamiltonian GN's one edge output is a pair
energy: only its identifiable part (symmetric, position-dependent) is determined by data,
the refit is off (it would spend terms on the undetermined parts), and the force
``-dU/dx1`` is judged (:func:`eqlgn.hamiltonian.judge_potential`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sympy

from .errors import ConfigError


@dataclass(frozen=True)
class ForceTarget:
    """Messages sum to forces."""

    name: str = "force"
    refit: bool = True  # the EQL sparse refit applies
    composable: bool = True  # a symbolic node model can be fitted on its summed messages

    def clean(self, expressions: Sequence[sympy.Expr], digits: int) -> list[sympy.Expr]:
        """The identifiable part of each message as reported: its constant term dropped (:func:`message_offset`),
        constants rounded."""
        from .extraction import round_constants

        return [round_constants(without_offset(e), digits) for e in expressions]

    def offsets(self, expressions: Sequence[sympy.Expr]) -> list[float]:
        """The constant term of each message, which :meth:`clean` drops."""
        return [message_offset(e) for e in expressions]

    def verdict(self, expressions: Sequence, law: str, dim: int) -> dict:
        """The judge's verdict as ``result.json`` stores it (``target`` recorded)."""
        from .judging import judge

        return {**judge(expressions, law, dim).to_dict(), "target": self.name}


@dataclass(frozen=True)
class PotentialTarget:
    """The one edge output is a pair energy (Hamiltonian GN)."""

    name: str = "potential"
    refit: bool = False
    composable: bool = False

    def clean(self, expressions: Sequence[sympy.Expr], digits: int) -> list[sympy.Expr]:
        """The identifiable part of each energy, constants rounded."""
        from .extraction import round_constants
        from .hamiltonian import identifiable_part

        return [round_constants(identifiable_part(e), digits) for e in expressions]

    def offsets(self, expressions: Sequence[sympy.Expr]) -> list[float]:
        """None: an energy's constant is dropped with its other unidentifiable parts (:meth:`clean`)."""
        return [0.0 for _ in expressions]

    def verdict(self, expressions: Sequence, law: str, dim: int) -> dict:
        from .hamiltonian import judge_potential

        return {**judge_potential(expressions[:1], law, dim).to_dict(), "target": self.name}


def message_offset(expression: sympy.Expr) -> float:
    """The constant term of a message expression (0 when it has none).

    Every receiver sums the messages of all its n − 1 senders (every graph is complete), so a
    constant ``c`` in a message adds ``(n − 1)·c`` to every receiver's sum, which the node model's
    first bias takes up exactly: no data can tell ``c`` apart from the node model, and it is not part
    of the pair's law. The run reports the message without it and records it (``message_offsets``).
    """
    return float(sum(term for term in sympy.Add.make_args(expression) if not term.free_symbols))


def without_offset(expression: sympy.Expr) -> sympy.Expr:
    """The message without its constant term (:func:`message_offset`); 0 when it is a constant."""
    return sympy.Add(*[term for term in sympy.Add.make_args(expression) if term.free_symbols])


TARGETS = {"force": ForceTarget(), "potential": PotentialTarget()}


def target_for(kind: str) -> ForceTarget | PotentialTarget:
    """The target of a network kind (``force``, ``hamiltonian``) or a target name (``force``, ``potential``)."""
    name = {"hamiltonian": "potential"}.get(kind, kind)
    if name not in TARGETS:
        raise ConfigError(f"unknown target {kind!r}; known: force, potential (network kinds force, hamiltonian)")
    return TARGETS[name]


def judge_result(expressions, law: str, dim: int, target: str = "force") -> dict:
    """The verdict as ``result.json`` stores it: the force judge, or for ``target="potential"``
    :func:`eqlgn.hamiltonian.judge_potential` on the first expression; ``target`` recorded."""
    return target_for(target).verdict(expressions, law, dim)
