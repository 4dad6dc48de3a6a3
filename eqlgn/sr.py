"""Symbolic regression behind one interface: ``fit_symbolic(X, y, names, engine=...)``.

Engines (looked up by name in :data:`ENGINES`):

* ``operon``: pyoperon (C++ genetic programming with wheels; runs offline), the offline
  engine. Multi-objective (R², length) search whose Pareto front is returned.
* ``pysr``: PySR (Julia's SymbolicRegression.jl) with the seeds' set-up — binary operators
  ``+ - * /``, L1 (MAE) loss, ``budget`` iterations (100 as in the 2024 reproduction). It
  runs in a **subprocess** (:mod:`eqlgn._pysr_worker`), because juliacall can crash when
  torch is loaded in the same process; the subprocess reads an ``.npz`` and writes JSON.
* ``eql``: eqlgn's own :class:`eqlgn.regressor.EQLRegressor` — the engine of the EQL edge model
  (identity and product units, ``1/x`` of the one-sign inputs such as ``r`` and the masses, the
  phases, pruning and the sparse refit) on the messages of an MLP GN. ``budget`` × 20 training
  steps (100 → 2000); its restarts' formulas are the front. No wall-clock limit.

Every engine returns a Pareto front that is re-scored here the same way: each candidate is
parsed into SymPy in the symbol vocabulary (:mod:`eqlgn.equations`), its complexity is
its SymPy tree size, and its losses are mean absolute errors on a training and a held-out
validation part of the data. :func:`choose` then picks the expression.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sympy

from .equations import SYMBOLS, complexity, evaluate, parse_equation
from .errors import ConfigError, EqlgnError, MissingDependencyError, require, unknown_name

ENGINES = ("operon", "pysr", "eql")
EQL_ENGINE_SETTINGS = {"units": {"identity": 8, "product": 8}, "hidden_layers": 2, "restarts": 8}
"""The ``eql`` engine's network (the Feynman benchmark's): monomials up to degree 4 in the inputs and ``1/r``,
``1/m``: spring and ``m2·dx/r²``, not ``m2·dx/r³`` (three layers reached no law and took 800 s to read, measured)."""
EQL_FRONT_TERMS = 100
"""A formula of the ``eql`` engine with more terms (a dense expansion, no reading of a law) joins no front."""
PYSR_UNAVAILABLE_EXIT = 3
"""Exit code of the PySR worker when PySR or Julia cannot be loaded."""


@dataclass
class Candidate:
    """One expression of a Pareto front.

    Attributes:
        expression: SymPy expression over the vocabulary symbols.
        complexity: SymPy tree size (:func:`eqlgn.equations.complexity`).
        train_loss: mean absolute error on the training part.
        val_loss: mean absolute error on the held-out validation part.
    """

    expression: sympy.Expr
    complexity: int
    train_loss: float
    val_loss: float

    def to_dict(self) -> dict:
        return {"equation": str(self.expression), "complexity": self.complexity,
                "train_loss": self.train_loss, "val_loss": self.val_loss}


@dataclass
class SymbolicFit:
    """Result of one symbolic-regression fit.

    Attributes:
        engine: the engine's name.
        variables: input names (vocabulary symbols), in the column order of ``X``.
        candidates: the Pareto front, simplest first.
        chosen: index of the selected candidate (:func:`choose`).
        seconds: wall time of the search.
    """

    engine: str
    variables: list[str]
    candidates: list[Candidate]
    chosen: int
    seconds: float
    settings: dict = field(default_factory=dict)

    @property
    def expression(self) -> sympy.Expr:
        """The chosen expression."""
        return self.candidates[self.chosen].expression

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Evaluate the chosen expression on ``X [N, len(variables)]``."""
        return _evaluate_on(self.expression, X, self.variables)

    def to_dict(self) -> dict:
        return {"engine": self.engine, "variables": self.variables, "chosen": self.chosen,
                "seconds": self.seconds, "settings": self.settings,
                "candidates": [c.to_dict() for c in self.candidates]}

    @classmethod
    def from_dict(cls, record: dict) -> SymbolicFit:
        """Rebuild from :meth:`to_dict` output; equations are parsed safely."""
        candidates = [Candidate(parse_equation(c["equation"]), int(c["complexity"]), float(c["train_loss"]),
                                float(c["val_loss"])) for c in record["candidates"]]
        return cls(record["engine"], list(record["variables"]), candidates, int(record["chosen"]),
                   float(record["seconds"]), dict(record.get("settings", {})))


