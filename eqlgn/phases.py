"""The EQL's phase schedule over training: warmup, sparsify, prune, finetune.

``EQLPhaseSchedule(phases, total)`` answers, for each optimiser step, which phase it is in,
whether the EQL's own L1 penalty applies, and prunes the EQL's small weights at the
boundary (Martius & Lampert's EQL training). The trainer calls :meth:`before_step` once
per step; a GN without an EQL edge model has no phases (:meth:`none`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import EQLPhases


@dataclass(frozen=True)
class EQLPhaseSchedule:
    """Phases of a run of ``total`` steps (``phases`` is ``None`` for an MLP edge model).

    * ``warmup`` (steps < ``warmup * total``): the data loss and the message regulariser;
    * ``sparsify``: plus ``l1 *`` the EQL's weight penalty;
    * ``finetune`` (from ``prune_at * total``, after pruning weights below
      ``prune_threshold``): the data loss only, pruned weights frozen at zero.
    """

    phases: EQLPhases | None
    total: int

    @property
    def prune_step(self) -> int:
        """The step at which EQL weights are pruned (``total`` + 1 when never)."""
        return self.total + 1 if self.phases is None else int(round(self.phases.prune_at * self.total))

    def phase(self, step: int) -> str:
        """``warmup``, ``sparsify`` or ``finetune`` at ``step``."""
        if self.phases is None:  # no EQL: the message regulariser applies all along, as in warm-up
            return "warmup"
        if step < self.phases.warmup * self.total:
            return "warmup"
        return "sparsify" if step < self.prune_step else "finetune"

    def weight_penalty(self, step: int) -> float:
        """Coefficient of the EQL's own L1 penalty at ``step`` (0 outside ``sparsify``)."""
        if self.phases is None or self.phases.l1 <= 0 or self.phase(step) != "sparsify":
            return 0.0
        return self.phases.l1

    def before_step(self, model, step: int) -> None:
        """Prune the EQL edge model when ``step`` is the prune step."""
        if self.phases is not None and step == self.prune_step:
            model.edge_model.eql.prune(self.phases.prune_threshold)
