"""Data-parallel training: 2 CPU processes (gloo, torchrun) end with the weights of one process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import eqlgn
from eqlgn.errors import ConfigError
from eqlgn.parallel import check_batch

WORKER = textwrap.dedent("""
    import sys, torch, eqlgn
    from eqlgn import parallel
    data = eqlgn.simulate("spring", 2, 4, 10, seed=0, steps=100, progress=False)
    train = data.subset(list(range(192)))
    config = eqlgn.TrainConfig(hidden=16, layers=2, message_dim=8, batch_size=64, epochs=3, device="cpu", seed=0)
    trained = eqlgn.fit(train, config, out=sys.argv[2], progress=False)
    torch.save(trained.model.state_dict(), f"{sys.argv[1]}/rank{parallel.rank()}.pt")
""")


def test_two_gloo_processes_match_single_process_training(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path), str(tmp_path / "run")], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    data = eqlgn.simulate("spring", 2, 4, 10, seed=0, steps=100, progress=False)
    config = eqlgn.TrainConfig(hidden=16, layers=2, message_dim=8, batch_size=64, epochs=3, device="cpu", seed=0)
    single = eqlgn.fit(data.subset(list(range(192))), config, progress=False).model.state_dict()
    for name, tensor in single.items():
        torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=0, msg=name)  # replicas agree exactly
        torch.testing.assert_close(rank0[name], tensor, rtol=1e-4, atol=1e-5, msg=name)  # = one process
    assert (tmp_path / "run" / "checkpoint.pt").is_file() and not (tmp_path / "run" / ".eqlgn.lock").exists()


def test_a_batch_that_does_not_split_is_refused():
    check_batch(64, 2)
    with pytest.raises(ConfigError, match="multiple of 3"):
        check_batch(64, 3)
