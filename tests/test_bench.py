"""`eqlgn bench` runs and reports (speed itself is reported, never asserted)."""

from __future__ import annotations

import pytest

from eqlgn.bench import bench_training, training_table


@pytest.mark.parametrize("edge", ["mlp", "eql"])
@pytest.mark.parametrize("aggregation", ["dense", "index_add"])
def test_training_benchmark_reports_a_row(edge, aggregation):
    result = bench_training(edge, batch_size=8, aggregation=aggregation, steps=2)
    assert result.graphs_per_second > 0 and result.gflops > 0
    assert ("hidden 300" in result.model) == (edge == "mlp")  # the paper-size MLP GN
    assert training_table([result]).count("\n") == 2
