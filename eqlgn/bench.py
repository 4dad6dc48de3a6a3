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
                   steps: int = 60, n: int = 4, dim: int = 2, device: str = "cpu",
                   compile: bool = False) -> TrainingBenchmark:
    """Graphs per second of training steps (after 10 warm-up steps) on random graphs.

    ``mlp`` is the paper-size GN of Cranmer et al. (hidden 300, 100 messages, L1);
    ``eql`` is the shared EQL configuration (:func:`eqlgn.recommended_config`).
    """
    import torch

    from .build import build_model
    from .config import TrainConfig
    from .layout import NodeLayout
    from .objective import training_loss
    from .phases import EQLPhaseSchedule
    from .recipes import recommended_config
    from .train import resolve_device, training_forward

    settings = {"batch_size": batch_size, "aggregation": aggregation, "device": device, "compile": compile}
    config = TrainConfig.from_flags(**settings) if edge == "mlp" else recommended_config("eql", **settings)
    target = resolve_device(device)
    model = build_model(config, NodeLayout(dim).width, dim).to(target)
    forward = training_forward(model, config, target, 1)
    phases = EQLPhaseSchedule(config.schedule.phases, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    batch = _random_batch(batch_size, n, dim, target)
    for i in range(steps + 10):
        if i == 10:
            _sync(target)
            start = time.perf_counter()
        loss, _, _ = training_loss(model, batch, config, 0, phases, forward=forward)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _sync(target)
    rate = steps * batch_size / (time.perf_counter() - start)
    name = (f"MLP GN paper size (hidden {config.network.node.hidden}, msg {config.network.message_dim})"
            if edge == "mlp" else f"EQL GN (node hidden {config.network.node.hidden})")
    if compile:
        name += ", compiled"
    return TrainingBenchmark(name, batch_size, aggregation, rate, rate * _linear_flops_per_graph(model, n) / 1e9)


def _random_batch(batch_size: int, n: int, dim: int, device):
    """Random graphs (positive masses) and targets: what the training benchmarks step on."""
    import torch

    from .batching import GraphBatch
    from .layout import NodeLayout

    layout = NodeLayout(dim)
    nodes = torch.randn(batch_size, n, layout.width, device=device)
    nodes[..., layout.mass] = nodes[..., layout.mass].abs() + 0.5
    return GraphBatch(nodes, torch.randn(batch_size, n, dim, device=device))


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_extract(keep: float = 0.25, graphs: int = 500) -> float:
    """Seconds to read the equations of an EQL GN from its weights (:func:`eqlgn.extract`).

    The EQL has the shared configuration's size with its largest ``keep`` fraction of
    weights left after pruning (trained EQLs keep fewer, so this is an upper estimate).
    """
    import torch

    from .build import build_model
    from .data import ParticleDataset
    from .extraction import extract
    from .graph import complete_edges
    from .recipes import recommended_config
    from .simulator import simulate

    data: ParticleDataset = simulate("spring", 2, 4, max(1, graphs // 100), seed=0, progress=False)
    model = build_model(recommended_config("eql", device="cpu"), 6, 2)
    nodes = torch.as_tensor(data.nodes)
    receivers, senders = complete_edges(4)
    model.edge_model.set_scales(nodes[:, receivers], nodes[:, senders])
    weights = torch.cat([p.detach().abs().flatten() for n, p in model.edge_model.named_parameters() if "weight" in n])
    with torch.no_grad():
        model.edge_model.eql.prune(float(torch.quantile(weights, 1.0 - keep)))
    model.eval()
    start = time.perf_counter()
    extract(model, data)
    return time.perf_counter() - start


def bench_starts(counts: tuple[int, ...] = (1, 2, 4, 8), steps: int = 40, batch_size: int = 256,
                 device: str = "cpu") -> list[tuple[int, float]]:
    """Milliseconds per training step of the EQL recipe's GN with K starts side by side
    (:class:`eqlgn.multistart.SideBySide`; K = 1 is the plain loop of one run), on random 2D graphs of 4."""
    import dataclasses

    from .build import build_model
    from .checkpoint import DataShape
    from .config import StartsConfig
    from .layout import NodeLayout
    from .multistart import SideBySide
    from .objective import optimizer_for, training_loss
    from .phases import EQLPhaseSchedule
    from .recipes import recommended_config
    from .train import resolve_device

    target, layout = resolve_device(device), NodeLayout(2)
    batch = _random_batch(batch_size, 4, 2, target)
    rows = []
    for count in counts:
        config = dataclasses.replace(recommended_config("eql", device=str(target)), starts=StartsConfig(max(count, 2)))
        phases = EQLPhaseSchedule(config.schedule.phases, steps + 10)
        model = build_model(config, layout.width, 2).to(target)
        if count == 1:
            optimizer, _ = optimizer_for(model.parameters(), config, steps + 10)
        else:
            together = dataclasses.replace(config, starts=StartsConfig(count))
            side = SideBySide(model, together, phases, DataShape(2, layout.width), target)
        for i in range(steps + 10):
            if i == 10:
                _sync(target)
                start = time.perf_counter()
            if count == 1:
                loss, _, _ = training_loss(model, batch, config, i, phases)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            else:
                loss, _ = side.batched(side.params, side.buffers, batch.nodes, batch.accelerations)
                side.optimizer.zero_grad(set_to_none=True)
                loss.sum().backward()
                side.optimizer.step()
        _sync(target)
        rows.append((count, 1e3 * (time.perf_counter() - start) / steps))
    return rows


def starts_table(rows: list[tuple[int, float]]) -> str:
    """Markdown table of :func:`bench_starts`: ms per step and the cost relative to one start."""
    one = rows[0][1]
    lines = ["| starts side by side | ms per step | cost vs one start | cost per start |", "|---|---|---|---|"]
    lines += [f"| {k} | {ms:.1f} | {ms / one:.2f}× | {ms / one / k:.2f}× |" for k, ms in rows]
    return "\n".join(lines)


def training_table(results: list[TrainingBenchmark]) -> str:
    """Markdown table of training throughputs."""
    header = "| model | batch | aggregation | graphs/s | achieved GFLOP/s (linear layers) |\n"
    return header + "|---|---|---|---|---|\n" + "\n".join(r.row() for r in results)


def matmul_peak_gflops(size: int = 1024, repeats: int = 10, device: str = "cpu") -> float:
    """Measured float32 matrix-multiply rate of this device (best of ``repeats``; 4096² on CUDA)."""
    import torch

    target = torch.device(device)
    size = 4096 if target.type == "cuda" else size
    a, b = torch.randn(size, size, device=target), torch.randn(size, size, device=target)
    best = float("inf")
    for _ in range(repeats):
        _sync(target)
        start = time.perf_counter()
        a @ b
        _sync(target)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9