SELECTION_TOLERANCE = 3.0
"""Candidates within this factor of the best validation loss may be chosen (PySR's ``"best"`` uses 1.5).
Chosen on design seeds 0–1 of the MLP bottleneck route (docs/method.md, "Choice")."""


def choose(candidates: Sequence[Candidate], tolerance: float = SELECTION_TOLERANCE) -> int:
    """Pick an expression from a Pareto front sorted by complexity (PySR's rule, on validation loss).

    Rule: the score of candidate ``i`` is the steepest drop of log-loss per unit of
    complexity, ``-(log L_i - log L_{i-1}) / (C_i - C_{i-1})`` (0 for the simplest), with
    ``L`` the validation loss. Among candidates whose validation loss is at most
    ``tolerance`` × the best validation loss, the one with the largest score wins (ties:
    the simpler). An expression that is much simpler but no worse than its more complex
    neighbours is chosen; one that buys a tiny loss drop with many extra nodes is not.
    PySR's ``model_selection="best"`` is ``tolerance=1.5``; :data:`SELECTION_TOLERANCE` is looser
    because a GN's messages are the law plus the network's own error, and at 1.5 × the best loss
    the law itself is often excluded in favour of a longer expression that fits that error.
    """
    if not candidates:
        raise EqlgnError("symbolic regression returned no expressions")
    losses = np.array([max(c.val_loss, 1e-300) for c in candidates])
    best = losses.min()
    scores = [0.0]
    for prev, cur in zip(candidates[:-1], candidates[1:]):
        gain = np.log(max(prev.val_loss, 1e-300)) - np.log(max(cur.val_loss, 1e-300))
        scores.append(float(gain / max(cur.complexity - prev.complexity, 1)))
    eligible = [i for i in range(len(candidates)) if losses[i] <= tolerance * best]
    return max(eligible, key=lambda i: (scores[i], -candidates[i].complexity))


def fit_symbolic(
    X: np.ndarray,
    y: np.ndarray,
    variable_names: Sequence[str],
    engine: str = "operon",
    *,
    budget: int = 100,
    seed: int = 0,
    max_samples: int = 4000,
    val_fraction: float = 0.25,
    threads: int | None = None,
    max_seconds: float | None = None,
    tolerance: float = SELECTION_TOLERANCE,
) -> SymbolicFit:
    """Fit ``y ≈ f(X)`` with the named engine and choose one expression from its Pareto front.

    Args:
        X: ``[N, F]`` inputs; column ``k`` is the vocabulary symbol ``variable_names[k]``.
        y: ``[N]`` target.
        variable_names: vocabulary symbols (:data:`eqlgn.equations.SYMBOL_NAMES`).
        engine: ``operon`` (offline), ``pysr`` (needs Julia) or ``eql`` (eqlgn's EQLRegressor).
        budget: search length: PySR ``niterations``; operon generations; EQL steps / 20.
        seed: random seed (subsampling, split, engine).
        max_samples: rows used (random subsample); the search cost grows with them.
        val_fraction: share of the rows held out to score candidates.
        threads: engine threads (default: all cores).
        max_seconds: wall-clock limit of the search (default none).
        tolerance: see :func:`choose`.
    """
    if engine not in ENGINES:
        raise unknown_name("symbolic-regression engine", engine, ENGINES)
    X, y, names = _check_inputs(X, y, variable_names)
    if budget <= 0:
        raise ConfigError(f"budget must be a positive number of iterations, got {budget}")
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(y))[:max_samples]
    n_val = max(1, int(round(val_fraction * len(rows))))
    train, val = rows[n_val:], rows[:n_val]
    threads = threads or os.cpu_count() or 1
    started = time.perf_counter()
    search = {"operon": _fit_operon, "pysr": _fit_pysr, "eql": _fit_eql}[engine]
    strings, settings = search(X[train], y[train], names, budget, seed, threads, max_seconds)
    seconds = time.perf_counter() - started
    candidates = pareto_front(strings, names, X[train], y[train], X[val], y[val])
    return SymbolicFit(engine, names, candidates, choose(candidates, tolerance), seconds, settings)


