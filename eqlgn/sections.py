"""The training config's run-level sections, each independent of the network it trains.

* :class:`RuntimeConfig`: device, precision, ``torch.compile``;
* :class:`StartsConfig`: several starts trained side by side, the best kept (:mod:`eqlgn.multistart`);
* :class:`PropertiesConfig`: particle properties the data do not give, learned (:mod:`eqlgn.properties`);
* :class:`RolloutConfig`: training on positions with the rollout loss (:mod:`eqlgn.rollout`);
* :class:`LossConfig`: how each particle's acceleration error is weighed (:mod:`eqlgn.objective`).

Also :func:`setting`, the field helper every section of :mod:`eqlgn.config` declares its fields with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, unknown_name
from .rollout import check_window

PRECISIONS = ("fp32", "tf32", "bf16")
MASS_MODES = ("free", "ratios")
CHARGE_STARTS = ("pairs", "random")


def setting(default: Any, help: str, flag: str | None = None, **kwargs: Any) -> Any:
    """A config field with its help text and (when it differs from the field name) its flag."""
    return field(default=default, metadata={"help": help, "flag": flag}, **kwargs)


def require_positive(section: object, *names: str) -> None:
    for name in names:
        if not getattr(section, name) > 0:
            raise ConfigError(f"{name} must be positive, got {getattr(section, name)}")


def require_finite_nonnegative(section: object, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{name} must be a finite number >= 0, got {value}")


@dataclass
class RuntimeConfig:
    """Where and how the arithmetic runs (no effect on what is learned, up to rounding)."""

    device: str = setting("auto", "auto, cpu, cuda, cuda:1, ...")
    precision: str = setting("fp32", "fp32, tf32 (CUDA matmuls) or bf16 (autocast); fp32 unless measured to "
                                     "keep recovery intact")
    compile: bool = setting(False, "run the GN through torch.compile")

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise unknown_name("precision", self.precision, PRECISIONS)


@dataclass
class StartsConfig:
    """Several initialisations trained side by side as one batched model; the best continues."""

    count: int = setting(1, "independent starts trained side by side (one batched model); the best by "
                            "validation MAE continues alone", flag="starts")
    select_at: float = setting(0.25, "fraction of steps by which one start is left (end of that epoch)")
    rounds: int = setting(1, "successive-halving rounds up to select_at (each keeps the better half; the "
                             "last keeps one)", flag="halving_rounds")

    def __post_init__(self) -> None:
        require_positive(self, "count", "rounds")
        if not 0 < self.select_at < 1:
            raise ConfigError(f"select_at must lie in (0, 1), got {self.select_at}")


@dataclass
class PropertiesConfig:
    """Unmeasured particle properties (masses, charges) learned with the law (:mod:`eqlgn.properties`)."""

    max_lr: float = setting(1e-2, "OneCycleLR peak learning rate of the learned masses/charges (their own "
                                  "parameter group)", flag="properties_lr")
    masses: str = setting("ratios", "ratios: momentum conservation's mass ratios within each simulation are kept "
                                    "and one factor per simulation is learned; free: each learned mass starts where "
                                    "momentum conservation puts it and is learned on its own")
    charges: str = setting("pairs", "pairs: learned charges start at +-1, the signs the data's central pair forces "
                                    "vote for; random: at small random values", flag="charge_start")

    def __post_init__(self) -> None:
        require_positive(self, "max_lr")
        if self.masses not in MASS_MODES:
            raise unknown_name("masses", self.masses, MASS_MODES)
        if self.charges not in CHARGE_STARTS:
            raise unknown_name("charges", self.charges, CHARGE_STARTS)


@dataclass
class RolloutConfig:
    """Training on positions: the rollout loss over windows of snapshots (:mod:`eqlgn.rollout`)."""

    window: int = setting(0, "snapshots per window of the rollout loss, which fits the observed positions instead "
                             "of accelerations estimated from them (0: fit accelerations)", flag="rollout")

    def __post_init__(self) -> None:
        if self.window:
            check_window(self.window)


WEIGHTINGS = ("absolute", "relative")


@dataclass
class LossConfig:
    """How the objective weighs each particle's acceleration error (:func:`eqlgn.objective.relative_weights`)."""

    weighting: str = setting("absolute", "absolute: each particle's error as it is; relative: divided by its own "
                                         "acceleration where that exceeds the batch median (close encounters "
                                         "weigh less, after Lemos et al. 2022)", flag="loss_weighting")
    relative_until: float = setting(1.0, "fraction of steps that use the relative weighting (absolute after)")

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise unknown_name("loss weighting", self.weighting, WEIGHTINGS)
        if not 0 < self.relative_until <= 1:
            raise ConfigError(f"relative_until must lie in (0, 1], got {self.relative_until}")
        if self.weighting == "absolute" and self.relative_until != 1.0:
            raise ConfigError("relative_until does not apply: loss_weighting is absolute (set it to relative)")

    def relative_at(self, t: float) -> bool:
        """Whether the relative weighting applies at training fraction ``t``."""
        return self.weighting == "relative" and t < self.relative_until
