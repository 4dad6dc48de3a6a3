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
from eqlgn.parallel import check_batch, check_data, shard

WORKER = textwrap.dedent("""
    import sys, torch, eqlgn
    from eqlgn import parallel
    data = eqlgn.simulate("spring", 2, 4, 10, seed=0, steps=100, progress=False)
    train = data.subset(list(range(192)))
    config = eqlgn.TrainConfig.from_flags(hidden=16, layers=2, message_dim=8, batch_size=64, epochs=3, device="cpu",
                                          seed=0)
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
    config = eqlgn.TrainConfig.from_flags(hidden=16, layers=2, message_dim=8, batch_size=64, epochs=3, device="cpu",
                                          seed=0)
    single = eqlgn.fit(data.subset(list(range(192))), config, progress=False).model.state_dict()
    for name, tensor in single.items():
        torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=0, msg=name)  # replicas agree exactly
        torch.testing.assert_close(rank0[name], tensor, rtol=1e-4, atol=1e-5, msg=name)  # = one process
    assert (tmp_path / "run" / "checkpoint.pt").is_file() and not (tmp_path / "run" / ".eqlgn.lock").exists()


RAGGED_WORKER = textwrap.dedent("""
    import sys, torch, eqlgn
    from eqlgn import parallel
    data = eqlgn.simulate("spring", 2, 4, 10, seed=0, steps=100, progress=False)
    train = data.subset(list(range(int(sys.argv[3]))))
    config = eqlgn.TrainConfig.from_flags(hidden=16, layers=2, message_dim=8, batch_size=64, epochs=3, device="cpu",
                                          seed=0)
    trained = eqlgn.fit(train, config, progress=False)
    torch.save(trained.model.state_dict(), f"{sys.argv[1]}/rank{parallel.rank()}.pt")
""")


@pytest.mark.parametrize("graphs", [193, 195])
def test_a_last_batch_smaller_than_the_world_neither_hangs_nor_gives_an_empty_shard(tmp_path, graphs):
    """193 graphs at batch 64 leave a last batch of 1 graph for 2 processes; 195 leave 3 (cut to 2)."""
    script = tmp_path / "worker.py"
    script.write_text(RAGGED_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path), "-", str(graphs)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    for name, tensor in rank0.items():
        assert torch.isfinite(tensor).all(), name
        torch.testing.assert_close(tensor, rank1[name], rtol=0, atol=0, msg=name)


def test_shards_are_equal_and_never_empty():
    from eqlgn.batching import GraphBatch

    def batch(size):
        return GraphBatch(torch.arange(size, dtype=torch.float32)[:, None, None], torch.zeros(size, 1, 1))

    assert shard(batch(1), 0, 2) is None and shard(batch(1), 1, 2) is None
    parts = [shard(batch(7), r, 3) for r in range(3)]
    assert [p.nodes.shape[0] for p in parts] == [2, 2, 2]
    assert sorted(torch.cat([p.nodes for p in parts]).flatten().tolist()) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ConfigError, match="cannot be shared by 2 processes"):
        check_data(1, 2)


def test_a_batch_that_does_not_split_is_refused():
    check_batch(64, 2)
    with pytest.raises(ConfigError, match="multiple of 3"):
        check_batch(64, 3)
