"""Long end-to-end runs (marked slow; CI runs them): the law from nothing.

Training outcomes can differ between CPUs (AMD and Intel round differently, so the same
seed can train differently), so every test here trains two or three seeds and asserts a count of
them chosen from what was measured on both kinds of CPU, never one trajectory near a
threshold. The runs of all tests go through one pool of two processes (one per core),
started as soon as pytest knows the session holds a slow test (``conftest.py`` calls
:func:`start_runs`), so they train while the fast tests run; each test's docstring says what was
measured where (`pytest -s -m slow` prints every seed's outcome and wall time).

The runs are most of ``make test``'s time (2026-12-07, AMD EPYC, alone: charge 148–154 s, trajectories
112–120 s, hamiltonian 67–71 s, mlp 146–164 s, rebound 116–135 s per seed, 15 min 46 s for three seeds of
each; the whole suite then took 20 min 24 s). So every kind trains two seeds: the kinds whose every measured
seed passed ask for one, the MLP route asks both for its messages' R² (a wide margin) and one for the judge.
The pool takes the longest kinds first.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import shutil
import sys
import tempfile
import time
import traceback
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest

import eqlgn
from eqlgn.equations import evaluate, parse_equation
from eqlgn.properties import MassErrors

HAS_REBOUND = importlib.util.find_spec("rebound") is not None
SEEDS = {"mlp": (0, 1), "charge": (0, 1), "rebound": (0, 1), "trajectories": (0, 1), "hamiltonian": (0, 1)}
KINDS = ("mlp", "charge") + (("rebound",) if HAS_REBOUND else ()) + ("trajectories", "hamiltonian")  # longest first


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def run_one(kind: str, seed: int, root: str) -> dict:
    """One slow run (2D, 4 particles; spring except ``charge``) of the given kind; its result, or how it crashed."""
    out, cache = Path(root) / f"{kind}-seed{seed}", Path(root) / "cache"
    try:
        if kind == "charge":  # the CLI defaults: eqlgn run --law charge --dim 2 --n 4 --edge eql --seed S
            return eqlgn.run("charge", 2, 4, edge="eql", seed=seed, out=out, cache_dir=cache,
                             progress=False).to_dict()
        if kind == "trajectories":  # the data path under test, so one start (the recipe of issue 16) is enough
            simulated = eqlgn.simulate("spring", dim=2, n=4, sims=1000, seed=seed, progress=False, cache_dir=cache)
            path = eqlgn.save_trajectories(simulated, Path(root) / f"trajectories-seed{seed}.csv")
            config = eqlgn.recommended_config("eql", starts=1, seed=seed)
            return eqlgn.run("spring", edge="eql", seed=seed, out=out, data=path, train=config,
                             progress=False).to_dict()
        if kind == "hamiltonian":
            config = eqlgn.recommended_config("eql", model="hamiltonian", steps=4000, seed=seed)
            return eqlgn.run("spring", 2, 4, edge="eql", seed=seed, out=out, train=config, cache_dir=cache,
                             progress=False).to_dict()
        if kind == "mlp":  # the CLI defaults: eqlgn run --law spring --edge mlp --variant bottleneck --sr operon
            config = eqlgn.recommended_config("mlp", variant="bottleneck", seed=seed)
            return eqlgn.run("spring", 2, 4, edge="mlp", seed=seed, out=out, train=config, sr="operon",
                             cache_dir=cache, progress=False).to_dict()
        if kind == "rebound":  # an outside code's gravity, masses withheld: the EQL recipe at 10 000 steps
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
            import rebound_trajectories

            rows = rebound_trajectories.simulate(dim=2, n=4, sims=150, steps=200, dt=0.01, seed=seed, ragged=True)
            path = rebound_trajectories.write(rows, 2, Path(root) / f"rebound-seed{seed}.csv")
            config = eqlgn.recommended_config("eql", steps=10000, seed=seed)
            result = eqlgn.run("r2", edge="eql", seed=seed, out=out, train=config, progress=False,
                               data=eqlgn.DataSource(str(path), learn=("m",))).to_dict()
            truth = {(int(row[0]), int(row[2])): row[5] for row in rows}
            learned = [r for r in csv.DictReader(open(out / "properties.csv")) if int(r["snapshots"]) > 0]
            errors = MassErrors.of(np.array([float(r["m"]) for r in learned]),
                                   np.array([truth[int(r["sim"]), int(r["particle"])] for r in learned]))
            result["mass_errors"] = dataclasses.asdict(errors)
            return result
    except Exception as exc:  # a crash is a failure of that seed, reported with its traceback
        return {"crashed": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    raise ValueError(f"unknown kind {kind!r}")


def timed_run(kind: str, seed: int, root: str) -> dict:
    """:func:`run_one` with its wall time (``wall_seconds``)."""
    started = time.perf_counter()
    return run_one(kind, seed, root) | {"wall_seconds": round(time.perf_counter() - started, 1)}


_POOL: dict = {}  # the session's pool, its folder and its futures, once started


def start_runs() -> None:
    """Submit every slow run to a pool of two processes (once per session; they start at once)."""
    if _POOL:
        return
    root = tempfile.mkdtemp(prefix="eqlgn-slow-")
    pool = get_context("spawn").Pool(2, initializer=_init_worker)
    futures = {(kind, seed): pool.apply_async(timed_run, (kind, seed, root)) for kind in KINDS for seed in SEEDS[kind]}
    _POOL.update(root=root, pool=pool, futures=futures)


def stop_runs() -> None:
    """End the pool (a run still going is stopped: the session is over) and remove its folder."""
    if _POOL:
        _POOL["pool"].terminate()
        _POOL["pool"].join()
        shutil.rmtree(_POOL["root"], ignore_errors=True)
        _POOL.clear()


@pytest.fixture(scope="module")
def runs() -> dict[str, list[dict]]:
    """Every slow run, two at a time: ``{kind: [result per seed]}``."""
    start_runs()  # already running when conftest started it at collection
    futures = _POOL["futures"]
    return {kind: [futures[kind, seed].get() for seed in SEEDS[kind]] for kind in KINDS}


def passing(results: list[dict], ok, at_least: int) -> list[dict]:
    """The results that satisfy ``ok``; fails the test unless there are ``at_least`` (a crash is a failure)."""
    good = [r for r in results if "crashed" not in r and ok(r)]
    report = [r.get("crashed") or (r["seed"], (r["judge"] or {}).get("status"), r["equations"],
                                   r["linear_fit_r2"], r["sparsity_ratio"], f"{r['wall_seconds']} s") for r in results]
    print(report)  # `pytest -s -m slow` shows what every seed gave
    assert len(good) >= at_least, report
    return good


@pytest.mark.slow
def test_eql_run_recovers_coulombs_law_2d(runs):
    """`eqlgn run --law charge --dim 2 --n 4 --edge eql --seed S`, S = 0, 1 (CLI defaults): 1 of 2 recovers.

    Coulomb's law was never recovered before the recipe trained four starts side by side
    (report seeds 100–109: 0 of 10 with one start). Measured with the first recipe of four
    starts (node MLP 128, the receiver's m1, q1, 1/m1 among the inputs) on the Intel Xeon:
    seeds 0 and 1 recovered, seed 2 did not. With the recipe since 2026-12-06 (the sender's
    inputs, node MLP 64) on the AMD EPYC: design seeds 0–4 all recovered (`q2·dx/r³`,
    `q2·dy/r³` in every component; seed 4 once its message's constant term is left out),
    report seeds 100–109: 9 of 10, and seeds 0–2 again on 2026-12-07; not yet run on an
    Intel Xeon. All of them is what one CPU gave, so the test asks for one of seeds 0 and 1 —
    a test that fails whenever charge does not fit, as it always did — and checks what every
    recovered run must read: the sender's charge over r³ in every component.
    """
    for result in passing(runs["charge"], lambda r: r["judge"]["passed"], at_least=1):
        assert result["method"] == "eql" and result["selection"]["kept"] in range(4)
        for equation in result["equations"]:
            assert "q2" in equation and "r**3" in equation, result["equations"]


@pytest.mark.slow
def test_eql_recovers_spring_from_trajectory_csvs_without_exact_accelerations(runs):
    """Users' data, positions only (CSV written here), accelerations by the run's default estimator (``auto``,
    which on clean positions picks central differences or small windows): 1 of seeds 0 and 1 recovers.

    Measured with central differences (the default until 2026-12-07): seeds 0–2 all recovered on the Intel Xeon
    and on the AMD EPYC (the recipe of 2026-12-06; `−0.099·dx + 0.0984·dx/r`, …). With ``auto`` (AMD EPYC,
    2026-12-07): it chose central differences on seeds 0–2, all recovered with the same equations (again
    later that day). Two seeds, one asked for: the test is of the data path, which fails whole when broken.
    """
    for result in runs["trajectories"]:
        assert "crashed" in result or result["data"]["derivatives"].startswith("auto: ")
    passing(runs["trajectories"], lambda r: r["judge"]["passed"], at_least=1)


@pytest.mark.slow
def test_hamiltonian_gn_recovers_the_spring_potential_from_eql_weights(runs):
    """`eqlgn run --law spring --edge eql --model hamiltonian --steps 4000`, seeds 0, 1: U ≈ a (r - 1)² + c.

    Measured: on the Intel Xeon seeds 0 and 2 recovered (`0.982·r² − 1.95·r`), seed 1 kept a
    `0.0624/r` term and failed; on the AMD EPYC seed 0 recovered (`0.878·r² − 1.95·r + …`).
    (Run once on the AMD EPYC with the force recipe's sender-only inputs and a 64-wide kinetic
    MLP, 2026-12-06: seed 2 recovered, 0 and 1 kept small inverse powers of r. A pair energy is
    symmetric in the pair, so the recipe gives it both particles' inputs and the kinetic MLP
    width it was measured with — the settings of the measurements above.)
    On 2026-12-07 (AMD EPYC) seeds 0–2 all passed. Seed 0 passed on both CPUs, so the test asks for one of
    seeds 0 and 1 —
    still a test that fails when the Hamiltonian route is broken — and checks the rest length
    and isotropy of every potential that passed.
    """
    for result in passing(runs["hamiltonian"], lambda r: r["judge"]["passed"], at_least=1):
        assert result["target"] == "potential" and len(result["equations"]) == 1
        # along r, averaged over directions, the potential is a parabola whose minimum is the rest length 1
        r, angle = np.meshgrid(np.linspace(0.5, 2.0, 31), np.linspace(0, 2 * np.pi, 16, endpoint=False))
        values = {"r": r.ravel(), "dx": (r * np.cos(angle)).ravel(), "dy": (r * np.sin(angle)).ravel()}
        potential = evaluate([parse_equation(result["equations"][0])], values)[:, 0].reshape(r.shape)
        along_r = potential.mean(axis=0)
        a2, a1, _ = np.polyfit(r[0], along_r, 2)
        assert a2 > 0 and -a1 / (2 * a2) == pytest.approx(1.0, abs=0.05), result["equations"]
        assert np.ptp(potential, axis=0).max() < 0.05 * np.ptp(along_r), "the potential depends on direction"


@pytest.mark.slow
def test_mlp_bottleneck_and_operon_recover_the_spring(runs):
    """Cranmer et al.'s route with the MLP recipe: the bottleneck GN (messages of size D) on the sender's inputs,
    4000 steps, 1000 simulations, operon on the messages; seeds 0, 1.

    In both seeds the messages are linear maps of the spring force (R² ≥ 0.85 each: since the recipe, 1.00 in
    the design runs, a median of 0.998 over report seeds 100–104, and 0.91–0.96 before it), and in at least
    one the judge passes operon's equations. Measured on the AMD EPYC: seeds 0 and 1 recovered, R² 1.00 (design runs;
    docs/method.md, "The MLP route's recipe"); report seeds in docs/results.md ("The MLP route's recipe on report
    seeds"). Before the recipe (raw features of both particles) the messages were linear (R² 0.91–0.96) but
    operon recovered the spring in none of seeds 0, 1, 100: its messages carried a receiver factor such as
    1/(0.98·m1 + 4.1). On 2026-12-07 seeds 0–2 all recovered (R² 0.998, 0.998, 0.997).
    """
    passing(runs["mlp"], lambda r: r["linear_fit_r2"] >= 0.85, at_least=2)
    passing(runs["mlp"], lambda r: r["judge"]["passed"], at_least=1)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_REBOUND, reason="REBOUND is an optional test extra: pip install rebound")
def test_eql_recovers_gravity_and_the_masses_from_rebound_trajectories_with_the_masses_withheld(runs):
    """REBOUND (IAS15) 2D gravity, 150 ragged simulations, positions only, no masses: `--learn m`, the EQL recipe at
    10 000 steps; seeds 0, 1 (file and training). 1 of 2 recovers `m2·dx/r³`, and the masses learned in every
    recovered run agree with the truth to log-R² ≥ 0.85 after one global factor.

    Measured on the AMD EPYC (masses = ratios, the default): seeds 0–2 all recovered, log-R² 0.930, 0.921, 0.970
    (90–109 s each, three jobs sharing two cores), the same with ``auto`` derivatives, the default since 2026-12-07
    (it chose central differences on these clean files), and seeds 0–2 all passed this test again on 2026-12-07;
    at 6000 steps 2 of 3 recovered, 0.89–0.93. The full CLI
    defaults (300 simulations, 16 000 steps) reach 0.95–0.999, and masses learned one by one (`--masses free`)
    0.43–0.84 (docs/results.md, "Masses withheld").
    """
    for result in passing(runs["rebound"], lambda r: r["judge"]["passed"], at_least=1):
        assert result["data"]["learned"]["properties"] == ["m"]
        assert result["mass_errors"]["log_r2"] >= 0.85, result["mass_errors"]
