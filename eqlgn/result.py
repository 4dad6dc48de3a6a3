"""The result of ``eqlgn run``: a typed record, written to and read from ``result.json``.

:class:`RunResult` is what :func:`eqlgn.run` returns and what ``eqlgn compare``, the
experiment tables and the docs read back (:meth:`RunResult.load`). Fields are described in
docs/architecture.md; the verdict (``judge``) and the composed model (``composed``) stay
JSON mappings because their keys depend on the target and the engine. Files written by
earlier versions (no ``version`` field, a flat training config) load too.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ._io import atomic_write_json
from .config import TrainConfig
from .errors import EqlgnError
from .multistart import Selection
from .routes import Route
from .simulator import SimulationConfig

RESULT_FILE = "result.json"
RESULT_VERSION = 2
REQUIRED_KEYS = ("law", "dim", "n_particles", "method", "seed", "equations", "judge", "seconds")


@dataclass
class Timings:
    """Seconds spent per stage of a run."""

    simulate: float = 0.0
    train: float = 0.0
    extract: float = 0.0
    compose: float = 0.0
    total: float = 0.0
    symbolic: float = 0.0  # the symbolic network: the formula in place of the edge model, fine-tuned

    def reread(self, before: Timings) -> Timings:
        """Timings of a finished run read again: its original simulation and training, the new extraction."""
        simulate, train, rest = before.simulate, before.train, self.extract + self.compose + self.symbolic
        return Timings(simulate, train, self.extract, self.compose, simulate + train + rest, self.symbolic)


@dataclass
class RunSettings:
    """How the run was made: data, training config, SR and composition settings."""

    train: TrainConfig
    simulation: SimulationConfig | None = None
    prune_outliers: bool = True
    sr: str | None = None
    sr_budget: int = 100
    compose: bool = False
    data_source: dict | None = None  # users' data: {"paths", "derivative", "window"} (DataSource.to_dict)

    def to_dict(self) -> dict:
        return {"simulation": None if self.simulation is None else dataclasses.asdict(self.simulation),
                "train": self.train.to_dict(), "prune_outliers": self.prune_outliers, "sr": self.sr,
                "sr_budget": self.sr_budget, "compose": self.compose, "data_source": self.data_source}

    @classmethod
    def from_dict(cls, data: dict) -> RunSettings:
        simulation = data.get("simulation")
        return cls(TrainConfig.from_dict(data["train"]), None if simulation is None else SimulationConfig(**simulation),
                   data.get("prune_outliers", True), data.get("sr"), data.get("sr_budget", 100),
                   data.get("compose", False), data.get("data_source"))


@dataclass
class RunResult:
    """One run's outcome (see module docstring and docs/architecture.md)."""

    law: str | None
    dim: int
    n_particles: int
    edge_model: str
    method: str
    seed: int
    equations: list[str]
    judge: dict | None
    seconds: Timings
    config: RunSettings | None  # None in hand-made records without settings
    target: str = "force"
    equations_weights: list[str] | None = None
    message_offsets: list[float] | None = None  # constant terms dropped from the equations (targets.message_offset)
    significant_components: list[int] = field(default_factory=list)
    message_std: list[float] = field(default_factory=list)
    linear_fit_r2: float | None = None
    sparsity_ratio: float | None = None
    complexity: int | None = None
    test_loss: float | None = None
    composed: dict | None = None
    symbolic_network: dict | None = None
    device: str = "cpu"
    data: dict | None = None
    reread: bool = False
    network_judge: dict | None = None
    selection: Selection | None = None  # several starts: the one kept (eqlgn.multistart)
    version: int = RESULT_VERSION

    @property
    def route(self) -> Route:
        """How the law was read (:class:`eqlgn.routes.Route`)."""
        if self.config is None:
            return Route(self.edge_model, engine=None if self.method in ("eql", "none") else self.method)
        return Route.of(self.config.train, self.config.sr)

    @property
    def status(self) -> str:
        """``passed``, ``borderline``, ``failed`` or ``unjudged`` (no law to judge against)."""
        if self.judge is None:
            return "unjudged"
        return self.judge.get("status") or ("passed" if self.judge.get("passed") else "failed")

    def to_dict(self) -> dict:
        record = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        record["seconds"] = dataclasses.asdict(self.seconds)
        record["config"] = None if self.config is None else self.config.to_dict()
        record["selection"] = None if self.selection is None else dataclasses.asdict(self.selection)
        for optional in ("reread", "network_judge", "selection", "message_offsets"):  # written only when set, as before
            if not record[optional]:
                del record[optional]
        return record

    @classmethod
    def from_dict(cls, record: dict, source: str = "result") -> RunResult:
        """Read a record (any version); EqlgnError naming ``source`` when it is not a run result."""
        missing = [k for k in REQUIRED_KEYS if not isinstance(record, dict) or k not in record]
        if missing:
            raise EqlgnError(f"{source} is not an eqlgn result (missing {', '.join(missing)})")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in record.items() if k in known}
        values["seconds"] = Timings(**{k: v for k, v in record["seconds"].items()
                                       if k in {f.name for f in dataclasses.fields(Timings)}})
        if values.get("selection") is not None:
            values["selection"] = Selection(**values["selection"])
        settings = record.get("config")
        values["config"] = None if settings is None else RunSettings.from_dict(settings)
        if "edge_model" not in values:
            values["edge_model"] = "mlp" if values["config"] is None else values["config"].train.edge
        return cls(**values)

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (a directory gets ``result.json``)."""
        path = Path(path)
        return atomic_write_json(path / RESULT_FILE if path.is_dir() else path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunResult:
        """Read ``result.json`` (or a directory holding one)."""
        path = Path(path)
        path = path / RESULT_FILE if path.is_dir() else path
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EqlgnError(f"{str(path)!r} is not a readable JSON result file ({exc})") from None
        return cls.from_dict(record, repr(str(path)))

    def summary(self) -> str:
        """The end-of-run summary printed by ``eqlgn run``: equations and the verdict."""
        lines = [f"{self.law or 'data of unknown law'} {self.dim}D n={self.n_particles} edge={self.edge_model} "
                 f"seed={self.seed}: test MAE {self.test_loss:.4g}, {self.seconds.total:.0f} s on {self.device}",
                 "messages: components {}, linear-fit R^2 {}, sparsity ratio {:.3g}".format(
                     self.significant_components,
                     "- (law unknown)" if self.linear_fit_r2 is None else f"{self.linear_fit_r2:.4f}",
                     self.sparsity_ratio)]
        if self.selection is not None:
            lines.append(self.selection.describe())
        learned = (self.data or {}).get("learned")
        if learned:
            names = " and ".join({"m": "masses", "q": "charges"}[p] for p in learned["properties"])
            kind = "species" if learned["identity"] == "species" else "particles"
            lines.append(f"learned {names} of {learned['identities']} {kind} with the law "
                         f"(symbols m1, m2, q1, q2 are the learned values): {learned['file']}")
            untrained, poor = learned.get("untrained", 0), learned.get("poorly_fixed", {"count": 0})
            if untrained or poor["count"]:
                lines.append(f"  not trained (their initial values): {untrained}; poorly fixed (fewer than "
                             f"{poor.get('below_snapshots')} training snapshots): {poor['count']}; see the snapshots "
                             f"column")
        lines += [f"  message {c} = {e}" for c, e in zip(self.significant_components, self.equations)]
        if self.message_offsets:
            lines.append(f"  constant terms left out of these messages: {self.message_offsets} (each receiver sums "
                         f"n - 1 messages, so the node model's bias takes a constant up; it is not part of the law)")
        verdict = self.judge
        if self.equations_weights and self.equations_weights != self.equations:
            lines.append("  as read from the weights, before the sparse refit:")
            lines.extend(f"    {e[:300]}{'…' if len(e) > 300 else ''}" for e in self.equations_weights)
            if verdict is not None and "weights_form" in verdict:
                lines.append(f"    (judge of this form: {verdict['weights_form']['status']}, "
                             f"R^2 {[round(v, 5) for v in verdict['weights_form']['ood_r2']]})")
        if self.symbolic_network:
            s = self.symbolic_network
            tuned = ("diverged" if s["ratio"] is None else
                     f"{s['test_loss_finetuned']:.4g} ({s['ratio']:.2f}x the GN's {s['gn_test_loss']:.4g})")
            read = "not finite" if s["test_loss_as_read"] is None else f"{s['test_loss_as_read']:.4g}"
            lines.append(f"the formula as the edge model: test MAE {read} as read, "
                         f"after fine-tuning its constants and the node model {tuned}")
        if self.composed:
            c = self.composed
            lines.append(f"composed symbolic model ({c['engine']} node model): test MAE {c['test_loss']:.4g}, "
                         f"after refitting constants {c['test_loss_refit']:.4g} (GN {c['gn_test_loss']:.4g})")
        if verdict is not None:
            lines.append(f"judge: {verdict_word(verdict)} (scale-free out-of-distribution R^2 "
                         f"{[round(v, 5) for v in verdict['ood_r2']]}, target {_target_text(verdict)}, "
                         f"conditioning {verdict['condition']:.3g}, judge seeds passed {verdict['seeds_passed']}"
                         f"{', unrotated' if verdict.get('unrotated') else ''})")
        return "\n".join(lines)


def verdict_word(verdict: dict) -> str:
    """``RECOVERED``, ``BORDERLINE`` (the verdict flips with the judge's sampling seed) or ``NOT recovered``."""
    return {"passed": "RECOVERED", "borderline": "BORDERLINE"}.get(verdict.get("status"), "NOT recovered")


def _target_text(verdict: dict) -> str:
    if verdict.get("target") == "potential":
        return "-dU/dx1 = F"
    factor = verdict.get("receiver_factor", "1")
    law = "F" if factor == "1" else f"F/({factor})"
    return law + (f", softened r+{verdict['softening']:g}" if verdict.get("softening") else "")
