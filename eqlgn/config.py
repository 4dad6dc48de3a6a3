"""Training configuration, one section per part (defaults follow Cranmer et al. 2020).

:class:`TrainConfig` nests its sections and the seed:

* ``network`` (:class:`NetworkConfig`): the GN — its edge model (:class:`MLPEdgeConfig` or
  :class:`EQLEdgeConfig`, each with its own settings), node model (:class:`NodeConfig`),
  variant, message width, aggregation, and ``kind`` (force GN or Hamiltonian GN);
* ``schedule`` (:class:`ScheduleConfig`): optimiser and budget, plus the sub-sections that
  exist only where they apply — the L1 schedule (:class:`L1Schedule`, variant ``l1``), the
  KL weight (variant ``kl``) and the EQL phases (:class:`EQLPhases`, EQL edge);
* ``runtime`` (:class:`RuntimeConfig`): device, precision, ``torch.compile``;
* ``starts`` (:class:`StartsConfig`): several starts trained side by side, the best kept
  (:mod:`eqlgn.multistart`);
* ``properties`` (:class:`PropertiesConfig`): how particle properties that the data do not
  give are learned (:mod:`eqlgn.properties`; used only when the data list some);
* ``rollout`` (:class:`RolloutConfig`): training on positions with the rollout loss
  (:mod:`eqlgn.rollout`) instead of on accelerations;
* ``loss`` (:class:`LossConfig`): how each particle's acceleration error is weighed (:mod:`eqlgn.objective`).

A section that does not apply cannot be set: ``TrainConfig`` raises a ConfigError naming
it. The command line and :func:`eqlgn.recipes.recommended_config` speak in **flags**, one flat name per
setting (``--eql-l1``, ``--max-lr``, ...): :data:`FLAGS` lists them, each field declares
its flag and help text in its metadata, and :meth:`TrainConfig.from_flags` builds the
nested config from them. Two flags set two fields each, as they always did: ``hidden`` and
``layers`` size the edge MLP and the node MLP (``node_hidden`` overrides the node's width;
the Hamiltonian GN's kinetic-energy MLP has 2 layers).

Saved configs: :meth:`TrainConfig.to_dict` writes the nested form;
:meth:`TrainConfig.from_dict` reads it, and also the flat form of earlier versions.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import ConfigError, unknown_name
from .graph import AGGREGATIONS
from .models import check_variant
from .sections import (
    LossConfig,
    PropertiesConfig,
    RolloutConfig,
    RuntimeConfig,
    StartsConfig,
    require_finite_nonnegative,
    require_positive,
    setting,
)

SCHEDULES = ("constant", "linear", "triangle")
EDGES = ("mlp", "eql")
MLP_INPUTS = ("raw", "sender")
KINDS = ("force", "hamiltonian")
EQL_PENALTIES = ("l1", "l12")


@dataclass
class MLPEdgeConfig:
    """Cranmer et al.'s edge MLP, on the raw features of both particles or on the sender's relative inputs."""

    kind: ClassVar[str] = "mlp"
    hidden: int = setting(300, "hidden width of the edge and node MLPs (paper: 300)")
    layers: int = setting(3, "hidden layers of the edge and node MLPs (paper: 3)")
    inputs: str = setting("raw", "MLP edge inputs: raw (both particles' node features, Cranmer et al.) or sender "
                                 "(the separation, its inverse powers and the sender's m2, q2)", flag="mlp_inputs")

    def __post_init__(self) -> None:
        require_positive(self, "hidden", "layers")
        if self.inputs not in MLP_INPUTS:
            raise unknown_name("MLP edge inputs", self.inputs, MLP_INPUTS)


@dataclass
class EQLEdgeConfig:
    """Equation-Learner edge model on relative inputs (its messages are formulas)."""

    kind: ClassVar[str] = "eql"
    inputs: list[str] | None = setting(None, "comma-separated EQL edge inputs, e.g. dx,dy,r,inv_r,m1,m2 "
                                             "(default: the shared set)")
    layers: int = setting(2, "EQL hidden layers", flag="eql_layers")
    identity: int = setting(16, "identity units per EQL layer", flag="eql_identity")
    product: int = setting(8, "product units per EQL layer", flag="eql_product")
    init: float = setting(1.0, "EQL initialisation width multiplier", flag="eql_init")
    skip: bool = setting(False, "skip connections: every EQL layer after the first also reads the inputs",
                         flag="eql_skip")
    r_min: float = setting(1e-2, "clamp of r inside inverse-power inputs")

    def __post_init__(self) -> None:
        if self.inputs is not None:
            self.inputs = list(self.inputs)
            if not self.inputs:
                raise ConfigError("inputs must name at least one edge input")
        require_positive(self, "layers", "init", "r_min")
        require_finite_nonnegative(self, "identity", "product")


@dataclass
class NodeConfig:
    """The node MLP (force GN) or kinetic-energy MLP (Hamiltonian GN)."""

    hidden: int = setting(300, "hidden width of the node MLP (default: hidden)", flag="node_hidden")
    layers: int = setting(3, "hidden layers of the node MLP (set by layers)", flag="")

    def __post_init__(self) -> None:
        require_positive(self, "hidden", "layers")


@dataclass
class NetworkConfig:
    """The graph network: edge model, node model, variant, aggregation, kind."""

    edge: MLPEdgeConfig | EQLEdgeConfig = field(default_factory=MLPEdgeConfig)
    node: NodeConfig = field(default_factory=NodeConfig)
    variant: str = setting("l1", "standard, bottleneck, l1 or kl")
    message_dim: int | None = setting(None, "message width (default 100; bottleneck and Hamiltonian GNs fix it)")
    aggregation: str = setting("dense", "dense (complete graphs), index_add, scatter_reduce, torch_scatter")
    kind: str = setting("force", "force (messages sum to forces) or hamiltonian (edge model = pair energy, "
                                 "accelerations by autograd)", flag="model")

    def __post_init__(self) -> None:
        check_variant(self.variant)
        if self.kind not in KINDS:
            raise unknown_name("model", self.kind, KINDS)
        if self.aggregation not in AGGREGATIONS:
            raise unknown_name("aggregation", self.aggregation, AGGREGATIONS)
        if self.kind == "hamiltonian" and self.variant not in ("standard", "bottleneck"):
            raise ConfigError(f"the Hamiltonian GN has one scalar edge output (the pair energy): use variant "
                              f"'standard' or 'bottleneck', not {self.variant!r}")
        fixed = self.kind == "hamiltonian" or self.variant == "bottleneck"
        if fixed and self.message_dim is not None:
            raise ConfigError(f"message_dim does not apply to a {self.kind} GN of variant {self.variant!r}: its "
                              "message width is fixed (D for the bottleneck, 1 for the Hamiltonian)")
        if not fixed:
            self.message_dim = 100 if self.message_dim is None else self.message_dim
            require_positive(self, "message_dim")

    @property
    def edge_kind(self) -> str:
        """``mlp`` or ``eql``."""
        return self.edge.kind


@dataclass
class L1Schedule:
    """The L1 message coefficient over training (2024 reproduction), ``t`` = fraction done."""

    start: float = setting(0.01, "L1 coefficient at the start of the schedule (constant value for constant)",
                           flag="l1")
    end: float = setting(0.1, "L1 coefficient at the end (linear) or middle (triangle)", flag="l1_end")
    shape: str = setting("constant", "L1 schedule: constant, linear or triangle", flag="schedule")

    def __post_init__(self) -> None:
        if self.shape not in SCHEDULES:
            raise unknown_name("L1 schedule", self.shape, SCHEDULES)
        require_finite_nonnegative(self, "start", "end")

    def coefficient(self, t: float) -> float:
        """``constant`` = start; ``linear`` = start -> end; ``triangle`` = start -> end at t = 1/2 -> start."""
        t = min(max(t, 0.0), 1.0)
        if self.shape == "constant":
            return self.start
        if self.shape == "linear":
            return self.start + (self.end - self.start) * t
        return self.start + (self.end - self.start) * (1.0 - abs(2.0 * t - 1.0))


@dataclass
class EQLPhases:
    """The EQL's three phases: warmup, sparsify (L1 or L1/2 on its weights), prune and finetune."""

    l1: float = setting(1e-3, "coefficient of the penalty on EQL weights (phase 2 only)", flag="eql_l1")
    warmup: float = setting(0.25, "fraction of steps before the EQL weight penalty starts (phase 1)")
    prune_at: float = setting(0.9, "fraction of steps at which small EQL weights are pruned (phase 3 after)")
    prune_threshold: float = setting(1e-2, "EQL weights with |w| below this are zeroed and frozen")
    penalty: str = setting("l1", "the EQL weight penalty: l1, or l12 (smoothed L1/2, as in DeepSymReg)",
                           flag="eql_penalty")

    def __post_init__(self) -> None:
        if self.penalty not in EQL_PENALTIES:
            raise unknown_name("EQL weight penalty", self.penalty, EQL_PENALTIES)
        if not 0 <= self.warmup <= self.prune_at <= 1:
            raise ConfigError(f"need 0 <= warmup ({self.warmup}) <= prune_at ({self.prune_at}) <= 1")
        require_finite_nonnegative(self, "l1", "prune_threshold")


