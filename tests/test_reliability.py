"""Faults: locks, refusals to overwrite, kill -9 and resume, NaN, malformed files and flags (hypothesis)."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eqlgn
from eqlgn._io import LOCK_FILE, run_lock
from eqlgn.cli import main
from eqlgn.config import TrainConfig
from eqlgn.data import ParticleDataset
from eqlgn.errors import DatasetError, EqlgnError
from eqlgn.models import GN, MLPEdge, NodeMLP
from eqlgn.train import fit

CLI = [sys.executable, "-m", "eqlgn"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def small_config(**overrides) -> TrainConfig:
    base = dict(hidden=16, layers=2, message_dim=8, batch_size=64, epochs=3, max_lr=1e-3, device="cpu")
    return TrainConfig.from_flags(**(base | overrides))


# --- run-directory lock ----------------------------------------------------------------------------

def test_second_process_is_refused_while_the_first_holds_the_directory(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; from eqlgn._io import run_lock\n"
                               "with run_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)",
                               str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(EqlgnError, match=f"in use by another eqlgn process \\(pid {holder.pid}\\)"):
            with run_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    # the holder died without cleaning up (kill -9): its stale lock is taken over
    assert (tmp_path / LOCK_FILE).read_text() == str(holder.pid)
    with run_lock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == str(os.getpid())
        with run_lock(tmp_path):  # re-entrant in one process (run -> fit)
            pass
        assert (tmp_path / LOCK_FILE).is_file()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_finished_run_is_never_overwritten(small_spring, tmp_path):
    train, val, _ = small_spring.split(seed=0)
    fit(train, small_config(epochs=1), val=val, out=tmp_path, progress=False)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(EqlgnError, match="already holds a training checkpoint; pass resume=True"):
        fit(train, small_config(epochs=1), val=val, out=tmp_path, progress=False)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    with pytest.raises(EqlgnError, match="hidden=16 \\(now 32\\)"):
        fit(train, small_config(epochs=1, hidden=32), val=val, out=tmp_path, resume=True, progress=False)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


# --- kill -9 during training, then resume -------------------------------------------------------------

def train_cli(out: Path, cache: Path, *extra: str) -> list[str]:
    return [*CLI, "train", "--law", "spring", "--sims", "12", "--sim-steps", "100", "--hidden", "16",
            "--layers", "2", "--message-dim", "8", "--batch-size", "8", "--epochs", "8", "--device", "cpu",
            "--cache-dir", str(cache), "--out", str(out), "--no-progress", *extra]


def state(run: Path) -> dict:
    return torch.load(run / "model.pt", weights_only=False)["state"]


def test_training_killed_at_a_random_moment_resumes_to_the_same_weights(tmp_path):
    cache = tmp_path / "cache"
    subprocess.run(train_cli(tmp_path / "full", cache), check=True, env=ENV, capture_output=True, timeout=600)
    killed = tmp_path / "killed"
    chooser = random.Random(os.getpid())
    stop_after = chooser.randint(1, 6)  # kill somewhere inside a random epoch 2..7
    proc = subprocess.Popen(train_cli(killed, cache), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = killed / "train_log.jsonl"
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if log.is_file() and len(log.read_text().splitlines()) >= stop_after:
            break
        time.sleep(0.005)
    time.sleep(chooser.uniform(0.0, 0.05))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reached = torch.load(killed / "checkpoint.pt", weights_only=False)["epoch"]
    assert 1 <= reached < 8, f"the kill came too late (epoch {reached}); the test did not interrupt training"
    done = subprocess.run(train_cli(killed, cache, "--resume"), env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    for name, tensor in state(tmp_path / "full").items():
        torch.testing.assert_close(state(killed)[name], tensor, rtol=0, atol=0, msg=name)
    log = [json.loads(line) for line in (killed / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == list(range(1, 9))
    assert not (killed / LOCK_FILE).exists()


# --- numerical faults -----------------------------------------------------------------------------

class FaultyNode(NodeMLP):
    """A node model that starts returning NaN after ``after`` forward calls (an injected fault)."""

    def __init__(self, *args, after: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.after = 0, after

    def forward(self, nodes, summed):
        self.calls += 1
        out = super().forward(nodes, summed)
        return out * float("nan") if self.calls > self.after else out


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(small_spring, tmp_path):
    train, _, _ = small_spring.split(seed=0)
    config = small_config(epochs=5, batch_size=512)
    per_epoch = config.schedule.steps_per_epoch(len(train))
    model = GN(MLPEdge(6, 8, 16, 2), FaultyNode(6, 8, 2, 16, 2, after=2 * per_epoch + 1), "l1")
    with pytest.raises(EqlgnError, match="training loss became nan .*last good checkpoint is kept"):
        fit(train, config, out=tmp_path, model=model, progress=False)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert saved["epoch"] == 2
    assert all(torch.isfinite(t).all() for t in saved["state"].values())
    assert not (tmp_path / LOCK_FILE).exists()


def test_extreme_accelerations_are_reported_with_the_option_that_handles_them(small_spring):
    data = small_spring.subset(np.arange(200))
    assert data.extreme_accelerations() is None
    data.accelerations[7, 0, 0] = 1e6
    report = data.extreme_accelerations()
    assert report is not None and report.startswith("1 of 200 snapshots") and "--prune-outliers" in report
    pruned, dropped = data.prune_outliers()
    assert dropped >= 1 and pruned.extreme_accelerations() is None


def test_a_cached_dataset_of_another_system_is_refused(tmp_path):
    from eqlgn.simulator import SimulationConfig, cache_path

    other = eqlgn.simulate("r1", 2, 3, 3, seed=0, steps=20, progress=False)
    other.save(cache_path(SimulationConfig("spring", 2, 4, 3, seed=0, steps=20), tmp_path))
    with pytest.raises(DatasetError, match="law 'r1' \\(run wants 'spring'\\), n_particles 3"):
        eqlgn.simulate("spring", 2, 4, 3, seed=0, steps=20, progress=False, cache_dir=tmp_path)


# --- malformed dataset files (property-based) --------------------------------------------------------

ARRAY_NAMES = ("nodes", "accelerations", "sim_ids", "times", "meta")


@st.composite
def malformed_arrays(draw) -> dict:
    """A real small dataset's arrays with random damage: dropped keys, reshapes, NaN, wrong dtypes, junk meta."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    n, d, s = draw(st.integers(2, 4)), draw(st.sampled_from([2, 3])), draw(st.integers(1, 6))
    arrays = {"nodes": rng.normal(size=(s, n, 2 * d + 2)).astype(np.float32),
              "accelerations": rng.normal(size=(s, n, d)).astype(np.float32),
              "sim_ids": np.arange(s), "times": np.arange(s, dtype=np.float64),
              "meta": np.asarray(json.dumps({"law": "spring", "dim": d, "n_particles": n}))}
    arrays["nodes"][..., -1] = np.abs(arrays["nodes"][..., -1]) + 0.1
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(ARRAY_NAMES))
        damage = draw(st.sampled_from(["drop", "nan", "inf", "reshape", "string", "junk", "empty", "negative"]))
        if damage == "drop":
            arrays.pop(name, None)
        elif name not in arrays:
            continue
        elif damage in ("nan", "inf") and arrays[name].dtype.kind == "f" and arrays[name].size:
            arrays[name].flat[0] = np.nan if damage == "nan" else np.inf
        elif damage == "reshape":
            arrays[name] = arrays[name].reshape(-1)
        elif damage == "string":
            arrays[name] = np.asarray(["a", "b"])
        elif damage == "junk":
            arrays[name] = np.asarray("{not json" if name == "meta" else 7)
        elif damage == "empty":
            arrays[name] = np.zeros((0,))
        elif damage == "negative" and name == "nodes" and arrays[name].ndim == 3:
            arrays[name][..., -1] = -1.0
    return arrays


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrays=malformed_arrays())
def test_loader_raises_only_dataset_errors_on_malformed_files(tmp_path, arrays):
    path = tmp_path / "data.npz"
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    try:
        data = ParticleDataset.load(path)
    except DatasetError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:  # whatever loads is a valid dataset
        assert np.isfinite(data.nodes).all() and np.isfinite(data.accelerations).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=400))
