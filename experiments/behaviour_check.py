"""Refactors change no behaviour: record fixed-seed runs, then check that the same commands give the same.

Three short runs through the public API, each on a fixed seed:

* ``eql-spring``: spring 2D n=4, EQL edge, 800 steps on 100 simulations (warmup, sparsify,
  prune and finetune phases all happen);
* ``mlp-r1``: r1 2D n=4, MLP bottleneck, 300 steps on 100 simulations, operon SR on the messages
  and on the node model (``compose``);
* ``hamiltonian``: spring 2D n=4, Hamiltonian GN with an EQL pair energy, 400 steps;
* ``train-analyze``: ``eqlgn train`` then ``eqlgn analyze`` of an L1 MLP run (200 steps).

For each it records a SHA-256 of the final weights (every tensor of the state dict, in
order, as float64 bytes), the printed equations, the verdict and the test loss.
Training outcomes differ between CPUs, so a record only holds on the machine that wrote it::

    python experiments/behaviour_check.py --record results/behaviour/baseline-intel.json   # before
    python experiments/behaviour_check.py --check results/behaviour/baseline-intel.json    # after

``--check`` prints every field that differs and exits 1 when any does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

import eqlgn

SIM = {"dim": 2, "n": 4, "sims": 100}


def weights_sha(model_file: Path) -> str:
    """SHA-256 over the state dict of a saved model (names and float64 values, in order)."""
    state = torch.load(model_file, map_location="cpu", weights_only=False)["state"]
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(name.encode())
        digest.update(tensor.detach().to(torch.float64).contiguous().numpy().tobytes())
    return digest.hexdigest()


def summary(result, out: Path) -> dict:
    """What must not change: weights, equations, verdict, losses."""
    record = result if isinstance(result, dict) else result.to_dict()
    verdict = record.get("judge") or {}
    composed = record.get("composed") or {}
    return {"weights_sha256": weights_sha(out / "model.pt"), "equations": record["equations"],
            "status": verdict.get("status"), "ood_r2": verdict.get("ood_r2"),
            "test_loss": record["test_loss"], "node_equations": composed.get("node_equations"),
            "composed_test_loss": composed.get("test_loss")}


def run_all(root: Path) -> dict:
    """The four fixed-seed runs; ``{name: summary}``."""
    cache = root / "cache"
    records = {}
    out = root / "eql-spring"
    config = eqlgn.recommended_config("eql", steps=800, seed=3, starts=1)  # the baseline predates several starts
    records["eql-spring"] = summary(eqlgn.run("spring", **SIM, edge="eql", seed=3, out=out, train=config,
                                              cache_dir=cache, progress=False), out)
    out = root / "mlp-r1"
    config = eqlgn.recommended_config("mlp", variant="bottleneck", steps=300, seed=4)
    records["mlp-r1"] = summary(eqlgn.run("r1", **SIM, edge="mlp", seed=4, out=out, train=config, sr="operon",
                                          sr_budget=10, compose=True, cache_dir=cache, progress=False), out)
    out = root / "hamiltonian"
    config = eqlgn.recommended_config("eql", model="hamiltonian", steps=400, seed=5)
    records["hamiltonian"] = summary(eqlgn.run("spring", **SIM, edge="eql", seed=5, out=out, train=config,
                                               cache_dir=cache, progress=False), out)
    out = root / "train-analyze"
    from eqlgn import cli

    code = cli.main(["train", "--law", "r2", "--sims", "100", "--seed", "6", "--steps", "200", "--edge", "mlp",
                     "--variant", "l1", "--hidden", "64", "--batch-size", "128", "--out", str(out),
                     "--cache-dir", str(cache), "--no-progress"])
    code = code or cli.main(["analyze", str(out), "--no-figures"])
    analysis = json.loads((out / "analysis.json").read_text())
    records["train-analyze"] = {"exit": code, "weights_sha256": weights_sha(out / "model.pt"),
                                "analysis": {k: analysis[k] for k in sorted(analysis)
                                             if k in ("components", "r2", "sparsity_ratio", "spread")}}
    return records


def differences(before, after, where: str = "") -> list[str]:
    """Every leaf where two records differ, as ``path: before -> after``."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [d for k in sorted(set(before) | set(after))
                for d in differences(before.get(k), after.get(k), f"{where}/{k}")]
    return [] if before == after else [f"{where}: {before!r} -> {after!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--record", type=Path, help="write the runs' summary here")
    mode.add_argument("--check", type=Path, help="compare the runs with this summary; exit 1 on any difference")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as root:
        records = run_all(Path(root))
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        payload = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                   "runs": records}
        args.record.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"wrote {args.record}")
        return 0
    baseline = json.loads(args.check.read_text())
    found = differences(baseline["runs"], records)
    for line in found:
        print(line)
    print(f"{len(found)} difference(s) from {args.check} (recorded on {baseline['machine']})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