@dataclass
class ScheduleConfig:
    """Optimiser, budget and regularisers (Adam, OneCycleLR)."""

    batch_size: int = setting(64, "graphs per step (paper: 64)")
    epochs: int = setting(30, "passes over the training set (used when steps is not set)")
    steps: int | None = setting(None, "total optimiser steps; overrides epochs when set")
    max_lr: float = setting(1e-3, "OneCycleLR peak learning rate")
    final_div: float = setting(1e5, "OneCycleLR final_div_factor")
    weight_decay: float = setting(1e-8, "Adam weight decay")
    augment: float = setting(3.0, "std of the random translation added per graph (0 disables)")
    grad_clip: float = setting(0.0, "clip the global gradient norm to this value (0 disables)")
    l1: L1Schedule | None = None
    kl: float | None = setting(None, "weight of the KL term for the kl variant (default 1)")
    phases: EQLPhases | None = None

    def __post_init__(self) -> None:
        require_positive(self, "batch_size", "max_lr", "final_div")
        if self.steps is None and self.epochs <= 0:
            raise ConfigError(f"epochs must be positive, got {self.epochs}")
        if self.steps is not None and self.steps <= 0:
            raise ConfigError(f"steps must be positive, got {self.steps}")
        require_finite_nonnegative(self, "weight_decay", "augment", "grad_clip")
        if self.kl is not None:
            require_finite_nonnegative(self, "kl")

    def total_steps(self, n_graphs: int) -> int:
        """Optimiser steps of the whole run for a training set of ``n_graphs``."""
        return self.steps if self.steps is not None else self.epochs * self.steps_per_epoch(n_graphs)

    def steps_per_epoch(self, n_graphs: int) -> int:
        return max(1, math.ceil(n_graphs / self.batch_size))


