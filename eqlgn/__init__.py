"""eqlgn: discover force laws from particle data with graph networks and Equation Learners.

The public API is re-exported here. Heavy modules (JAX, torch) are imported only when
one of their names is first used, so ``import eqlgn`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # errors
    "EqlgnError": "errors",
    "ConfigError": "errors",
    "DatasetError": "errors",
    "MissingDependencyError": "errors",
    # force laws
    "ForceLaw": "laws",
    "LAWS": "laws",
    "get_law": "laws",
    # data
    "ParticleDataset": "data",
    "DatasetMeta": "data",
    "GraphBatch": "batching",
    "load_dataset": "dataset_io",
    "save_dataset": "dataset_io",
    "node_feature_names": "data",
    "NodeLayout": "layout",
    # simulation
    "simulate": "simulator",
    "SimulationConfig": "simulator",
    "total_energy": "simulator",
    # models and training
    "EQL": "eql",
    "GN": "models",
    "MLPEdge": "models",
    "EQLEdge": "models",
    "TrainConfig": "config",
    "NetworkConfig": "config",
    "MLPEdgeConfig": "config",
    "EQLEdgeConfig": "config",
    "default_relative_inputs": "features",
    "NodeConfig": "config",
    "ScheduleConfig": "config",
    "L1Schedule": "config",
    "EQLPhases": "config",
    "RuntimeConfig": "sections",
    "RolloutConfig": "sections",
    "LossConfig": "sections",
    "recommended_config": "recipes",
    "build_model": "build",
    "GraphNetwork": "models",
    "TrainedModel": "checkpoint",
    "fit": "train",
    "EQLRegressor": "regressor",
    # reading the law
    "analyze": "analysis",
    "MessageAnalysis": "analysis",
    "extract": "extraction",
    "Equations": "extraction",
    "judge": "judging",
    "judge_network": "judging",
    "judge_potential": "hamiltonian",
    "Verdict": "judging",
    "judge_coverage": "judging",
    "near_misses": "judging",
    "true_law": "judging",
    "under_linear_map": "judging",
    "parse_equation": "equations",
    "evaluate_sum": "equations",
    "run": "pipeline",
    "train_run": "pipeline",
    "analyze_run": "pipeline",
    "RunResult": "result",
    "RunDirectory": "rundir",
    "Route": "routes",
    "judge_result": "targets",
    "load_data": "sources",
    "DataSource": "sources",
    # users' trajectories
    "load_trajectories": "trajectories",
    "save_trajectories": "trajectories",
    "add_noise": "trajectories",
    # symbolic regression and the classic route
    "fit_symbolic": "sr",
    "SymbolicFit": "sr",
    "ComposedModel": "symbolic",
    "compare": "comparison",
    "plot_judge_coverage": "plots",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'eqlgn' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
