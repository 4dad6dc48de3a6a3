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


@dataclass
class TrainingBenchmark:
    """Training throughput of one GN configuration."""

    model: str
    batch_size: int
    aggregation: str
    graphs_per_second: float
    gflops: float  # achieved, counting 2 FLOP per multiply-add of the linear layers x 3 (fwd + bwd)

    def row(self) -> str:
        return (f"| {self.model} | {self.batch_size} | {self.aggregation} | "
                f"{self.graphs_per_second:,.0f} | {self.gflops:.1f} |")


def _linear_flops_per_graph(model, n: int) -> float:
    """Multiply-add FLOPs of all nn.Linear layers for one graph, forward + backward (x3)."""
    import torch

    from .eql import MaskedLinear

    edges = n * (n - 1)
    total = 0.0
    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Linear, MaskedLinear)):
            count = edges if name.startswith("edge_model") else n
            total += 2.0 * module.weight.numel() * count
    return 3.0 * total


def bench_training(edge: str = "mlp", batch_size: int = 64, aggregation: str = "dense",
                   steps: int = 60, n: int = 4, dim: int = 2) -> TrainingBenchmark:
    """Graphs per second of training steps (after 10 warm-up steps) on random graphs."""
    import torch

    from .data import GraphBatch
    from .train import build_model, recommended_config, training_loss

    config = recommended_config(edge, batch_size=batch_size, aggregation=aggregation, device="cpu",
                                **({"variant": "l1"} if edge == "mlp" else {}))
    model = build_model(config, 2 * dim + 2, dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    nodes = torch.randn(batch_size, n, 2 * dim + 2)
    nodes[..., -1] = nodes[..., -1].abs() + 0.5
    batch = GraphBatch(nodes, torch.randn(batch_size, n, dim))
    for i in range(steps + 10):
        if i == 10:
            start = time.perf_counter()
        loss, _, _ = training_loss(model, batch, config, 0, 1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    rate = steps * batch_size / (time.perf_counter() - start)
    name = (f"MLP GN (hidden {config.hidden}, msg {config.message_dim})" if edge == "mlp"
            else f"EQL GN (node hidden {config.node_hidden or config.hidden})")
    return TrainingBenchmark(name, batch_size, aggregation, rate, rate * _linear_flops_per_graph(model, n) / 1e9)


def training_table(results: list[TrainingBenchmark]) -> str:
    """Markdown table of training throughputs."""
    header = "| model | batch | aggregation | graphs/s | achieved GFLOP/s (linear layers) |\n"
    return header + "|---|---|---|---|---|\n" + "\n".join(r.row() for r in results)


def matmul_peak_gflops(size: int = 1024, repeats: int = 10) -> float:
    """Measured float32 matrix-multiply rate of this device (best of ``repeats``)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9
