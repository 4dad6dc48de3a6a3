"""Several starts side by side (eqlgn.multistart): each start is the run it would be alone; the best is kept."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from eqlgn import recommended_config
from eqlgn.build import build_model
from eqlgn.config import TrainConfig
from eqlgn.errors import ConfigError
from eqlgn.multistart import start_seed
from eqlgn.train import fit


@pytest.fixture(scope="module")
def split(small_spring):
    return small_spring.subset(range(0, 1600)), small_spring.subset(range(1600, 2000))


def test_each_start_is_its_own_run_and_the_best_by_validation_is_kept(split):
    train, val = split
    # a low peak learning rate: at the recipe's 3e-3, the vmap-ed and the plain matmuls' rounding (which differ
    # on an AMD EPYC) grows to 1 % in 50 steps; at 3e-4 the runs agree to ~1e-5 and still tell starts apart
    alone = recommended_config("eql", steps=120, batch_size=64, seed=3, starts=1, max_lr=3e-4)
    config = recommended_config("eql", steps=120, batch_size=64, seed=3, starts=3, select_at=0.5, halving_rounds=2,
                                max_lr=3e-4)
    together = fit(train, config, val=val, progress=False)
    selecting = [record for record in together.history if "kept" in record]
    assert [len(record["kept"]) for record in selecting] == [2, 1]
    for record in selecting:  # the kept starts are the best by validation MAE at that epoch
        scores = record["starts_val_loss"]
        live = [k for k, score in enumerate(scores) if score is not None]
        best = sorted(live, key=scores.__getitem__)[: len(record["kept"])]
        assert sorted(record["kept"], key=scores.__getitem__) == best
    winner = selecting[-1]["kept"][0]
    for start in range(3):  # the same network, batches and schedule trained alone
        model = build_model(dataclasses.replace(alone, seed=start_seed(3, start)), train.nodes.shape[-1], 2)
        single = fit(train, alone, val=val, progress=False, model=model)
        for mine, theirs in zip(together.history, single.history):
            if "starts_val_loss" in mine:
                value = mine["starts_val_loss"][start]
            else:
                value = mine["val_loss"] if start == winner else None
            if value is not None:
                assert value == pytest.approx(theirs["val_loss"], rel=1e-3)
        if start == winner:  # and the kept start ends with the weights of its own run
            for name, tensor in single.model.state_dict().items():
                torch.testing.assert_close(together.model.state_dict()[name], tensor, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("variant", ["l1", "kl"])
def test_mlp_variants_train_side_by_side(split, variant):
    train, val = split
    config = TrainConfig.from_flags(variant=variant, hidden=32, layers=2, steps=60, batch_size=64, starts=2)
    trained = fit(train, config, val=val, progress=False)
    first, last = trained.history[0], trained.history[-1]
    assert len(first["starts_train_loss"]) == 2 and last["val_loss"] < first["val_loss"]


def test_starts_config_is_checked_and_saved():
    with pytest.raises(ConfigError, match="force GN"):
        TrainConfig.from_flags(model="hamiltonian", variant="standard", starts=2)
    with pytest.raises(ConfigError, match="before prune_at"):
        recommended_config("eql", starts=2, select_at=0.95)
    with pytest.raises(ConfigError, match="select_at"):
        recommended_config("eql", starts=2, select_at=1.0)
    with pytest.raises(ConfigError, match="count must be positive"):
        recommended_config("eql", starts=0)
    config = recommended_config("eql", starts=4, halving_rounds=2)
    assert TrainConfig.from_dict(config.to_dict()) == config
    old = config.to_dict()
    del old["starts"]  # saved before several starts existed: one start
    assert TrainConfig.from_dict(old).starts.count == 1


def test_a_given_network_and_several_starts_are_refused(split):
    train, _ = split
    config = recommended_config("eql", steps=10, starts=2)
    with pytest.raises(ConfigError, match="pass no model"):
        fit(train, config, model=build_model(config, train.nodes.shape[-1], 2), progress=False)


class _Stop(Exception):
    pass


def test_a_run_stopped_before_or_after_the_selection_resumes_to_the_same_weights(split, tmp_path, monkeypatch):
    from eqlgn.checkpoint import TrainingState
    from eqlgn.multistart import SideBySide

    train, val = split
    config = recommended_config("eql", steps=120, batch_size=64, seed=5, starts=2)
    full = fit(train, config, val=val, out=tmp_path / "full", progress=False)
    selected_at = next(r["epoch"] for r in full.history if "kept" in r)

    def stop_after_first_checkpoint(state, run_dir):  # the first checkpoint comes after the selection
        original_save(state, run_dir)
        raise _Stop

    def stop_in_side_by_side(self, *args):
        raise _Stop

    original_save = TrainingState.save
    for name, target, replacement in (("after", TrainingState, stop_after_first_checkpoint),
                                      ("before", SideBySide, stop_in_side_by_side)):
        attribute = "save" if target is TrainingState else "epoch"
        with monkeypatch.context() as patch:
            patch.setattr(target, attribute, replacement)
            with pytest.raises(_Stop):
                fit(train, config, val=val, out=tmp_path / name, progress=False)
        checkpoint = (tmp_path / name / "checkpoint.pt").is_file()
        assert checkpoint == (name == "after")  # the side-by-side phase writes none: it starts over
        resumed = fit(train, config, val=val, out=tmp_path / name, resume=True, progress=False)
        for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert [r["epoch"] for r in resumed.history] == [r["epoch"] for r in full.history]
        assert next(r["epoch"] for r in resumed.history if "kept" in r) == selected_at
