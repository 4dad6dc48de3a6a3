"""The sparse refit with backward elimination alone, and with the forward path beside it: what each run reads.

    python experiments/refit_paths.py runs/levers/*/*

For each finished EQL run directory (its trained model is loaded, nothing is retrained) the
equations are extracted twice on the validation split, as ``eqlgn run`` does: once with the
subsets of backward elimination only (the refit before the forward path), once with the refit
as it is (``eqlgn.extraction``: a forward-path model of up to ``FORWARD_TERMS`` terms replaces
the backward path's choice when it has no more terms and no larger held-out error). Both are
cleaned and judged; the runs whose equations differ are printed with both readings, then the
count of runs passed each way (docs/method.md, "Two paths to few terms", says on which seeds
the forward path was checked).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import eqlgn
from eqlgn.extraction import FORWARD_TERMS
from eqlgn.rundir import RunDirectory
from eqlgn.targets import target_for


def readings(path: Path) -> tuple[dict, dict[str, tuple[str, list[str]]]]:
    """``(stored result, {"backward": (status, equations), "both": (status, equations)})`` of one run."""
    stored = json.loads((path / "result.json").read_text())
    directory = RunDirectory(path)
    model, (train, val, _) = directory.model_and_splits()
    target = target_for(stored.get("target", "force"))
    out = {}
    for name, forward in (("backward", 0), ("both", FORWARD_TERMS)):
        recovered = eqlgn.extract(model, val if len(val) else train, forward=forward)
        expressions = target.clean(recovered.expressions, 3)
        verdict = target.verdict(expressions, stored["law"], stored["dim"])
        out[name] = (verdict["status"], [str(e) for e in expressions])
    return stored, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished EQL run directories")
    args = parser.parse_args(argv)
    runs = [p for p in args.runs if (p / "result.json").is_file() and (p / "model.pt").is_file()]
    passed = {"backward": 0, "both": 0}
    changed = 0
    for path in runs:
        _, out = readings(path)
        for name, (status, _) in out.items():
            passed[name] += status == "passed"
        same = out["backward"][1] == out["both"][1]
        changed += not same
        print(f"{path}: backward {out['backward'][0]}, both paths {out['both'][0]}"
              + ("" if same else " (equations changed)"), flush=True)
        if not same:
            for name, (_, equations) in out.items():
                print(f"    {name}: {'; '.join(equations)}")
    print(f"{len(runs)} runs: passed {passed['backward']} with backward elimination only, {passed['both']} with both "
          f"paths; equations changed in {changed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
