"""Training: ``TrainConfig`` + ``fit()`` (Adam, OneCycleLR, message regularisers, schedules).

The loss, per graph and averaged over the batch as in Cranmer et al.'s code, is the sum of
absolute acceleration errors over the graph's particles and components plus the
variant's message regulariser (logs report the plain mean absolute error):

* ``l1``: ``coef(t) * (64 / n) * sum over the graph's edges of sum_k |m_k|``, ``coef``
  from the schedule. The factor 64 / n reproduces the effective strength of Cranmer et
  al.'s code, which multiplies the coefficient by its batch size (64) and divides by n;
  it is fixed, so the penalty does not change with our batch size;
* ``kl``: ``kl * (64 / n) * sum over edges and components of KL(N(mu, sigma^2) || N(0, 1))``
  (the same batch-size factor as Cranmer et al.'s code);
* ``standard`` / ``bottleneck``: nothing.

L1 coefficient schedules (2024 reproduction), ``t`` = fraction of training done:
``constant`` = start; ``linear`` = start -> end; ``triangle`` = start -> end at t = 1/2 -> start.

Training is resumable: a checkpoint (model, optimiser, LR scheduler, RNG state, history)
is written atomically after every epoch; ``resume=True`` continues from it, and on the
CPU ends with exactly the weights of an uninterrupted run (batch order and augmentation
are seeded per epoch).
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from . import parallel
from ._io import atomic_write, atomic_write_text, run_lock
from .data import ParticleDataset, iterate_batches
from .errors import ConfigError, EqlgnError, unknown_name
from .features import default_relative_inputs
from .graph import AGGREGATIONS, complete_edges
from .models import GN, EQLEdge, GNOutput, build_gn, check_variant, kl_to_standard_normal, message_dim_for

SCHEDULES = ("constant", "linear", "triangle")
EDGES = ("mlp", "eql")
PRECISIONS = ("fp32", "tf32", "bf16")
MODELS = ("force", "hamiltonian")
L1_REFERENCE_BATCH = 64  # Cranmer et al.'s code scales L1 and KL terms by its batch size (64) / n
CHECKPOINT = "checkpoint.pt"
LOG = "train_log.jsonl"


def l1_coefficient(schedule: str, t: float, start: float = 0.01, end: float = 0.1) -> float:
    """L1 coefficient at training fraction ``t`` in [0, 1] (see module docstring)."""
    t = min(max(t, 0.0), 1.0)
    if schedule == "constant":
        return start
    if schedule == "linear":
        return start + (end - start) * t
    if schedule == "triangle":
        return start + (end - start) * (1.0 - abs(2.0 * t - 1.0))
    raise unknown_name("L1 schedule", schedule, SCHEDULES)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"invalid device {device!r}: {exc}") from None


@dataclass
class TrainConfig:
    """Settings of one training run (defaults follow Cranmer et al. 2020).

    Attributes:
        edge: edge model, ``mlp`` (Cranmer et al.) or ``eql`` (Equation Learner).
        variant: ``standard``, ``bottleneck``, ``l1`` or ``kl``.
        message_dim: message width (ignored by ``bottleneck``, which uses D).
        hidden: hidden width of edge and node MLPs (paper: 300).
        layers: hidden layers of edge and node MLPs (paper: 3).
        aggregation: ``dense`` (complete graphs), ``index_add``, ``scatter_reduce``,
            ``torch_scatter``.
        batch_size: graphs per step (paper: 64).
        epochs: passes over the training set (used when ``steps`` is None).
        steps: total optimiser steps; overrides ``epochs`` when set.
        max_lr: OneCycleLR peak learning rate.
        final_div: OneCycleLR ``final_div_factor``.
        weight_decay: Adam weight decay.
        l1: L1 coefficient at the start of the schedule (constant value for ``constant``).
        l1_end: L1 coefficient at the end (``linear``) or middle (``triangle``).
        schedule: ``constant``, ``linear`` or ``triangle``.
        kl: weight of the KL term for the ``kl`` variant.
        augment: std of the random translation added per graph (0 disables).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``, ...
        seed: seeds initial weights, batch order, augmentation and KL noise.
        node_hidden: hidden width of the node MLP (default: ``hidden``).
        inputs: relative edge inputs of the EQL (default: :func:`default_relative_inputs`).
        eql_layers: EQL hidden layers.
        eql_identity: identity units per EQL layer.
        eql_product: product units per EQL layer.
        eql_init: EQL initialisation width multiplier.
        eql_l1: coefficient of the L1 penalty on EQL weights (phase 2 only).
        warmup: fraction of steps before the EQL weight penalty starts (phase 1).
        prune_at: fraction of steps at which small EQL weights are pruned (phase 3 after).
        prune_threshold: EQL weights with ``|w|`` below this are zeroed and frozen.
        r_min: clamp of ``r`` inside inverse-power inputs.
        grad_clip: clip the global gradient norm to this value (0 disables).
        compile: run the GN through ``torch.compile`` (off unless measured to help).
        precision: ``fp32``, ``tf32`` (CUDA matmuls) or ``bf16`` (autocast); off (fp32)
            unless measured to keep recovery intact.
        model: ``force`` (GN whose messages sum to forces) or ``hamiltonian`` (edge model
            = pair potential energy, accelerations by autograd; :mod:`eqlgn.hamiltonian`).
    """

    edge: str = "mlp"
    variant: str = "l1"
    message_dim: int = 100
    hidden: int = 300
    layers: int = 3
    aggregation: str = "dense"
    batch_size: int = 64
    epochs: int = 30
    steps: int | None = None
    max_lr: float = 1e-3
    final_div: float = 1e5
    weight_decay: float = 1e-8
    l1: float = 0.01
    l1_end: float = 0.1
    schedule: str = "constant"
    kl: float = 1.0
    augment: float = 3.0
    device: str = "auto"
    seed: int = 0
    node_hidden: int | None = None
    inputs: list[str] | None = None
    eql_layers: int = 2
    eql_identity: int = 16
    eql_product: int = 8
    eql_init: float = 1.0
    eql_l1: float = 1e-3
    warmup: float = 0.25
    prune_at: float = 0.9
    prune_threshold: float = 1e-2
    r_min: float = 1e-2
    grad_clip: float = 0.0
    compile: bool = False
    precision: str = "fp32"
    model: str = "force"

    def __post_init__(self) -> None:
        check_variant(self.variant)
        if self.edge not in EDGES:
            raise unknown_name("edge model", self.edge, EDGES)
        if not 0 <= self.warmup <= self.prune_at <= 1:
            raise ConfigError(f"need 0 <= warmup ({self.warmup}) <= prune_at ({self.prune_at}) <= 1")
        if self.model not in MODELS:
            raise unknown_name("model", self.model, MODELS)
        if self.model == "hamiltonian" and self.variant not in ("standard", "bottleneck"):
            raise ConfigError(f"the Hamiltonian GN has one scalar edge output (the pair energy): use variant "
                              f"'standard' or 'bottleneck', not {self.variant!r}")
        if self.precision not in PRECISIONS:
            raise unknown_name("precision", self.precision, PRECISIONS)
        if self.schedule not in SCHEDULES:
            raise unknown_name("L1 schedule", self.schedule, SCHEDULES)
        if self.aggregation not in AGGREGATIONS:
            raise unknown_name("aggregation", self.aggregation, AGGREGATIONS)
        for name in ("batch_size", "message_dim", "hidden", "layers"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.inputs is not None:
            self.inputs = list(self.inputs)
            if not self.inputs:
                raise ConfigError("inputs must name at least one edge input")
        if self.steps is None and self.epochs <= 0:
            raise ConfigError(f"epochs must be positive, got {self.epochs}")
        if self.steps is not None and self.steps <= 0:
            raise ConfigError(f"steps must be positive, got {self.steps}")
        for name in ("max_lr", "final_div", "l1", "l1_end", "kl", "augment", "weight_decay", "eql_l1", "eql_init",
                     "prune_threshold", "r_min", "grad_clip"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{name} must be a finite number, got {getattr(self, name)}")
        for name in ("max_lr", "final_div"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("l1", "l1_end", "kl", "augment", "weight_decay"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")

    def total_steps(self, n_graphs: int) -> int:
        """Optimiser steps of the whole run for a training set of ``n_graphs``."""
        return self.steps if self.steps is not None else self.epochs * self.steps_per_epoch(n_graphs)

    def steps_per_epoch(self, n_graphs: int) -> int:
        return max(1, math.ceil(n_graphs / self.batch_size))


@dataclass
class TrainedModel:
    """A trained GN with its config and per-epoch history."""

    model: GN
    config: TrainConfig
    history: list[dict[str, float]]
    dim: int
    node_features: int

    def save(self, path: str | os.PathLike) -> Path:
        """Write weights + config atomically (``torch.save`` format)."""
        payload = {"state": self.model.state_dict(), "config": asdict(self.config),
                   "history": self.history, "dim": self.dim, "node_features": self.node_features}
        return atomic_write(path, lambda handle: torch.save(payload, handle))

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> TrainedModel:
        """Read a model written by :meth:`save`."""
        payload = _load_checkpoint(Path(path), device)
        known = {f.name for f in fields(TrainConfig)}
        config = TrainConfig(**{k: v for k, v in payload["config"].items() if k in known})
        model = build_model(config, payload["node_features"], payload["dim"])
        model.load_state_dict(payload["state"])
        return cls(model.to(device).eval(), config, payload["history"], payload["dim"],
                   payload["node_features"])


EQL_RECOMMENDED: dict[str, Any] = {
    "edge": "eql", "variant": "bottleneck", "hidden": 128, "layers": 3, "batch_size": 256,
    "steps": 16000, "max_lr": 3e-3, "r_min": 0.1, "grad_clip": 1.0, "eql_l1": 0.1,
    "prune_threshold": 0.05,
}


MLP_RECOMMENDED: dict[str, Any] = {
    "edge": "mlp", "variant": "l1", "schedule": "linear", "l1": 0.05, "l1_end": 0.5, "hidden": 128,
    "batch_size": 256, "steps": 4000, "max_lr": 3e-3,
}
"""The MLP L1 setting at a CPU budget. On spring it gives sparse messages linear in the force
in 1 seed of 5 on an Intel Xeon and collapses them in 2 (docs/results.md): not reliable yet."""


def recommended_config(edge: str = "eql", **overrides: Any) -> TrainConfig:
    """The one shared configuration per edge model (the same for every law).

    ``eql`` gives :data:`EQL_RECOMMENDED`, ``mlp`` gives :data:`MLP_RECOMMENDED` (the L1 GN
    with a linear schedule at a CPU budget; Cranmer et al.'s paper settings are the
    :class:`TrainConfig` defaults). docs/method.md and docs/results.md say how both were chosen.
    """
    if edge not in EDGES:
        raise unknown_name("edge model", edge, EDGES)
    base = dict(EQL_RECOMMENDED) if edge == "eql" else dict(MLP_RECOMMENDED)
    return TrainConfig(**(base | overrides))


def build_model(config: TrainConfig, node_features: int, dim: int) -> GN:
    """The GN a config describes (weights initialised from ``config.seed``)."""
    torch.manual_seed(config.seed)
    if config.model == "hamiltonian":
        return _build_hamiltonian(config, node_features, dim)
    edge = None
    if config.edge == "eql":
        width = message_dim_for(config.variant, dim, config.message_dim)
        units = {"identity": config.eql_identity, "product": config.eql_product}
        edge = EQLEdge(config.inputs or default_relative_inputs(dim), dim,
                       width * (2 if config.variant == "kl" else 1), config.eql_layers, units,
                       config.eql_init, config.r_min)
    return build_gn(node_features, dim, config.variant, config.message_dim, config.hidden,
                    config.layers, config.aggregation, edge=edge, node_hidden=config.node_hidden)


def _build_hamiltonian(config: TrainConfig, node_features: int, dim: int):
    from .hamiltonian import HamiltonianGN, KineticEnergy
    from .models import MLPEdge

    if config.edge == "eql":
        units = {"identity": config.eql_identity, "product": config.eql_product}
        edge = EQLEdge(config.inputs or default_relative_inputs(dim), dim, 1, config.eql_layers, units,
                       config.eql_init, config.r_min)
    else:
        edge = MLPEdge(node_features, 1, config.hidden, config.layers)
    return HamiltonianGN(edge, dim, KineticEnergy(dim, config.node_hidden or config.hidden))


def phase(config: TrainConfig, step: int, total: int) -> str:
    """EQL training phase at ``step``: ``warmup``, ``sparsify`` or ``finetune``."""
    if step < config.warmup * total:
        return "warmup"
    return "sparsify" if step < prune_step(config, total) else "finetune"


def prune_step(config: TrainConfig, total: int) -> int:
    """The step at which EQL weights are pruned (``total`` + 1 when never)."""
    return int(round(config.prune_at * total)) if config.edge == "eql" else total + 1


def message_penalty(out, config: TrainConfig, t: float) -> tuple[torch.Tensor, float]:
    """The variant's message regulariser at training fraction ``t`` and its coefficient."""
    if config.variant == "l1":
        coef = l1_coefficient(config.schedule, t, config.l1, config.l1_end)
        n = out.accelerations.shape[1]
        per_graph = out.messages.abs().sum(dim=(1, 2)).mean()  # sum over the graph's edges
        return coef * (L1_REFERENCE_BATCH / n) * per_graph, coef
    if config.variant == "kl":
        n = out.accelerations.shape[1]
        per_graph = kl_to_standard_normal(out.mean, out.logvar).sum(dim=(1, 2)).mean()
        return config.kl * (L1_REFERENCE_BATCH / n) * per_graph, config.kl
    return out.messages.new_zeros(()), 0.0