def test_loader_raises_only_dataset_errors_on_random_bytes(tmp_path, content):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(DatasetError):
        ParticleDataset.load(path)


# --- malformed flags (property-based) ---------------------------------------------------------------------

FLAG_VALUES = {
    "--law": ["spring", "r1", "gravity", "", "SPRING"],
    "--dim": ["2", "3", "4", "1", "-2", "x"],
    "--n": ["2", "3", "1", "0", "-5", "2.5"],
    "--sims": ["3", "0", "-1", "many"],
    "--batch-size": ["0", "-3", "16", "nan"],
    "--max-lr": ["0", "-1", "1e-3", "inf"],
    "--variant": ["l1", "bottleneck", "l2", "kld"],
    "--edge": ["mlp", "eql", "gnn"],
    "--schedule": ["linear", "cosine"],
    "--sr": ["operon", "pysr", "gplearn"],
}


@st.composite
def bad_run_flags(draw) -> list[str]:
    """Flags for 'eqlgn run' with at least one invalid value, so nothing trains."""
    invalid = {"--law": ["gravity", "", "SPRING"], "--dim": ["4", "1", "-2", "x"], "--n": ["1", "0", "-5", "2.5"],
               "--sims": ["0", "-1", "many"], "--batch-size": ["0", "-3", "nan"], "--max-lr": ["0", "-1", "inf"],
               "--variant": ["l2", "kld"], "--edge": ["gnn"], "--schedule": ["cosine"], "--sr": ["gplearn"]}
    flags = draw(st.lists(st.sampled_from(sorted(FLAG_VALUES)), min_size=1, max_size=4, unique=True))
    broken = draw(st.sampled_from(flags))
    argv = []
    for flag in flags:
        argv += [flag, draw(st.sampled_from(invalid[flag] if flag == broken else FLAG_VALUES[flag]))]
    return argv


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=bad_run_flags(), command=st.sampled_from(["run", "train"]))
def test_cli_answers_bad_flags_with_exit_2_and_one_line(tmp_path, capsys, argv, command):
    if command == "train" and "--sr" in argv:
        return  # 'train' has no --sr flag
    args = [command, *argv, "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse type errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, (args, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out" / "checkpoint.pt").exists()
