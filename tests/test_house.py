"""The house: one run-directory format, a typed result, a configuration per part, size limits."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

import eqlgn
from eqlgn.cli import build_parser, main
from eqlgn.config import FLAGS, EQLEdgeConfig, L1Schedule, NetworkConfig, ScheduleConfig, TrainConfig
from eqlgn.errors import ConfigError, EqlgnError

TINY = dict(hidden=16, layers=2, batch_size=64, steps=20, device="cpu")
PACKAGE = Path(eqlgn.__file__).parent


def tiny_run(tmp_path: Path, name: str = "run", **flags) -> tuple[Path, eqlgn.RunResult]:
    out = tmp_path / name
    config = eqlgn.recommended_config("eql", **(TINY | flags))
    return out, eqlgn.run("spring", 2, 3, edge="eql", out=out, sims=10, train=config,
                          cache_dir=tmp_path / "cache", progress=False)


# --- one run directory ------------------------------------------------------------------------

def test_analyze_opens_a_directory_written_by_run(tmp_path, capsys):
    out, result = tiny_run(tmp_path)
    record = eqlgn.RunDirectory(out).read()
    assert (record.version, record.status, record.split_seed, record.law) == (2, "finished", 0, "spring")
    assert record.test_loss == result.test_loss and record.train == result.config.train
    analysis = eqlgn.analyze_run(out, figures=False)
    assert analysis.components == result.significant_components  # the same test split, the same messages
    assert main(["analyze", str(out), "--no-figures"]) == 0 and "sparsity ratio" in capsys.readouterr().out


def test_a_run_on_a_data_file_records_it_and_analyze_reads_it_back(tmp_path):
    data = eqlgn.simulate("spring", 2, 3, 10, seed=1, steps=100, progress=False)
    path = data.save(tmp_path / "d.npz")
    config = eqlgn.recommended_config("eql", **TINY)
    result = eqlgn.run("spring", edge="eql", out=tmp_path / "run", train=config, data=path, progress=False)
    assert result.config.data_source["paths"] == [str(path.resolve())]
    assert eqlgn.analyze_run(tmp_path / "run", figures=False).components == result.significant_components
    in_memory = eqlgn.run("spring", edge="eql", out=tmp_path / "mem", train=config, data=data, progress=False)
    with pytest.raises(EqlgnError, match="passed in memory"):
        eqlgn.analyze_run(tmp_path / "mem", figures=False)
    assert eqlgn.analyze_run(tmp_path / "mem", figures=False, data=data).components == \
        in_memory.significant_components


def flat(config: TrainConfig) -> dict:
    """The flat training config that versions before the nested sections saved (every field present)."""
    network, schedule, edge = config.network, config.schedule, config.network.edge
    eql = edge if isinstance(edge, EQLEdgeConfig) else EQLEdgeConfig()
    l1, phases = schedule.l1 or L1Schedule(), schedule.phases or eqlgn.EQLPhases()
    hidden = network.node.hidden if network.edge_kind == "eql" else edge.hidden
    return {"edge": network.edge_kind, "variant": network.variant, "message_dim": network.message_dim or 100,
            "hidden": hidden, "layers": network.node.layers, "aggregation": network.aggregation,
            "batch_size": schedule.batch_size, "epochs": schedule.epochs, "steps": schedule.steps,
            "max_lr": schedule.max_lr, "final_div": schedule.final_div, "weight_decay": schedule.weight_decay,
            "l1": l1.start, "l1_end": l1.end, "schedule": l1.shape, "kl": schedule.kl or 1.0,
            "augment": schedule.augment, "device": config.runtime.device, "seed": config.seed,
            "node_hidden": None if network.node.hidden == hidden else network.node.hidden,
            "inputs": eql.inputs, "eql_layers": eql.layers, "eql_identity": eql.identity,
            "eql_product": eql.product, "eql_init": eql.init, "eql_l1": phases.l1, "warmup": phases.warmup,
            "prune_at": phases.prune_at, "prune_threshold": phases.prune_threshold, "r_min": eql.r_min,
            "grad_clip": schedule.grad_clip, "compile": False, "precision": "fp32", "model": network.kind}


def test_directories_of_earlier_versions_load(tmp_path):
    """An `eqlgn run` directory with only result.json, and an `eqlgn train` run.json without a version."""
    out, result = tiny_run(tmp_path, starts=1)  # versions without the starts section trained one start
    old = flat(result.config.train)
    assert TrainConfig.from_dict(old) == result.config.train
    payload = torch.load(out / "model.pt", weights_only=False)
    payload["config"] = old
    torch.save(payload, out / "model.pt")
    record = json.loads((out / "result.json").read_text())
    record["config"]["train"] = old
    del record["version"]
    (out / "result.json").write_text(json.dumps(record))
    (out / "run.json").unlink()
    assert eqlgn.analyze_run(out, figures=False).components == result.significant_components
    simulation = record["config"]["simulation"]
    (out / "run.json").write_text(json.dumps({"simulation": simulation, "train": old, "prune_outliers": True,
                                              "cache_dir": str(tmp_path / "cache"), "status": "trained"}))
    assert eqlgn.RunDirectory(out).read().split_seed == 0  # format 1: the training seed split the data
    assert eqlgn.analyze_run(out, figures=False).components == result.significant_components
    (out / "run.json").write_text(json.dumps({"version": 99, "train": old}))
    with pytest.raises(EqlgnError, match="newer than this eqlgn"):
        eqlgn.RunDirectory(out).read()


def test_a_result_round_trips_through_its_file(tmp_path):
    out, result = tiny_run(tmp_path)
    back = eqlgn.RunResult.load(out)
    assert back.to_dict() == json.loads((out / "result.json").read_text())
    assert back.route.name == "eql" and back.route.gn == "eql bottleneck" and back.seconds.total > 0
    with pytest.raises(EqlgnError, match="not an eqlgn result"):
        eqlgn.RunResult.from_dict({"law": "spring"})


# --- a configuration per part -----------------------------------------------------------------

@pytest.mark.parametrize("flags", [{}, {"edge": "eql"}, {"variant": "kl", "kl": 0.5}, {"variant": "bottleneck"},
                                   {"edge": "eql", "model": "hamiltonian", "variant": "standard"},
                                   {"variant": "l1", "schedule": "triangle", "node_hidden": 64}])
def test_configs_round_trip_through_their_saved_form(flags):
    config = TrainConfig.from_flags(**flags)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert TrainConfig.from_dict(flat(config)) == config


@pytest.mark.parametrize("edge, flags, match", [
    ("mlp", {"eql_l1": 0.1}, "eql_l1 do not apply"),
    ("mlp", {"variant": "bottleneck", "message_dim": 8}, "message_dim do not apply"),
    ("mlp", {"variant": "standard", "schedule": "linear"}, "schedule do not apply"),
    ("eql", {"kl": 2.0}, "kl do not apply"),
    ("eql", {"learning_rate": 1.0}, "unknown training setting"),
])
def test_a_setting_that_does_not_apply_is_refused(edge, flags, match):
    with pytest.raises(ConfigError, match=match):
        eqlgn.recommended_config(edge, **flags)


def test_sections_that_do_not_apply_are_refused_and_missing_ones_filled():
    with pytest.raises(ConfigError, match="schedule.l1 does not apply"):
        TrainConfig(NetworkConfig(variant="bottleneck"), ScheduleConfig(l1=L1Schedule()))
    with pytest.raises(ConfigError, match="message_dim does not apply"):
        NetworkConfig(variant="bottleneck", message_dim=8)
    config = TrainConfig(NetworkConfig(edge=EQLEdgeConfig(), variant="kl"))
    assert config.schedule.kl == 1.0 and config.schedule.phases is not None and config.schedule.l1 is None
    recipe = eqlgn.recommended_config("mlp", variant="bottleneck")  # the recipe's L1 schedule is dropped
    assert recipe.schedule.l1 is None and recipe.network.message_dim is None


def test_cli_flags_and_their_help_come_from_the_config_fields(capsys):
    run = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == "run")[1]
    helps = {a.dest: a.help for a in run._actions}
    for name, flag in FLAGS.items():
        if name != "seed":
            assert flag.help.replace("%", "%%") in helps[name], name
    assert main(["run", "--edge", "mlp", "--eql-l1", "0.1", "--out", "/nonexistent/x"]) == 2
    assert "eql_l1 do not apply" in capsys.readouterr().err


def test_resuming_with_another_setting_names_it(small_spring, tmp_path):
    train, val, _ = small_spring.split(seed=0)
    eqlgn.fit(train, TrainConfig.from_flags(**TINY), out=tmp_path, progress=False)
    with pytest.raises(EqlgnError, match=r"schedule.max_lr=0.001 \(now 0.002\)"):
        eqlgn.fit(train, TrainConfig.from_flags(**TINY, max_lr=2e-3), out=tmp_path, resume=True, progress=False)


# --- networks ---------------------------------------------------------------------------------

def test_bf16_keeps_the_hamiltonian_penalty(small_spring):
    """The autocast wrapper returns every output field (it once rebuilt the output without ``penalty``)."""
    from eqlgn.train import training_forward

    config = eqlgn.recommended_config("eql", model="hamiltonian", precision="bf16", device="cpu")
    model = eqlgn.build_model(config, 6, 2)
    assert isinstance(model, eqlgn.GraphNetwork)
    model.train()
    out = training_forward(model, config, torch.device("cpu"), 1)(torch.as_tensor(small_spring.nodes[:8]))
    assert out.penalty is not None and out.penalty.dtype == torch.float32 and out.penalty > 0
    assert out.accelerations.dtype == torch.float32


def test_routes_name_parse_and_describe_configs():
    for name in ("eql", "mlp-l1-linear+operon", "mlp-bottleneck+pysr", "mlp-kl", "eql-hamiltonian"):
        route = eqlgn.Route.parse(name)
        assert route.name == name
        assert eqlgn.Route.of(route.config(seed=0), route.engine).name == name


# --- size limits --------------------------------------------------------------------------------

def test_modules_classes_and_signatures_stay_small():
    """No module over 450 lines, no class over 200, no function with over 9 positional parameters (7 private)."""
    faults = []
    for path in sorted(PACKAGE.glob("*.py")):
        text = path.read_text()
        if text.count("\n") > 450:
            faults.append(f"{path.name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 200:
                faults.append(f"{path.name}: class {node.name} {node.end_lineno - node.lineno + 1} lines")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                positional = [a for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
                limit = 7 if node.name.startswith("_") and not node.name.startswith("__") else 9
                if len(positional) > limit:
                    faults.append(f"{path.name}: {node.name}() takes {len(positional)} positional parameters")
    assert not faults, faults
