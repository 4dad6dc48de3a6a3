"""Training: ``fit()`` (Adam, OneCycleLR) over a :class:`~eqlgn.config.TrainConfig`.

The objective is :mod:`eqlgn.objective`'s (on accelerations, or on positions with the rollout loss of
:mod:`eqlgn.rollout` when ``config.rollout.window`` is set), the EQL's phases :mod:`eqlgn.phases`', the
network comes from :mod:`eqlgn.build`, and the state carried between steps and written
after every epoch is a :class:`~eqlgn.checkpoint.TrainingState`.

Training is resumable: a checkpoint (model, optimiser, LR scheduler, RNG state, history)
is written atomically after every epoch; ``resume=True`` continues from it, and on the
CPU ends with exactly the weights of an uninterrupted run (batch order and augmentation
are seeded per epoch).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

import torch

from . import parallel
from ._io import run_lock
from .batching import epoch_seed, iterate_batches, to_tensors
from .checkpoint import DataShape, TrainedModel, TrainingState
from .config import TrainConfig
from .data import ParticleDataset
from .errors import ConfigError, EqlgnError
from .graph import complete_edges
from .models import GraphNetwork, RelativeEdge
from .multistart import SideBySide
from .objective import evaluate, optimizer_for, training_loss
from .phases import EQLPhaseSchedule
from .properties import WithProperties, parameter_groups
from .rollout import windows


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"invalid device {device!r}: {exc}") from None


def fit(
    train: ParticleDataset,
    config: TrainConfig | None = None,
    val: ParticleDataset | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool | None = None,
    model: GraphNetwork | None = None,
) -> TrainedModel:
    """Train a GN to predict accelerations.

    Args:
        train: training graphs.
        config: training settings (defaults: :class:`TrainConfig`).
        val: validation graphs; their MAE is logged after each epoch.
        out: run directory for the checkpoint and ``train_log.jsonl`` (optional).
        resume: continue from ``out/checkpoint.pt`` when it exists.
        progress: show a progress bar (default: when stderr is a terminal).
        model: train this network instead of building one from the config.

    Returns:
        The trained model (evaluation mode) with its per-epoch history.
    """
    config = config or TrainConfig()
    _check_training_data(train, val)
    trainer = _Trainer(train, config, val, progress)
    if out is None:
        return trainer.run(model, None, resume)
    if not parallel.is_writer():  # data-parallel: rank 0 holds the lock and writes
        return trainer.run(model, Path(out), resume)
    with run_lock(out):
        return trainer.run(model, Path(out), resume)


def _check_training_data(train: ParticleDataset, val: ParticleDataset | None) -> None:
    if len(train) == 0:
        raise ConfigError("the training set is empty")
    if val is not None and (val.dim != train.dim or val.nodes.shape[-1] != train.nodes.shape[-1]):
        raise ConfigError(f"validation set ({val.dim}D, {val.nodes.shape[-1]} features) does not match the "
                          f"training set ({train.dim}D, {train.nodes.shape[-1]} features)")
    if val is not None and (val.meta.learned, val.meta.identities) != (train.meta.learned, train.meta.identities):
        raise ConfigError("validation and training sets must leave the same properties to learn over the same "
                          "identities (split one dataset)")


def training_forward(model: GraphNetwork, config: TrainConfig, device: torch.device, world: int):
    """The callable that runs the GN in training: DDP-wrapped, compiled and autocast as configured."""
    forward = parallel.wrap(model, device) if world > 1 else model
    runtime = config.runtime
    if runtime.compile:
        forward = torch.compile(forward)
    if runtime.precision == "fp32":
        return forward
    if runtime.precision == "tf32":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return forward

    def bf16_forward(nodes):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = forward(nodes)
        # every tensor field back to float32, none dropped (the Hamiltonian GN's penalty included)
        return dataclasses.replace(out, **{f.name: getattr(out, f.name).float() for f in dataclasses.fields(out)
                                          if getattr(out, f.name) is not None})

    return bf16_forward


class _Trainer:
    """The training loop of :func:`fit` (inside the run-directory lock; data-parallel under torchrun)."""

    def __init__(self, train: ParticleDataset, config: TrainConfig, val: ParticleDataset | None,
                 progress: bool | None):
        self.train, self.config, self.val, self.progress = train, config, val, progress
        self.rank, self.world, self.device = parallel.setup(resolve_device(config.runtime.device))
        parallel.check_batch(config.schedule.batch_size, self.world)
        parallel.check_data(len(train), self.world)
        self.total = config.total_steps(len(train))
        if config.starts.count > 1 and self.world > 1:
            raise ConfigError("several starts (starts > 1) train in one process; run them without torchrun")
        self.phases = EQLPhaseSchedule(config.schedule.phases, self.total)

    def start(self, model: GraphNetwork | None, run_dir: Path | None, resume: bool) -> TrainingState:
        """A fresh training state, or the run directory's checkpoint when resuming."""
        config, shape = self.config, DataShape.of(self.train)
        if model is not None and config.starts.count > 1:
            raise ConfigError("several starts build their own networks from the config; pass no model, or starts=1")
        if model is not None and shape.learned and not isinstance(model, WithProperties):
            raise ConfigError(f"the data leave {shape.learned} to learn; pass no model (one is built with the "
                              "learned properties) or a WithProperties network")
        model = (model or shape.build(config)).to(self.device)
        network, properties = parameter_groups(model)
        optimizer, scheduler = optimizer_for(network, config, self.total, properties)
        state = TrainingState(model, optimizer, scheduler, config, shape)
        if run_dir is not None:
            state.restore(run_dir, resume, self.device)
        return state

    def run(self, model: GraphNetwork | None, run_dir: Path | None, resume: bool) -> TrainedModel:
        from tqdm.auto import tqdm

        config, state = self.config, self.start(model, run_dir, resume)
        window = config.rollout.window  # training on positions: windows of snapshots (eqlgn.rollout)
        tensors = windows(self.train, window, self.device) if window else to_tensors(self.train, self.device)
        if not state.history and isinstance(state.model, WithProperties):
            state.model.properties.start_from(self.train, config.properties.masses, config.properties.charges)
        if not state.history and isinstance(state.model.edge_model, RelativeEdge):
            sample = tensors.inputs[: 4096]
            if isinstance(state.model, WithProperties):  # scales of the values, not of the identities
                with torch.no_grad():
                    sample = state.model.properties(sample)
            receivers, senders = complete_edges(sample.shape[1], self.device)
            state.model.edge_model.set_scales(sample[:, receivers], sample[:, senders])
        side_by_side = not state.history and config.starts.count > 1
        if not state.history:
            torch.manual_seed(config.seed + 1)  # KL noise; a resumed run restores the saved RNG state
        show = (sys.stderr.isatty() if self.progress is None else self.progress) and self.rank == 0
        state.model.train()
        with tqdm(total=self.total, initial=state.step, desc=f"train {config.variant}", unit="step",
                  disable=not show) as bar:
            if side_by_side:  # K starts as one batched model until one is left (eqlgn.multistart)
                bar.set_description(f"train {config.variant}, {config.starts.count} starts")
                val = to_tensors(self.val, self.device) if self.val is not None and len(self.val) else None
                state = SideBySide(state.model, config, self.phases, state.shape, self.device).run(tensors, val, bar)
                state.model.train()
            forward = training_forward(state.model, config, self.device, self.world)
            while state.step < self.total:
                self.epoch(state, forward, tensors, bar)
                self.end_epoch(state, run_dir if self.rank == 0 else None)
        state.model.eval()
        return TrainedModel(state.model, config, state.history, state.shape.dim, state.shape.node_features,
                            state.shape.learned, state.shape.identities)

    def epoch(self, state: TrainingState, forward, tensors, bar) -> None:
        """One pass over the training set (or what is left of the budget); appends its record."""
        config = self.config
        started, losses, objective, coef = time.perf_counter(), [], [], 0.0
        for batch in iterate_batches(tensors, config.schedule.batch_size, True,
                                     epoch_seed(config.seed, state.epoch), config.schedule.augment, state.shape.dim):
            if state.step >= self.total:
                break
            if self.world > 1:
                batch = parallel.shard(batch, self.rank, self.world)
                if batch is None:  # fewer graphs left than processes: all skip it alike
                    continue
            mae, value, coef = self.step(state, forward, batch)
            state.step += 1
            losses.append(mae)
            objective.append(value)
            bar.update(1)
            if state.step % 20 == 0:
                bar.set_postfix(loss=f"{losses[-1]:.4g}", lr=f"{state.scheduler.get_last_lr()[0]:.2g}")
        state.epoch += 1
        record = {"epoch": state.epoch, "step": state.step, "train_loss": sum(losses) / max(len(losses), 1),
                  "objective": sum(objective) / max(len(objective), 1),
                  "lr": state.scheduler.get_last_lr()[0], "l1_coef": coef if config.variant == "l1" else None,
                  "seconds": time.perf_counter() - started}
        if self.val is not None and len(self.val):
            record["val_loss"] = evaluate(state.model, self.val, self.device)
        state.history.append(record)

    def step(self, state: TrainingState, forward, batch) -> tuple[float, float, float]:
        """One optimiser step (pruning the EQL at the phase boundary); returns (MAE, objective, L1 coefficient)."""
        self.phases.before_step(state.model, state.step)
        loss, mae, coef = training_loss(state.model, batch, self.config, state.step, self.phases, forward=forward)
        if not torch.isfinite(loss):
            raise EqlgnError(f"training loss became {loss.item()} at step {state.step}; the last good "
                             "checkpoint is kept; lower max_lr or prune outlier accelerations")
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.schedule.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(state.model.parameters(), self.config.schedule.grad_clip)
        state.optimizer.step()
        state.scheduler.step()
        return mae, loss.item(), coef

    def end_epoch(self, state: TrainingState, run_dir: Path | None) -> None:
        """Refuse non-finite weights, then write the checkpoint and the log (the writing process only)."""
        if not all(torch.isfinite(p).all() for p in state.model.parameters()):
            raise EqlgnError(f"the weights became NaN/inf in epoch {state.epoch}; the last good checkpoint is "
                             "kept; lower max_lr, set grad_clip, or prune outlier accelerations")
        if run_dir is not None:
            state.save(run_dir)
