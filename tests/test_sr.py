"""Symbolic regression (operon for real, PySR where Julia exists), the composed model, `compare`."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import sympy
import torch

from eqlgn.equations import SYMBOLS, evaluate, parse_equation
from eqlgn.errors import ConfigError, MissingDependencyError
from eqlgn.models import GN, EdgeModel
from eqlgn.sr import (
    PYSR_UNAVAILABLE_EXIT,
    Candidate,
    SymbolicFit,
    choose,
    fit_symbolic,
    parse_operon,
    read_pysr_request,
    read_pysr_response,
    write_pysr_request,
)
from eqlgn.symbolic import ComposedModel

S = SYMBOLS


def planted_data(n: int = 3000, seed: int = 0, noise: float = 0.01):
    rng = np.random.default_rng(seed)
    dx, dy = rng.normal(size=(2, n))
    r = np.hypot(dx, dy) + 0.3
    y = 0.7 * dx * (1 - 1 / r)
    return np.column_stack([dx, dy, r]), y + noise * rng.normal(size=n), y


def pysr_runs() -> bool:
    """PySR imports and starts Julia (in a subprocess, as the engine does)."""
    if importlib.util.find_spec("pysr") is None:
        return False
    done = subprocess.run([sys.executable, "-c", "import pysr"], capture_output=True, timeout=600)
    return done.returncode == 0


def test_operon_recovers_a_planted_law_from_noisy_data():
    pytest.importorskip("pyoperon")
    X, y, clean = planted_data()
    fit = fit_symbolic(X, y, ["dx", "dy", "r"], engine="operon", budget=60, seed=0)
    assert fit.engine == "operon" and len(fit.candidates) >= 2
    chosen = fit.expression
    assert {s.name for s in chosen.free_symbols} == {"dx", "r"}
    X_new, _, truth = planted_data(2000, seed=1, noise=0.0)
    residual = fit.predict(X_new) - truth
    assert np.sqrt(np.mean(residual**2)) < 0.01 * np.std(truth) + 0.01
    complexities = [c.complexity for c in fit.candidates]
    assert complexities == sorted(complexities)
    restored = SymbolicFit.from_dict(json.loads(json.dumps(fit.to_dict())))
    np.testing.assert_allclose(restored.predict(X_new), fit.predict(X_new), rtol=1e-9)
    assert restored.chosen == fit.chosen and len(restored.candidates) == len(fit.candidates)


def test_eql_engine_reads_a_planted_law_from_noisy_data():
    X, y, _ = planted_data()
    fit = fit_symbolic(X, y, ["dx", "dy", "r"], engine="eql", budget=100, seed=0, threads=1)
    assert fit.engine == "eql" and fit.settings["steps"] == 2000
    assert {s.name for s in fit.expression.free_symbols} == {"dx", "r"}
    X_new, _, truth = planted_data(2000, seed=1, noise=0.0)
    assert np.sqrt(np.mean((fit.predict(X_new) - truth) ** 2)) < 0.01 * np.std(truth)


def test_parsed_operon_strings_evaluate_like_operon_itself():
    pytest.importorskip("pyoperon")
    from pyoperon.sklearn import SymbolicRegressor

    X, y, _ = planted_data(800)
    regressor = SymbolicRegressor(objectives=["r2", "length"], population_size=200, generations=15,
                                  n_threads=1, random_state=3,
                                  allowed_symbols="add,sub,mul,div,square,sqrt,exp,log,constant,variable")
    regressor.fit(X, y)
    for point in regressor.pareto_front_:
        expr = parse_operon(regressor.get_model_string(point["tree"], 12, ["dx", "dy", "r"]))
        with np.errstate(all="ignore"):
            ours = evaluate([expr], {"dx": X[:, 0], "dy": X[:, 1], "r": X[:, 2]})[:, 0]
            theirs = regressor.evaluate_model(point["tree"], X)
        finite = np.isfinite(theirs)
        np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("text, expected", [
    ("((1.500 * dx) + (2.000 * r))", 1.5 * S["dx"] + 2 * S["r"]),
    ("((1.000 * dx) - (1.000 * r))", S["dx"] - S["r"]),
    ("((1.000 * dx) * (1.000 * r))", S["dx"] * S["r"]),
    ("((1.000 * dx) / (1.000 * r))", S["dx"] / S["r"]),
    ("((1.000 * dx) / (sqrt(1 + (1.000 * r) ^ 2)))", S["dx"] / sympy.sqrt(1 + S["r"] ** 2)),
    ("((1.000 * dx) ^ (1.000 * r))", S["dx"] ** S["r"]),
    ("(abs((1.000 * dx)) ^ (1.000 * r))", sympy.Abs(S["dx"]) ** S["r"]),
    ("((1.000 * dx) ^ 2)", S["dx"] ** 2),
    ("(max((1.000 * dx), (1.000 * r)))", sympy.Max(S["dx"], S["r"])),
    ("(min((1.000 * dx), (1.000 * r)))", sympy.Min(S["dx"], S["r"])),
    ("log((1.000 * r)+1)", sympy.log(S["r"] + 1)),
    ("log(abs((1.000 * dx)))", sympy.log(sympy.Abs(S["dx"]))),
    ("sqrt(abs((1.000 * dx)))", sympy.sqrt(sympy.Abs(S["dx"]))),
    ("cbrt((1.000 * dx))", sympy.sign(S["dx"]) * sympy.Abs(S["dx"]) ** sympy.Rational(1, 3)),
    ("((1.000000000000 * dx) * (-0.000000250000))", -2.5e-7 * S["dx"]),
] + [(f"{f}((1.000 * r))", getattr(sympy, g)(S["r"])) for f, g in [
    ("exp", "exp"), ("log", "log"), ("sin", "sin"), ("cos", "cos"), ("tan", "tan"), ("tanh", "tanh"),
    ("sinh", "sinh"), ("cosh", "cosh"), ("asin", "asin"), ("acos", "acos"), ("atan", "atan"), ("sqrt", "sqrt"),
    ("abs", "Abs"), ("floor", "floor"), ("ceil", "ceiling")]])
def test_infix_parsing_handles_every_operon_operator(text, expected):
    values = {"dx": np.array([-0.7, 0.3, 0.9]), "r": np.array([0.2, 0.5, 0.8])}
    with np.errstate(all="ignore"):
        got = evaluate([parse_operon(text)], values)[:, 0]
        want = evaluate([expected], values)[:, 0]
    np.testing.assert_allclose(got, want, rtol=1e-9, equal_nan=True)


def test_parsing_refuses_names_outside_the_vocabulary():
    with pytest.raises(ConfigError, match="__import__"):
        parse_operon("__import__('os').system('true')")


def candidate(size: int, loss: float) -> Candidate:
    return Candidate(sympy.Symbol(f"e{size}"), size, loss, loss)


def test_chooser_picks_the_planted_expression_from_a_hand_made_front():
    front = [candidate(3, 1.0), candidate(5, 0.5), candidate(7, 1e-3), candidate(15, 9e-4), candidate(30, 8e-4)]
    assert choose(front) == 2
    # a big drop at the top of the front wins when the simpler ones are not within tolerance
    front = [candidate(3, 1.0), candidate(5, 0.9), candidate(9, 0.1), candidate(20, 1e-4)]
    assert choose(front) == 3
    # the tolerance decides which candidates may be chosen at all
    front = [candidate(3, 0.02), candidate(4, 0.0101), candidate(20, 0.01)]
    assert choose(front, tolerance=1.5) == 1
    assert choose(front, tolerance=1.0) == 2
    # a GN's messages: the law (complexity 9) at twice the loss of a long expression that also fits the
    # network's own error; PySR's 1.5x shuts the law out, the default 3x keeps it
    front = [candidate(5, 1.0), candidate(9, 0.02), candidate(30, 0.01)]
    assert choose(front, tolerance=1.5) == 2
    assert choose(front) == 1


def test_fit_symbolic_rejects_bad_input_with_clear_errors():
    X, y, _ = planted_data(100)
    with pytest.raises(ConfigError, match="did you mean 'operon'"):
        fit_symbolic(X, y, ["dx", "dy", "r"], engine="operom")
    with pytest.raises(ConfigError, match="not vocabulary symbols"):
        fit_symbolic(X, y, ["dx", "dy", "radius"])
    with pytest.raises(ConfigError, match="3 columns but 2"):
        fit_symbolic(X, y, ["dx", "dy"])
    X[0, 0] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        fit_symbolic(X, y, ["dx", "dy", "r"])


def test_pysr_request_round_trips_through_the_worker_file(tmp_path):
    X, y, _ = planted_data(50)
    settings = {"niterations": 7, "binary_operators": ["+", "-", "*", "/"]}
    path = write_pysr_request(tmp_path / "request.npz", X, y, ["dx", "dy", "r"], settings)
    X2, y2, names, settings2 = read_pysr_request(path)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    assert names == ["dx", "dy", "r"] and settings2 == settings
    response = tmp_path / "response.json"
    response.write_text(json.dumps({"equations": [{"equation": "0.7*dx - 0.7*dx/r", "complexity": 7,
                                                   "loss": 0.01}], "seconds": 1.0}))
    assert [parse_equation(e) for e in read_pysr_response(response)] == [0.7 * S["dx"] - 0.7 * S["dx"] / S["r"]]


@pytest.mark.skipif(pysr_runs(), reason="PySR and Julia are available here")
def test_pysr_without_julia_names_the_cause_and_the_offline_engine(tmp_path):
    X, y, _ = planted_data(100)
    with pytest.raises(MissingDependencyError, match="operon") as info:
        fit_symbolic(X, y, ["dx", "dy", "r"], engine="pysr", budget=2)
    assert "Julia" in str(info.value)
    # the worker itself reads the request and exits with its 'unavailable' code
    request = write_pysr_request(tmp_path / "request.npz", X, y, ["dx", "dy", "r"], {"niterations": 2})
    done = subprocess.run([sys.executable, "-m", "eqlgn._pysr_worker", str(request), str(tmp_path / "out.json")],
                          capture_output=True, text=True)
    assert done.returncode == PYSR_UNAVAILABLE_EXIT and "PySR" in done.stderr


@pytest.mark.skipif(not pysr_runs(), reason="needs PySR with a working Julia (users' machines)")
def test_pysr_recovers_a_planted_law():
    X, y, _ = planted_data(1000, noise=0.0)
    fit = fit_symbolic(X, y, ["dx", "dy", "r"], engine="pysr", budget=20)
    X_new, _, truth = planted_data(500, seed=1, noise=0.0)
    assert np.sqrt(np.mean((fit.predict(X_new) - truth) ** 2)) < 0.01 * np.std(truth)


class KnownEdge(EdgeModel):
    """Messages ``[-2(r-1)dx/r, -2(r-1)dy/r + 0.3 m2]``."""

    out_features = 2

    def forward(self, receiver, sender):
        d = receiver[..., :2] - sender[..., :2]
        r = d.norm(dim=-1, keepdim=True)
        message = -2 * (r - 1) * d / r
        return message + torch.cat([torch.zeros_like(r), 0.3 * sender[..., 5:6]], dim=-1)


class KnownNode(torch.nn.Module):
    """Accelerations ``[s1/m1, s2/m1 - 0.1 q1]``."""

    def forward(self, nodes, summed):
        return summed / nodes[..., 5:6] - torch.cat([torch.zeros_like(nodes[..., 4:5]), 0.1 * nodes[..., 4:5]], -1)


def test_composed_model_of_known_functions_reproduces_the_gn(small_spring):
    gn = GN(KnownEdge(), KnownNode(), "bottleneck", "dense")
    nodes = small_spring.nodes[:50].astype(np.float64)
    expected = gn(torch.as_tensor(nodes)).accelerations.numpy()
    dx, dy, r, m1, m2, q1 = (S[k] for k in ("dx", "dy", "r", "m1", "m2", "q1"))
    composed = ComposedModel([-2 * (r - 1) * dx / r, -2 * (r - 1) * dy / r + 0.3 * m2],
                             [S["s1"] / m1, S["s2"] / m1 - 0.1 * q1], dim=2)
    np.testing.assert_allclose(composed.predict(nodes), expected, rtol=1e-9, atol=1e-9)


def test_refitting_constants_restores_a_perturbed_law(small_spring):
    dx, dy, r, m1 = (S[k] for k in ("dx", "dy", "r", "m1"))
    exact = ComposedModel([-2 * (r - 1) * dx / r, -2 * (r - 1) * dy / r], [S["s1"] / m1, S["s2"] / m1], dim=2)
    perturbed = ComposedModel([-2.3 * (r - 1.1) * dx / r, -1.8 * (r - 1) * dy / r],
                              [0.9 * S["s1"] / m1, S["s2"] / m1], dim=2)
    data = small_spring.subset(np.arange(300))
    assert exact.loss(data) < 1e-4 * np.abs(data.accelerations).mean()
    before = perturbed.loss(data)
    after = perturbed.refit(data).loss(data)
    assert after < 0.01 * before
