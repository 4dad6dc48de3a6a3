"""EQLRegressor against operon on the AI Feynman formulas: exact recovery, R² inside and outside the range, time.

    python experiments/feynman.py --seed 0 --out runs/feynman --docs docs
    python experiments/feynman.py --formulas I.12.1 II.38.3 --out runs/feynman-try
    python experiments/feynman.py --seed 1 --methods eql --penalty 0.001 --out runs/feynman-design-1e-3

The formulas and sampling ranges are ``experiments/feynman_formulas.csv`` (Udrescu & Tegmark's table;
the rational formulas, see its header). For each formula, with ``--seed``:

* ``--samples`` rows drawn uniformly from the variables' ranges to fit on, as the benchmark
  samples; ``--samples`` more to score R² **inside** the range; ``--samples`` rows with every
  variable drawn from ``[high, 2 high - low]`` (the range shifted past its upper end) to score
  R² **outside** it (extrapolation);
* ``eqlgn.EQLRegressor`` (the settings of ``EQL_SETTINGS``: the units, layers, steps and restarts fixed
  before any formula was run; the penalty path, one L1 coefficient per restart, the power restarts (a
  one-layer network of identity and power units beside the others) and the reciprocal target (every restart
  also fitted to ``1 / y``) chosen on the samples of ``DESIGN_SEEDS``, so a table of any other seed is a
  report), timed;
* operon (pyoperon's ``SymbolicRegressor``: ``+ - * /``, constants, variables, objectives R²
  and length, population 500) with a wall-time limit equal to the EQL's time on that formula
  (at least 1 s): **equal budgets**; the model of its last Pareto front with the smallest
  error (its default choice, minimum description length, picked trivial models from a front of
  three: R² 0.28 on II.4.23 where the most accurate member is exact — seen on the first five
  formulas of the first run, and changed before the table was made, in operon's favour);
* **exact recovery**: the found formula, its constants replaced by free parameters fitted to
  the true formula on rows inside and outside the range, reproduces it (relative RMS < 1e-6:
  the form is right), and the found formula itself departs from the truth by at most 1 % of
  the truth's RMS on those rows (the constants are right to about 1 %; a stray intercept of
  1e-6 does not count, a term of more than ``SPURIOUS`` of the truth's RMS that the fit sets to
  zero does) — the difference simplifies to zero up to constants within 1 %. A found
  formula of more than ``MAX_TERMS`` terms (expanded, the terms of a denominator's sum counted too) is counted
  not exact without the check.

One JSON per formula and method in ``OUT`` (a finished one is skipped: the run resumes after a
kill; a method that raises is recorded as a failure, not dropped; one judged by an earlier
version of the judge, ``JUDGE``, is judged again from its recorded formula). ``--docs`` writes
``docs/feynman.md``: the table, the rates and the median times.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy

import eqlgn
from eqlgn.regressor import PENALTY_PATH, POWER_UNITS

TABLE = Path(__file__).parent / "feynman_formulas.csv"
EQL_SETTINGS = {"units": {"identity": 8, "product": 8}, "hidden_layers": 2, "steps": 2000, "restarts": 8,
                "power_restarts": 4, "reciprocal_target": True, "penalty": PENALTY_PATH}
DESIGN_SEEDS = (1,)  # the penalty path, power restarts and reciprocal target were chosen on these seeds' samples;
# seed 0 was the first table (1e-3 alone), seed 2 the second (the path), seed 3 the third (and power restarts)
OPERON_SETTINGS = {"allowed_symbols": "add,sub,mul,div,constant,variable", "objectives": ["r2", "length"],
                   "population_size": 500, "generations": 10**6, "max_length": 40, "optimizer_iterations": 5,
                   "model_selection_criterion": "mean_squared_error"}
METHODS = ("eql", "operon")
SPURIOUS = 1e-4  # a found term this large (relative RMS) that the exact form does not need makes it not exact
REACH = 4  # the largest monomial degree two product layers express
JUDGE = 2  # version of is_exact: a finished record judged by another version is judged again when read
MAX_TERMS = 100  # a found formula of more terms (expanded) is no reading of the law: counted not exact


@dataclass(frozen=True)
class Formula:
    name: str
    output: str
    text: str
    variables: tuple[tuple[str, float, float], ...]

    @property
    def names(self) -> list[str]:
        return [v[0] for v in self.variables]

    @property
    def symbols(self) -> dict[str, sympy.Symbol]:
        return {n: sympy.Symbol(n) for n in self.names}

    def expression(self) -> sympy.Expr:
        return sympy.sympify(self.text, locals={**self.symbols, "pi": sympy.pi})

    @property
    def degrees(self) -> list[int] | None:
        """Total degree of each of the formula's monomials in the variables and their reciprocals (``None``: not a
        sum of such monomials, e.g. a sum in a denominator)."""
        return monomial_degrees(self.expression())

    @property
    def degree(self) -> int | None:
        """The largest of :attr:`degrees`."""
        return None if self.degrees is None else max(self.degrees)

    @property
    def reachable(self) -> bool:
        """The EQL of ``EQL_SETTINGS`` can express the formula: its two product layers (the reciprocals as inputs)
        express exactly the sums of monomials of degree <= ``REACH``; its power restarts (one layer, identity and
        power units) the sums of at most ``POWER_UNITS["power"]`` monomials of any degree beside terms of degree 1;
        with the reciprocal target, the formulas of one sign whose reciprocal is either."""
        if _expressible(self.degrees):
            return True
        if not EQL_SETTINGS.get("reciprocal_target"):
            return False
        values = self.values(self.sample(np.random.default_rng(0), 2000))
        return bool((values > 0).all() or (values < 0).all()) and _expressible(monomial_degrees(1 / self.expression()))

    def sample(self, rng: np.random.Generator, count: int, outside: bool = False) -> np.ndarray:
        columns = []
        for _, low, high in self.variables:
            start, stop = (high, 2 * high - low) if outside else (low, high)
            columns.append(rng.uniform(start, stop, count))
        return np.stack(columns, axis=1)

    def values(self, X: np.ndarray) -> np.ndarray:
        function = sympy.lambdify(list(self.symbols.values()), self.expression(), "numpy")
        return np.asarray(function(*X.T), dtype=float) * np.ones(len(X))


def monomial_degrees(expression: sympy.Expr) -> list[int] | None:
    """Total degree of each monomial of the expanded ``expression`` in the variables and their reciprocals (``None``:
    not a sum of such monomials)."""
    degrees = []
    for term in sympy.Add.make_args(sympy.expand(expression)):
        powers = [(base, power) for base, power in term.as_powers_dict().items() if not base.is_number]
        if not all(base.is_Symbol and power.is_Integer for base, power in powers):
            return None
        degrees.append(sum(abs(int(power)) for _, power in powers))
    return degrees


def _expressible(degrees: list[int] | None) -> bool:
    """Monomials of these degrees sum to a formula the EQL of ``EQL_SETTINGS`` expresses (``Formula.reachable``)."""
    if degrees is None:
        return False
    powers = POWER_UNITS["power"] if EQL_SETTINGS.get("power_restarts", 0) else 0
    return max(degrees) <= REACH or sum(d > 1 for d in degrees) <= powers


def term_count(expanded: sympy.Expr) -> int:
    """Terms of an expanded formula, each sum in a denominator counted term by term (``1 / (a + b + c)``: 4), so that
    the reciprocal of a dense expansion counts as dense."""
    count = 0
    for term in sympy.Add.make_args(expanded):
        count += 1 + sum(len(sympy.Add.make_args(p.base)) for p in term.atoms(sympy.Pow)
                         if p.exp.is_negative and p.base.is_Add)
    return count


def read_table(path: Path = TABLE) -> list[Formula]:
    with open(path, newline="") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        formulas = []
        for row in rows:
            variables = tuple((n, float(lo), float(hi)) for n, lo, hi in
                              (part.split(":") for part in row["variables"].split()))
            formulas.append(Formula(row["name"], row["output"], row["formula"], variables))
    return formulas


def r2(predicted: np.ndarray, target: np.ndarray) -> float:
    if not np.isfinite(predicted).all():
        return float("-inf")
    return float(1 - np.sum((predicted - target) ** 2) / max(np.sum((target - target.mean()) ** 2), 1e-300))


def is_exact(found: sympy.Expr, formula: Formula, rng: np.random.Generator) -> bool:
    """The found formula, constants as free parameters, reproduces the truth with constants within 1 % (docstring)."""
    from scipy.optimize import least_squares

    X = np.concatenate([formula.sample(rng, 300), formula.sample(rng, 300, outside=True)])
    target = formula.values(X)
    symbols = list(formula.symbols.values())
    found = found.xreplace({s: formula.symbols[s.name] for s in found.free_symbols if s.name in formula.symbols})
    constants = sorted(found.atoms(sympy.Float), key=float)
    parameters = [sympy.Symbol(f"_c{i}") for i in range(len(constants))]
    template = found.xreplace(dict(zip(constants, parameters)))
    function = sympy.lambdify([symbols, parameters], template, "numpy")
    scale = max(float(np.sqrt(np.mean(target**2))), 1e-300)

    def residual(theta):
        with np.errstate(all="ignore"):
            value = np.asarray(function(list(X.T), list(theta)), dtype=float) * np.ones(len(X))
        return np.nan_to_num((value - target) / scale, nan=1e6, posinf=1e6, neginf=-1e6)

    start = np.array([float(c) for c in constants])
    close = float(np.max(np.abs(residual(start)))) <= 0.01
    if not len(start):
        return close and float(np.sqrt(np.mean(residual(start) ** 2))) < 1e-6
    fitted = least_squares(residual, start, xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=4000).x
    if not (close and float(np.sqrt(np.mean(residual(fitted) ** 2))) < 1e-6):
        return False
    for term in sympy.Add.make_args(template):  # a term the fit removes must have been rounding, not a spurious term
        size = sympy.lambdify([symbols, parameters], term, "numpy")

        def rms(theta, size=size):
            with np.errstate(all="ignore"):
                value = np.asarray(size(list(X.T), list(theta)), dtype=float) * np.ones(len(X))
            return float(np.sqrt(np.mean(value**2))) / scale

        if rms(fitted) < 1e-6 and rms(start) > SPURIOUS:
            return False
    return True


def run_eql(formula: Formula, X: np.ndarray, y: np.ndarray, seed: int) -> tuple[sympy.Expr, float]:
    started = time.perf_counter()
    model = eqlgn.EQLRegressor(**EQL_SETTINGS, random_state=seed, progress=False).fit(X, y, formula.names)
    return model.sympy(), time.perf_counter() - started


def run_operon(formula: Formula, X: np.ndarray, y: np.ndarray, seed: int, seconds: float) -> tuple[sympy.Expr, float]:
    from pyoperon.sklearn import SymbolicRegressor

    started = time.perf_counter()
    regressor = SymbolicRegressor(max_evaluations=10**9, max_time=int(max(1, math.ceil(seconds))),
                                  n_threads=1, random_state=seed, **OPERON_SETTINGS)
    regressor.fit(X, y)
    text = regressor.get_model_string(regressor.model_, 12, formula.names)
    expression = sympy.sympify(text.replace("^", "**"), locals=formula.symbols)
    return expression, time.perf_counter() - started


def values_of(found: sympy.Expr, formula: Formula, X: np.ndarray) -> np.ndarray:
    """The found formula (a sum: pass it expanded) on rows of X, term by term (an unreadable expansion of thousands
    of terms still evaluates)."""
    with np.errstate(all="ignore"):
        return eqlgn.evaluate_sum(found, dict(zip(formula.symbols, X.T)))


def run_formula(formula: Formula, method: str, seed: int, samples: int, out: Path) -> dict:
    """One formula and method (skipped when its JSON exists); never raises: a failure is a record."""
    path = out / f"{formula.name}-{method}.json"
    if path.is_file():
        record = json.loads(path.read_text())
        if record["status"] != "done" or record.get("judge") == JUDGE:
            return record
        exact = False  # judged by an earlier judge: judge again (a formula of too many terms stays not exact)
        if record["terms"] <= MAX_TERMS:
            found = sympy.sympify(record["found"], locals=formula.symbols)
            exact = is_exact(found, formula, np.random.default_rng([seed, sum(map(ord, formula.name)), JUDGE]))
        record |= {"exact": exact, "judge": JUDGE}
        _write(path, record)
        return record
    rng = np.random.default_rng([seed, sum(map(ord, formula.name))])
    X, X_in, X_out = formula.sample(rng, samples), formula.sample(rng, samples), formula.sample(rng, samples, True)
    y, y_in, y_out = formula.values(X), formula.values(X_in), formula.values(X_out)
    record = {"formula": formula.name, "truth": formula.text, "method": method, "seed": seed, "samples": samples}
    started = time.perf_counter()
    try:
        if method == "eql":
            found, seconds = run_eql(formula, X, y, seed)
            record["settings"] = json.loads(json.dumps(EQL_SETTINGS))  # as the JSON file holds it
        else:
            budget = json.loads((out / f"{formula.name}-eql.json").read_text())["seconds"]
            found, seconds = run_operon(formula, X, y, seed, budget)
            record["budget"] = budget
        expanded = sympy.expand(found)  # once: a dense EQL expansion takes seconds to expand
        terms = term_count(expanded)
        record |= {"status": "done", "found": str(found), "seconds": seconds, "terms": terms,
                   "r2": r2(values_of(expanded, formula, X_in), y_in),
                   "r2_outside": r2(values_of(expanded, formula, X_out), y_out),
                   "exact": terms <= MAX_TERMS and is_exact(found, formula, rng), "judge": JUDGE,
                   "complexity": int(sympy.count_ops(found, visual=False))}
    except Exception as exc:  # a crash is a failure, recorded with the time it took
        record |= {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
                   "exact": False, "seconds": time.perf_counter() - started}
    _write(path, record)
    return record


def _write(path: Path, record: dict) -> None:
    """Atomically: a kill leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)


