"""The training objective and its optimiser: acceleration error, message regulariser, model penalties.

The loss, per graph and averaged over the batch as in Cranmer et al.'s code, is the sum of
absolute acceleration errors over the graph's particles and components (or, training on
positions, the rollout residual of :mod:`eqlgn.rollout` in acceleration units) plus the
variant's message regulariser (logs report the plain mean absolute error):

* ``l1``: ``coef(t) * (64 / n) * sum over the graph's edges of sum_k |m_k|``, ``coef``
  from the :class:`~eqlgn.config.L1Schedule`. The factor 64 / n reproduces the effective
  strength of Cranmer et al.'s code, which multiplies the coefficient by its batch size
  (64) and divides by n; it is fixed, so the penalty does not change with our batch size;
* ``kl``: ``kl * (64 / n) * sum over edges and components of KL(N(mu, sigma^2) || N(0, 1))``
  (the same batch-size factor as Cranmer et al.'s code);
* ``standard`` / ``bottleneck``: nothing.

With ``loss.weighting = "relative"`` (for the first ``loss.relative_until`` of the steps)
each particle's error is multiplied by :func:`relative_weights` before the sum: above the
batch's median acceleration the error counts relative to the particle's own acceleration,
below it as it is (a close encounter no longer outweighs the rest; Lemos et al. 2022
divided each body's squared error by its own squared acceleration).

The message regulariser is off in the EQL's finetune phase; the EQL's weight penalty is on
in its sparsify phase (:class:`~eqlgn.phases.EQLPhaseSchedule`); a model's own penalty
(the Hamiltonian GN's, :attr:`GNOutput.penalty`) is always added.
"""

from __future__ import annotations

import torch

from .batching import GraphBatch, iterate_batches, to_tensors
from .config import TrainConfig
from .data import ParticleDataset
from .models import GNOutput, GraphNetwork, kl_to_standard_normal
from .phases import EQLPhaseSchedule

L1_REFERENCE_BATCH = 64  # Cranmer et al.'s code scales L1 and KL terms by its batch size (64) / n


def message_penalty(out: GNOutput, config: TrainConfig, t: float) -> tuple[torch.Tensor, float]:
    """The variant's message regulariser at training fraction ``t`` and its coefficient."""
    schedule = config.schedule
    if schedule.l1 is not None:
        coef = schedule.l1.coefficient(t)
        n = out.accelerations.shape[1]
        per_graph = out.messages.abs().sum(dim=(1, 2)).mean()  # sum over the graph's edges
        return coef * (L1_REFERENCE_BATCH / n) * per_graph, coef
    if schedule.kl is not None:
        n = out.accelerations.shape[1]
        per_graph = kl_to_standard_normal(out.mean, out.logvar).sum(dim=(1, 2)).mean()
        return schedule.kl * (L1_REFERENCE_BATCH / n) * per_graph, schedule.kl
    return out.messages.new_zeros(()), 0.0


def relative_weights(targets: torch.Tensor) -> torch.Tensor:
    """``2 s / (|a| + s)`` per graph and particle (shape ``[B, n, 1]``): ``|a|`` the particle's target
    acceleration, ``s`` the batch's median ``|a|``. 1 at the median, up to 2 below it, ``2 s / |a|``
    far above it; no gradient (tensors only: it runs under ``vmap``)."""
    norms = targets.detach().norm(dim=-1, keepdim=True)
    scale = norms.median().clamp_min(torch.finfo(norms.dtype).tiny)
    return 2 * scale / (norms + scale)


def training_loss(model: GraphNetwork, batch, config: TrainConfig, step: int, phases: EQLPhaseSchedule,
                  forward=None) -> tuple[torch.Tensor, float, float]:
    """The objective at ``step`` (of ``phases.total``) for one batch.

    Args:
        forward: what runs the GN (its DDP / compiled / autocast wrapper); default ``model``.

    Returns:
        (loss tensor to minimise, mean absolute error of the batch, message coefficient).
    """
    loss, mae, coef = objective(model, (forward or model)(batch.inputs), batch.targets, config, step, phases,
                                batch.error)
    return loss, mae.item(), coef


def objective(model: GraphNetwork, out: GNOutput, targets: torch.Tensor, config: TrainConfig, step: int,
              phases: EQLPhaseSchedule, error_of=GraphBatch.error) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(loss, mean absolute error, message coefficient) of the GN output ``out`` — tensors only, so that
    :mod:`eqlgn.multistart` can evaluate it for many starts at once under ``vmap``.

    ``error_of(predicted, targets)``: the error per graph, particle and component — a batch's ``error``
    (absolute acceleration error; the rollout residual of :mod:`eqlgn.rollout`)."""
    error = error_of(out.accelerations, targets)
    weighted = error * relative_weights(targets) if config.loss.relative_at(step / phases.total) else error
    loss = weighted.sum(dim=(1, 2)).mean()  # per graph, as Cranmer et al.
    if out.penalty is not None:
        loss = loss + out.penalty
    penalty, coef = message_penalty(out, config, step / phases.total)
    if phases.phase(step) != "finetune":
        loss = loss + penalty
    weight = phases.weight_penalty(step)
    if weight > 0:
        loss = loss + weight * model.edge_model.penalty(config.schedule.phases.penalty)
    return loss, error.mean(), coef


def optimizer_for(parameters, config: TrainConfig, total: int, properties=()):
    """Adam and its OneCycleLR schedule over ``total`` steps, as ``config.schedule`` sets them.

    ``properties``: learned particle properties (:mod:`eqlgn.properties`), a second parameter
    group with its own peak learning rate (``config.properties.max_lr``) and no weight decay.
    """
    schedule, properties = config.schedule, list(properties)
    groups = [{"params": list(parameters), "weight_decay": schedule.weight_decay}]
    peaks = [schedule.max_lr]
    if properties:
        groups.append({"params": properties, "weight_decay": 0.0})
        peaks.append(config.properties.max_lr)
    optimizer = torch.optim.Adam(groups, lr=schedule.max_lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks if properties else schedule.max_lr,
                                                    total_steps=total, final_div_factor=schedule.final_div)
    return optimizer, scheduler


@torch.no_grad()
def evaluate(model: GraphNetwork, data: ParticleDataset, device: torch.device, batch_size: int = 4096) -> float:
    """Mean absolute error of the accelerations on ``data`` (evaluation mode)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in iterate_batches(to_tensors(data, device), batch_size, shuffle=False):
        total += (model(batch.nodes).accelerations - batch.accelerations).abs().sum().item()
        count += batch.accelerations.numel()
    model.train(was_training)
    return total / max(count, 1)
