"""Benchmarks that print speed (never asserted in tests): ``eqlgn bench``."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class SimulationBenchmark:
    """Throughput of the simulator for one setting."""

    law: str
    dim: int
    n: int
    sims: int
    snapshots: int
    first_seconds: float
    warm_seconds: float

    @property
    def warm_rate(self) -> float:
        """Snapshots per second once compiled."""
        return self.snapshots / self.warm_seconds

    @property
    def first_rate(self) -> float:
        """Snapshots per second of the first call, compilation included."""
        return self.snapshots / self.first_seconds

    def row(self) -> str:
        return (
            f"| simulate {self.law} {self.dim}D n={self.n} sims={self.sims} | {self.snapshots} | "
            f"{self.first_seconds:.2f} s ({self.first_rate / 1e3:.0f} k/s) | "
            f"{self.warm_seconds:.2f} s ({self.warm_rate / 1e3:.0f} k/s) |"
        )


def bench_simulate(law: str = "spring", dim: int = 2, n: int = 4, sims: int = 1000,
                   repeats: int = 3) -> SimulationBenchmark:
    """Time the simulator: the first call (JIT compile included) and the best warm call."""
    from .simulator import simulate

    start = time.perf_counter()
    data = simulate(law, dim, n, sims, seed=0, progress=False)
    first = time.perf_counter() - start
    warm = []
    for seed in range(1, repeats + 1):
        start = time.perf_counter()
        simulate(law, dim, n, sims, seed=seed, progress=False)
        warm.append(time.perf_counter() - start)
    return SimulationBenchmark(law, dim, n, sims, len(data), first, min(warm))


def simulation_table(results: list[SimulationBenchmark]) -> str:
    """Markdown table of simulator throughputs (graph snapshots per second)."""
    header = "| setting | snapshots | first call (compile incl.) | warm call (best of repeats) |\n"
    header += "|---|---|---|---|\n"
    return header + "\n".join(r.row() for r in results)
