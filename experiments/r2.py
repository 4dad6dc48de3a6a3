"""1/r^2 law U = -m1 m2 / r (gravity-like): recover it from particle data.

Headline (no flags): EQL route, 2D, 4 particles, seed 0 -> the law read from the EQL weights
and judged recovered; about 5 minutes on 2 CPU cores (measured seed 0: recovered, OOD R²
0.9991 / 0.9935) (simulation ~5 s, training 16 000 steps).

Examples:
    python experiments/r2.py
    python experiments/r2.py --dims 2 3 --ns 4 8 --seeds 0 1 2 3 4 --jobs 2
    python experiments/r2.py --routes eql mlp-l1-linear+operon --compose --out runs/r2

Outputs: OUT/config.toml and one run directory per job (result.json, figures, checkpoint).
"""

from common import law_main

if __name__ == "__main__":
    law_main("r2", __doc__)
