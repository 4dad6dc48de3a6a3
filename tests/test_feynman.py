"""The AI Feynman benchmark script: its table, its exactness judge, a resumable run of one formula."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import feynman  # noqa: E402

FORMULAS = {f.name: f for f in feynman.read_table()}


def test_the_table_holds_at_least_thirty_formulas_that_evaluate_inside_and_outside_their_ranges():
    assert len(FORMULAS) >= 30
    rng = np.random.default_rng(0)
    for formula in FORMULAS.values():
        assert len(set(formula.names)) == len(formula.names), formula.name
        assert {s.name for s in formula.expression().free_symbols} <= set(formula.names), formula.name
        for outside in (False, True):
            X = formula.sample(rng, 200, outside)
            assert np.isfinite(formula.values(X)).all(), formula.name
        assert (formula.sample(rng, 200, True) >= np.array([v[2] for v in formula.variables])).all()


def test_exactness_accepts_the_truth_and_constants_within_one_percent_and_nothing_else():
    formula = FORMULAS["II.8.31"]  # epsilon*Ef**2/2
    eps, Ef = formula.symbols["epsilon"], formula.symbols["Ef"]
    rng = np.random.default_rng(0)
    assert feynman.is_exact(sympy.Float(0.5) * eps * Ef**2, formula, rng)
    assert feynman.is_exact(sympy.Float(0.5003) * eps * Ef**2 + sympy.Float(1e-7), formula, rng)
    assert not feynman.is_exact(sympy.Float(0.53) * eps * Ef**2, formula, rng)  # a constant 6 % off
    assert not feynman.is_exact(sympy.Float(0.5) * eps * Ef**2 + sympy.Float(0.01) * Ef, formula, rng)  # extra term
    assert not feynman.is_exact(sympy.Float(0.1) * eps**2 * Ef**2, formula, rng)  # wrong form


def test_values_of_sums_term_by_term_what_lambdify_gives_at_once():
    formula = FORMULAS["I.12.5"]
    found = sympy.sympify("0.5*q2*Ef + 3*q2**2 - Ef/q2", locals=formula.symbols)
    X = formula.sample(np.random.default_rng(1), 100)
    direct = sympy.lambdify(list(formula.symbols.values()), found, "numpy")(*X.T)
    np.testing.assert_allclose(feynman.values_of(found, formula, X), direct, rtol=1e-12)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_one_formula_runs_is_recorded_atomically_and_is_skipped_when_done(tmp_path):
    import torch

    torch.set_num_threads(1)
    formula = FORMULAS["I.12.1"]  # mu*Nn
    record = feynman.run_formula(formula, "eql", 0, 500, tmp_path)
    assert record["status"] == "done", record.get("error")
    assert record["r2"] > 0.999 and record["r2_outside"] > 0.99 and record["terms"] >= 1
    assert record["settings"]["penalty"] == list(feynman.EQL_SETTINGS["penalty"])  # the settings that made it
    saved = json.loads((tmp_path / "I.12.1-eql.json").read_text())
    assert saved == record and not list(tmp_path.glob("*.tmp"))
    assert feynman.run_formula(formula, "eql", 0, 500, tmp_path) == record  # finished: read back, not refitted
    assert "I.12.1" in feynman.table([record], 0, "python experiments/feynman.py")


def test_a_record_of_an_earlier_judge_is_judged_again_when_read(tmp_path):
    formula = FORMULAS["II.8.31"]
    record = {"formula": "II.8.31", "truth": formula.text, "method": "eql", "seed": 0, "samples": 10,
              "status": "done", "found": "0.5*Ef**2*epsilon + 0.01*Ef", "terms": 2, "exact": True, "seconds": 1.0}
    (tmp_path / "II.8.31-eql.json").write_text(json.dumps(record))
    again = feynman.run_formula(formula, "eql", 0, 10, tmp_path)
    assert again["exact"] is False and again["judge"] == feynman.JUDGE
    assert json.loads((tmp_path / "II.8.31-eql.json").read_text()) == again


def test_degree_counts_reciprocals_and_refuses_sums_in_denominators():
    assert FORMULAS["I.12.1"].degree == 2  # mu*Nn
    assert FORMULAS["II.3.24"].degree == 3  # Pwr/(4 pi r**2)
    assert FORMULAS["I.12.2"].degree == 5  # q1 q2 / (4 pi epsilon r**2)
    assert FORMULAS["II.10.9"].degree is None  # a sum in the denominator


def test_reach_is_degree_four_or_few_monomials_of_any_degree_or_a_reciprocal_of_either():
    assert FORMULAS["II.3.24"].reachable  # degree 3: the product layers
    assert FORMULAS["III.19.51"].degree == 11 and FORMULAS["III.19.51"].reachable  # one monomial: a power unit
    assert FORMULAS["II.10.9"].degree is None and FORMULAS["II.10.9"].reachable  # eps (1 + chi) / sigma as 1 / y
    assert not FORMULAS["I.16.6"].reachable  # (u + v) / (1 + u v / c²): neither it nor its reciprocal
    settings = dict(feynman.EQL_SETTINGS)
    try:
        feynman.EQL_SETTINGS.update(power_restarts=0, reciprocal_target=False)
        assert not FORMULAS["III.19.51"].reachable and not FORMULAS["II.10.9"].reachable
        assert FORMULAS["II.3.24"].reachable
    finally:
        feynman.EQL_SETTINGS.clear()
        feynman.EQL_SETTINGS.update(settings)


def test_a_reciprocal_of_a_dense_sum_counts_as_dense():
    x, y = sympy.symbols("x y")
    dense = sympy.Add(*[sympy.Float(k + 1) * x**k * y for k in range(150)])
    assert feynman.term_count(sympy.Pow(dense, -1, evaluate=False)) == 151 > feynman.MAX_TERMS
    assert feynman.term_count(sympy.expand(x * y / (x - 1))) == 3
