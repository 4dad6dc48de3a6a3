"""Command-line interface: a thin face over the public API.

``eqlgn simulate | info | train | run | analyze | compare | bench``. Each flag maps one
to one onto an argument of the Python function it calls. User errors (bad flags, bad files, bad values) print one
line and exit with code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .derivatives import METHODS as DERIVATIVE_METHODS
from .derivatives import RUN_DEFAULT as DERIVATIVE_DEFAULT
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


def _add_simulation_flags(p: argparse.ArgumentParser, steps_flag: str = "--steps") -> None:
    from .laws import LAWS

    p.add_argument("--law", default=None, help=f"force law: {', '.join(LAWS)} (default spring; with --data: "
                   "the law to judge against, none if not given)")
    p.add_argument("--dim", type=int, default=2, help="spatial dimension, 2 or 3 (default 2)")
    p.add_argument("--n", type=int, default=4, help="particles per simulation (default 4)")
    p.add_argument("--sims", type=int, default=1000, help="number of simulations (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(steps_flag, dest="sim_steps", type=int, default=500,
                   help="integration steps per simulation (default 500)")
    p.add_argument("--save-every", type=int, default=5, help="keep every k-th step (default 5)")
    p.add_argument("--dt", type=float, default=None, help="step size (default: the law's)")
    p.add_argument("--softening", type=float, default=0.01, help="r + eps softening (default 0.01)")
    p.add_argument("--charges", type=_float_list, default=[-1.0, 1.0],
                   help="comma-separated charge values drawn uniformly (default -1,1)")


def _law(args: argparse.Namespace) -> str:
    """The law to simulate: ``--law`` as given (an empty name is an error later), spring when absent."""
    return "spring" if args.law is None else args.law


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """One ``--flag`` per training setting (``max_lr`` -> ``--max-lr``), typed and documented by its config field."""
    from .config import FLAGS

    for flag in FLAGS.values():
        if flag.name == "seed":  # one --seed for the simulation and the training
            continue
        name = f"--{flag.name.replace('_', '-')}"
        if flag.name == "inputs":
            p.add_argument(name, dest="inputs", default=None, help=flag.help,
                           type=lambda t: [v.strip() for v in t.split(",") if v.strip()])
        elif flag.type is bool:
            p.add_argument(name, dest=flag.name, action="store_true", default=None, help=flag.help)
        else:
            default = "" if "default" in flag.help else f" (default {flag.default})"
            p.add_argument(name, dest=flag.name, type=flag.type, default=None,
                           help=flag.help.replace("%", "%%") + default)


def _add_train_flags(p: argparse.ArgumentParser, out_required: bool = True) -> None:
    _add_simulation_flags(p, steps_flag="--sim-steps")
    _add_config_flags(p)
    p.add_argument("--out", required=out_required, default=None,
                   help="run directory" + ("" if out_required else " (default runs/LAW-Dd-nN-EDGE-seedS)"))
    p.add_argument("--cache-dir", default="data/cache", help="dataset cache (default data/cache)")
    p.add_argument("--prune-outliers", action=argparse.BooleanOptionalAction, default=None,
                   help="IQR-prune snapshots with extreme accelerations (default: on for run, off for train)")
    p.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _configs(args: argparse.Namespace, default_edge: str | None = None):
    """SimulationConfig and TrainConfig from parsed flags (one ``--seed`` for both).

    With ``default_edge`` the flags change :func:`eqlgn.recommended_config` of the chosen
    edge model; without, :meth:`TrainConfig.from_flags`'s defaults (Cranmer et al.'s).
    """
    from .config import FLAGS, TrainConfig
    from .recipes import recommended_config
    from .simulator import SimulationConfig

    sim = SimulationConfig(law=_law(args), dim=args.dim, n=args.n, sims=args.sims, steps=args.sim_steps,
                           save_every=args.save_every, dt=args.dt, softening=args.softening,
                           charge_choices=args.charges, seed=args.seed)
    given = {k: getattr(args, k) for k in FLAGS if k != "seed" and getattr(args, k, None) is not None}
    if default_edge:
        return sim, recommended_config(given.pop("edge", default_edge), seed=args.seed, **given)
    return sim, TrainConfig.from_flags(seed=args.seed, **given)


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
    p.add_argument("--noise", type=float, default=0.0,
                   help="relative Gaussian noise (0.05 = 5%%) added to --noise-on (default 0)")
    p.add_argument("--noise-on", default="accelerations", choices=["accelerations", "positions"],
                   help="accelerations: sigma = noise x |a| per particle; positions: sigma = noise x median "
                        "pair distance (default accelerations)")
    p.add_argument("--save-trajectories", default=None,
                   help="also write the trajectories (positions over time) as .csv or .npz, for --data")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("info", help="validate a dataset file, print its summary and where it lies relative to "
                                     "the judge's ranges")
    p.add_argument("path", help="dataset .npz")
    p.add_argument("--plot", default=None, help="also write a PNG of the data against the judge's ranges here")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("train", help="simulate (or reuse) data and train a GN into a run directory")
    _add_train_flags(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("run", help="simulate -> train -> extract -> judge; write result.json")
    _add_train_flags(p, out_required=False)
    p.add_argument("--sr", default=None,
                   help="symbolic-regression engine for MLP messages: operon (offline), pysr (needs Julia) or eql "
                        "(eqlgn's EQLRegressor)")
    p.add_argument("--sr-budget", type=int, default=100,
                   help="SR iterations per expression (PySR niterations, operon generations, EQL steps / 20; "
                        "default 100)")
    p.add_argument("--compose", action="store_true",
                   help="also fit the node model symbolically and report the composed model's test loss")
    p.add_argument("--data", nargs="+", default=None,
                   help="your data instead of a simulation: an eqlgn dataset .npz, or trajectory files and folders of "
                        "them (.csv long format sim,t,particle,x,y[,z][,q][,m][,species], simulations of any "
                        "lengths; .npz positions/times[/masses]); dim and n come from them")
    p.add_argument("--derivative", default=DERIVATIVE_DEFAULT, choices=list(DERIVATIVE_METHODS),
                   help="how accelerations are estimated from trajectory positions (default auto: the "
                        "Savitzky-Golay window chosen from the data's own noise, central differences on clean "
                        "data; central; savgol with --window)")
    p.add_argument("--window", type=int, default=7,
                   help="Savitzky-Golay window in snapshots (odd; default 7; with --derivative savgol)")
    p.add_argument("--learn", nargs="+", default=None, choices=["m", "q"],
                   help="particle properties to learn with the law even where the files give them (masses the "
                        "files leave out are learned anyway; charges they leave out are 0 unless learned); the "
                        "values go to OUT/properties.csv")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("analyze", help="analyse the messages of a trained run; write figures")
    p.add_argument("run", help="run directory written by 'eqlgn train' or 'eqlgn run'")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.set_defaults(func=_cmd_analyze)

    p = sub.add_parser("compare", help="compare routes from result.json files: table + figure")
    p.add_argument("paths", nargs="+", help="run directories (searched recursively) or result.json files")
    p.add_argument("--out", default=None, help="write OUT.md, OUT.csv and OUT.png")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("bench", help="print throughput benchmarks")
    p.add_argument("what", nargs="?", default="all", choices=["all", "simulate", "train", "extract", "starts"],
                   help="what to benchmark (default all)")
    p.add_argument("--device", default="auto", help="training device (default: CUDA when available)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd GNs (compilation excluded)")
    p.add_argument("--sims", type=int, default=1000, help="simulations per call (default 1000)")
    p.set_defaults(func=_cmd_bench)
    return parser


def _cmd_simulate(args: argparse.Namespace) -> int:
    from .simulator import simulate

    data = simulate(
        _law(args), args.dim, args.n, args.sims, args.seed, steps=args.sim_steps,
        save_every=args.save_every, dt=args.dt, softening=args.softening,
        charge_choices=args.charges, progress=False if args.no_progress else None,
    )
    if args.noise:
        from .trajectories import add_noise

        data = add_noise(data, args.noise, args.noise_on, seed=args.seed)
    if args.save_trajectories:
        from .trajectories import save_trajectories

        print(f"saved trajectories {save_trajectories(data, args.save_trajectories)}")
    if args.prune_outliers:
        data, dropped = data.prune_outliers()
        print(f"pruned {dropped} outlier snapshots ({dropped / (len(data) + dropped):.1%})")
    path = data.save(args.out)
    print(data.summary())
    print(f"saved {path}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .pipeline import train_run

    sim, config = _configs(args)
    trained = train_run(sim, config, args.out, cache_dir=args.cache_dir,
                        prune_outliers=bool(args.prune_outliers), resume=args.resume,
                        progress=False if args.no_progress else None)
    last = trained.history[-1]
    print(f"trained {config.variant} GN: epochs={last['epoch']} steps={last['step']} "
          f"train MAE={last['train_loss']:.4g} val MAE={last.get('val_loss', float('nan')):.4g}")
    print(f"saved {args.out}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .pipeline import run
    from .sources import DataSource

    sim, config = _configs(args, default_edge="eql")
    if args.learn and args.data is None:
        raise EqlgnError("--learn learns particle properties from your trajectory files: give them with --data")
    data = None if args.data is None else DataSource(args.data, args.derivative, args.window, tuple(args.learn or ()))
    result = run(args.law if data is not None else sim.law, sim.dim, sim.n, config.edge, args.seed, out=args.out,
                 sims=sim.sims, train=config,
                 prune_outliers=True if args.prune_outliers is None else args.prune_outliers,
                 cache_dir=args.cache_dir, resume=args.resume, progress=False if args.no_progress else None,
                 sr=args.sr, sr_budget=args.sr_budget, compose=args.compose, data=data)
    print(result.summary())
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from .pipeline import analyze_run

    analysis = analyze_run(args.run, figures=not args.no_figures)
    print(analysis.report())
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .comparison import compare, to_markdown

    rows = compare(args.paths, args.out)
    print(to_markdown(rows), end="")
    if args.out:
        print(f"wrote {args.out}.md, {args.out}.csv and {args.out}.png")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .data import ParticleDataset
    from .judging import judge_coverage

    data = ParticleDataset.load(args.path)
    print(data.summary())
    if len(data) and data.n_particles > 1:
        print(judge_coverage(data).report())
        if args.plot:
            from .plots import plot_judge_coverage

            print(f"wrote {plot_judge_coverage(data, args.plot)}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import importlib.util
    import platform

    from .bench import (
        bench_extract,
        bench_simulate,
        bench_starts,
        bench_training,
        matmul_peak_gflops,
        simulation_table,
        starts_table,
        training_table,
    )
    from .train import resolve_device

    device = resolve_device(args.device)
    print(f"machine: {platform.processor() or platform.machine()}, {_cores()} cores, training on {device}")
    if args.what in ("all", "simulate"):
        results = [bench_simulate(law, 2, 4, args.sims) for law in ("spring", "r2")]
        results.append(bench_simulate("spring", 3, 8, args.sims))
        print(simulation_table(results))
    if args.what in ("all", "train"):
        peak = matmul_peak_gflops(device=str(device))
        aggregations = ["dense", "index_add"] + (["torch_scatter"] if importlib.util.find_spec("torch_scatter") else [])
        rows = [bench_training(edge, b, a, device=str(device))
                for edge in ("mlp", "eql") for b in (64, 1024) for a in aggregations]
        if args.compile:
            rows += [bench_training(edge, 1024, "dense", device=str(device), compile=True) for edge in ("mlp", "eql")]
        print(training_table(rows))
        best = max(r.gflops for r in rows if r.model.startswith("MLP") and r.batch_size >= 256)
        print(f"float32 matmul peak (measured): {peak:.1f} GFLOP/s; the paper-size MLP GN at batch 1024 reaches "
              f"{best / peak:.0%} of it")
    if args.what in ("all", "starts"):
        print("several starts side by side (EQL recipe GN, batch 256, 2D, n=4):")
        print(starts_table(bench_starts(device=str(device))))
    if args.what in ("all", "extract"):
        print(f"reading equations from EQL weights (eqlgn.extract, 25% of weights kept): {bench_extract():.2f} s")
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
