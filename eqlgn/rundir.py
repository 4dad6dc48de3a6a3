"""The run directory: one format that every verb reads and writes.

``eqlgn train``, ``eqlgn run`` (and their ``--resume``), ``eqlgn analyze`` and ``eqlgn
compare`` share it:

* ``run.json`` — the :class:`RunRecord` (format :data:`RUN_FORMAT`): training config,
  where the data came from (simulation config or data file), outlier pruning, cache, the
  seed of the 80/10/10 split, status (``training`` -> ``trained`` -> ``finished``), GN test
  loss and seconds;
* ``checkpoint.pt`` and ``train_log.jsonl`` — while and after training (resumable);
* ``model.pt`` — the trained network (:class:`eqlgn.checkpoint.TrainedModel`);
* ``result.json`` — ``eqlgn run``'s :class:`eqlgn.result.RunResult` (and ``sr_fits.json``
  for SR routes);
* ``analysis.json`` and figures — ``eqlgn analyze``.

Directories of earlier versions load: a ``run.json`` without a version (``eqlgn train``,
flat training config) and a directory of ``eqlgn run`` that has only ``result.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ._io import atomic_write_json
from .checkpoint import TrainedModel
from .config import TrainConfig
from .data import ParticleDataset
from .errors import EqlgnError
from .result import RESULT_FILE, RunResult
from .simulator import SimulationConfig
from .sources import DEFAULT_CACHE, DataSource, prepare_data

RUN_FORMAT = 2
RUN_FILE = "run.json"
MODEL_FILE = "model.pt"
ANALYSIS_FILE = "analysis.json"
STATUSES = ("training", "trained", "finished")


@dataclass
class RunRecord:
    """What ``run.json`` holds (see module docstring)."""

    train: TrainConfig
    simulation: SimulationConfig | None = None
    data_source: DataSource | None = None
    prune_outliers: bool = False
    cache_dir: str | None = None
    split_seed: int = 0
    law: str | None = None
    status: str = "training"
    test_loss: float | None = None
    seconds: float | None = None
    version: int = RUN_FORMAT

    def to_dict(self) -> dict:
        return {"version": self.version, "status": self.status, "law": self.law,
                "simulation": None if self.simulation is None else dataclasses.asdict(self.simulation),
                "data_source": None if self.data_source is None else self.data_source.to_dict(),
                "train": self.train.to_dict(), "prune_outliers": self.prune_outliers, "cache_dir": self.cache_dir,
                "split_seed": self.split_seed, "test_loss": self.test_loss, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict) -> RunRecord:
        """Read format 2, or format 1 (no version; the split seed was the training seed)."""
        train = TrainConfig.from_dict(data["train"])
        simulation = data.get("simulation")
        source = data.get("data_source")
        return cls(train, None if simulation is None else SimulationConfig(**simulation),
                   None if source is None else DataSource.from_dict(source), data.get("prune_outliers", False),
                   data.get("cache_dir"), data.get("split_seed", train.seed),
                   data.get("law", None if simulation is None else simulation.get("law")),
                   data.get("status", "trained"), data.get("test_loss"), data.get("seconds"))

    @classmethod
    def from_result(cls, result: RunResult) -> RunRecord:
        """The record of an ``eqlgn run`` directory of an earlier version (only ``result.json``)."""
        settings = result.config
        return cls(settings.train, settings.simulation, None if settings.data_source is None
                   else DataSource.from_dict(settings.data_source), settings.prune_outliers, DEFAULT_CACHE, result.seed,
                   result.law, "finished", result.test_loss, result.seconds.total)


class RunDirectory:
    """A run directory on disk (see module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def write(self, record: RunRecord) -> None:
        atomic_write_json(self.file(RUN_FILE), record.to_dict())

    def read(self) -> RunRecord:
        """The run's record; a one-line error when this is not a run directory."""
        run_file, result_file = self.file(RUN_FILE), self.file(RESULT_FILE)
        if run_file.is_file():
            data = json.loads(run_file.read_text())
            version = data.get("version", 1)
            if version > RUN_FORMAT:
                raise EqlgnError(f"run {str(self.path)!r} has format {version}, newer than this eqlgn's "
                                 f"({RUN_FORMAT}); upgrade eqlgn to read it")
            return RunRecord.from_dict(data)
        if result_file.is_file():
            return RunRecord.from_result(RunResult.load(result_file))
        raise EqlgnError(f"{str(self.path)!r} is not a run directory (no {RUN_FILE}); run 'eqlgn train' or "
                         "'eqlgn run' first")

    def trained(self, device: str = "cpu") -> TrainedModel:
        """The trained network (``model.pt``)."""
        if not self.file(MODEL_FILE).is_file():
            raise EqlgnError(f"run {str(self.path)!r} has no {MODEL_FILE}: training did not finish; "
                             "rerun the same command with --resume")
        return TrainedModel.load(self.file(MODEL_FILE), device)

    def model_and_splits(self, data: ParticleDataset | None = None, device: str = "cpu"):
        """The trained network and its (train, validation, test) splits as extraction reads them: learned
        particle properties filled in (:func:`eqlgn.properties.bake`)."""
        from .properties import bake

        network, splits = bake(self.trained(device).model, *self.splits(self.read(), data))
        return network, tuple(splits)

    def splits(self, record: RunRecord, data: ParticleDataset | None = None, progress: bool | None = False
               ) -> tuple[ParticleDataset, ParticleDataset, ParticleDataset]:
        """The run's train/validation/test splits, rebuilt from its record (or from ``data`` given in memory)."""
        if data is None and record.data_source is not None:
            data = record.data_source.load(record.law)
        if data is None and record.simulation is None:
            raise EqlgnError(f"run {str(self.path)!r} trained on a dataset passed in memory; pass the same "
                             "dataset (analyze_run(..., data=DATASET))")
        return prepare_data(record.simulation, record.cache_dir, record.prune_outliers, record.split_seed,
                            progress, data=data)