@dataclass
class TrainConfig:
    """Settings of one training run, one section per part (see module docstring)."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    seed: int = setting(0, "seeds initial weights, batch order, augmentation and KL noise")
    starts: StartsConfig = field(default_factory=StartsConfig)
    properties: PropertiesConfig = field(default_factory=PropertiesConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        """Fill the sub-sections that apply with their defaults; refuse those that do not."""
        network, schedule = self.network, self.schedule
        if self.rollout.window and self.loss.weighting != "absolute":
            raise ConfigError("the rollout loss fits positions: its errors cannot be weighed by the accelerations "
                              "(leave loss_weighting at absolute)")
        if self.starts.count > 1 and network.kind == "hamiltonian":
            raise ConfigError("several starts (starts > 1) need a force GN; the Hamiltonian GN trains one start")
        if self.starts.count > 1 and schedule.phases is not None and self.starts.select_at >= schedule.phases.prune_at:
            raise ConfigError(f"select_at ({self.starts.select_at}) must come before prune_at "
                              f"({schedule.phases.prune_at}): one start is kept before the EQL is pruned")
        applies = {"l1": network.variant == "l1", "kl": network.variant == "kl",
                   "phases": network.edge_kind == "eql"}
        why = {"l1": f"variant is {network.variant!r}, not 'l1'", "kl": f"variant is {network.variant!r}, not 'kl'",
               "phases": f"the edge model is {network.edge_kind!r}, not 'eql'"}
        fill = {"l1": L1Schedule, "kl": lambda: 1.0, "phases": EQLPhases}
        for name, wanted in applies.items():
            present = getattr(schedule, name) is not None
            if present and not wanted:
                raise ConfigError(f"schedule.{name} does not apply: {why[name]}")
            if wanted and not present:
                setattr(schedule, name, fill[name]())

    # -- reading and writing -------------------------------------------------------------

    def to_dict(self) -> dict:
        """The nested form saved in checkpoints, ``run.json`` and ``result.json``."""
        data = dataclasses.asdict(self)
        data["network"]["edge"]["kind"] = self.network.edge_kind
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Read :meth:`to_dict`'s form, or the flat form that earlier versions saved."""
        if not isinstance(data, dict):
            raise ConfigError(f"a saved training config is a mapping, got {type(data).__name__}")
        if "network" not in data:  # flat (version 1): every field present, the inapplicable at defaults
            return cls.from_flags(defaults={k: v for k, v in data.items() if k in FLAGS})
        try:
            network = dict(data["network"])
            edge = dict(network.pop("edge"))
            edge_cls = EQLEdgeConfig if edge.pop("kind") == "eql" else MLPEdgeConfig
            schedule = dict(data["schedule"])
            for name, sub in (("l1", L1Schedule), ("phases", EQLPhases)):
                schedule[name] = None if schedule.get(name) is None else sub(**schedule[name])
            return cls(NetworkConfig(edge=edge_cls(**edge), node=NodeConfig(**network.pop("node")), **network),
                       ScheduleConfig(**schedule), RuntimeConfig(**data["runtime"]), data["seed"],
                       **{name: section(**data.get(name, {})) for name, section in _SECTIONS.items()})
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"saved training config is malformed ({type(exc).__name__}: {exc}); "
                              "it was not written by this version of eqlgn") from None

    @classmethod
    def from_flags(cls, defaults: dict | None = None, **flags: Any) -> TrainConfig:
        """The config that flat flags describe (see :data:`FLAGS`).

        ``flags`` are what the user set: one that does not apply to the chosen parts is a
        ConfigError. ``defaults`` (a recipe of :mod:`eqlgn.recipes`, or a saved flat
        config) fill what the user left out; those that do not apply are dropped.
        """
        unknown = sorted(set(flags) - set(FLAGS))
        if unknown:
            raise ConfigError(f"unknown training setting(s) {unknown}; known: {', '.join(FLAGS)}")
        given = {k: v for k, v in flags.items() if v is not None or k == "steps"}
        values = {k: v for k, v in (defaults or {}).items() if k in FLAGS} | given
        edge = values.get("edge", "mlp")
        if edge not in EDGES:
            raise unknown_name("edge model", edge, EDGES)
        edge_cls = EQLEdgeConfig if edge == "eql" else MLPEdgeConfig
        kind = values.get("model", "force")
        hidden, layers = values.get("hidden", 300), values.get("layers", 3)
        node = NodeConfig(values.get("node_hidden") or hidden, layers if kind == "force" else 2)
        edge_values = _section_values(edge_cls, values)
        if edge == "mlp":
            edge_values.update(hidden=hidden, layers=layers)
        network_values = _section_values(NetworkConfig, values)
        fixed_width = kind == "hamiltonian" or values.get("variant", "l1") == "bottleneck"
        if fixed_width:
            network_values.pop("message_dim", None)
        network = NetworkConfig(edge_cls(**edge_values), node, **network_values)
        variant = network.variant
        schedule = ScheduleConfig(**_section_values(ScheduleConfig, values))
        schedule.l1 = L1Schedule(**_section_values(L1Schedule, values)) if variant == "l1" else None
        schedule.kl = schedule.kl if variant == "kl" else None
        schedule.phases = EQLPhases(**_section_values(EQLPhases, values)) if edge == "eql" else None
        sections = {name: section(**_section_values(section, given if name == "starts" and kind == "hamiltonian"
                                                    else values))  # the recipe's starts are for force GNs
                    for name, section in _SECTIONS.items()}
        config = cls(network, schedule, RuntimeConfig(**_section_values(RuntimeConfig, values)), values.get("seed", 0),
                     **sections)
        stray = sorted(set(given) - _applicable_flags(config))
        if stray:
            raise ConfigError(f"setting(s) {', '.join(stray)} do not apply to an {edge} {kind} GN of variant "
                              f"{variant!r}; leave them out (EQL settings need --edge eql, L1 settings variant l1, "
                              "kl variant kl; message_dim has no effect on bottleneck and Hamiltonian GNs)")
        return config

    # -- conveniences used across the library --------------------------------------------

    @property
    def edge(self) -> str:
        """``mlp`` or ``eql``."""
        return self.network.edge_kind

    @property
    def variant(self) -> str:
        return self.network.variant

    def total_steps(self, n_graphs: int) -> int:
        return self.schedule.total_steps(n_graphs)


