"""Trainer: schedules, each variant learns, resume equals an uninterrupted run, analysis."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import eqlgn
from eqlgn.batching import GraphBatch, to_tensors
from eqlgn.build import build_model
from eqlgn.checkpoint import TrainedModel, TrainingState
from eqlgn.config import L1Schedule, TrainConfig
from eqlgn.errors import ConfigError, EqlgnError
from eqlgn.objective import relative_weights, training_loss
from eqlgn.phases import EQLPhaseSchedule
from eqlgn.train import fit


@pytest.mark.parametrize(
    "schedule, expected",
    [("constant", (0.01, 0.01, 0.01)), ("linear", (0.01, 0.055, 0.1)), ("triangle", (0.01, 0.1, 0.01))],
)
def test_schedules_at_start_middle_end(schedule, expected):
    got = tuple(L1Schedule(0.01, 0.1, schedule).coefficient(t) for t in (0.0, 0.5, 1.0))
    assert got == pytest.approx(expected)
    with pytest.raises(ConfigError, match="did you mean 'linear'"):
        L1Schedule(0.01, 0.1, "linar")


def small_config(**kw) -> TrainConfig:
    base = dict(hidden=32, layers=2, message_dim=16, batch_size=32, device="cpu", augment=0.0)
    if kw.get("variant") == "bottleneck":
        del base["message_dim"]  # the bottleneck fixes its message width
    return TrainConfig.from_flags(**(base | kw))


@pytest.mark.parametrize("variant", ["standard", "bottleneck", "l1", "kl"])
def test_each_variant_loss_falls(small_spring, variant):
    """The variant's full objective (data + message regulariser) falls on held-out graphs."""
    train, val, _ = small_spring.split(seed=0)
    config = small_config(variant=variant, steps=200, max_lr=3e-3)
    batch = to_tensors(val, "cpu")

    def objective(model):
        model.train()  # the KL variant samples its messages, as in training
        torch.manual_seed(1)
        with torch.no_grad():
            return training_loss(model, batch, config, 0, EQLPhaseSchedule(config.schedule.phases, 200))[0].item()

    before = objective(build_model(config, 6, 2))
    after = objective(fit(train, config, progress=False).model)
    assert after < 0.7 * before, (before, after)


def test_resume_after_stop_gives_the_same_weights(small_spring, tmp_path):
    train, val, _ = small_spring.split(seed=0)
    config = small_config(variant="kl", epochs=4, batch_size=256, augment=3.0)  # KL: RNG in the loop
    full = fit(train, config, val=val, out=tmp_path / "full", progress=False)
    again = fit(train, config, val=val, progress=False)
    for a, b in zip(full.model.state_dict().values(), again.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # determinism on CPU
    killed_dir = tmp_path / "killed"
    _train_until_epoch(train, val, config, killed_dir, stop_epoch=2)
    assert torch.load(killed_dir / "checkpoint.pt", weights_only=False)["epoch"] == 2
    resumed = fit(train, config, val=val, out=killed_dir, resume=True, progress=False)
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert len((killed_dir / "train_log.jsonl").read_text().splitlines()) == 4


class _Stop(Exception):
    pass


def _train_until_epoch(train, val, config, out, stop_epoch):
    """Run fit and raise out of it right after the checkpoint of ``stop_epoch`` is written."""
    original = TrainingState.save

    def save_then_maybe_stop(state, run_dir):
        original(state, run_dir)
        if state.epoch == stop_epoch:
            raise _Stop

    TrainingState.save = save_then_maybe_stop
    try:
        with pytest.raises(_Stop):
            fit(train, config, val=val, out=out, progress=False)
    finally:
        TrainingState.save = original


def test_corrupt_checkpoint_is_reported(small_spring, tmp_path):
    train, val, _ = small_spring.split(seed=0)
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(EqlgnError, match="corrupt or not an eqlgn checkpoint"):
        fit(train, small_config(steps=2), out=tmp_path, resume=True, progress=False)


def test_model_save_load_round_trip(small_spring, tmp_path):
    trained = fit(small_spring, small_config(steps=3), progress=False)
    trained.save(tmp_path / "m.pt")
    back = TrainedModel.load(tmp_path / "m.pt")
    nodes = torch.as_tensor(small_spring.nodes[:5])
    torch.testing.assert_close(back.model(nodes).accelerations, trained.model(nodes).accelerations)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"variant": "l2"}, "unknown variant 'l2'"), ({"batch_size": 0}, "batch_size must be positive"),
     ({"schedule": "cosine"}, "unknown L1 schedule"), ({"aggregation": "mean"}, "unknown aggregation"),
     ({"loss_weighting": "relatve"}, "did you mean 'relative'"),
     ({"edge": "eql", "eql_penalty": "l2"}, "unknown EQL weight penalty"),
     ({"loss_weighting": "relative", "rollout": 5}, "rollout loss fits positions"),
     ({"relative_until": 0.0}, "relative_until must lie in"),
     ({"relative_until": 0.5}, "relative_until does not apply")],
)
def test_bad_train_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig.from_flags(**kwargs)


