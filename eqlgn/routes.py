"""Route names: how a law is read, in one vocabulary for runs, tables and experiments.

* ``eql`` — EQL edge model, equations from the weights (``recommended_config("eql")``);
* ``mlp-VARIANT[-SCHEDULE][+ENGINE]`` — MLP edge model of that variant (``standard``,
  ``bottleneck``, ``kl``, ``l1``; ``l1`` takes a schedule ``constant``, ``linear`` or
  ``triangle``), its messages fitted by symbolic regression when ``+ENGINE`` (``operon``,
  ``pysr``) is given. Example: ``mlp-l1-linear+operon``;
* either with ``-hamiltonian`` before the engine for a Hamiltonian GN (``eql-hamiltonian``).

:meth:`Route.parse` reads a name, :meth:`Route.of` names a trained config, :meth:`Route.config`
gives the config a route trains with, :attr:`Route.gn` labels the network alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import SCHEDULES, TrainConfig
from .errors import ConfigError
from .models import VARIANTS
from .recipes import recommended_config


@dataclass(frozen=True)
class Route:
    """A route (see module docstring). An EQL route's name leaves out its variant (the recipe's);
    :attr:`gn` names it."""

    edge: str
    variant: str | None = None
    schedule: str | None = None
    engine: str | None = None
    hamiltonian: bool = False

    @property
    def name(self) -> str:
        body = self.edge if self.edge == "eql" else f"mlp-{self.variant}" + (f"-{self.schedule}" if self.schedule
                                                                              else "")
        return body + ("-hamiltonian" if self.hamiltonian else "") + (f"+{self.engine}" if self.engine else "")

    @property
    def gn(self) -> str:
        """The network without the SR engine (``mlp l1-linear``, ``eql bottleneck hamiltonian``)."""
        variant = (self.variant or "") + (f"-{self.schedule}" if self.schedule else "")
        return f"{self.edge} {variant}".strip() + (" hamiltonian" if self.hamiltonian else "")

    @classmethod
    def parse(cls, name: str) -> Route:
        """A route from its name; ConfigError naming the grammar when it is not one."""
        body, _, engine = name.partition("+")
        hamiltonian = body.endswith("-hamiltonian")
        body = body.removesuffix("-hamiltonian")
        if body == "eql":
            return cls("eql", engine=engine or None, hamiltonian=hamiltonian)
        if not body.startswith("mlp-"):
            raise ConfigError(f"route {name!r} is neither 'eql' nor 'mlp-VARIANT[-SCHEDULE][+ENGINE]'")
        variant, _, schedule = body[4:].partition("-")
        if variant not in VARIANTS or (schedule and (variant != "l1" or schedule not in SCHEDULES)):
            raise ConfigError(f"route {name!r}: variant must be one of {VARIANTS} and only l1 takes a "
                              f"schedule ({', '.join(SCHEDULES)})")
        return cls("mlp", variant, schedule or None, engine or None, hamiltonian)

    @classmethod
    def of(cls, config: TrainConfig, engine: str | None = None) -> Route:
        """The route of a trained config (an L1 GN always names its schedule)."""
        network = config.network
        hamiltonian = network.kind == "hamiltonian"
        if network.edge_kind == "eql":
            return cls("eql", network.variant, engine=engine, hamiltonian=hamiltonian)
        schedule = config.schedule.l1.shape if config.schedule.l1 is not None else None
        return cls("mlp", network.variant, schedule, engine, hamiltonian)

    def config(self, seed: int, steps: int | None = None) -> TrainConfig:
        """The training config: the edge model's recommended one with this route's variant/schedule."""
        flags: dict = {"seed": seed}
        if self.variant and self.edge == "mlp":
            flags["variant"] = self.variant
        if self.schedule:
            flags["schedule"] = self.schedule
        if self.hamiltonian:
            flags["model"] = "hamiltonian"
        if steps:
            flags["steps"] = steps
        return recommended_config(self.edge, **flags)