_SECTIONS: dict[str, type] = {"starts": StartsConfig, "properties": PropertiesConfig, "rollout": RolloutConfig,
                              "loss": LossConfig}
"""The top-level sections after the seed, each read and written the same way."""


def _flag_name(f: dataclasses.Field) -> str:
    flag = f.metadata.get("flag")
    return f.name if flag is None else flag


def _applicable_flags(config: TrainConfig) -> set[str]:
    """The flags that set something in ``config``: those of its sections, less the unset optional ones."""
    flags = {"edge", "hidden", "layers"}  # the two size flags reach the edge or node MLP of every config
    schedule = config.schedule
    for section in (config, config.network, config.network.edge, config.network.node, schedule, schedule.l1,
                    schedule.phases, config.runtime, *(getattr(config, name) for name in _SECTIONS)):
        for f in dataclasses.fields(section) if section is not None else ():
            optional = f.name in ("kl", "message_dim") and getattr(section, f.name) is None
            if "help" in f.metadata and _flag_name(f) and not optional:
                flags.add(_flag_name(f))
    return flags


def _section_values(cls, values: dict) -> dict:
    """The fields of section ``cls`` that the flat ``values`` set (by flag name)."""
    out = {}
    for f in dataclasses.fields(cls):
        flag = _flag_name(f)
        if "help" in f.metadata and flag and flag in values and flag not in ("hidden", "layers"):
            out[f.name] = values[flag]
    return out


@dataclass(frozen=True)
class Flag:
    """One flat setting: its name, Python type, help text and default."""

    name: str
    type: type
    help: str
    default: Any


def _collect_flags() -> dict[str, Flag]:
    """Every flag, typed and documented by the config field that holds it."""
    import typing

    found = {"edge": Flag("edge", str, "edge model: mlp (Cranmer et al.) or eql (Equation Learner)", "mlp")}
    for cls in (MLPEdgeConfig, EQLEdgeConfig, NodeConfig, NetworkConfig, L1Schedule, EQLPhases, ScheduleConfig,
                RuntimeConfig, TrainConfig, *_SECTIONS.values()):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            flag = _flag_name(f)
            if "help" in f.metadata and flag and flag not in found:
                kind = hints[f.name]
                base = next((t for t in typing.get_args(kind) if t is not type(None)), kind)
                found[flag] = Flag(flag, base, f.metadata["help"], f.default)
    return found


FLAGS: dict[str, Flag] = _collect_flags()
"""Flat flag name -> :class:`Flag` (the CLI makes one ``--flag`` of each)."""
