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
from eqlgn.rollout import runs, window_starts, windows
from eqlgn.train import fit
from eqlgn.trajectories import add_noise


def truth_in_windows(data, window: int) -> torch.Tensor:
    """The dataset's accelerations at every window's inner snapshots, in the order of ``windows``."""
    inner = [data.accelerations[rows[s + 1:s + window - 1]] for rows, _ in runs(data)
             for s in window_starts(len(rows), window)]
    return torch.as_tensor(np.stack(inner)).flatten(0, 1)


def residual(data, window: int, reference=None) -> float:
    """Mean rollout residual of the true (``reference``'s) accelerations on ``data``'s positions."""
    batch = windows(data, window)
    return float(batch.error(truth_in_windows(reference or data, window), batch.projected).mean())


def test_a_window_of_three_is_the_central_difference_loss(small_spring):
    batch = windows(small_spring, 3)
    predicted = torch.randn(batch.inputs.shape[0], 4, 2)
    error = batch.error(predicted, batch.projected).unflatten(0, (-1, 3)).mean(dim=1)
    x = small_spring.positions.astype(np.float64)
    central = []
    for rows, step in runs(small_spring):
        central.append((x[rows[2:]] - 2 * x[rows[1:-1]] + x[rows[:-2]]) / step**2)
    expected = (torch.as_tensor(np.concatenate(central), dtype=torch.float32) - predicted).abs()
    torch.testing.assert_close(error, expected, rtol=1e-4, atol=1e-3)


def test_true_accelerations_leave_a_small_residual_and_long_windows_average_position_noise_away(small_spring):
    typical = float(np.abs(small_spring.accelerations).mean())
    assert residual(small_spring, 16) < 0.01 * typical  # Störmer-Verlet over the snapshot spacing, nothing else
    noisy = add_noise(small_spring, 1e-3, "positions", seed=1)
    short, long = residual(noisy, 3, small_spring), residual(noisy, 32, small_spring)
    assert short > 0.2 * typical  # central differences: the noise swamps the law
    assert long < short / 20  # ~W^-2.5 (measured 66x), and no smoothing bias
    assert long < 0.02 * typical


def test_windows_cross_no_gap_and_short_simulations_give_none(small_spring):
    first = small_spring.subset(small_spring.sim_ids == small_spring.sim_ids[0])
    assert [len(rows) for rows, _ in runs(first)] == [100]
    gapped = first.subset(np.arange(100) != 40)  # a snapshot pruned away
    assert [len(rows) for rows, _ in runs(gapped)] == [40, 59]
    count = sum(len(window_starts(len(rows), 16)) for rows, _ in runs(gapped))
    assert len(windows(gapped, 16).nodes) == count
    for start in window_starts(59, 16):  # every inner snapshot of a run is inside some window's inner part
        assert 0 <= start <= 59 - 16
    covered = {start + k for start in window_starts(59, 16) for k in range(1, 15)}
    assert covered == set(range(1, 58))
    with pytest.raises(DatasetError, match="no window of 120 .*longest run: 100.*--rollout"):
        windows(first, 120)


def test_rollout_setting_is_checked_and_saved():
    with pytest.raises(ConfigError, match="at least 3 snapshots"):
        recommended_config("eql", rollout=2)
    config = recommended_config("eql", rollout=32)
    assert config.rollout == RolloutConfig(32)
    assert TrainConfig.from_dict(config.to_dict()).rollout.window == 32
    assert recommended_config("mlp").rollout.window == 0  # accelerations unless asked


def test_each_start_trained_on_windows_is_its_own_run(small_spring):
    train, val = small_spring.subset(range(0, 1600)), small_spring.subset(range(1600, 2000))
    alone = recommended_config("eql", steps=60, batch_size=64, seed=3, starts=1, rollout=8, max_lr=3e-4)
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
