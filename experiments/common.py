"""Shared machinery of the experiment scripts: routes, jobs, a resumable parallel grid, TOML configs.

A **route** names how the law is read (:class:`eqlgn.Route`: ``eql``,
``mlp-VARIANT[-SCHEDULE][+ENGINE]`` such as ``mlp-l1-linear+operon``).

A **condition** names the data a job trains on: ``exact`` (simulated accelerations),
``trajectories`` (positions only: written to CSV, read back, accelerations estimated by
central differences), ``noise-REL`` (exact accelerations plus Gaussian noise of relative
size REL, e.g. ``noise-0.05``; see :func:`eqlgn.add_noise`), ``positions-REL`` (positions with
Gaussian noise of REL × the median pair distance, accelerations estimated with the window chosen
from the data) or ``rollout-REL`` (the same noisy positions, trained with the rollout loss of
``eqlgn/rollout.py`` over windows of ``ROLLOUT_WINDOW`` snapshots), ``learn-m``, ``learn-q``
or ``learn-mq`` (the clean trajectories of ``trajectories``, read back with the masses, the
charges or both withheld and learned with the law; the file keeps the truth to compare with).

A **job** is one ``eqlgn.run`` call in its own directory ``OUT/LAW-Dd-nN-ROUTE-seedS``
(``OUT/LAW-Dd-nN-CONDITION-ROUTE-seedS`` for conditions other than ``exact``). A job
whose ``result.json`` exists is skipped; an interrupted one resumes from its checkpoint;
a failing one writes ``failure.json`` and the grid goes on. Only the public API is used.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import eqlgn

Route = eqlgn.Route  # route names: eqlgn/routes.py


@dataclass(frozen=True)
class Job:
    """One run of the grid."""

    law: str
    dim: int
    n: int
    route: str
    seed: int
    out: str
    steps: int | None = None
    sr_budget: int = 100
    compose: bool = False
    sims: int = 1000
    condition: str = "exact"
    reread: bool = False

    @property
    def directory(self) -> Path:
        condition = "" if self.condition == "exact" else f"{self.condition}-"
        return Path(self.out) / f"{self.law}-{self.dim}d-n{self.n}-{condition}{self.route}-seed{self.seed}"

    def done(self) -> bool:
        return (self.directory / "result.json").is_file()


NOISE_CONDITIONS = {"noise-": "accelerations", "positions-": "positions", "rollout-": "positions"}  # prefix -> noisy
# snapshots per window of the rollout-REL conditions, odd (the Savitzky-Golay window); docs/method.md.
# 31 had the lowest loss floor on design seed 0, but its segment (63 snapshots) is longer than the simulator's
# runs after the auto estimator trims them (62): 15 is the widest of the measured windows that fits.
ROLLOUT_WINDOW = 15


LEARN_CONDITIONS = {"learn-m": ("m",), "learn-q": ("q",), "learn-mq": ("m", "q")}  # condition -> withheld


def parse_condition(name: str) -> float | None:
    """Validate a condition name; the relative noise of ``noise-REL`` / ``positions-REL`` (``None`` for the others)."""
    if name in ("exact", "trajectories", *LEARN_CONDITIONS):
        return None
    for prefix in NOISE_CONDITIONS:
        if name.startswith(prefix):
            try:
                relative = float(name[len(prefix):])
            except ValueError:
                relative = -1.0
            if 0 <= relative < 10:
                return relative
    raise eqlgn.ConfigError(f"condition {name!r} is not one of exact, trajectories, noise-REL, positions-REL, "
                            "rollout-REL, learn-m, learn-q, learn-mq (REL a relative noise level such as 0.05 or 1e-4)")


def condition_data(job: Job) -> eqlgn.ParticleDataset | None:
    """The dataset a job trains on (``None``: let ``eqlgn.run`` simulate the exact data itself).

    ``trajectories``: positions written to CSV and read back, accelerations by central
    differences. ``positions-REL``: the same with Gaussian position noise of ``REL`` × the
    median pair distance, read back with the derivative window chosen from the data
    (``--derivative auto``); ``rollout-REL`` reads the same file (its accelerations serve validation and
    test; training fits the positions). ``learn-…`` reads the clean file with properties withheld. The CSV
    files are shared by the jobs of one (law, dim, n, seed, noise level) in ``OUT/trajectories``
    (:func:`trajectory_file`).
    """
    relative = parse_condition(job.condition)
    if job.condition == "exact":
        return None
    data = eqlgn.simulate(job.law, job.dim, job.n, job.sims, seed=job.seed, progress=False,
                          cache_dir="data/cache")
    if job.condition.startswith("noise-"):
        return eqlgn.add_noise(data, relative, "accelerations", seed=job.seed)
    noisy = job.condition.startswith(("positions-", "rollout-"))
    path = trajectory_file(job)
    if not path.is_file():
        eqlgn.save_trajectories(eqlgn.add_noise(data, relative, "positions", seed=job.seed) if noisy else data, path)
    return eqlgn.load_trajectories(path, law=job.law, method="auto" if noisy else "central",
                                   learn=LEARN_CONDITIONS.get(job.condition, ()))


def trajectory_file(job: Job) -> Path:
    """The CSV trajectories a job of a positions-only condition reads (the true masses and charges included)."""
    noisy = job.condition.startswith(("positions-", "rollout-"))
    suffix = f"-positions-{job.condition.split('-', 1)[1]}" if noisy else ""
    return Path(job.out) / "trajectories" / f"{job.law}-{job.dim}d-n{job.n}-seed{job.seed}{suffix}.csv"


def run_job(job: Job) -> dict:
    """Run one job (skipped when finished, unless ``reread``); never raises: failures go to ``failure.json``.

    With ``reread`` a finished job is resumed: its trained model is loaded, not retrained, and
    its equations are read and judged again (after a change of the extractor or the judge).
    """
    if job.done() and not job.reread:
        return {"job": job.directory.name, "status": "skipped"}
    route = Route.parse(job.route)
    started = time.perf_counter()
    train = route.config(job.seed, job.steps)
    if job.condition.startswith("rollout-"):
        train = replace(train, rollout=eqlgn.RolloutConfig(ROLLOUT_WINDOW))
    try:
        result = eqlgn.run(job.law, job.dim, job.n, edge=route.edge, seed=job.seed, out=job.directory, sims=job.sims,
                           train=train, sr=route.engine, sr_budget=job.sr_budget,
                           compose=job.compose and (route.engine is not None or route.edge == "eql"),
                           data=condition_data(job), resume=True, progress=False)
    except Exception as exc:  # record and go on: one bad job must not stop a night's grid
        record = {"job": job.directory.name, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc(), "seconds": time.perf_counter() - started}
        job.directory.mkdir(parents=True, exist_ok=True)
        _write_json(job.directory / "failure.json", record)
        return record
    (job.directory / "failure.json").unlink(missing_ok=True)
    verdict = result.judge or {}
    return {"job": job.directory.name, "status": "done", "passed": verdict.get("passed"),
            "ood_r2": verdict.get("ood_r2"), "seconds": result.seconds.total}


def _write_json(path: Path, record: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_grid(jobs: list[Job], workers: int = 1) -> list[dict]:
    """Run jobs in ``workers`` parallel processes (threads split evenly), printing one line per job."""
    todo = [job for job in jobs if job.reread or not job.done()]
    print(f"{len(jobs)} jobs, {len(jobs) - len(todo)} already finished, {len(todo)} to run "
          f"in {workers} process(es)", flush=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    records = []
    if workers <= 1:
        for job in todo:
            records.append(_report(run_job(job)))
        return records
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(max(1, cores // workers),)) as pool:
        futures = [pool.submit(run_job, job) for job in todo]
        for future in as_completed(futures):
            records.append(_report(future.result()))
    return records


def _report(record: dict) -> dict:
    if record["status"] == "failed":
        print(f"FAILED {record['job']}: {record['error']}", flush=True)
    else:
        print(f"{record['job']}: passed={record.get('passed')} ood_r2={record.get('ood_r2')} "
              f"{record.get('seconds', 0):.0f} s", flush=True)
    return record


def to_toml(record: dict, prefix: str = "") -> str:
    """Nested dicts of scalars and lists as TOML (``None`` values are left out; keys quoted when needed)."""
    import re

    def key(k: str) -> str:
        return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v if x is not None) + "]"
        return json.dumps(str(v))

    lines = [f"{key(k)} = {value(v)}" for k, v in record.items() if v is not None and not isinstance(v, dict)]
    text = "\n".join(lines) + ("\n" if lines else "")
    for k, v in record.items():
        if isinstance(v, dict):
            path = f"{prefix}.{key(k)}" if prefix else key(k)
            text += f"\n[{path}]\n" + to_toml(v, path)
    return text


def save_config(out: Path, args: argparse.Namespace, jobs: list[Job]) -> Path:
    """Write ``OUT/config.toml``: the flags, the routes' training configs and the package version."""
    out.mkdir(parents=True, exist_ok=True)
    record = {"eqlgn_version": eqlgn.__version__, "date": time.strftime("%Y-%m-%d"),
              "flags": dict(vars(args)),
              "routes": {name: Route.parse(name).config(seed=0, steps=args.steps).to_dict()
                         for name in sorted({job.route for job in jobs})}}
    path = out / "config.toml"
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(to_toml(record))
    os.replace(tmp, path)
    return path