def table(records: list[dict], seed: int, command: str) -> str:
    by = {(r["formula"], r["method"]): r for r in records}
    names = list(dict.fromkeys(r["formula"] for r in records))
    role = ("a design seed, on whose samples the EQL's penalty path, power restarts and reciprocal target were "
            "chosen" if seed in DESIGN_SEEDS else
            f"a report seed; the EQL's penalty path, power restarts and reciprocal target were chosen on the samples "
            f"of seed(s) "
            f"{', '.join(map(str, DESIGN_SEEDS))}")
    lines = ["# EQLRegressor and operon on the AI Feynman formulas", "",
             f"Generated by `{command}` (seed {seed}: {role}). Formulas and ranges:",
             "`experiments/feynman_formulas.csv` (Udrescu & Tegmark 2020, the rational formulas). Exact: the",
             "difference simplifies to zero up to constants within 1 %. R²: inside the sampling range / outside it",
             "(every variable in `[high, 2 high - low]`). operon's wall-time limit is the EQL's time on the same",
             "formula.", ""]
    formulas = {f.name: f for f in read_table() if f.name in names}
    degrees = {n: f.degree for n, f in formulas.items()}
    reachable = {n for n, f in formulas.items() if f.reachable}
    for method in METHODS:
        done = [by[(n, method)] for n in names if (n, method) in by]
        exact = sum(bool(r.get("exact")) for r in done)
        within = sum(bool(r.get("exact")) for r in done if r["formula"] in reachable)
        times = [r["seconds"] for r in done if r.get("seconds") is not None]
        failed = sum(r["status"] == "failed" for r in done)
        lines.append(f"- **{method}**: exact {exact}/{len(done)} ({100 * exact / max(len(done), 1):.0f} %; "
                     f"{within}/{sum(r['formula'] in reachable for r in done)} of the formulas the EQL can express), "
                     f"median time {np.median(times) if times else float('nan'):.1f} s, failures (crashes) {failed}")
    lines += ["", f"Degree: the largest total degree of the truth's monomials in the variables and their reciprocals "
              f"(— : not a sum of such monomials); the EQL of these settings expresses the sums of monomials of degree "
              f"≤ {REACH} (two product layers) and, with power restarts, sums of at most {POWER_UNITS['power']} "
              "monomials of any degree beside terms of degree 1; with the reciprocal target, formulas of one sign "
              "whose reciprocal is either.", "",
              "| formula | truth | degree | EQL | exact | R² in / out | s | operon | exact | R² in / out | s |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        degree = degrees.get(name)
        cells = [name, f"`{by.get((name, 'eql'), by.get((name, 'operon')))['truth']}`",
                 "—" if degree is None else str(degree)]
        for method in METHODS:
            r = by.get((name, method))
            if r is None:
                cells += ["not run", "", "", ""]
            elif r["status"] == "failed":
                cells += [f"failed: {r['error'][:60]}", "no", "", ""]
            else:
                found = r["found"] if len(r["found"]) <= 70 else r["found"][:67] + "..."
                cells += [f"`{found}`", "**yes**" if r["exact"] else "no",
                          f"{r['r2']:.4g} / {r['r2_outside']:.4g}", f"{r['seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--formulas", nargs="+", help="names from the table (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", default="runs/feynman")
    parser.add_argument("--docs", help="write DOCS/feynman.md")
    parser.add_argument("--penalty", type=float, nargs="+",
                        help="the EQL's L1 coefficients, one per restart in turn (default: "
                             f"{' '.join(map(str, PENALTY_PATH))})")
    parser.add_argument("--no-reciprocal-target", action="store_true",
                        help="the EQL fits y alone, not also 1/y (reciprocal_target off, as for seed 3's table)")
    args = parser.parse_args()
    if args.no_reciprocal_target:
        EQL_SETTINGS["reciprocal_target"] = False
    if args.penalty:
        EQL_SETTINGS["penalty"] = tuple(args.penalty)
    import torch

    torch.set_num_threads(1)
    formulas = read_table()
    if args.formulas:
        known = {f.name for f in formulas}
        unknown = sorted(set(args.formulas) - known)
        if unknown:
            parser.error(f"unknown formula(s) {unknown}; see {TABLE}")
        formulas = [f for f in formulas if f.name in args.formulas]
    out, records = Path(args.out), []
    for formula in formulas:
        for method in args.methods:
            record = run_formula(formula, method, args.seed, args.samples, out)
            records.append(record)
            status = "exact" if record.get("exact") else record["status"]
            print(f"{formula.name:10s} {method:6s} {status:6s} {record.get('found', record.get('error', ''))[:80]}",
                  flush=True)
    if args.docs:
        command = f"python experiments/feynman.py --seed {args.seed} --out {args.out} --docs {args.docs}" + (
            f" --penalty {' '.join(map(str, args.penalty))}" if args.penalty else "") + (
            " --no-reciprocal-target" if args.no_reciprocal_target else "")
        path = Path(args.docs) / "feynman.md"
        path.write_text(table(records, args.seed, command))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