def training_loss(model: GN, batch, config: TrainConfig, step: int, total: int, forward=None
                  ) -> tuple[torch.Tensor, float, float]:
    """The objective at ``step`` of ``total`` for one batch.

    Args:
        forward: what runs the GN (its DDP / compiled / autocast wrapper); default ``model``.

    Returns:
        (loss tensor to minimise, mean absolute error of the batch, message coefficient).
    """
    out = (forward or model)(batch.nodes)
    error = (out.accelerations - batch.accelerations).abs()
    loss = error.sum(dim=(1, 2)).mean()  # per graph, as Cranmer et al.
    current = phase(config, step, total)
    if out.penalty is not None:
        loss = loss + out.penalty
    penalty, coef = message_penalty(out, config, step / total)
    if current != "finetune":
        loss = loss + penalty
    if current == "sparsify" and config.eql_l1 > 0:
        loss = loss + config.eql_l1 * model.edge_model.penalty()
    return loss, error.mean().item(), coef


@torch.no_grad()
def evaluate(model: GN, data: ParticleDataset, device: torch.device, batch_size: int = 4096) -> float:
    """Mean absolute error of the accelerations on ``data`` (evaluation mode)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in iterate_batches(data.tensors(device), batch_size, shuffle=False):
        total += (model(batch.nodes).accelerations - batch.accelerations).abs().sum().item()
        count += batch.accelerations.numel()
    model.train(was_training)
    return total / max(count, 1)


def _load_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict:
    try:
        payload = torch.load(path, map_location=device, weights_only=False)
    except FileNotFoundError:
        raise EqlgnError(f"checkpoint {str(path)!r} does not exist") from None
    except Exception as exc:
        raise EqlgnError(
            f"checkpoint {str(path)!r} is corrupt or not an eqlgn checkpoint "
            f"({type(exc).__name__}); delete it to start over"
        ) from exc
    if not isinstance(payload, dict) or "state" not in payload or "config" not in payload:
        raise EqlgnError(f"checkpoint {str(path)!r} is not an eqlgn checkpoint; delete it to start over")
    return payload


def _save_checkpoint(path: Path, model, optimizer, scheduler, epoch: int, step: int,
                     history: list, config: TrainConfig, dim: int, node_features: int) -> None:
    payload = {"state": model.state_dict(), "optimizer": optimizer.state_dict(),
               "scheduler": scheduler.state_dict(), "epoch": epoch, "step": step,
               "history": history, "config": asdict(config), "rng": torch.get_rng_state(),
               "dim": dim, "node_features": node_features}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def fit(
    train: ParticleDataset,
    config: TrainConfig | None = None,
    val: ParticleDataset | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool | None = None,
    model: GN | None = None,
) -> TrainedModel:
    """Train a GN to predict accelerations.

    Args:
        train: training graphs.
        config: training settings (defaults: :class:`TrainConfig`).
        val: validation graphs; their MAE is logged after each epoch.
        out: run directory for the checkpoint and ``train_log.jsonl`` (optional).
        resume: continue from ``out/checkpoint.pt`` when it exists.
        progress: show a progress bar (default: when stderr is a terminal).
        model: train this GN instead of building one from the config.

    Returns:
        The trained model (evaluation mode) with its per-epoch history.
    """
    config = config or TrainConfig()
    _check_training_data(train, val)
    if out is None:
        return _train(train, config, val, None, resume, progress, model)
    if not parallel.is_writer():  # data-parallel: rank 0 holds the lock and writes
        return _train(train, config, val, Path(out), resume, progress, model)
    with run_lock(out):
        return _train(train, config, val, Path(out), resume, progress, model)


def _check_training_data(train: ParticleDataset, val: ParticleDataset | None) -> None:
    if len(train) == 0:
        raise ConfigError("the training set is empty")
    if val is not None and (val.dim != train.dim or val.nodes.shape[-1] != train.nodes.shape[-1]):
        raise ConfigError(f"validation set ({val.dim}D, {val.nodes.shape[-1]} features) does not match the "
                          f"training set ({train.dim}D, {train.nodes.shape[-1]} features)")


def refuse_overwrite(run_dir: str | os.PathLike, resume: bool) -> None:
    """Raise when ``run_dir`` already holds a checkpoint and ``resume`` is off (never overwrite a run)."""
    if not resume and (Path(run_dir) / CHECKPOINT).is_file():
        raise EqlgnError(f"{str(run_dir)!r} already holds a training checkpoint; pass resume=True (--resume) "
                         "to continue it, or choose another output directory")


def _restore(run_dir: Path, resume: bool, config: TrainConfig, model, optimizer, scheduler, dim: int,
             node_features: int, device) -> tuple[int, int, list]:
    """Load ``run_dir/checkpoint.pt`` into the training state when resuming; refuse to overwrite one."""
    path = run_dir / CHECKPOINT
    refuse_overwrite(run_dir, resume)
    if not path.is_file():
        return 0, 0, []
    state = _load_checkpoint(path, device)
    saved, now = state["config"], asdict(config)
    changed = [f"{k}={saved.get(k)!r} (now {now[k]!r})" for k in now
               if k not in ("device", "compile") and saved.get(k, now[k]) != now[k]]
    if changed or state.get("dim") != dim or state.get("node_features") != node_features:
        what = ", ".join(changed) or f"data {state.get('dim')}D/{state.get('node_features')} features"
        raise EqlgnError(f"cannot resume {str(run_dir)!r}: its checkpoint was trained with {what}; "
                         "resume with the same settings and data, or choose another output directory")
    model.load_state_dict(state["state"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return state["epoch"], state["step"], state["history"]


def _forward(model: GN, config: TrainConfig, device: torch.device, world: int):
    """The callable that runs the GN in training: DDP-wrapped, compiled and autocast as configured."""
    forward = parallel.wrap(model, device) if world > 1 else model
    if config.compile:
        forward = torch.compile(forward)
    if config.precision == "fp32":
        return forward
    if config.precision == "tf32":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return forward

    def bf16_forward(nodes):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = forward(nodes)
        return GNOutput(*(None if t is None else t.float() for t in
                          (out.accelerations, out.messages, out.mean, out.logvar)))

    return bf16_forward


def _step(model: GN, forward, batch, config: TrainConfig, optimizer, scheduler, step: int,
          total: int) -> tuple[float, float, float]:
    """One optimiser step (pruning the EQL at the phase boundary); returns (MAE, objective, L1 coefficient)."""
    if step == prune_step(config, total):
        model.edge_model.eql.prune(config.prune_threshold)
    loss, mae, coef = training_loss(model, batch, config, step, total, forward=forward)
    if not torch.isfinite(loss):
        raise EqlgnError(f"training loss became {loss.item()} at step {step}; the last good "
                         "checkpoint is kept; lower max_lr or prune outlier accelerations")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    scheduler.step()
    return mae, loss.item(), coef


def _end_epoch(model: GN, optimizer, scheduler, run_dir: Path | None, epoch: int, step: int, history: list,
               config: TrainConfig, dim: int, node_features: int) -> None:
    """Refuse non-finite weights, then write the checkpoint and the log (the writing process only)."""
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise EqlgnError(f"the weights became NaN/inf in epoch {epoch}; the last good checkpoint is "
                         "kept; lower max_lr, set grad_clip, or prune outlier accelerations")
    if run_dir is not None:
        _save_checkpoint(run_dir / CHECKPOINT, model, optimizer, scheduler, epoch, step, history, config, dim,
                         node_features)
        atomic_write_text(run_dir / LOG, "".join(json.dumps(r) + "\n" for r in history))


def _train(train: ParticleDataset, config: TrainConfig, val: ParticleDataset | None, run_dir: Path | None,
           resume: bool, progress: bool | None, model: GN | None) -> TrainedModel:
    """The training loop of :func:`fit` (inside the run-directory lock; data-parallel under torchrun)."""
    from tqdm.auto import tqdm

    rank, world, device = parallel.setup(resolve_device(config.device))
    parallel.check_batch(config.batch_size, world)
    parallel.check_data(len(train), world)
    dim, node_features = train.dim, train.nodes.shape[-1]
    model = (model or build_model(config, node_features, dim)).to(device)
    total = config.total_steps(len(train))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.max_lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.max_lr, total_steps=total, final_div_factor=config.final_div)
    epoch, step, history = 0, 0, []
    if run_dir is not None:
        epoch, step, history = _restore(run_dir, resume, config, model, optimizer, scheduler, dim,
                                        node_features, device)
    tensors = train.tensors(device)
    if not history and isinstance(model.edge_model, EQLEdge):
        sample = tensors.nodes[: 4096]
        receivers, senders = complete_edges(sample.shape[1], device)
        model.edge_model.set_scales(sample[:, receivers], sample[:, senders])
    if not history:
        torch.manual_seed(config.seed + 1)  # KL noise; a resumed run restores the saved RNG state
    forward = _forward(model, config, device, world)
    show = (sys.stderr.isatty() if progress is None else progress) and rank == 0
    model.train()
    with tqdm(total=total, initial=step, desc=f"train {config.variant}", unit="step", disable=not show) as bar:
        while step < total:
            started, losses, objective, coef = time.perf_counter(), [], [], 0.0
            for batch in iterate_batches(tensors, config.batch_size, True, config.seed * 100003 + epoch,
                                         config.augment, dim):
                if step >= total:
                    break
                if world > 1:
                    batch = parallel.shard(batch, rank, world)
                    if batch is None:  # fewer graphs left than processes: all skip it alike
                        continue
                mae, value, coef = _step(model, forward, batch, config, optimizer, scheduler, step, total)
                step += 1
                losses.append(mae)
                objective.append(value)
                bar.update(1)
                if step % 20 == 0:
                    bar.set_postfix(loss=f"{losses[-1]:.4g}", lr=f"{scheduler.get_last_lr()[0]:.2g}")
            epoch += 1
            record = {"epoch": epoch, "step": step, "train_loss": sum(losses) / max(len(losses), 1),
                      "objective": sum(objective) / max(len(objective), 1),
                      "lr": scheduler.get_last_lr()[0], "l1_coef": coef if config.variant == "l1" else None,
                      "seconds": time.perf_counter() - started}
            if val is not None and len(val):
                record["val_loss"] = evaluate(model, val, device)
            history.append(record)
            _end_epoch(model, optimizer, scheduler, run_dir if rank == 0 else None, epoch, step, history, config,
                       dim, node_features)
    model.eval()
    return TrainedModel(model, config, history, dim, node_features)
