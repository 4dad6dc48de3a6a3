"""Run-level steps that the CLI and the experiments call: train a run directory, analyse it, run end to end.

Every verb reads and writes the one run-directory format of :mod:`eqlgn.rundir`;
:func:`run` returns (and writes) a typed :class:`eqlgn.result.RunResult`. Datasets are
simulated once and cached (``cache_dir``), keyed by their config.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._io import atomic_write_json, atomic_write_text, run_lock
from .analysis import MessageAnalysis, analyze, collect_messages
from .checkpoint import TrainedModel, refuse_overwrite
from .config import TrainConfig
from .data import ParticleDataset
from .equations import complexity, unrotated
from .errors import ConfigError, EqlgnError, unknown_name
from .laws import get_law
from .multistart import Selection
from .objective import evaluate
from .properties import bake
from .recipes import recommended_config
from .result import RESULT_FILE, RunResult, RunSettings, Timings
from .rundir import ANALYSIS_FILE, MODEL_FILE, RunDirectory, RunRecord
from .simulator import SimulationConfig
from .sources import DEFAULT_CACHE, DataSource
from .targets import target_for
from .train import fit


def train_run(sim: SimulationConfig, config: TrainConfig, out: str | os.PathLike,
              cache_dir: str | os.PathLike | None = DEFAULT_CACHE, prune_outliers: bool = False,
              resume: bool = False, progress: bool | None = None) -> TrainedModel:
    """Prepare data, train, and write ``run.json`` and ``model.pt`` into ``out`` (``eqlgn train``)."""
    record = RunRecord(config, sim, None, prune_outliers, None if cache_dir is None else str(cache_dir),
                       split_seed=config.seed, law=sim.law)
    with run_lock(out):
        directory = RunDirectory(out)
        refuse_overwrite(out, resume)
        started = time.perf_counter()
        train, val, test = directory.splits(record, progress=progress)
        directory.write(record)
        trained = fit(train, config, val=val, out=out, resume=resume, progress=progress)
        trained.save(directory.file(MODEL_FILE))
        record.status, record.seconds = "trained", time.perf_counter() - started
        record.test_loss = evaluate(trained.model, test, next(trained.model.parameters()).device)
        directory.write(record)
        return trained


def analyze_run(out: str | os.PathLike, figures: bool = True, data: ParticleDataset | None = None) -> MessageAnalysis:
    """Analyse the messages of a trained run on its test split; write ``analysis.json`` and figures.

    ``data``: the dataset of a run that was given one in memory (a run records the
    simulation or the file it read, and rebuilds its splits from that otherwise).
    """
    directory = RunDirectory(out)
    record, trained = directory.read(), directory.trained()
    model, (_, _, test) = bake(trained.model, *directory.splits(record, data))
    analysis, sample = analyze(model, test)
    atomic_write_json(directory.file(ANALYSIS_FILE), analysis.to_dict())
    if figures:
        variant = trained.config.variant
        write_figures(directory.path, analysis, sample, {variant: trained.history},
                      f"{record.law or 'data'} {test.dim}D n={test.n_particles}, {variant}")
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
    *,
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
    data: str | os.PathLike | Sequence[str | os.PathLike] | DataSource | ParticleDataset | None = None,
) -> RunResult:
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
        train: training settings (default :func:`eqlgn.recommended_config` for ``edge``).
        prune_outliers: IQR-prune snapshots with extreme accelerations before splitting.
        cache_dir: dataset cache.
        resume: continue an interrupted training from the run's checkpoint.
        progress: show progress bars (default: when stderr is a terminal).
        sr: symbolic-regression engine for MLP messages (``operon`` or ``pysr``).
        sr_budget: SR iterations per expression (PySR ``niterations``, operon generations, EQL steps / 20).
        compose: also fit the node model symbolically (engine ``sr``, default ``operon``) and
            report the composed symbolic model's test loss next to the GN's.
        data: users' data instead of a simulation: a dataset, an eqlgn dataset file, or
            trajectory files and folders (a path, a list of them, or a
            :class:`~eqlgn.sources.DataSource` that also says how to estimate accelerations;
            see :mod:`eqlgn.trajectories`).

    Returns:
        The :class:`~eqlgn.result.RunResult` (also written to ``out/result.json``).
    """
    from .sr import ENGINES

    if sr is not None and sr not in ENGINES:
        raise unknown_name("symbolic-regression engine", sr, ENGINES)
    config = train or recommended_config(edge, seed=seed)
    target = target_for(config.network.kind)
    if compose and not target.composable:
        raise ConfigError("--compose composes force GNs; a Hamiltonian GN's potential is judged directly")
    if sr is not None and edge == "eql":
        raise ConfigError("--sr fits MLP messages; an EQL edge model is read from its weights "
                          "(use --edge mlp --sr ENGINE, or --edge eql without --sr)")
    if config.edge != edge:
        raise EqlgnError(f"edge={edge!r} but the training config says edge={config.edge!r}")
    if law is not None:
        get_law(law)  # an unknown (or empty) name fails here, before anything runs
    plan = _Plan(config, RunSettings(config, None, prune_outliers, sr, sr_budget, compose), seed, resume, progress,
                 None if cache_dir is None else str(cache_dir))
    if data is not None:
        if isinstance(data, (str, os.PathLike, list, tuple)):
            data = DataSource(tuple(data) if isinstance(data, (list, tuple)) else data)
        if isinstance(data, DataSource):
            plan.settings.data_source, plan.source = data.to_dict(), data
            data = data.load(law)
        plan.dataset = data
        law = law or data.meta.law
        if law is not None and data.meta.law is None:
            data.meta.law = get_law(law).name
        dim, n = data.dim, data.n_particles
    else:
        law = law or "spring"
        plan.settings.simulation = SimulationConfig(law=law, dim=dim, n=n, sims=sims, seed=seed)
    plan.law = law
    out = Path(out or f"runs/{law or 'data'}-{dim}d-n{n}-{edge}{'-' + sr if sr else ''}-seed{seed}")
    with run_lock(out):
        return _execute(plan, RunDirectory(out))


