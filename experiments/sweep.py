"""The grid law x dim x n x route x seed, in parallel processes, resumable; then the tables.

Examples:
    # the full EQL recovery grid (Li & Kim's comparison), 5 seeds
    python experiments/sweep.py --laws spring r1 r2 charge --dims 2 3 --ns 4 8 --seeds 0 1 2 3 4 --jobs 2
    # the 2024 reproduction's variants on 2D, 4 particles, with SR on the messages
    python experiments/sweep.py --routes mlp-standard mlp-kl mlp-bottleneck+operon mlp-l1-constant+operon \\
        mlp-l1-linear+operon mlp-l1-triangle+operon --compose --seeds 0
    python experiments/tables.py --runs runs/sweep --docs docs

Finished jobs (result.json present) are skipped, interrupted ones resume from their
checkpoint (kill the sweep at any moment and start it again), failed ones leave
failure.json and the grid goes on. Training uses CUDA when present (device "auto").
Time on 2 CPU cores: 2-5 minutes per EQL job; with --jobs 2 each job gets one core.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import grid_flags, make_jobs, run_grid, save_config

from eqlgn import ConfigError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--laws", nargs="+", default=["spring", "r1", "r2", "charge"])
    grid_flags(parser)
    parser.set_defaults(out="runs/sweep")
    args = parser.parse_args()
    try:
        jobs = make_jobs(args, args.laws)
    except ConfigError as exc:
        parser.error(str(exc))
    print(f"config: {save_config(Path(args.out), args, jobs)}")
    records = run_grid(jobs, args.jobs)
    failed = [r for r in records if r["status"] == "failed"]
    print(f"done: {len(records) - len(failed)} ran, {len(failed)} failed (see their failure.json)")


if __name__ == "__main__":
    main()
