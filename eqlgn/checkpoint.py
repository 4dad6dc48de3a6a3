"""What a run keeps on disk: the training state (checkpoint) and the trained model.

:class:`TrainingState` is everything the trainer carries from step to step — model,
optimiser, LR scheduler, epoch, step, history — and writes atomically after every epoch
(``checkpoint.pt``, with the config, the data's shape and the RNG state), so that
``resume`` continues exactly. :class:`TrainedModel` is the finished network with its config
and history (``model.pt``). Both store the config in its nested form
(:meth:`~eqlgn.config.TrainConfig.to_dict`) and read the flat form of earlier versions.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ._io import atomic_write, atomic_write_text
from .config import TrainConfig
from .errors import EqlgnError
from .models import GraphNetwork

CHECKPOINT = "checkpoint.pt"
LOG = "train_log.jsonl"


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict:
    """The payload of a checkpoint or model file; one-line errors for missing or foreign files."""
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


def refuse_overwrite(run_dir: str | os.PathLike, resume: bool) -> None:
    """Raise when ``run_dir`` already holds a checkpoint and ``resume`` is off (never overwrite a run)."""
    if not resume and (Path(run_dir) / CHECKPOINT).is_file():
        raise EqlgnError(f"{str(run_dir)!r} already holds a training checkpoint; pass resume=True (--resume) "
                         "to continue it, or choose another output directory")


@dataclass
class DataShape:
    """The shape of the data a network was trained on: spatial dimension, node features, and the
    properties it leaves to learn (``learned`` over ``identities``; :mod:`eqlgn.properties`)."""

    dim: int
    node_features: int
    learned: tuple[str, ...] = ()
    identities: int = 0

    @classmethod
    def of(cls, data) -> DataShape:
        """The shape of a :class:`~eqlgn.data.ParticleDataset`."""
        return cls(data.dim, data.nodes.shape[-1], tuple(data.meta.learned), data.meta.identities)

    def build(self, config: TrainConfig) -> GraphNetwork:
        """The network ``config`` describes for data of this shape (:func:`eqlgn.build.build_model`)."""
        from .build import build_model

        return build_model(config, self.node_features, self.dim, self.learned, self.identities)


@dataclass
class TrainingState:
    """The trainer's state between steps (see module docstring)."""

    model: GraphNetwork
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    config: TrainConfig
    shape: DataShape
    epoch: int = 0
    step: int = 0
    history: list[dict] = field(default_factory=list)

    def save(self, run_dir: Path) -> None:
        """Write ``checkpoint.pt`` and ``train_log.jsonl`` atomically."""
        payload = {"state": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                   "scheduler": self.scheduler.state_dict(), "epoch": self.epoch, "step": self.step,
                   "history": self.history, "config": self.config.to_dict(), "rng": torch.get_rng_state(),
                   "dim": self.shape.dim, "node_features": self.shape.node_features,
                   "learned": list(self.shape.learned), "identities": self.shape.identities}
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        atomic_write(run_dir / CHECKPOINT, lambda handle: handle.write(buffer.getvalue()))
        atomic_write_text(run_dir / LOG, "".join(json.dumps(r) + "\n" for r in self.history))

    def restore(self, run_dir: Path, resume: bool, device) -> None:
        """Load ``run_dir/checkpoint.pt`` when resuming (refusing another config or data); never overwrite one."""
        path = run_dir / CHECKPOINT
        refuse_overwrite(run_dir, resume)
        if not path.is_file():
            return
        saved = load_checkpoint(path, device)
        changed = _changed(TrainConfig.from_dict(saved["config"]), self.config)
        saved_shape = DataShape(saved.get("dim"), saved.get("node_features"), tuple(saved.get("learned", ())),
                                saved.get("identities", 0))
        if changed or saved_shape != self.shape:
            what = ", ".join(changed) or (f"data {saved_shape.dim}D/{saved_shape.node_features} features, learned "
                                          f"{list(saved_shape.learned)} over {saved_shape.identities} identities")
            raise EqlgnError(f"cannot resume {str(run_dir)!r}: its checkpoint was trained with {what}; "
                             "resume with the same settings and data, or choose another output directory")
        self.model.load_state_dict(saved["state"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        self.epoch, self.step, self.history = saved["epoch"], saved["step"], saved["history"]


def _changed(saved: TrainConfig, now: TrainConfig) -> list[str]:
    """Settings that differ between two configs, as ``section.name=saved (now now)``; device and compile may."""
    def leaves(data: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in data.items():
            out.update(leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
        return out

    before, after = leaves(saved.to_dict()), leaves(now.to_dict())
    free = ("runtime.device", "runtime.compile")
    return [f"{k}={before.get(k)!r} (now {after.get(k)!r})" for k in sorted(set(before) | set(after))
            if k not in free and before.get(k) != after.get(k)]


@dataclass
class TrainedModel:
    """A trained network with its config and per-epoch history."""

    model: GraphNetwork
    config: TrainConfig
    history: list[dict[str, float]]
    dim: int
    node_features: int
    learned: tuple[str, ...] = ()
    identities: int = 0

    def save(self, path: str | os.PathLike) -> Path:
        """Write weights + config atomically (``torch.save`` format)."""
        payload = {"state": self.model.state_dict(), "config": self.config.to_dict(),
                   "history": self.history, "dim": self.dim, "node_features": self.node_features,
                   "learned": list(self.learned), "identities": self.identities}
        return atomic_write(path, lambda handle: torch.save(payload, handle))

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> TrainedModel:
        """Read a model written by :meth:`save` (also by earlier versions, whose config was flat)."""
        payload = load_checkpoint(Path(path), device)
        config = TrainConfig.from_dict(payload["config"])
        shape = DataShape(payload["dim"], payload["node_features"], tuple(payload.get("learned", ())),
                          payload.get("identities", 0))
        model = shape.build(config)
        model.load_state_dict(payload["state"])
        return cls(model.to(device).eval(), config, payload["history"], shape.dim, shape.node_features,
                   shape.learned, shape.identities)