@dataclass
class _Plan:
    """Everything :func:`run` decided before the work starts."""

    config: TrainConfig
    settings: RunSettings
    seed: int
    resume: bool
    progress: bool | None
    cache_dir: str | None
    law: str | None = None
    dataset: ParticleDataset | None = None
    source: DataSource | None = None
    clock: dict = field(default_factory=dict)

    def record(self) -> RunRecord:
        return RunRecord(self.config, self.settings.simulation, self.source, self.settings.prune_outliers,
                         self.cache_dir, self.seed, self.law)

    def tick(self, stage: str) -> None:
        self.clock[stage] = time.perf_counter()


def _execute(plan: _Plan, directory: RunDirectory) -> RunResult:
    """The body of :func:`run`, inside the run-directory lock."""
    refuse_overwrite(directory.path, plan.resume)
    previous = _finished_result(directory) if plan.resume else None
    plan.tick("start")
    record = plan.record()
    train_set, val, test = directory.splits(record, plan.dataset, plan.progress)
    directory.write(record)
    plan.tick("simulate")
    trained = fit(train_set, plan.config, val=val, out=directory.path, resume=plan.resume, progress=plan.progress)
    trained.save(directory.file(MODEL_FILE))
    learned = _write_properties(trained.model, plan.dataset, train_set, directory)
    model, (train_set, val, test) = bake(trained.model, train_set, val, test)  # learned values in, if any
    plan.tick("train")
    analysis, sample = analyze(model, test)
    # Equations are fitted (EQL sparse refit, SR on messages and on the node model) on the
    # validation split; the test split only scores them (the judge samples its own states).
    fit_split = val if len(val) else train_set
    found = _read_equations(plan, model, fit_split, analysis, directory)
    plan.tick("extract")
    device = next(model.parameters()).device
    gn_loss = evaluate(model, test, device)
    composed = None
    if plan.settings.compose:
        composed = _compose(plan, model, (train_set, fit_split, test), analysis.components, found.messages,
                            gn_loss)
    plan.tick("compose")
    symbolic = _symbolic_network(plan, model, found, analysis.components, (train_set, val, test), gn_loss)
    plan.tick("symbolic")
    clock = plan.clock
    seconds = Timings(simulate=clock["simulate"] - clock["start"], train=clock["train"] - clock["simulate"],
                      extract=clock["extract"] - clock["train"], compose=clock["compose"] - clock["extract"],
                      symbolic=clock["symbolic"] - clock["compose"], total=clock["symbolic"] - clock["start"])
    dataset = plan.dataset
    result = RunResult(
        law=plan.law, dim=test.dim, n_particles=test.n_particles, edge_model=plan.config.edge, method=found.method,
        seed=plan.seed, target=target_for(plan.config.network.kind).name,
        equations=[str(e) for e in found.expressions],
        equations_weights=None if found.weights is None else [str(e) for e in found.weights],
        message_offsets=found.offsets,
        significant_components=analysis.components, message_std=analysis.spread[: len(analysis.components) + 1],
        linear_fit_r2=None if plan.law is None else min(analysis.r2), sparsity_ratio=analysis.sparsity_ratio,
        judge=found.verdict,
        complexity=sum(complexity(e) for e in found.expressions) if found.expressions else None,
        test_loss=gn_loss, composed=composed, seconds=seconds, device=str(device),
        symbolic_network=None if symbolic is None else symbolic.to_dict(),
        selection=Selection.from_history(trained.history),
        data=None if dataset is None else {"derivatives": dataset.meta.derivatives, "noise": dataset.meta.noise,
                                           "snapshots": len(dataset), **({"learned": learned} if learned else {})},
        config=plan.settings)
    if previous is not None:  # a finished run read again: training was loaded, not redone
        result.seconds, result.reread = seconds.reread(previous.seconds), True
    result.save(directory.file(RESULT_FILE))
    record.status, record.test_loss, record.seconds = "finished", gn_loss, result.seconds.total
    directory.write(record)
    write_figures(directory.path, analysis, sample, {plan.config.edge: trained.history},
                  f"{plan.law or 'data'} {test.dim}D n={test.n_particles}, {plan.config.edge}")
    return result


