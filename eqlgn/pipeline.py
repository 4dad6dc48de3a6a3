"""Run-level steps that the CLI and the experiments call: train a run directory, analyse it.

A run directory holds ``run.json`` (simulation, split and training configs), the
training checkpoint and log, ``model.pt`` and, after analysis, ``analysis.json`` and
figures. Datasets are simulated once and cached (``cache_dir``), keyed by their config.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ._io import atomic_write_json, run_lock
from .analysis import MessageAnalysis, analyze, collect_messages
from .data import ParticleDataset
from .equations import complexity
from .errors import ConfigError, EqlgnError, unknown_name
from .laws import get_law
from .simulator import SimulationConfig, simulate
from .train import TrainConfig, TrainedModel, evaluate, fit, refuse_overwrite

RUN_FILE = "run.json"
MODEL_FILE = "model.pt"
DEFAULT_CACHE = "data/cache"


def prepare_data(sim: SimulationConfig | None, cache_dir: str | os.PathLike | None = DEFAULT_CACHE,
                 prune_outliers: bool = False, split_seed: int = 0, progress: bool | None = None,
                 data: ParticleDataset | None = None) -> tuple[ParticleDataset, ParticleDataset, ParticleDataset]:
    """Simulate (or read the cached dataset, or take ``data``), optionally IQR-prune, split 80/10/10 by simulation."""
    if data is None:
        data = simulate(sim.law, sim.dim, sim.n, sim.sims, sim.seed, steps=sim.steps,
                        save_every=sim.save_every, dt=sim.dt, softening=sim.softening,
                        charge_choices=sim.charge_choices, cache_dir=cache_dir, progress=progress)
    if prune_outliers:
        data, _ = data.prune_outliers()
    elif (report := data.extreme_accelerations()) is not None:
        logging.getLogger("eqlgn").warning("eqlgn: %s", report)
    return data.split((0.8, 0.1, 0.1), seed=split_seed)


def train_run(sim: SimulationConfig, config: TrainConfig, out: str | os.PathLike,
              cache_dir: str | os.PathLike | None = DEFAULT_CACHE, prune_outliers: bool = False,
              resume: bool = False, progress: bool | None = None) -> TrainedModel:
    """Prepare data, train, and write ``run.json`` and ``model.pt`` into ``out``."""
    out = Path(out)
    with run_lock(out):
        return _train_run(sim, config, out, cache_dir, prune_outliers, resume, progress)


def _train_run(sim, config, out: Path, cache_dir, prune_outliers: bool, resume: bool, progress) -> TrainedModel:
    refuse_overwrite(out, resume)
    started = time.perf_counter()
    train, val, test = prepare_data(sim, cache_dir, prune_outliers, config.seed, progress)
    atomic_write_json(out / RUN_FILE, {"simulation": asdict(sim), "train": asdict(config),
                                       "prune_outliers": prune_outliers,
                                       "cache_dir": None if cache_dir is None else str(cache_dir),
                                       "status": "training"})
    trained = fit(train, config, val=val, out=out, resume=resume, progress=progress)
    trained.save(out / MODEL_FILE)
    test_loss = evaluate(trained.model, test, next(trained.model.parameters()).device)
    record = json.loads((out / RUN_FILE).read_text())
    record.update(status="trained", test_loss=test_loss, seconds=time.perf_counter() - started)
    atomic_write_json(out / RUN_FILE, record)
    return trained


def load_data(path: str | os.PathLike, law: str | None = None, derivative: str = "central",
              window: int = 7) -> ParticleDataset:
    """Users' data: an eqlgn dataset (``.npz`` with ``nodes``) or a trajectory file (CSV / npz positions).

    ``law``, when given, names the force law of trajectory data (for the judge); a dataset
    that records another law is refused.
    """
    from .trajectories import load_trajectories

    path = Path(path)
    is_dataset = False
    if path.suffix.lower() == ".npz" and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as archive:
                is_dataset = "nodes" in archive.files
        except Exception:
            is_dataset = False  # let the loaders name the fault
    if not is_dataset:
        return load_trajectories(path, law=law, method=derivative, window=window)
    data = ParticleDataset.load(path)
    if law is not None and data.meta.law is not None:
        data.check_matches(law=law, source=f"dataset {str(path)!r}")
    return data


def load_run(out: str | os.PathLike) -> tuple[dict, TrainedModel]:
    """Read a run directory written by :func:`train_run`."""
    out = Path(out)
    if not (out / RUN_FILE).is_file():
        raise EqlgnError(f"{str(out)!r} is not a run directory (no {RUN_FILE}); run 'eqlgn train' first")
    record = json.loads((out / RUN_FILE).read_text())
    if not (out / MODEL_FILE).is_file():
        raise EqlgnError(f"run {str(out)!r} has no {MODEL_FILE}: training did not finish; "
                         "rerun 'eqlgn train' with --resume")
    return record, TrainedModel.load(out / MODEL_FILE)


def analyze_run(out: str | os.PathLike, figures: bool = True) -> MessageAnalysis:
    """Analyse the messages of a trained run on its test split; write JSON and figures."""
    out = Path(out)
    record, trained = load_run(out)
    sim = SimulationConfig(**record["simulation"])
    _, _, test = prepare_data(sim, record.get("cache_dir"), record.get("prune_outliers", False),
                              trained.config.seed, progress=False)
    analysis, sample = analyze(trained.model, test)
    atomic_write_json(out / "analysis.json", analysis.to_dict())
    if figures:
        write_figures(out, analysis, sample, {trained.config.variant: trained.history},
                      f"{sim.law} {sim.dim}D n={sim.n}, {trained.config.variant}")
    return analysis


def write_figures(out: Path, analysis: MessageAnalysis, sample, histories: dict, title: str) -> None:
    """The three figures of a run directory: sparsity bars, message scatter, loss curves."""
    from .plots import plot_loss_curves, plot_message_scatter, plot_sparsity

    plot_sparsity(analysis, out / "sparsity.png", title=f"message sparsity: {title}")
    if sample.force is not None:  # data of unknown law have no force to compare with
        plot_message_scatter(sample, analysis, out / "messages.png")
    plot_loss_curves(histories, out / "loss.png", title=title)


def run(
    law: str | None = None,
    dim: int = 2,
    n: int = 4,
    edge: str = "eql",
    seed: int = 0,
    out: str | os.PathLike | None = None,
    sims: int = 1000,
    train: TrainConfig | None = None,
    prune_outliers: bool = True,
    cache_dir: str | os.PathLike | None = DEFAULT_CACHE,
    resume: bool = False,
    progress: bool | None = None,
    sr: str | None = None,
    sr_budget: int = 100,
    compose: bool = False,
    data: str | os.PathLike | ParticleDataset | None = None,
) -> dict:
    """Simulate (or reuse data) -> train -> extract -> judge; write ``out/result.json``.

    Args:
        law, dim, n, sims: the particle system (see :func:`eqlgn.simulate`); ``law``
            defaults to ``spring`` when simulating. With ``data``, ``law`` names the law
            to judge against (``None``: unknown, no verdict) and dim/n come from the data.
        edge: ``eql`` (equations read from the weights) or ``mlp`` (equations by symbolic
            regression on the messages when ``sr`` names an engine; messages only otherwise).
        seed: seeds the simulation, the split, training and the SR search.
        out: run directory (default ``runs/{law}-{dim}d-n{n}-{edge}-seed{seed}``, with the
            engine's name appended for SR runs).
        train: training settings (default :func:`eqlgn.train.recommended_config` for ``edge``).
        prune_outliers: IQR-prune snapshots with extreme accelerations before splitting.
        cache_dir: dataset cache.
        resume: continue an interrupted training from the run's checkpoint.
        progress: show progress bars (default: when stderr is a terminal).
        sr: symbolic-regression engine for MLP messages (``operon`` or ``pysr``).
        sr_budget: SR iterations per expression (PySR ``niterations``, operon generations).
        compose: also fit the node model symbolically (engine ``sr``, default ``operon``) and
            report the composed symbolic model's test loss next to the GN's.
        data: users' data instead of a simulation: a dataset, an eqlgn dataset file or a
            trajectory file (CSV / npz, see :mod:`eqlgn.trajectories`).

    Returns:
        The result record (also written to ``out/result.json``; fields in docs/architecture.md).
    """
    from .sr import ENGINES
    from .train import recommended_config

    if sr is not None and sr not in ENGINES:
        raise unknown_name("symbolic-regression engine", sr, ENGINES)
    if compose and train is not None and train.model == "hamiltonian":
        raise ConfigError("--compose composes force GNs; a Hamiltonian GN's potential is judged directly")
    if sr is not None and edge == "eql":
        raise ConfigError("--sr fits MLP messages; an EQL edge model is read from its weights "
                          "(use --edge mlp --sr ENGINE, or --edge eql without --sr)")
    config = train or recommended_config(edge, seed=seed)
    if config.edge != edge:
        raise EqlgnError(f"edge={edge!r} but the training config says edge={config.edge!r}")
    if law is not None:
        get_law(law)  # an unknown (or empty) name fails here, before anything runs
    dataset, sim = None, None
    if data is not None:
        dataset = data if isinstance(data, ParticleDataset) else load_data(data, law)
        law = law or dataset.meta.law
        if law is not None and dataset.meta.law is None:
            dataset.meta.law = get_law(law).name
        dim, n = dataset.dim, dataset.n_particles
    else:
        law = law or "spring"
        sim = SimulationConfig(law=law, dim=dim, n=n, sims=sims, seed=seed)
    out = Path(out or f"runs/{law or 'data'}-{dim}d-n{n}-{edge}{'-' + sr if sr else ''}-seed{seed}")
    with run_lock(out):
        return _run(sim, dataset, law, config, out, edge, seed, prune_outliers, cache_dir, resume, progress, sr,
                    sr_budget, compose)


def _run(sim: SimulationConfig | None, dataset: ParticleDataset | None, law: str | None, config: TrainConfig,
         out: Path, edge: str, seed: int, prune_outliers: bool, cache_dir, resume: bool, progress, sr: str | None,
         sr_budget: int, compose: bool) -> dict:
    """The body of :func:`run`, inside the run-directory lock."""
    refuse_overwrite(out, resume)
    previous = _finished_result(out) if resume else None
    clock = {"start": time.perf_counter()}
    train_set, val, test = prepare_data(sim, cache_dir, prune_outliers, seed, progress, data=dataset)
    dim, n = train_set.dim, train_set.n_particles
    clock["simulate"] = time.perf_counter()
    trained = fit(train_set, config, val=val, out=out, resume=resume, progress=progress)
    trained.save(out / MODEL_FILE)
    clock["train"] = time.perf_counter()
    analysis, sample = analyze(trained.model, test)
    # Equations are fitted (EQL sparse refit, SR on messages and on the node model) on the
    # validation split; the test split only scores them (the judge samples its own states).
    fit_split = val if len(val) else train_set
    found = _read_equations(trained.model, fit_split, analysis, law, dim, edge, sr, sr_budget, seed, out,
                            potential=config.model == "hamiltonian")
    clock["extract"] = time.perf_counter()
    device = next(trained.model.parameters()).device
    gn_loss = evaluate(trained.model, test, device)
    composed = None
    if compose:
        composed = _compose(trained.model, train_set, fit_split, test, analysis.components, found["expressions"],
                            sr or "operon", sr_budget, seed, gn_loss)
    clock["compose"] = time.perf_counter()
    result = {
        "law": law, "dim": dim, "n_particles": n, "edge_model": edge, "method": found["method"], "seed": seed,
        "target": "potential" if config.model == "hamiltonian" else "force",
        "equations": [str(e) for e in found["expressions"]],
        "equations_weights": [str(e) for e in found["weights_expressions"]] if "weights_expressions" in found else None,
        "significant_components": analysis.components,
        "message_std": analysis.spread[: len(analysis.components) + 1],
        "linear_fit_r2": None if law is None else min(analysis.r2),
        "sparsity_ratio": analysis.sparsity_ratio,
        "judge": found["verdict"],
        "complexity": sum(complexity(e) for e in found["expressions"]) if found["expressions"] else None,
        "test_loss": gn_loss,
        "composed": composed,
        "seconds": {"simulate": clock["simulate"] - clock["start"],
                    "train": clock["train"] - clock["simulate"],
                    "extract": clock["extract"] - clock["train"],
                    "compose": clock["compose"] - clock["extract"],
                    "total": clock["compose"] - clock["start"]},
        "device": str(device),
        "data": None if dataset is None else {"derivatives": dataset.meta.derivatives, "noise": dataset.meta.noise,
                                              "snapshots": len(dataset)},
        "config": {"simulation": None if sim is None else asdict(sim), "train": asdict(config),
                   "prune_outliers": prune_outliers,
                   "sr": sr, "sr_budget": sr_budget, "compose": compose},
    }
    if previous is not None:  # a finished run read again: training was loaded, not redone
        result["seconds"] = _reread_seconds(previous["seconds"], result["seconds"])
        result["reread"] = True
    atomic_write_json(out / "result.json", result)
    write_figures(out, analysis, sample, {edge: trained.history}, f"{law or 'data'} {dim}D n={n}, {edge}")
    return result


def _finished_result(out: Path) -> dict | None:
    """The run's earlier ``result.json`` (a finished run), or ``None``."""
    try:
        record = json.loads((out / "result.json").read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("seconds"), dict) else None


def _reread_seconds(before: dict, now: dict) -> dict:
    """Timings of a finished run read again: its original simulation and training, the new extraction."""
    seconds = {**now, "simulate": before.get("simulate", now["simulate"]), "train": before.get("train", now["train"])}
    seconds["total"] = sum(seconds[k] for k in ("simulate", "train", "extract", "compose"))
    return seconds


def judge_result(expressions, law: str, dim: int, target: str = "force") -> dict:
    """The verdict as ``result.json`` stores it: the force judge, or for ``target="potential"``
    :func:`eqlgn.hamiltonian.judge_potential` on the first expression; ``target`` recorded."""
    from .hamiltonian import judge_potential
    from .judging import judge

    verdict = judge_potential(expressions[:1], law, dim) if target == "potential" else judge(expressions, law, dim)
    return {**verdict.to_dict(), "target": target}


def _read_equations(model, data, analysis, law, dim, edge, sr, sr_budget, seed, out,
                    potential: bool = False) -> dict:
    """Equations of the significant messages: from EQL weights, or by SR on MLP messages; judged.

    The equations are fitted on ``data`` (the validation split). With ``potential``
    (Hamiltonian GN) the one edge output is a pair energy, judged by
    :func:`eqlgn.hamiltonian.judge_potential`.
    """
    from .extraction import extract, round_constants
    from .symbolic import fit_messages

    def judge(expressions, law, dim):
        return judge_result(expressions, law, dim, "potential" if potential else "force")

    if edge == "eql":
        # A pair energy carries parts the data cannot determine (antisymmetric, position-free);
        # refitting the raw output would spend its terms on them, so potentials keep the weights form.
        recovered = extract(model, data, refit=not potential)
        weights = recovered.weights_expressions
        if potential:  # only the symmetric, position-dependent part is determined by the data
            from .hamiltonian import identifiable_part

            recovered.expressions = [round_constants(identifiable_part(e), 3) for e in recovered.expressions]
            weights = [round_constants(identifiable_part(e), 3) for e in weights]
        verdict = None
        if law is not None:
            verdict = judge(recovered.expressions, law, dim)
            as_read = judge(weights, law, dim)
            verdict.update(unrotated=recovered.unrotated, fidelity=recovered.fidelity,
                           refit_error=recovered.refit_error,
                           weights_form={"passed": as_read["passed"], "status": as_read["status"],
                                         "ood_r2": as_read["ood_r2"]})
        return {"expressions": recovered.expressions, "method": "eql", "verdict": verdict,
                "weights_expressions": weights}
    if sr is None:
        return {"expressions": [], "method": "none", "verdict": None}
    fits = fit_messages(collect_messages(model, data), analysis.components, engine=sr, budget=sr_budget, seed=seed)
    atomic_write_json(out / "sr_fits.json", [f.to_dict() for f in fits])
    expressions = [round_constants(f.expression, 4) for f in fits]
    if potential:
        from .hamiltonian import identifiable_part

        expressions = [round_constants(identifiable_part(e), 4) for e in expressions]
    if law is None:
        return {"expressions": expressions, "method": sr, "verdict": None}
    verdict = judge(expressions, law, dim)
    axes = [{f"d{a}"} for a in "xyz"[:dim]]
    verdict["unrotated"] = all(sum(bool({s.name for s in e.free_symbols} & a) for a in axes) == 1
                               for e in expressions)
    return {"expressions": expressions, "method": sr, "verdict": verdict}


def _compose(model, train_set, fit_split, test, components, edge_expressions, engine, budget, seed,
             gn_loss) -> dict:
    """Fit the node model symbolically, compose with the edge equations, report test losses.

    The node model is fitted on ``fit_split`` (the split the edge equations were fitted on),
    the composed model's constants are refitted on ``train_set``, and both are scored on
    ``test``, which no fit saw.
    """
    from .extraction import round_constants
    from .symbolic import ComposedModel, fit_node_model

    node_fits = fit_node_model(model, fit_split, components, engine=engine, budget=budget, seed=seed)
    node = [round_constants(f.expression, 4) for f in node_fits]
    composed = ComposedModel(list(edge_expressions), node, test.dim)
    refitted = composed.refit(train_set)
    return {"engine": engine, "node_equations": [str(e) for e in node],
            "test_loss": composed.loss(test), "test_loss_refit": refitted.loss(test),
            "refit_equations": {"edge": [str(round_constants(e, 4)) for e in refitted.edge],
                                "node": [str(round_constants(e, 4)) for e in refitted.node]},
            "gn_test_loss": gn_loss, "seconds_search": sum(f.seconds for f in node_fits),
            "splits": {"equations_fitted_on": "validation", "constants_refitted_on": "train", "scored_on": "test"}}


def format_result(result: dict) -> str:
    """The end-of-run summary printed by ``eqlgn run``: equations and the verdict."""
    lines = [f"{result['law'] or 'data of unknown law'} {result['dim']}D n={result['n_particles']} "
             f"edge={result['edge_model']} "
             f"seed={result['seed']}: test MAE {result['test_loss']:.4g}, "
             f"{result['seconds']['total']:.0f} s on {result['device']}",
             f"messages: components {result['significant_components']}, linear-fit R^2 "
             + (f"{result['linear_fit_r2']:.4f}" if result["linear_fit_r2"] is not None else "- (law unknown)")
             + f", sparsity ratio {result['sparsity_ratio']:.3g}"]
    for component, equation in zip(result["significant_components"], result["equations"]):
        lines.append(f"  message {component} = {equation}")
    verdict = result["judge"]
    if result.get("equations_weights") and result["equations_weights"] != result["equations"]:
        lines.append("  as read from the weights, before the sparse refit:")
        lines.extend(f"    {equation[:300]}{'…' if len(equation) > 300 else ''}"
                     for equation in result["equations_weights"])
        if verdict is not None and "weights_form" in verdict:
            lines.append(f"    (judge of this form: {verdict['weights_form']['status']}, "
                         f"R^2 {[round(v, 5) for v in verdict['weights_form']['ood_r2']]})")
    composed = result.get("composed")
    if composed:
        lines.append(f"composed symbolic model ({composed['engine']} node model): test MAE "
                     f"{composed['test_loss']:.4g}, after refitting constants {composed['test_loss_refit']:.4g} "
                     f"(GN {composed['gn_test_loss']:.4g})")
    if verdict is not None:
        lines.append(f"judge: {verdict_word(verdict)} (scale-free out-of-distribution R^2 "
                     f"{[round(v, 5) for v in verdict['ood_r2']]}, target {_target_text(verdict)}, "
                     f"conditioning {verdict['condition']:.3g}, judge seeds passed {verdict['seeds_passed']}"
                     f"{', unrotated' if verdict.get('unrotated') else ''})")
    return "\n".join(lines)


def verdict_word(verdict: dict) -> str:
    """``RECOVERED``, ``BORDERLINE`` (the verdict flips with the judge's sampling seed) or ``NOT recovered``."""
    return {"passed": "RECOVERED", "borderline": "BORDERLINE"}.get(verdict.get("status"), "NOT recovered")


def _target_text(verdict: dict) -> str:
    if verdict.get("target") == "potential":
        return "-dU/dx1 = F"
    factor = verdict.get("receiver_factor", "1")
    law = "F" if factor == "1" else f"F/({factor})"
    return law + (f", softened r+{verdict['softening']:g}" if verdict.get("softening") else "")
