"""Compare routes from their ``result.json`` files: one table (Markdown, CSV) and one figure.

``eqlgn compare runs/a runs/b ...`` reads every ``result.json`` under the given paths and
lists, per run: law, dim, n, seed, route (``eql``, ``operon``, ``pysr``), the GN (edge model and
variant), the equations
(constants rounded), the judge's verdict, the worst out-of-distribution R², complexity and
the seconds spent training and extracting / searching.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .equations import complexity, parse_equation
from .errors import EqlgnError
from .result import RESULT_FILE, RunResult

COLUMNS = ("law", "dim", "n", "seed", "route", "gn", "passed", "ood_r2", "complexity", "train_s", "extract_s",
           "test_loss", "equations")


def find_results(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Every ``result.json`` given directly or found under the given directories (sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(path.rglob(RESULT_FILE)))
        else:
            raise EqlgnError(f"{str(path)!r} does not exist; give run directories or result.json files")
    if not found:
        raise EqlgnError(f"no {RESULT_FILE} under {', '.join(map(str, paths))}; run 'eqlgn run' first")
    return found


def comparison_rows(results: Sequence[RunResult], digits: int = 3) -> list[dict]:
    """One row per run with the comparison columns (:data:`COLUMNS`), sorted by law, dim, n, route."""
    from .extraction import round_constants

    rows = []
    for result in results:
        exprs = [parse_equation(e) for e in result.equations]
        verdict = result.judge or {}
        ood = verdict.get("ood_r2")
        rows.append({
            "law": result.law, "dim": result.dim, "n": result.n_particles, "seed": result.seed,
            "route": result.method, "gn": result.route.gn, "passed": verdict.get("passed"),
            "ood_r2": min(ood) if ood else None,
            "complexity": result.complexity or sum(complexity(e) for e in exprs),
            "train_s": result.seconds.train, "extract_s": result.seconds.extract,
            "test_loss": result.test_loss,
            "equations": "; ".join(str(round_constants(e, digits)) for e in exprs),
        })
    return sorted(rows, key=lambda r: (r["law"], r["dim"], r["n"], r["route"], r["seed"]))


def _cell(value, column: str) -> str:
    if value is None:
        return "–"
    if column == "passed":
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}" if column in ("ood_r2", "test_loss") else f"{value:.0f}"
    return str(value)


def to_markdown(rows: Sequence[dict], max_equation: int = 160) -> str:
    """The comparison as a Markdown table (long equations shortened with an ellipsis)."""
    header = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    lines = []
    for row in rows:
        cells = [_cell(row[c], c) for c in COLUMNS]
        equation = cells[-1]
        if len(equation) > max_equation:
            equation = equation[:max_equation] + "…"
        cells[-1] = f"`{equation}`"
        lines.append("| " + " | ".join(cells) + " |")
    return header + "\n".join(lines) + "\n"


def to_csv(rows: Sequence[dict]) -> str:
    """The comparison as CSV (full equations)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row[c] for c in COLUMNS})
    return buffer.getvalue()


def compare(paths: Iterable[str | os.PathLike], out: str | os.PathLike | None = None) -> list[dict]:
    """Read results under ``paths``; write ``out.md``, ``out.csv`` and ``out.png`` when ``out`` is given."""
    from ._io import atomic_write_text
    from .plots import plot_route_comparison

    rows = comparison_rows([RunResult.load(p) for p in find_results(paths)])
    if out is not None:
        out = Path(out)
        atomic_write_text(out.with_suffix(".md"), to_markdown(rows))
        atomic_write_text(out.with_suffix(".csv"), to_csv(rows))
        plot_route_comparison(rows, out.with_suffix(".png"))
    return rows