PROPERTIES_FILE = "properties.csv"


def _write_properties(model, data: ParticleDataset | None, train: ParticleDataset,
                      directory: RunDirectory) -> dict | None:
    """``properties.csv`` of a run whose data left properties to learn; what ``result.json`` records of them."""
    from .properties import FEW_SNAPSHOTS, WithProperties, properties_table

    if not isinstance(model, WithProperties):
        return None
    rows = properties_table(model, data if data is not None else train, train)
    text = io.StringIO()  # csv quotes a species label that needs it; numbers print as repr does
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(directory.file(PROPERTIES_FILE), text.getvalue())
    meta = train.meta
    return {"properties": list(meta.learned), "identity": meta.identity, "identities": meta.identities,
            "untrained": sum(r["snapshots"] == 0 for r in rows),
            "poorly_fixed": {"count": sum(0 < r["snapshots"] < FEW_SNAPSHOTS for r in rows),
                             "below_snapshots": FEW_SNAPSHOTS}, "file": PROPERTIES_FILE}


SYMBOLIC_FRACTION = 0.1  # fine-tuning steps of the symbolic network, as a fraction of the training steps


def _symbolic_network(plan: _Plan, model, found: _Found, components: list[int], splits: tuple, gn_loss: float):
    """EQL force runs: the GN with the recovered expressions as its edge model, fine-tuned (``symbolic_edge``)."""
    from .symbolic_edge import symbolic_network

    network = plan.config.network
    if network.edge_kind != "eql" or network.kind != "force" or network.variant not in ("standard", "bottleneck"):
        return None
    if len(found.expressions) != len(components) or not len(splits[0]):
        return None
    steps = max(1, int(SYMBOLIC_FRACTION * plan.config.total_steps(len(splits[0]))))
    return symbolic_network(model, found.messages, components, splits, steps, plan.seed, gn_loss=gn_loss)


def _finished_result(directory: RunDirectory) -> RunResult | None:
    """The run's earlier ``result.json`` (a finished run), or ``None``."""
    try:
        return RunResult.load(directory.file(RESULT_FILE))
    except (EqlgnError, ConfigError, TypeError, KeyError, ValueError):
        return None


@dataclass
class _Found:
    """Equations of the significant messages, how they were read, and the verdict."""

    expressions: list
    method: str
    verdict: dict | None = None
    weights: list | None = None  # the EQL's weights form
    offsets: list[float] | None = None  # the constant term dropped from each message (targets.message_offset)

    @property
    def messages(self) -> list:
        """The expressions with their constant terms: what the network's messages are (formula networks)."""
        if not self.offsets:
            return list(self.expressions)
        return [e + c for e, c in zip(self.expressions, self.offsets)]


