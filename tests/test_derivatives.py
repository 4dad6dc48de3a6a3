"""The derivative estimator chosen from the data: the noise it reads and the window it picks."""

from __future__ import annotations

import numpy as np
import pytest

import eqlgn
from eqlgn.derivatives import choose_window, differentiate, estimate_noise, local_derivatives
from eqlgn.errors import DatasetError
from eqlgn.trajectories import from_trajectories, trajectories_of


def median_relative_error(estimated: np.ndarray, exact: np.ndarray) -> float:
    return float(np.median(np.linalg.norm(estimated - exact, axis=-1) / np.linalg.norm(exact, axis=-1)))


@pytest.fixture(scope="module", params=[("spring", 1), ("r1", 4)])
def fine(request):
    """Positions every dt (spring, h = 0.01) or every 4 dt (r1, h = 0.02), exact accelerations, typical separation."""
    law, stride = request.param
    data = eqlgn.simulate(law, 2, 4, 20, seed=1, steps=2000, save_every=1, progress=False)
    positions, times, masses, charges = trajectories_of(data)
    exact = data.accelerations[np.lexsort((data.times, data.sim_ids))].reshape(20, -1, 4, 2)
    positions, exact = positions[:, ::stride], exact[:, ::stride]
    pairs = np.linalg.norm(positions[:, :, :, None] - positions[:, :, None], axis=-1)[..., ~np.eye(4, dtype=bool)]
    return law, positions, float(times[stride] - times[0]), exact, float(np.median(pairs))


@pytest.mark.parametrize("relative", [1e-5, 1e-4, 1e-3])
def test_the_position_noise_is_read_from_the_sixth_differences(fine, relative):
    _, positions, _, _, scale = fine
    noisy = positions + relative * scale * np.random.default_rng(0).normal(size=positions.shape)
    assert estimate_noise(list(noisy)) == pytest.approx(relative * scale, rel=0.15)


@pytest.mark.parametrize("relative", [0.0, 1e-5, 1e-4, 1e-3])
def test_the_chosen_window_is_nearly_as_good_as_the_best_one_in_hindsight(fine, relative):
    """Measured (median relative acceleration error, chosen / best of windows 3-51): spring 1.00 at every
    noise level; r1 1.00, 1.00, 1.00, 1.02 (0 to 1e-3). Central differences at 1e-4: 1.78 and 0.30. Asserted: 1.25."""
    law, positions, step, exact, scale = fine
    noisy = positions + relative * scale * np.random.default_rng(0).normal(size=positions.shape)
    choice = choose_window(list(noisy), [step] * len(noisy))
    errors = {}
    for window in choice.predicted:
        _, acc, keep, _ = differentiate(noisy, step, "central" if window == 3 else "savgol", window)
        errors[window] = median_relative_error(acc, exact[:, keep])
    assert errors[choice.window] <= 1.25 * min(errors.values()), (law, choice.window, errors)
    if relative >= 1e-4:
        assert errors[choice.window] < 0.2 * errors[3]  # far better than central differences


@pytest.mark.parametrize("relative", [1e-5, 1e-4])
def test_a_window_per_particle_and_snapshot_beats_one_window_for_all(fine, relative):
    """Small windows where the motion changes fast, the data's window elsewhere.

    Measured (local / one window): median relative error spring 0.80, 0.84 and r1 0.67, 0.74
    (1e-5, 1e-4); 90th percentile of the absolute error spring 0.45, 0.52 and r1 0.10, 0.23.
    Asserted: 0.95 and 0.7.
    """
    _, positions, step, exact, scale = fine
    noisy = positions + relative * scale * np.random.default_rng(0).normal(size=positions.shape)
    choice = choose_window(list(noisy), [step] * len(noisy))
    _, one, keep, _ = differentiate(noisy, step, choice.method, choice.window)
    _, local, same, windows = local_derivatives(noisy, step, choice)
    assert np.array_equal(keep, same) and windows.min() >= 3 and windows.max() <= choice.window
    truth = exact[:, keep]
    assert median_relative_error(local, truth) <= 0.95 * median_relative_error(one, truth)
    tail = [np.percentile(np.linalg.norm(a - truth, axis=-1), 90) for a in (local, one)]
    assert tail[0] <= 0.7 * tail[1], tail


def test_auto_is_recorded_and_refuses_trajectories_too_short_to_choose():
    data = eqlgn.simulate("spring", 2, 3, 4, seed=0, steps=400, save_every=1, progress=False)
    positions, times, masses, charges = trajectories_of(data)
    noisy = positions + 1e-4 * np.random.default_rng(1).normal(size=positions.shape)
    read = from_trajectories(noisy, times, masses, charges, method="auto")
    label = read.meta.derivatives
    assert label.startswith("auto: savgol(order=3), windows 3-") and "position noise 1.0e-04" in label, label
    with pytest.raises(DatasetError, match="at least 7 snapshots; the shortest has 6: use --derivative central"):
        from_trajectories(positions[:, :6], times[:6], masses, charges, method="auto")
