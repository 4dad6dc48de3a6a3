"""Run-level steps that the CLI and the experiments call: train a run directory, analyse it.

A run directory holds ``run.json`` (simulation, split and training configs), the
training checkpoint and log, ``model.pt`` and, after analysis, ``analysis.json`` and
figures. Datasets are simulated once and cached (``cache_dir``), keyed by their config.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

from ._io import atomic_write_json
from .analysis import MessageAnalysis, analyze
from .data import ParticleDataset
from .errors import EqlgnError
from .simulator import SimulationConfig, simulate
from .train import TrainConfig, TrainedModel, fit

RUN_FILE = "run.json"
MODEL_FILE = "model.pt"
DEFAULT_CACHE = "data/cache"


def prepare_data(sim: SimulationConfig, cache_dir: str | os.PathLike | None = DEFAULT_CACHE,
                 prune_outliers: bool = False, split_seed: int = 0,
                 progress: bool | None = None) -> tuple[ParticleDataset, ParticleDataset, ParticleDataset]:
    """Simulate (or read the cached dataset), optionally IQR-prune, split 80/10/10 by simulation."""
    data = simulate(sim.law, sim.dim, sim.n, sim.sims, sim.seed, steps=sim.steps,
                    save_every=sim.save_every, dt=sim.dt, softening=sim.softening,
                    charge_choices=sim.charge_choices, cache_dir=cache_dir, progress=progress)
    if prune_outliers:
        data, _ = data.prune_outliers()
    return data.split((0.8, 0.1, 0.1), seed=split_seed)


def train_run(sim: SimulationConfig, config: TrainConfig, out: str | os.PathLike,
              cache_dir: str | os.PathLike | None = DEFAULT_CACHE, prune_outliers: bool = False,
              resume: bool = False, progress: bool | None = None) -> TrainedModel:
    """Prepare data, train, and write ``run.json`` and ``model.pt`` into ``out``."""
    out = Path(out)
    started = time.perf_counter()
    train, val, test = prepare_data(sim, cache_dir, prune_outliers, config.seed, progress)
    atomic_write_json(out / RUN_FILE, {"simulation": asdict(sim), "train": asdict(config),
                                       "prune_outliers": prune_outliers,
                                       "cache_dir": None if cache_dir is None else str(cache_dir),
                                       "status": "training"})
    trained = fit(train, config, val=val, out=out, resume=resume, progress=progress)
    trained.save(out / MODEL_FILE)
    from .train import evaluate

    test_loss = evaluate(trained.model, test, next(trained.model.parameters()).device)
    record = json.loads((out / RUN_FILE).read_text())
    record.update(status="trained", test_loss=test_loss, seconds=time.perf_counter() - started)
    atomic_write_json(out / RUN_FILE, record)
    return trained


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
    from .plots import plot_loss_curves, plot_message_scatter, plot_sparsity

    out = Path(out)
    record, trained = load_run(out)
    sim = SimulationConfig(**record["simulation"])
    _, _, test = prepare_data(sim, record.get("cache_dir"), record.get("prune_outliers", False),
                              trained.config.seed, progress=False)
    analysis, sample = analyze(trained.model, test)
    atomic_write_json(out / "analysis.json", analysis.to_dict())
    if figures:
        name = f"{sim.law} {sim.dim}D n={sim.n}, {trained.config.variant}"
        plot_sparsity(analysis, out / "sparsity.png", title=f"message sparsity: {name}")
        plot_message_scatter(sample, analysis, out / "messages.png")
        plot_loss_curves({trained.config.variant: trained.history}, out / "loss.png", title=name)
    return analysis
