"""Command-line interface: a thin face over the public API.

``eqlgn simulate | info | bench``. Each flag maps one to one onto an argument of the
Python function it calls. User errors (bad flags, bad files, bad values) print one
line and exit with code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import EqlgnError


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line (and exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _add_simulation_flags(p: argparse.ArgumentParser) -> None:
    from .laws import LAWS

    p.add_argument("--law", default="spring", help=f"force law: {', '.join(LAWS)} (default spring)")
    p.add_argument("--dim", type=int, default=2, help="spatial dimension, 2 or 3 (default 2)")
    p.add_argument("--n", type=int, default=4, help="particles per simulation (default 4)")
    p.add_argument("--sims", type=int, default=1000, help="number of simulations (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--steps", type=int, default=500, help="integration steps (default 500)")
    p.add_argument("--save-every", type=int, default=5, help="keep every k-th step (default 5)")
    p.add_argument("--dt", type=float, default=None, help="step size (default: the law's)")
    p.add_argument("--softening", type=float, default=0.01, help="r + eps softening (default 0.01)")
    p.add_argument("--charges", type=_float_list, default=[-1.0, 1.0],
                   help="comma-separated charge values drawn uniformly (default -1,1)")


def build_parser() -> argparse.ArgumentParser:
    """The ``eqlgn`` argument parser with all its sub-commands."""
    parser = _Parser(prog="eqlgn", description="Discover force laws from particle data.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="simulate particle systems and save a dataset (.npz)")
    _add_simulation_flags(p)
    p.add_argument("--out", required=True, help="output .npz path")
    p.add_argument("--prune-outliers", action="store_true",
                   help="drop snapshots outside 1.5 IQR of the largest acceleration")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("info", help="validate a dataset file and print its summary")
    p.add_argument("path", help="dataset .npz")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("bench", help="print throughput benchmarks")
    p.add_argument("what", nargs="?", default="simulate", choices=["simulate"],
                   help="what to benchmark (default simulate)")
    p.add_argument("--sims", type=int, default=1000, help="simulations per call (default 1000)")
    p.set_defaults(func=_cmd_bench)
    return parser


def _cmd_simulate(args: argparse.Namespace) -> int:
    from .simulator import simulate

    data = simulate(
        args.law, args.dim, args.n, args.sims, args.seed, steps=args.steps,
        save_every=args.save_every, dt=args.dt, softening=args.softening,
        charge_choices=args.charges, progress=False if args.no_progress else None,
    )
    if args.prune_outliers:
        data, dropped = data.prune_outliers()
        print(f"pruned {dropped} outlier snapshots ({dropped / (len(data) + dropped):.1%})")
    path = data.save(args.out)
    print(data.summary())
    print(f"saved {path}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .data import ParticleDataset

    print(ParticleDataset.load(args.path).summary())
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import platform

    from .bench import bench_simulate, simulation_table

    results = [bench_simulate(law, 2, 4, args.sims) for law in ("spring", "r2")]
    results.append(bench_simulate("spring", 3, 8, args.sims))
    print(f"machine: {platform.processor() or platform.machine()}, {_cores()} cores")
    print(simulation_table(results))
    return 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except EqlgnError as exc:
        if args.debug:
            raise
        print(f"eqlgn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