def test_relative_weights_are_one_at_the_median_and_relative_far_above_it():
    norms = torch.tensor([0.5, 1.0, 2.0, 100.0, 0.0])  # median 1.0
    targets = torch.stack([norms * 0.6, norms * 0.8], dim=-1)[None]  # |a| = norms
    weights = relative_weights(targets.requires_grad_())[0, :, 0]
    assert weights.tolist() == pytest.approx([4 / 3, 1.0, 2 / 3, 2 / 101, 2.0])
    assert not weights.requires_grad


def test_relative_weighting_changes_the_loss_and_not_the_reported_error(small_spring):
    train, val, _ = small_spring.split(seed=0)
    batch = to_tensors(val, "cpu")
    absolute, relative = small_config(steps=10), small_config(steps=10, loss_weighting="relative")
    assert TrainConfig.from_dict(relative.to_dict()).loss.weighting == "relative"
    model, phases = build_model(absolute, 6, 2), EQLPhaseSchedule(None, 10)
    with torch.no_grad():
        loss_a, mae_a, _ = training_loss(model, batch, absolute, 0, phases)
        loss_r, mae_r, _ = training_loss(model, batch, relative, 0, phases)
    assert mae_a == mae_r and loss_a.item() != pytest.approx(loss_r.item(), rel=1e-3)
    quarter = small_config(steps=10, loss_weighting="relative", relative_until=0.25)
    with torch.no_grad():
        assert training_loss(model, batch, quarter, 2, phases)[0] == loss_r
        assert training_loss(model, batch, quarter, 3, phases)[0] == loss_a
    assert fit(train, small_config(steps=50, loss_weighting="relative"), progress=False).history


def test_the_eql_weight_penalty_is_l1_or_smoothed_l12_in_the_sparsify_phase(small_spring):
    flags = dict(edge="eql", variant="bottleneck", hidden=16, layers=2, batch_size=32, device="cpu", steps=20,
                 eql_l1=0.1, r_min=0.1)
    l1, l12 = TrainConfig.from_flags(**flags), TrainConfig.from_flags(**flags, eql_penalty="l12")
    assert TrainConfig.from_dict(l12.to_dict()).schedule.phases.penalty == "l12"
    every = to_tensors(small_spring, "cpu")
    model, batch = build_model(l1, 6, 2), GraphBatch(every.nodes[:8], every.accelerations[:8])
    phases = EQLPhaseSchedule(l1.schedule.phases, 20)
    assert phases.phase(10) == "sparsify" and phases.phase(0) == "warmup"
    with torch.no_grad():
        eql = model.edge_model.eql
        gap = training_loss(model, batch, l12, 10, phases)[0] - training_loss(model, batch, l1, 10, phases)[0]
        assert gap.item() == pytest.approx(0.1 * (eql.l12() - eql.l1()).item(), rel=1e-4)
        assert training_loss(model, batch, l12, 0, phases)[0] == training_loss(model, batch, l1, 0, phases)[0]


def test_analysis_finds_planted_sparse_linear_messages():
    """Messages built by hand as a linear map of the true force plus tiny noise components."""
    from eqlgn.analysis import MessageSample, analyze_messages

    rng = np.random.default_rng(0)
    data = eqlgn.simulate("spring", 2, 4, 5, seed=0, steps=50, progress=False)
    law = eqlgn.get_law("spring")
    receiver = rng.normal(size=(2000, 6))
    sender = rng.normal(size=(2000, 6))
    receiver[:, 5] = sender[:, 5] = 1.0
    force = law.force(receiver[:, :2] - sender[:, :2], 1.0, 1.0, 0.0, 0.0)
    messages = rng.normal(scale=1e-3, size=(2000, 10))
    messages[:, 3] = 2 * force[:, 0] - force[:, 1] + 0.5
    messages[:, 7] = 0.3 * force[:, 1]
    analysis = analyze_messages(MessageSample(messages, None, receiver, sender, force, 2))
    assert sorted(analysis.components) == [3, 7]
    assert min(analysis.r2) > 0.999
    assert analysis.sparsity_ratio > 100
    assert data.dim == 2


def test_bf16_autocast_trains_and_unknown_precision_is_refused(small_spring):
    train, _, _ = small_spring.split(seed=0)
    trained = fit(train, small_config(epochs=2, precision="bf16"), progress=False)
    assert trained.history[-1]["train_loss"] < trained.history[0]["train_loss"] * 1.5
    assert all(torch.isfinite(p).all() for p in trained.model.parameters())
    assert next(trained.model.parameters()).dtype == torch.float32
    with pytest.raises(ConfigError, match="unknown precision 'fp16'"):
        small_config(precision="fp16")
