"""How much imperfect data recovery survives: estimated accelerations and noise; table into docs/results.md.

Usage:
    python experiments/robustness.py --laws spring r1 r2 charge --seeds 0 1 2 \\
        --routes eql mlp-bottleneck+operon --jobs 2 --exact runs/sweep --out runs/robustness --docs docs

For each law (2D, 4 particles by default), seed and route, the same simulated data under
these conditions (``--conditions``, see ``experiments/common.py``):

* ``trajectories`` — positions only: the trajectories are written to CSV, read back and
  their accelerations estimated by central differences (no exact accelerations used);
* ``noise-0`` — the exact accelerations: these are the sweep's own jobs, read from the
  first ``--exact`` directory that holds them (and, when none does, run into the first),
  so that the noise-free column is the recovery grid;
* ``noise-0.01``, ``noise-0.05``, ``noise-0.1`` — exact accelerations with Gaussian noise of
  that relative size per particle (``eqlgn.add_noise``); any ``noise-REL`` may be asked for;
* ``positions-REL`` (e.g. ``positions-1e-05``, ``positions-0.0001``, ``positions-0.001``) — the
  trajectories with Gaussian position noise of ``REL`` × the median pair distance, read back
  with the derivative window chosen from the data (``--derivative auto``);
* ``rollout-REL`` — the same noisy positions, trained with the rollout loss (``--rollout``,
  ``experiments/common.py``'s ``ROLLOUT_WINDOW``) instead of on estimated accelerations;
* ``learn-m``, ``learn-q``, ``learn-mq`` — the clean trajectories with the masses, the charges or
  both withheld and learned with the law; a second table gives how well the learned values match
  the truth (``experiments/learned_properties.py``).

Jobs run in ``--jobs`` parallel processes; finished ones are skipped, so the script resumes
after a kill; a failing one leaves ``failure.json`` and the grid goes on. Time on 2 CPU
cores: about 2-5 minutes per EQL job (16 000 steps) and 4-8 minutes per MLP + operon job.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from common import LEARN_CONDITIONS, Job, grid_flags, make_jobs, run_grid, save_config, trajectory_file
from learned_properties import compare
from tables import write_section

from eqlgn import ConfigError

CONDITIONS = ("trajectories", "noise-0", "noise-0.01", "noise-0.05", "noise-0.1")
MARK_BEGIN, MARK_END = "<!-- robustness:begin -->", "<!-- robustness:end -->"


def robustness_jobs(args: argparse.Namespace) -> list[Job]:
    """The grid's jobs; ``noise-0`` is the ``exact`` condition, kept in the ``args.exact`` directories."""
    conditions = tuple("exact" if c == "noise-0" else c for c in args.conditions)
    jobs = make_jobs(args, args.laws, conditions)
    return [_exact_job(job, args.exact) if job.condition == "exact" else job for job in jobs]


def _exact_job(job: Job, directories: list[str]) -> Job:
    """The job in the first directory where it finished (the first directory when none)."""
    for directory in directories:
        if replace(job, out=directory).done():
            return replace(job, out=directory)
    return replace(job, out=directories[0])


def verdict(job: Job) -> bool | None:
    """Whether the job's law was recovered (``None``: not run, or failed)."""
    path = job.directory / "result.json"
    if not path.is_file():
        return None
    judge = json.loads(path.read_text())["judge"]
    return bool(judge and judge["passed"])


def table(jobs: list[Job], conditions: list[str]) -> str:
    """Seeds recovered / run per law, dim, n, route and condition (``–``: nothing ran)."""
    names = {"exact": "noise-0"}
    lines = ["| law | dim | n | route | " + " | ".join(conditions) + " |",
             "|---|---|---|---|" + "---|" * len(conditions)]
    rows = sorted({(j.law, j.dim, j.n, j.route) for j in jobs}, key=lambda row: [str(x) for x in row])
    for law, dim, n, route in rows:
        cells = []
        for condition in conditions:
            verdicts = [verdict(j) for j in jobs if (j.law, j.dim, j.n, j.route) == (law, dim, n, route)
                        and names.get(j.condition, j.condition) == condition]
            ran = [v for v in verdicts if v is not None]
            cells.append(f"{sum(ran)}/{len(ran)}" if ran else "–")
        lines.append(f"| {law} | {dim} | {n} | {route} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def properties_table(jobs: list[Job]) -> str:
    """One row per finished ``learn-…`` job: the verdict and each learned property's agreement with the truth
    (masses: log-R² after one global factor and the share within 10 %; charges: R² after a factor and a sign per
    simulation, and the share of simulations whose charges all have the right sign up to that flip; with both
    learned per particle, a factor per simulation: ``experiments/learned_properties.py``)."""
    lines = ["| law | dim | n | route | condition | seed | law recovered | masses: log-R² (within 10 %) "
             "| charges: R² (simulations with every sign right) | up to |", "|---|---|---|---|---|---|---|---|---|---|"]
    for job in sorted(jobs, key=lambda j: (j.law, j.condition, j.route, j.seed)):
        recovered = verdict(job) if job.condition in LEARN_CONDITIONS else None
        if recovered is None:
            continue
        found = compare(job.directory, [trajectory_file(job)])
        cells = {"m": "–", "q": "–"}
        scope = "a factor per simulation" if any(m.per_simulation for m in found.values()) else "one factor"
        if "m" in found:
            cells["m"] = f"{found['m'].agreement:.4f} ({found['m'].mass_errors.within_10_percent:.0%})"
        if "q" in found:
            signs = found["q"].signs_right
            cells["q"] = f"{found['q'].agreement:.3f} ({'–' if signs is None else f'{signs:.0%}'})"
        lines.append(f"| {job.law} | {job.dim} | {job.n} | {job.route} | {job.condition} | {job.seed} | "
                     f"{'yes' if recovered else 'no'} | {cells['m']} | {cells['q']} | {scope} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--laws", nargs="+", default=["spring", "r1", "r2", "charge"])
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS),
                        help="trajectories, noise-REL (accelerations) and/or positions-REL, e.g. noise-0.3, "
                             "positions-1e-4 (default: %(default)s)")
    parser.add_argument("--exact", nargs="+", default=["runs/sweep"],
                        help="directories of the noise-free (sweep) jobs, searched in order")
    parser.add_argument("--docs", default=None, help="write the table into DOCS/results.md")
    parser.add_argument("--report-only", action="store_true", help="only (re)write the table")
    grid_flags(parser, seeds=(0, 1, 2), routes=("eql", "mlp-bottleneck+operon"))
    parser.set_defaults(out="runs/robustness")
    args = parser.parse_args()
    try:
        jobs = robustness_jobs(args)
    except ConfigError as exc:
        parser.error(str(exc))
    if not args.report_only:
        print(f"config: {save_config(Path(args.out), args, jobs)}")
        run_grid(jobs, args.jobs)
    text = table(jobs, args.conditions)
    print(text)
    if any(job.condition in LEARN_CONDITIONS for job in jobs):
        print(properties_table(jobs))
    if args.docs:
        write_section(Path(args.docs) / "results.md",
                      "## Robustness: estimated accelerations and noise\n\n"
                      "Seeds recovered (judge passed) / seeds run. Regenerate with the command in "
                      "`experiments/robustness.py`.\n\n" + text, MARK_BEGIN, MARK_END)


if __name__ == "__main__":
    main()
