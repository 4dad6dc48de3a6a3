"""Several starts trained side by side, the best kept: early selection by validation error.

Whether a GN fits a law is settled early in training and differs between initialisations
(docs/method.md: a charge GN that will fit is already well below the others a quarter of
the way in). ``StartsConfig(count=K)`` trains K copies of the network, initialised from K
seeds, as **one batched model**: their parameters are stacked
(``torch.func.stack_module_state``) and one ``vmap``-ed forward and backward pass serves all
K on the same batch, so K starts cost far less than K runs (docs/performance.md).

Each start sees exactly what a single run sees — the batches, the augmentation, the
learning-rate schedule, its own gradient clipping — and Adam is elementwise, so start ``k``
*is* the run it would be alone (the tests compare it with a plain :func:`~eqlgn.train.fit`).

**Successive halving.** At the end of the epoch that passes each of ``rounds`` boundaries,
evenly spaced up to ``select_at`` of the steps, the starts are ranked by validation MAE
(training MAE of that epoch when there is no validation set) and the better half kept;
the last round keeps one. That start continues as an ordinary run, with its optimiser and
scheduler state: pruning, extraction and everything after are those of a single run.

The history gives the kept start's losses as ``train_loss``/``val_loss`` and every start's as
``starts_train_loss``/``starts_val_loss`` (``None`` once dropped); a selecting epoch carries
``kept`` (start indices). Start 0 is the network of ``seed``; start ``k`` draws its weights from
seed ``seed + 100003 k`` (:func:`start_seed`). The side-by-side phase runs in fp32 without
``torch.compile`` and writes no checkpoint: a run interrupted before the selection starts
over (on the CPU, with the same result).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .batching import GraphBatch, epoch_seed, iterate_batches
from .build import build_model
from .checkpoint import DataShape, TrainingState
from .config import TrainConfig
from .errors import EqlgnError
from .models import GraphNetwork, RelativeEdge
from .objective import objective, optimizer_for
from .phases import EQLPhaseSchedule
from .properties import WithProperties, parameter_groups

START_SEED_STRIDE = 100_003
PROPERTIES_PREFIX = "model.properties."  # stacked names of learned particle properties (eqlgn.properties)


@dataclass(frozen=True)
class Selection:
    """Which start a run kept (at ``step``), and every start's validation (else training) MAE when it was
    kept or dropped."""

    kept: int
    step: int
    scores: list[float | None]

    @classmethod
    def from_history(cls, history: list[dict]) -> Selection | None:
        """The selection a training history records, or None for a run of one start."""
        chosen = [record for record in history if len(record.get("kept", ())) == 1]
        if not chosen:
            return None
        record = chosen[-1]
        scores = record.get("starts_val_loss") or record["starts_train_loss"]
        earlier = [r for r in history if "kept" in r and r is not record]
        for before in reversed(earlier):  # a start dropped in an earlier round keeps its last score
            old = before.get("starts_val_loss") or before["starts_train_loss"]
            scores = [mine if mine is not None else theirs for mine, theirs in zip(scores, old)]
        return cls(record["kept"][0], record["step"], scores)

    def describe(self) -> str:
        scores = ", ".join("-" if s is None else f"{s:.3g}" for s in self.scores)
        return (f"best of {len(self.scores)} starts: start {self.kept}, kept at step {self.step} (MAE of each start "
                f"when kept or dropped: {scores})")


def start_seed(seed: int, start: int) -> int:
    """The seed of start ``start``'s initial weights (start 0 is the run's own seed)."""
    return seed + START_SEED_STRIDE * start


class _Objective(nn.Module):
    """One start's loss and MAE on a batch (the module that is stacked and vmap-ed)."""

    def __init__(self, model: GraphNetwork, config: TrainConfig, phases: EQLPhaseSchedule):
        super().__init__()
        self.model, self.config, self.phases, self.step = model, config, phases, 0
        self.error_of = GraphBatch.error  # the batch's error (set per batch: accelerations or rollout windows)

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss, mae, _ = objective(self.model, self.model(inputs), targets, self.config, self.step, self.phases,
                                 self.error_of)
        return loss, mae


