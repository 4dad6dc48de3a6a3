"""Long end-to-end runs (marked slow; CI runs them): the law from nothing."""

from __future__ import annotations

import numpy as np
import pytest

import eqlgn
from eqlgn.equations import evaluate, parse_equation


@pytest.mark.slow
def test_eql_run_recovers_spring_2d_from_a_fresh_start(tmp_path):
    """`eqlgn run --law spring --dim 2 --n 4 --edge eql` with the shared configuration."""
    result = eqlgn.run("spring", dim=2, n=4, edge="eql", seed=0, out=tmp_path / "run",
                       cache_dir=tmp_path / "cache", progress=False)
    assert result["method"] == "eql"
    assert result["judge"]["passed"], result
    assert min(result["judge"]["ood_r2"]) >= 0.98
    assert result["judge"]["condition"] > 1e-2
    for equation in result["equations"]:  # the law's structure: dx/r or dy/r terms are present
        assert "/r" in equation


@pytest.mark.slow
def test_mlp_l1_linear_schedule_gives_sparse_linear_messages_on_spring(tmp_path):
    """Cranmer et al.'s L1 route: two message components carry the force, the rest are silent.

    Measured with this exact configuration (docs/results.md): R² 0.952 / 0.955 and a
    sparsity ratio of 10.9 after 4000 steps (~100 s on 2 cores); the margin on the ratio
    is small, see the results page for how it depends on the budget.
    """
    from eqlgn.pipeline import analyze_run, train_run
    from eqlgn.simulator import SimulationConfig

    config = eqlgn.TrainConfig(variant="l1", schedule="linear", hidden=128, batch_size=256, steps=4000,
                               max_lr=3e-3, l1=0.05, l1_end=0.5, seed=0, device="cpu")
    train_run(SimulationConfig(law="spring", sims=500, seed=0), config, tmp_path / "run",
              cache_dir=tmp_path / "cache", progress=False)
    analysis = analyze_run(tmp_path / "run")
    assert min(analysis.r2) >= 0.9, analysis
    assert analysis.sparsity_ratio >= 10, analysis
    assert (tmp_path / "run" / "sparsity.png").is_file()


@pytest.mark.slow
def test_eql_recovers_spring_from_a_trajectory_csv_without_exact_accelerations(tmp_path):
    """Users' data: positions only, written by this test; accelerations by central differences."""
    from eqlgn.trajectories import save_trajectories

    simulated = eqlgn.simulate("spring", dim=2, n=4, sims=1000, seed=0, progress=False)
    path = save_trajectories(simulated, tmp_path / "trajectories.csv")
    data = eqlgn.load_trajectories(path, law="spring")
    assert data.meta.derivatives == "central differences"
    result = eqlgn.run("spring", edge="eql", seed=0, out=tmp_path / "run", data=path, progress=False)
    assert result["data"]["derivatives"] == "central differences"
    assert result["judge"]["passed"], result


@pytest.mark.slow
def test_hamiltonian_gn_recovers_the_spring_potential_from_eql_weights(tmp_path):
    """`eqlgn run --law spring --edge eql --model hamiltonian --steps 4000`: U ≈ a (r - 1)^2 + c."""
    config = eqlgn.recommended_config("eql", model="hamiltonian", steps=4000)
    result = eqlgn.run("spring", dim=2, n=4, edge="eql", seed=0, out=tmp_path / "run", train=config,
                       cache_dir=tmp_path / "cache", progress=False)
    assert result["target"] == "potential" and len(result["equations"]) == 1
    assert result["judge"]["passed"], result
    assert result["judge"]["ood_r2"][0] >= 0.98
    # along r, averaged over directions, the potential is a parabola whose minimum is the rest length 1
    r, angle = np.meshgrid(np.linspace(0.5, 2.0, 31), np.linspace(0, 2 * np.pi, 16, endpoint=False))
    values = {"r": r.ravel(), "dx": (r * np.cos(angle)).ravel(), "dy": (r * np.sin(angle)).ravel()}
    potential = evaluate([parse_equation(result["equations"][0])], values)[:, 0].reshape(r.shape)
    along_r = potential.mean(axis=0)
    a2, a1, _ = np.polyfit(r[0], along_r, 2)
    assert a2 > 0 and -a1 / (2 * a2) == pytest.approx(1.0, abs=0.05), result["equations"]
    assert np.ptp(potential, axis=0).max() < 0.05 * np.ptp(along_r), "the potential depends on direction"