def pareto_front(equations: Sequence[str], names: Sequence[str], X_train: np.ndarray, y_train: np.ndarray,
                 X_val: np.ndarray, y_val: np.ndarray) -> list[Candidate]:
    """Parse and score the engine's expressions; keep the front of (complexity, training loss)."""
    scored: dict[int, Candidate] = {}
    for text in equations:
        expr = parse_equation(text)
        train_loss = _mae(expr, X_train, y_train, names)
        if not np.isfinite(train_loss):
            continue
        c = Candidate(expr, complexity(expr), train_loss, _mae(expr, X_val, y_val, names))
        if c.complexity not in scored or c.train_loss < scored[c.complexity].train_loss:
            scored[c.complexity] = c
    front, best = [], np.inf
    for size in sorted(scored):
        if scored[size].train_loss < best:
            front.append(scored[size])
            best = scored[size].train_loss
    if not front:
        raise EqlgnError("symbolic regression found no expression that evaluates to finite values")
    return front


def parse_operon(text: str) -> sympy.Expr:
    """Parse pyoperon's infix output (``^`` powers, ``abs``, ``cbrt``, ``min``/``max``, ...) into SymPy."""
    return parse_equation(text)


def _check_inputs(X, y, names) -> tuple[np.ndarray, np.ndarray, list[str]]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    names = [str(n) for n in names]
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ConfigError(f"X must be [N, F] with N = len(y); got X {X.shape} and y {y.shape}")
    if X.shape[1] != len(names):
        raise ConfigError(f"X has {X.shape[1]} columns but {len(names)} variable names were given")
    unknown = [n for n in names if n not in SYMBOLS]
    if unknown:
        raise ConfigError(f"variable names {unknown} are not vocabulary symbols ({' '.join(SYMBOLS)})")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ConfigError("symbolic regression data hold NaN or inf; drop those rows first")
    if len(y) < 10:
        raise ConfigError(f"symbolic regression needs at least 10 rows, got {len(y)}")
    return X, y, names


def _evaluate_on(expr: sympy.Expr, X: np.ndarray, names: Sequence[str]) -> np.ndarray:
    return evaluate([expr], {n: X[:, k] for k, n in enumerate(names)})[:, 0]


def _mae(expr: sympy.Expr, X: np.ndarray, y: np.ndarray, names: Sequence[str]) -> float:
    with np.errstate(all="ignore"):
        pred = _evaluate_on(expr, X, names)
    return float(np.mean(np.abs(pred - y))) if np.isfinite(pred).all() else float("inf")


# --- operon -------------------------------------------------------------------------------------


def _fit_operon(X, y, names, budget, seed, threads, max_seconds) -> tuple[list[str], dict]:
    """Run pyoperon's multi-objective search; return its Pareto front as infix strings."""
    require("pyoperon", extra="operon", purpose="the 'operon' symbolic-regression engine")
    from pyoperon.sklearn import SymbolicRegressor

    settings = {"allowed_symbols": "add,sub,mul,div,constant,variable", "objectives": ["r2", "length"],
                "population_size": 500, "generations": int(budget), "max_length": 40,
                "optimizer_iterations": 5, "n_threads": int(threads), "random_state": int(seed)}
    if max_seconds:
        settings["max_time"] = int(max(1, max_seconds))
    regressor = SymbolicRegressor(max_evaluations=10**8, **settings)
    regressor.fit(X, y)
    strings = [regressor.get_model_string(p["tree"], 12, list(names)) for p in regressor.pareto_front_]
    return strings, settings