class SideBySide:
    """K starts as one stacked model, trained until one is left (see module docstring).

    Args:
        first: start 0, built from the config's seed (its EQL input scales already set).
        config: the run's config; ``config.starts.count`` starts.
        phases: the run's EQL phase schedule (its ``total`` is the run's step count).
        shape: the data's dimension and node features.
        device: where the stacked model lives.
    """

    def __init__(self, first: GraphNetwork, config: TrainConfig, phases: EQLPhaseSchedule, shape: DataShape,
                 device: torch.device):
        self.config, self.phases, self.shape, self.device = config, phases, shape, device
        self.members = [first] + [self._build(k) for k in range(1, config.starts.count)]
        _copy_starts(first, self.members[1:], config.properties.charges == "pairs")
        wrappers = [_Objective(member, config, phases) for member in self.members]
        params, self.buffers = stack_module_state(wrappers)
        self.params = {name: value.detach().requires_grad_() for name, value in params.items()}
        self.base = copy.deepcopy(wrappers[0]).to("meta")
        self.alive = list(range(len(self.members)))  # start index of each stacked row
        self.optimizer, self.scheduler = self._optimizer()
        self.batched = vmap(self._call, in_dims=(0, 0, None, None), randomness="different")

    def _optimizer(self):
        """Adam and its schedule over the stacked parameters (learned properties in their own group)."""
        network = [v for name, v in self.params.items() if not name.startswith(PROPERTIES_PREFIX)]
        properties = [v for name, v in self.params.items() if name.startswith(PROPERTIES_PREFIX)]
        return optimizer_for(network, self.config, self.phases.total, properties)

    def _build(self, start: int) -> GraphNetwork:
        config = dataclasses.replace(self.config, seed=start_seed(self.config.seed, start))
        shape = self.shape
        return build_model(config, shape.node_features, shape.dim, shape.learned, shape.identities).to(self.device)

    def _call(self, params, buffers, nodes, accelerations):
        return functional_call(self.base, (params, buffers), (nodes, accelerations))

    # -- training ------------------------------------------------------------------------

    def run(self, tensors: GraphBatch, val: GraphBatch | None, bar) -> TrainingState:
        """Train side by side to the last selection; the state of the start that is left."""
        starts, total, history, step, epoch = self.config.starts, self.phases.total, [], 0, 0
        bounds = [round(starts.select_at * total * (i + 1) / starts.rounds) for i in range(starts.rounds)]
        for round_index, bound in enumerate(bounds):
            while step < min(bound, total):
                record = self.epoch(tensors, val, step, epoch, bar)
                step, epoch = record["step"], epoch + 1
                history.append(record)
            keep = 1 if round_index == len(bounds) - 1 else max(1, math.ceil(len(self.alive) / 2))
            if keep < len(self.alive):
                self.narrow(self.ranked(history[-1])[:keep])
                history[-1]["kept"] = list(self.alive)
        winner = self.alive[0]
        for record in history:  # the kept start's losses are the run's
            for key in ("train_loss", "val_loss", "objective"):
                values = record.get(f"starts_{key}")
                if values is not None:
                    record[key] = values[winner]
        return self.winner_state(step, epoch, history)

    def epoch(self, tensors: GraphBatch, val: GraphBatch | None, step: int, epoch: int, bar) -> dict:
        """One pass over the training set with every live start; its history record."""
        config, started = self.config, time.perf_counter()
        maes, losses, count = 0.0, 0.0, 0
        for batch in iterate_batches(tensors, config.schedule.batch_size, True, epoch_seed(config.seed, epoch),
                                     config.schedule.augment, self.shape.dim):
            if step >= self.phases.total:
                break
            self.base.step, self.base.error_of = step, batch.error
            loss, mae = self.batched(self.params, self.buffers, batch.inputs, batch.targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            self._clip()
            self.optimizer.step()
            self.scheduler.step()
            step, count = step + 1, count + 1
            maes, losses = maes + mae.detach(), losses + loss.detach()
            bar.update(1)
        if not all(torch.isfinite(p).all() for p in self.params.values()):
            raise EqlgnError(f"the weights of a start became NaN/inf in epoch {epoch + 1}; lower max_lr or set "
                             "grad_clip")
        l1 = config.schedule.l1
        record = {"epoch": epoch + 1, "step": step, "lr": self.scheduler.get_last_lr()[0],
                  "l1_coef": None if l1 is None else l1.coefficient((step - 1) / self.phases.total),
                  "seconds": time.perf_counter() - started,
                  "starts_train_loss": self._per_start(maes / max(count, 1)),
                  "starts_objective": self._per_start(losses / max(count, 1))}
        if val is not None:
            record["starts_val_loss"] = self._per_start(self.evaluate(val))
        return record

    def _clip(self) -> None:
        """Clip each start's gradient norm to ``grad_clip`` (what ``clip_grad_norm_`` does to one run)."""
        limit = self.config.schedule.grad_clip
        if limit <= 0:
            return
        grads = [p.grad for p in self.params.values() if p.grad is not None]
        per_tensor = [torch.linalg.vector_norm(g.reshape(g.shape[0], -1), dim=1) for g in grads]
        norms = torch.linalg.vector_norm(torch.stack(per_tensor, dim=1), dim=1)  # clip_grad_norm_'s order
        scale = (limit / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))

    @torch.no_grad()
    def evaluate(self, data: GraphBatch, batch_size: int = 4096) -> torch.Tensor:
        """Mean absolute error of every live start on ``data`` (evaluation mode)."""
        self.base.eval()
        self.base.error_of = GraphBatch.error
        total, count = 0.0, 0
        for batch in iterate_batches(data, batch_size, shuffle=False):
            _, mae = self.batched(self.params, self.buffers, batch.nodes, batch.accelerations)
            total, count = total + mae * batch.accelerations.numel(), count + batch.accelerations.numel()
        self.base.train()
        return total / max(count, 1)

    def _per_start(self, values: torch.Tensor) -> list[float | None]:
        out: list[float | None] = [None] * len(self.members)
        for row, start in enumerate(self.alive):
            out[start] = float(values[row])
        return out

    def ranked(self, record: dict) -> list[int]:
        """Rows of the live starts, best first (validation MAE, else training MAE, of ``record``)."""
        scores = record.get("starts_val_loss") or record["starts_train_loss"]
        return sorted(range(len(self.alive)), key=lambda row: scores[self.alive[row]])

    # -- selection -----------------------------------------------------------------------

    def narrow(self, rows: list[int]) -> None:
        """Keep only the stacked ``rows`` (parameters, buffers, Adam moments, schedule position)."""
        index = torch.tensor(rows, device=self.device)
        old_optimizer, old_scheduler = self.optimizer.state_dict(), self.scheduler.state_dict()
        self.params = {name: value.detach()[index].clone().requires_grad_() for name, value in self.params.items()}
        self.buffers = {name: value[index].clone() for name, value in self.buffers.items()}
        self.alive = [self.alive[row] for row in rows]
        self.optimizer, self.scheduler = self._optimizer()
        self.optimizer.load_state_dict(_rows_of(old_optimizer, index))
        self.scheduler.load_state_dict(old_scheduler)

    def winner_state(self, step: int, epoch: int, history: list[dict]) -> TrainingState:
        """The one live start as a plain network with its optimiser and scheduler state."""
        model = self.members[self.alive[0]]
        prefix = len("model.")
        state = {name[prefix:]: value.detach()[0] for name, value in (self.params | self.buffers).items()}
        model.load_state_dict(state)
        network, properties = parameter_groups(model)
        optimizer, scheduler = optimizer_for(network, self.config, self.phases.total, properties)
        optimizer.load_state_dict(_rows_of(self.optimizer.state_dict(), torch.tensor(0, device=self.device)))
        scheduler.load_state_dict(self.scheduler.state_dict())
        return TrainingState(model, optimizer, scheduler, self.config, self.shape, epoch, step, history)


def _rows_of(state: dict, index: torch.Tensor) -> dict:
    """An Adam state dict with every per-parameter moment narrowed to ``index`` of its leading axis."""
    narrowed = {key: {name: (value[index].clone() if name.startswith("exp_avg") else value)
                      for name, value in moments.items()}
                for key, moments in state["state"].items()}
    return {"state": narrowed, "param_groups": state["param_groups"]}


@torch.no_grad()
def _copy_starts(first: GraphNetwork, others: list[GraphNetwork], charges: bool) -> None:
    """Give every start the EQL input scales, the starting masses and (``charges``: from the pair forces) the
    starting charges of the first: they depend on the data only."""
    for other in others:
        if isinstance(first.edge_model, RelativeEdge):
            other.edge_model.scales.copy_(first.edge_model.scales)
        if isinstance(first, WithProperties) and "m" in first.properties.learned:
            for name in ("log_mass", "log_ratio", "group"):
                getattr(other.properties, name).copy_(getattr(first.properties, name))
        if isinstance(first, WithProperties) and "q" in first.properties.learned and charges:
            other.properties.charge.copy_(first.properties.charge)