def _read_equations(plan: _Plan, model, data: ParticleDataset, analysis: MessageAnalysis,
                    directory: RunDirectory) -> _Found:
    """Equations of the significant messages: from EQL weights, or by SR on MLP messages; judged.

    The equations are fitted on ``data`` (the validation split); the target
    (:mod:`eqlgn.targets`) says how they are cleaned and judged.
    """
    from .extraction import extract, round_constants

    target, law, dim = target_for(plan.config.network.kind), plan.law, data.dim
    if plan.config.edge == "eql":
        recovered = extract(model, data, refit=target.refit)
        expressions = target.clean(recovered.expressions, 3)
        weights = target.clean(recovered.weights_expressions, 3)
        found = _Found(expressions, "eql", None, weights, _offsets(target, recovered.expressions))
        if law is not None:
            found.verdict = target.verdict(expressions, law, dim)
            as_read = target.verdict(weights, law, dim)
            found.verdict.update(unrotated=unrotated(expressions, dim), fidelity=recovered.fidelity,
                                 refit_error=recovered.refit_error,
                                 weights_form={"passed": as_read["passed"], "status": as_read["status"],
                                               "ood_r2": as_read["ood_r2"]})
        return found
    settings = plan.settings
    if settings.sr is None:
        return _Found([], "none")
    from .symbolic import fit_messages

    fits = fit_messages(collect_messages(model, data), analysis.components, engine=settings.sr,
                        budget=settings.sr_budget, seed=plan.seed, receiver=model.edge_model.sees_receiver)
    atomic_write_json(directory.file("sr_fits.json"), [f.to_dict() for f in fits])
    rounded = [round_constants(f.expression, SR_DIGITS) for f in fits]
    found = _Found(target.clean(rounded, SR_DIGITS), settings.sr, offsets=_offsets(target, rounded))
    expressions = found.expressions
    if law is not None:
        found.verdict = target.verdict(expressions, law, dim)
        found.verdict["unrotated"] = unrotated(expressions, dim)
    return found


SR_DIGITS = 4  # significant digits of the constants of symbolic-regression equations


def _offsets(target, expressions: list) -> list[float] | None:
    """The constant term of each message that the target's cleaning drops (rounded), or None when all are 0."""
    offsets = [round(c, 4) for c in target.offsets(expressions)]
    return offsets if any(offsets) else None


def sr_equations(target, expressions: list) -> list:
    """SR expressions as a run reports and judges them: constants rounded, then the target's cleaning."""
    from .extraction import round_constants

    return target.clean([round_constants(e, SR_DIGITS) for e in expressions], SR_DIGITS)


def _compose(plan: _Plan, model, splits: tuple, components: list[int], edge_expressions: list,
             gn_loss: float) -> dict:
    """Fit the node model symbolically, compose with the edge equations, report test losses.

    ``splits`` = (train, fit, test): the node model is fitted on the split the edge
    equations were fitted on, the composed model's constants are refitted on train, and both
    are scored on test, which no fit saw.
    """
    from .extraction import round_constants
    from .symbolic import ComposedModel, fit_node_model

    train_set, fit_split, test = splits
    engine, budget = plan.settings.sr or "operon", plan.settings.sr_budget
    node_fits = fit_node_model(model, fit_split, components, engine=engine, budget=budget, seed=plan.seed)
    node = [round_constants(f.expression, 4) for f in node_fits]
    composed = ComposedModel(list(edge_expressions), node, test.dim)
    refitted = composed.refit(train_set)
    return {"engine": engine, "node_equations": [str(e) for e in node],
            "test_loss": composed.loss(test), "test_loss_refit": refitted.loss(test),
            "refit_equations": {"edge": [str(round_constants(e, 4)) for e in refitted.edge],
                                "node": [str(round_constants(e, 4)) for e in refitted.node]},
            "gn_test_loss": gn_loss, "seconds_search": sum(f.seconds for f in node_fits),
            "splits": {"equations_fitted_on": "validation", "constants_refitted_on": "train", "scored_on": "test"}}
