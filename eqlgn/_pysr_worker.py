"""PySR in its own process: ``python -m eqlgn._pysr_worker REQUEST.npz RESPONSE.json``.

juliacall (PySR's bridge to Julia) can crash when torch is loaded in the same process,
so :func:`eqlgn.sr.fit_symbolic` runs PySR here, in a process that imports neither torch
nor JAX. The request holds ``X``, ``y``, the variable names and the PySR settings; the
response lists every expression of PySR's hall of fame as a SymPy string, with its
complexity and loss. Exit code 3 means PySR or Julia could not be loaded.
"""

from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    from eqlgn._io import atomic_write_json
    from eqlgn.sr import PYSR_UNAVAILABLE_EXIT, read_pysr_request

    if len(argv) != 2:
        print("usage: python -m eqlgn._pysr_worker REQUEST.npz RESPONSE.json", file=sys.stderr)
        return 2
    X, y, names, settings = read_pysr_request(argv[0])
    try:
        from pysr import PySRRegressor
    except Exception as exc:  # ImportError, or juliacall failing to find/install Julia
        print(f"cannot load PySR/Julia: {type(exc).__name__}: {exc}", file=sys.stderr)
        return PYSR_UNAVAILABLE_EXIT
    started = time.perf_counter()
    model = PySRRegressor(**settings, progress=False, verbosity=0, temp_equation_file=True)
    model.fit(X, y, variable_names=names)
    equations = [{"equation": str(row["sympy_format"]), "complexity": int(row["complexity"]),
                  "loss": float(row["loss"])} for _, row in model.equations_.iterrows()]
    atomic_write_json(argv[1], {"equations": equations, "seconds": time.perf_counter() - started})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
