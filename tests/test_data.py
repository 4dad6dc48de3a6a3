"""Dataset contract: round trip, validation errors, pruning, splits, batches."""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from eqlgn import DatasetError, DatasetMeta, ParticleDataset, load_dataset
from eqlgn.batching import batches


def test_round_trip_preserves_everything(small_spring, tmp_path):
    path = small_spring.save(tmp_path / "d.npz")
    back = load_dataset(path)
    for name in ("nodes", "accelerations", "sim_ids", "times"):
        np.testing.assert_array_equal(getattr(back, name), getattr(small_spring, name))
    assert asdict(back.meta) == asdict(small_spring.meta)
    assert not list(tmp_path.glob("*.tmp"))  # the atomic writer left no temporary file


def _write(path, **arrays):
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _arrays(data: ParticleDataset, **changes):
    arrays = {"nodes": data.nodes, "accelerations": data.accelerations, "sim_ids": data.sim_ids,
              "times": data.times, "meta": np.array(json.dumps(asdict(data.meta)))}
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


def _meta(data, **changes):
    return np.array(json.dumps(asdict(replace(data.meta, **changes))))


@pytest.mark.parametrize(
    "change, match",
    [
        ({"accelerations": None}, r"missing array\(s\) \['accelerations'\]"),
        ({"meta": None}, r"missing array\(s\) \['meta'\]"),
        ({"nodes": "bad-shape"}, r"array 'nodes' has shape \(2000, 4, 5\), expected \(2000, 4, 6\)"),
        ({"accelerations": "nan"}, r"array 'accelerations' holds 1 NaN/inf"),
        ({"nodes": "inf"}, r"array 'nodes' holds 1 NaN/inf"),
        ({"meta": {"law": "gravity"}}, "unknown force law 'gravity'"),
        ({"meta": {"format_version": 99}}, "format version 99 is newer"),
        ({"meta": {"dim": 3}}, r"array 'nodes' has shape .* expected \(2000, 4, 8\)"),
        ({"meta": "not json"}, "metadata is not valid JSON"),
        ({"sim_ids": "float"}, "must hold integers"),
    ],
)
def test_bad_files_name_the_problem(small_spring, tmp_path, change, match):
    (key, value), = change.items()
    if value == "bad-shape":
        value = small_spring.nodes[..., :5]
    elif value == "nan":
        value = small_spring.accelerations.copy()
        value[3, 1, 0] = np.nan
    elif value == "inf":
        value = small_spring.nodes.copy()
        value[0, 0, 0] = np.inf
    elif value == "float":
        value = small_spring.sim_ids.astype(float)
    elif value == "not json":
        value = np.array("{law: spring")
    elif isinstance(value, dict):
        value = _meta(small_spring, **value)
    path = tmp_path / "bad.npz"
    _write(path, **_arrays(small_spring, **{key: value}))
    with pytest.raises(DatasetError, match=match):
        load_dataset(path)


def test_truncated_and_foreign_files_are_reported(small_spring, tmp_path):
    path = small_spring.save(tmp_path / "d.npz")
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetError, match="truncated or not a dataset"):
        load_dataset(path)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(DatasetError, match="cannot read as .npz"):
        load_dataset(text)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "missing.npz")
    assert zipfile.is_zipfile(small_spring.save(tmp_path / "ok.npz"))


def _planted(n_snapshots=400, outliers=(5, 77, 301)):
    """Snapshots whose largest |a| is uniform on [1, 2] (no IQR outlier) plus planted spikes."""
    rng = np.random.default_rng(0)
    acc = np.zeros((n_snapshots, 3, 2), dtype=np.float32)
    acc[:, 0, 0] = rng.uniform(1.0, 2.0, size=n_snapshots)
    acc[:, 1:, :] = rng.uniform(-0.5, 0.5, size=(n_snapshots, 2, 2))
    acc[list(outliers), 1, 1] = 500.0
    nodes = rng.normal(size=(n_snapshots, 3, 6)).astype(np.float32)
    nodes[..., 5] = 1.0
    meta = DatasetMeta(law="spring", dim=2, n_particles=3)
    times = np.arange(n_snapshots)  # remembers each snapshot's original index
    return ParticleDataset(nodes, acc, np.arange(n_snapshots) // 10, times, meta)


def test_pruning_removes_exactly_the_planted_outliers():
    data = _planted()
    pruned, dropped = data.prune_outliers()
    assert dropped == 3 and len(pruned) == 397
    assert pruned.meta.pruned == 3
    assert set(range(400)) - set(pruned.times.astype(int).tolist()) == {5, 77, 301}
    again, dropped_again = pruned.prune_outliers()
    assert dropped_again == 0 and again.meta.pruned == 3


def test_split_by_simulation_has_no_overlap(small_spring):
    train, val, test = small_spring.split((0.6, 0.2, 0.2), seed=1)
    ids = [set(np.unique(s.sim_ids)) for s in (train, val, test)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert len(train) + len(val) + len(test) == len(small_spring)
    assert [len(i) for i in ids] == [12, 4, 4]
    with pytest.raises(DatasetError, match="summing to 1"):
        small_spring.split((0.5, 0.2, 0.2))


def test_batches_cover_every_graph_once_and_augment_shifts_positions(small_spring):
    seen = []
    for batch in batches(small_spring, batch_size=64, shuffle=True, seed=3):
        assert isinstance(batch.nodes, torch.Tensor) and batch.nodes.shape[1:] == (4, 6)
        seen.append(batch.nodes)
    nodes = torch.cat(seen)
    assert nodes.shape[0] == len(small_spring)
    assert sorted(nodes[:, 0, 0].tolist()) == sorted(small_spring.nodes[:, 0, 0].tolist())
    batch = next(batches(small_spring, 8, shuffle=False, augment=3.0))
    plain = torch.as_tensor(small_spring.nodes[:8])
    shift = batch.nodes[..., :2] - plain[..., :2]
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-5)  # one shift per graph
    assert shift.abs().max() > 0.1
    assert torch.equal(batch.nodes[..., 2:], plain[..., 2:])
    with pytest.raises(DatasetError, match="batch_size must be positive"):
        next(batches(small_spring, 0))


def test_constructor_validates_masses():
    data = _planted(20, outliers=())
    nodes = data.nodes.copy()
    nodes[0, 0, 5] = -1.0
    with pytest.raises(DatasetError, match="masses .* must be positive"):
        ParticleDataset(nodes, data.accelerations, data.sim_ids, data.times, data.meta)


@pytest.mark.parametrize("dim", [2, 3])
def test_node_layout_is_the_one_source_of_the_feature_columns(dim):
    import eqlgn
    from eqlgn.layout import NodeLayout

    layout = NodeLayout(dim)
    data = eqlgn.simulate("charge", dim, 3, 2, seed=0, steps=10, progress=False)
    assert data.meta.feature_names == layout.names() and data.nodes.shape[-1] == layout.width
    rebuilt = layout.assemble(data.positions, data.velocities, data.charges, data.masses)
    np.testing.assert_array_equal(rebuilt, data.nodes)
    assert [layout.column(n) for n in layout.names()] == list(range(layout.width))
    assert layout.column("q") == layout.charge and layout.column("m") == layout.mass
    with pytest.raises(ValueError, match="unknown node feature"):
        layout.column("vz" if dim == 2 else "w")
