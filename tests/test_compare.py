"""`eqlgn compare` on fixed result files, and an MLP + operon run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eqlgn.cli import main
from eqlgn.comparison import comparison_rows
from eqlgn.errors import EqlgnError
from eqlgn.result import RunResult


def result(law: str, method: str, equations: list[str], passed: bool, ood: list[float], train: float) -> dict:
    return {"law": law, "dim": 2, "n_particles": 4, "edge_model": "eql" if method == "eql" else "mlp",
            "method": method, "seed": 0, "equations": equations,
            "judge": {"passed": passed, "status": "passed" if passed else "failed", "ood_r2": ood,
                      "receiver_factor": "1", "condition": 0.9},
            "test_loss": 0.05, "seconds": {"simulate": 1.0, "train": train, "extract": 2.0, "total": train + 3}}


EXPECTED = """\
| law | dim | n | seed | route | gn | passed | ood_r2 | complexity | train_s | extract_s | test_loss | equations |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
| spring | 2 | 4 | 0 | eql | eql | yes | 0.9950 | 13 | 60 | 2 | 0.0500 | `0.175*dx - 0.182*dx/r; 0.13*dy` |
| spring | 2 | 4 | 0 | operon | mlp | no | 0.5000 | 7 | 120 | 2 | 0.0500 | `1.23*dx; -0.5*dy*r` |
"""


def test_compare_prints_the_expected_table(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "result.json").write_text(json.dumps(
        result("spring", "operon", ["1.23456*dx", "-0.5*dy*r"], False, [0.5, 0.9], 120.0)))
    (tmp_path / "b" / "result.json").write_text(json.dumps(
        result("spring", "eql", ["0.17512*dx - 0.18234*dx/r", "0.13*dy"], True, [0.995, 0.999], 60.0)))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(EXPECTED)
    assert (tmp_path / "cmp.md").read_text() == EXPECTED
    csv_lines = (tmp_path / "cmp.csv").read_text().splitlines()
    assert csv_lines[0] == "law,dim,n,seed,route,gn,passed,ood_r2,complexity,train_s,extract_s,test_loss,equations"
    assert len(csv_lines) == 3 and (tmp_path / "cmp.png").stat().st_size > 1000


def test_compare_refuses_files_that_are_not_results(tmp_path, capsys):
    bad = tmp_path / "result.json"
    bad.write_text(json.dumps({"law": "spring"}))
    with pytest.raises(EqlgnError, match="not an eqlgn result"):
        RunResult.load(bad)
    assert main(["compare", str(tmp_path)]) == 2
    assert "not an eqlgn result" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "missing")]) == 2


def test_equations_in_result_files_are_parsed_safely():
    record = result("spring", "operon", ["__import__('os').getcwd()", "dx"], False, [0.1, 0.1], 1.0)
    with pytest.raises(EqlgnError, match="__import__"):
        comparison_rows([RunResult.from_dict(record)])


def test_mlp_run_with_operon_writes_an_sr_result(tmp_path):
    pytest.importorskip("pyoperon")
    import eqlgn

    config = eqlgn.recommended_config("mlp", steps=150, hidden=32, batch_size=64)
    out = tmp_path / "run"
    record = eqlgn.run("spring", 2, 4, edge="mlp", seed=0, out=out, sims=40, train=config, cache_dir=None,
                       progress=False, sr="operon", sr_budget=5, compose=True)
    assert record.method == "operon" and len(record.equations) == 2 and record.route.name == "mlp-l1-linear+operon"
    assert set(record.judge) >= {"passed", "status", "ood_r2", "receiver_factor", "condition"}
    assert record.composed["engine"] == "operon" and len(record.composed["node_equations"]) == 2
    assert all(np.isfinite(record.composed[k]) for k in ("test_loss", "test_loss_refit", "gn_test_loss"))
    saved = json.loads((out / "result.json").read_text())
    assert saved["equations"] == record.equations
    fits = json.loads((out / "sr_fits.json").read_text())
    assert len(fits) == 2 and all(f["engine"] == "operon" and f["candidates"] for f in fits)
    with pytest.raises(eqlgn.ConfigError, match="did you mean 'operon'"):
        eqlgn.run("spring", edge="mlp", sr="operom", out=tmp_path / "x")
    with pytest.raises(eqlgn.ConfigError, match="read from its weights"):
        eqlgn.run("spring", edge="eql", sr="operon", out=tmp_path / "y")