def _fit_eql(X, y, names, budget, seed, threads, max_seconds) -> tuple[list[str], dict]:
    """Fit with :class:`eqlgn.regressor.EQLRegressor`; the chosen formula and every restart's are the front."""
    import torch

    from .regressor import EQLRegressor

    settings = {**EQL_ENGINE_SETTINGS, "steps": 20 * int(budget), "random_state": int(seed)}
    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        regressor = EQLRegressor(**settings, device="cpu", progress=False).fit(X, y, list(names))
    finally:
        torch.set_num_threads(previous)
    formulas = [regressor.sympy()] + [r.expressions[0] for r in regressor.restarts_]
    readable = [f for f in formulas if len(sympy.Add.make_args(f)) <= EQL_FRONT_TERMS]  # a dense expansion is no law
    if not readable:
        raise EqlgnError(f"the eql engine found no formula of at most {EQL_FRONT_TERMS} terms; raise --sr-budget "
                         "or use --sr operon")
    return [str(f) for f in readable], settings


# --- PySR, in a subprocess -------------------------------------------------------------------------

PYSR_SETTINGS = {"binary_operators": ["+", "-", "*", "/"], "unary_operators": [],
                 "elementwise_loss": "L1DistLoss()", "maxsize": 30, "populations": 15}


def write_pysr_request(path: str | os.PathLike, X: np.ndarray, y: np.ndarray, names: Sequence[str],
                       settings: dict) -> Path:
    """Write the worker's input file (``X``, ``y``, variable names, PySR settings as JSON)."""
    from ._io import atomic_write

    arrays = {"X": np.asarray(X, np.float64), "y": np.asarray(y, np.float64),
              "names": np.asarray(list(names)), "settings": np.asarray(json.dumps(settings))}
    return atomic_write(path, lambda handle: np.savez(handle, **arrays))


def read_pysr_request(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """Read a file written by :func:`write_pysr_request`."""
    with np.load(path, allow_pickle=False) as f:
        return f["X"], f["y"], [str(n) for n in f["names"]], json.loads(str(f["settings"]))


def read_pysr_response(path: str | os.PathLike) -> list[str]:
    """The equation strings the worker wrote (validated later by the safe parser)."""
    record = json.loads(Path(path).read_text())
    if not isinstance(record, dict) or not isinstance(record.get("equations"), list):
        raise EqlgnError(f"PySR worker output {str(path)!r} is not an equations file")
    return [str(e["equation"]) for e in record["equations"]]


def _fit_pysr(X, y, names, budget, seed, threads, max_seconds) -> tuple[list[str], dict]:
    """Run PySR in a subprocess (``python -m eqlgn._pysr_worker``)."""
    import importlib.util

    if importlib.util.find_spec("pysr") is None:
        raise MissingDependencyError(
            "the 'pysr' engine needs PySR and a Julia installation (pip install 'eqlgn[pysr]'; PySR "
            "downloads Julia on first use or uses the one PYTHON_JULIAPKG_EXE points to); without them "
            "use the offline engine: --sr operon (engine='operon')")
    settings = {**PYSR_SETTINGS, "niterations": int(budget), "random_state": int(seed),
                "procs": int(threads)}
    if max_seconds:
        settings["timeout_in_seconds"] = float(max_seconds)
    with tempfile.TemporaryDirectory(prefix="eqlgn-pysr-") as tmp:
        request = write_pysr_request(Path(tmp) / "request.npz", X, y, names, settings)
        response = Path(tmp) / "response.json"
        done = subprocess.run([sys.executable, "-m", "eqlgn._pysr_worker", str(request), str(response)],
                              capture_output=True, text=True, env=os.environ.copy())
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        if done.returncode == PYSR_UNAVAILABLE_EXIT:
            raise MissingDependencyError(f"PySR could not start Julia ({tail[0]}); install Julia or set "
                                         "PYTHON_JULIAPKG_EXE, or use the offline engine: --sr operon")
        if done.returncode != 0 or not response.is_file():
            raise EqlgnError(f"the PySR worker failed (exit {done.returncode}): {tail[0]}")
        return read_pysr_response(response), settings

