"""Dataset files: ``.npz`` with the four arrays of :class:`~eqlgn.data.ParticleDataset` plus ``meta``.

``meta`` is a JSON string (:class:`~eqlgn.data.DatasetMeta`). Files are written
atomically; reading checks every fault (missing file or arrays, truncated archive,
non-numeric arrays, bad metadata, then the dataset's own contract) and raises a
:class:`~eqlgn.errors.DatasetError` that names the file and the problem.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ._io import atomic_write
from .data import ARRAYS, DatasetMeta, ParticleDataset
from .errors import DatasetError


def save_dataset(data: ParticleDataset, path: str | os.PathLike) -> Path:
    """Write ``data`` to ``path`` (``.npz``) atomically."""
    meta = json.dumps(asdict(data.meta))

    def write(handle):
        np.savez(handle, nodes=data.nodes, accelerations=data.accelerations,
                 sim_ids=data.sim_ids, times=data.times, meta=np.array(meta))

    return atomic_write(path, write)


def load_dataset(path: str | os.PathLike) -> ParticleDataset:
    """Read and validate a dataset file; every fault raises DatasetError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file {str(path)!r} does not exist")
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            missing = [name for name in (*ARRAYS, "meta") if name not in archive.files]
            if missing:
                raise DatasetError(
                    f"{path}: missing array(s) {missing}; is this an eqlgn dataset? "
                    f"(it holds {sorted(archive.files)})"
                )
            arrays = {name: archive[name] for name in ARRAYS}
            raw_meta = str(archive["meta"])
    except DatasetError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise DatasetError(
            f"{path}: cannot read as .npz ({type(exc).__name__}: {exc}); the file is "
            "truncated or not a dataset: re-create it"
        ) from exc
    try:
        meta = DatasetMeta.from_dict(json.loads(raw_meta))
    except (json.JSONDecodeError, TypeError) as exc:
        raise DatasetError(f"{path}: metadata is not valid JSON ({exc})") from exc
    for name in ("nodes", "accelerations", "times"):
        if not np.issubdtype(arrays[name].dtype, np.number):
            raise DatasetError(f"{path}: array {name!r} is not numeric ({arrays[name].dtype})")
    if not np.issubdtype(arrays["sim_ids"].dtype, np.integer):
        raise DatasetError(f"{path}: array 'sim_ids' must hold integers, not {arrays['sim_ids'].dtype}")
    try:
        return ParticleDataset(meta=meta, **arrays)
    except DatasetError as exc:
        raise DatasetError(f"{path}: {exc}") from None
