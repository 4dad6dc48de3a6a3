"""The inputs' identities (q² = 1 on ±1 charges, r² = Σ d²) and the simplest reading they allow."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import sympy

from eqlgn.equations import SYMBOLS, evaluate, parse_equation
from eqlgn.extraction import sparse_refit
from eqlgn.identities import data_identities, reduce_identities, simplest_reading
from eqlgn.judging import judge

dx, dy, dz, r, q1, q2, m2 = (SYMBOLS[n] for n in "dx dy dz r q1 q2 m2".split())


def edges(dim: int, charges: str = "unit", n: int = 4000, seed: int = 0) -> dict[str, np.ndarray]:
    """Edge values as the simulator's data have them: offsets, r, masses, charges ±1 (or of several sizes)."""
    rng = np.random.default_rng(seed)
    offsets = rng.normal(size=(dim, n))
    values = {f"d{a}": offsets[i] for i, a in enumerate("xyz"[:dim])} | {"r": np.linalg.norm(offsets, axis=0)}
    for name in ("m1", "m2"):
        values[name] = np.exp(rng.normal(size=n))
    for name in ("q1", "q2"):
        sign = rng.choice([-1.0, 1.0], n)
        values[name] = sign if charges == "unit" else sign * rng.uniform(0.25, 4.0, n)
    return values


def read(text: str, values: dict, dim: int, **refit_settings) -> sympy.Expr:
    """A reading refitted to its own values on ``values``, then its simplest equal reading."""
    expression = parse_equation(text)
    refit = partial(sparse_refit, values=values, target=evaluate([expression], values)[:, 0], floor=0.01,
                    **refit_settings)
    first, error = refit(expression)
    return simplest_reading(first, error, values, dim, refit, 0.01)[0]


# Two 2D-8 spring readings of report seeds (103, 106) that equal the spring force on ±1 charges only.
SEED_103 = ["-0.183*dx*q1**2 + 0.183*dx/r - 0.0884*dy*q1**2 + 0.0883*dy/r",
            "-0.0801*dx**2*dy/r**2 + 0.162*dx - 0.162*dx/r - 0.0794*dy**3/r**2 + 0.0794*dy*q1**2/r"]
SEED_106 = ["-0.178*dx + 0.178*dx/r - 0.0958*dy + 0.0958*dy/r", "0.117*dx*q1**2 - 0.118*dx/r - 0.131*dy + 0.131*dy/r"]


@pytest.mark.parametrize("reading", [SEED_103, SEED_106], ids=["seed103", "seed106"])
def test_a_spring_reading_written_with_unit_charges_is_read_as_the_law_and_then_passes_the_judge(reading):
    values = edges(2)
    assert data_identities(values) == {q1: 1.0, q2: 1.0}
    assert judge([parse_equation(t) for t in reading], "spring", 2).status == "failed"
    simplest = [read(t, values, 2) for t in reading]
    assert all(not (e.free_symbols & {q1, q2}) for e in simplest), simplest
    assert all(len(sympy.Add.make_args(e)) <= 4 for e in simplest), simplest
    assert judge(simplest, "spring", 2).passed, simplest


@pytest.mark.parametrize("dim", [2, 3])
def test_the_last_axis_squared_is_written_through_r_so_a_sum_equal_to_one_offset_collapses(dim):
    last = (dx, dy, dz)[dim - 1]
    squares = sum(d**2 for d in (dx, dy, dz)[:dim])
    text = str(sympy.expand(sympy.Float(0.08) * last * squares / r**2 + sympy.Float(0.03) * m2 * dx))
    assert reduce_identities(parse_equation(text), {}, dim) == sympy.expand(parse_equation(f"0.08*d{'xyz'[dim - 1]} "
                                                                                             "+ 0.03*m2*dx"))
    simplest = read(text, edges(dim), dim)
    assert len(sympy.Add.make_args(simplest)) == 2 and simplest.free_symbols == {last, m2, dx}, simplest


def test_inputs_that_vary_are_left_alone():
    values = edges(2, charges="sizes")
    assert data_identities(values) == {}
    reading = parse_equation("-0.183*dx*q1**2 + 0.183*dx/r")
    assert reduce_identities(reading, data_identities(values), 2) == reading
    never = partial(sparse_refit, values=values, target=np.zeros(len(values["r"])), floor=0.01)
    assert simplest_reading(reading, 0.0, values, 2, never, 0.01) == (reading, 0.0)
    law = "0.5*q1*q2*dx/r**3 + 0.1*q1**2*q2*dy/r**3"  # on ±1 charges only the second term's q1² goes
    assert read(law, edges(2), 2).free_symbols == {q1, q2, dx, dy, r}
    assert sympy.Add.make_args(read(law, edges(2), 2))[0].free_symbols in ({q1, q2, dx, r}, {q2, dy, r})


def test_a_simpler_reading_that_fits_worse_is_refused():
    """A refit told to keep only terms of half the message's size drops a real term of the rewritten reading."""
    values = edges(2)
    text = "-0.0801*dx**2*dy/r**2 - 0.0794*dy**3/r**2 + 0.02*dx"
    expression = parse_equation(text)
    target = evaluate([expression], values)[:, 0]
    strict = partial(sparse_refit, values=values, target=target, floor=0.01, share=0.5)
    kept, error = simplest_reading(expression, 0.0, values, 2, strict, 0.01)
    assert strict(reduce_identities(expression, data_identities(values), 2))[1] > 0.01
    assert kept == expression and error == 0.0
