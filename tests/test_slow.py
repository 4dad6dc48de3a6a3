"""Long end-to-end runs (marked slow; CI runs them): the law from nothing."""

from __future__ import annotations

import pytest

import eqlgn


@pytest.mark.slow
def test_eql_run_recovers_spring_2d_from_a_fresh_start(tmp_path):
    """`eqlgn run --law spring --dim 2 --n 4 --edge eql` with the shared configuration."""
    result = eqlgn.run("spring", dim=2, n=4, edge="eql", seed=0, out=tmp_path / "run",
                       cache_dir=tmp_path / "cache", progress=False)
    assert result["method"] == "eql"
    assert result["judge"]["passed"], result
    assert min(result["judge"]["ood_r2"]) >= 0.98
    assert result["judge"]["condition"] > 1e-2
    for equation in result["equations"]:  # the law's structure: dx/r or dy/r terms are present
        assert "/r" in equation