def grid_flags(parser: argparse.ArgumentParser, dims=(2,), ns=(4,), seeds=(0,), routes=("eql",)) -> None:
    """The flags every experiment script shares."""
    parser.add_argument("--dims", nargs="+", type=int, default=list(dims), help="spatial dimensions (2, 3)")
    parser.add_argument("--ns", nargs="+", type=int, default=list(ns), help="particle counts")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(seeds))
    parser.add_argument("--routes", nargs="+", default=list(routes),
                        help="eql and/or mlp-VARIANT[-SCHEDULE][+ENGINE], e.g. mlp-l1-linear+operon")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the route's config)")
    parser.add_argument("--sr-budget", type=int, default=100, help="SR iterations per expression")
    parser.add_argument("--compose", action="store_true", help="also fit and compose the node model")
    parser.add_argument("--sims", type=int, default=1000, help="simulations per dataset")
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes")
    parser.add_argument("--reread", action="store_true",
                        help="read the equations of finished jobs again (their models are loaded, not retrained)")
    parser.add_argument("--out", default="runs/experiments")


def make_jobs(args: argparse.Namespace, laws: list[str], conditions: tuple[str, ...] = ("exact",)) -> list[Job]:
    """Every (law, dim, n, condition, route, seed) of the flags, validated before anything runs.

    Seeds vary slowest, so an interrupted grid has covered every law and route once before
    it repeats any of them with another seed.
    """
    for route in args.routes:
        Route.parse(route)
    for condition in conditions:
        parse_condition(condition)
    return [Job(law, dim, n, route, seed, args.out, args.steps, args.sr_budget, args.compose, args.sims, condition,
                getattr(args, "reread", False))
            for seed in args.seeds for dim in args.dims for n in args.ns for law in laws for condition in conditions
            for route in args.routes]


def law_main(law: str, doc: str) -> None:
    """Entry point of a per-law script: run its grid (default: the headline run) and print the results."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc)
    grid_flags(parser)
    args = parser.parse_args()
    try:
        jobs = make_jobs(args, [law])
    except eqlgn.ConfigError as exc:
        parser.error(str(exc))
    print(f"config: {save_config(Path(args.out), args, jobs)}")
    run_grid(jobs, args.jobs)
    for job in jobs:
        if job.done():
            result = eqlgn.RunResult.load(job.directory)
            verdict = result.judge or {}
            print(f"\n{job.directory.name}: {'RECOVERED' if verdict.get('passed') else 'not recovered'} "
                  f"(OOD R² {verdict.get('ood_r2')}), {result.seconds.total:.0f} s")
            for equation in result.equations:
                print(f"  {equation}")
