"""Training on positions (eqlgn.rollout): the rollout residual, its windows, and training with it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from eqlgn import recommended_config
from eqlgn.build import build_model
from eqlgn.config import RolloutConfig, TrainConfig
from eqlgn.errors import ConfigError, DatasetError
from eqlgn.multistart import start_seed
from eqlgn.rollout import runs, segment_length, segment_starts, windows
from eqlgn.train import fit
from eqlgn.trajectories import add_noise


def truth_in_windows(data, window: int) -> torch.Tensor:
    """The dataset's accelerations at every segment's inner snapshots, in the order of ``windows``."""
    size = segment_length(window)
    inner = [data.accelerations[rows[s + 1:s + size - 1]] for rows, _ in runs(data)
             for s in segment_starts(len(rows), window)]
    return torch.as_tensor(np.stack(inner)).flatten(0, 1)


def residual(data, window: int, reference=None) -> float:
    """Mean rollout residual of the true (``reference``'s) accelerations on ``data``'s positions."""
    batch = windows(data, window)
    return float(batch.error(truth_in_windows(reference or data, window), batch.targets).mean())


def test_a_window_of_three_is_the_central_difference_loss(small_spring):
    batch = windows(small_spring, 3)
    predicted = torch.randn(batch.inputs.shape[0], 4, 2)
    error = batch.error(predicted, batch.targets)  # segments of 7: the 5 inner snapshots are the 5 centres
    x = small_spring.positions.astype(np.float64)
    central = []
    for rows, step in runs(small_spring):
        for start in segment_starts(len(rows), 3):
            r = rows[start:start + 7]
            central.append((x[r[2:]] - 2 * x[r[1:-1]] + x[r[:-2]]) / step**2)
    expected = (torch.as_tensor(np.concatenate(central), dtype=torch.float32) - predicted).abs()
    torch.testing.assert_close(error, expected, rtol=1e-4, atol=1e-3)


def test_true_accelerations_leave_a_small_residual_and_long_windows_average_position_noise_away(small_spring):
    typical = float(np.abs(small_spring.accelerations).mean())
    exact = [residual(small_spring, w) for w in (3, 9, 31)]
    assert max(exact) < 0.01 * typical  # Störmer-Verlet over the snapshot spacing, and no smoothing bias at any W
    noisy = add_noise(small_spring, 1e-3, "positions", seed=1)
    short, long = residual(noisy, 3, small_spring), residual(noisy, 31, small_spring)
    assert short > 0.2 * typical  # central differences: the noise swamps the law
    assert long < short / 20  # ~W^-2.5
    assert long < 0.02 * typical


def test_segments_cross_no_gap_cover_every_centre_and_short_runs_give_none(small_spring):
    first = small_spring.subset(small_spring.sim_ids == small_spring.sim_ids[0])
    assert [len(rows) for rows, _ in runs(first)] == [100]
    gapped = first.subset(np.arange(100) != 40)  # a snapshot pruned away
    assert [len(rows) for rows, _ in runs(gapped)] == [40, 59]
    count = sum(len(segment_starts(len(rows), 9)) for rows, _ in runs(gapped))
    assert len(windows(gapped, 9).nodes) == count
    starts = segment_starts(59, 9)
    assert all(0 <= start <= 59 - 19 for start in starts)
    centres = {start + k for start in starts for k in range(4, 19 - 4)}  # W // 2 = 4 at each end of 19
    assert centres == set(range(4, 55))  # every snapshot with a full filter around it
    with pytest.raises(DatasetError, match="no segment of 243 .*longest run: 100.*--rollout"):
        windows(first, 121)


def test_rollout_setting_is_checked_and_saved():
    for bad in (2, 8):
        with pytest.raises(ConfigError, match="odd number of snapshots >= 3"):
            recommended_config("eql", rollout=bad)
    config = recommended_config("eql", rollout=31)
    assert config.rollout == RolloutConfig(31)
    assert TrainConfig.from_dict(config.to_dict()).rollout.window == 31
    assert recommended_config("mlp").rollout.window == 0  # accelerations unless asked


def test_each_start_trained_on_windows_is_its_own_run(small_spring):
    train, val = small_spring.subset(range(0, 1600)), small_spring.subset(range(1600, 2000))
    alone = recommended_config("eql", steps=60, batch_size=64, seed=3, starts=1, rollout=5, max_lr=3e-4)
    together = fit(train, dataclasses.replace(alone, starts=dataclasses.replace(alone.starts, count=2)), val=val,
                   progress=False)
    selecting = next(r for r in together.history if "kept" in r)
    for start in range(2):
        model = build_model(dataclasses.replace(alone, seed=start_seed(3, start)), train.nodes.shape[-1], 2)
        single = fit(train, alone, val=val, progress=False, model=model)
        assert selecting["starts_val_loss"][start] == pytest.approx(
            single.history[selecting["epoch"] - 1]["val_loss"], rel=1e-3)
        if start == selecting["kept"][0]:  # the kept start ends with the weights of its own run
            for name, tensor in single.model.state_dict().items():
                torch.testing.assert_close(together.model.state_dict()[name], tensor, atol=1e-4, rtol=1e-3)
