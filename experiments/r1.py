"""1/r law U = m1 m2 log r (force ~ m1 m2 / r): recover it from particle data.

Headline (no flags): EQL route, 2D, 4 particles, seed 0 -> the law read from the EQL weights
and judged recovered; about 4 minutes on 2 CPU cores (measured seed 0: recovered, OOD R²
0.9994 / 0.9968) (simulation ~5 s, training 16 000 steps).

Examples:
    python experiments/r1.py
    python experiments/r1.py --dims 2 3 --ns 4 8 --seeds 0 1 2 3 4 --jobs 2
    python experiments/r1.py --routes eql mlp-l1-linear+operon --compose --out runs/r1

Outputs: OUT/config.toml and one run directory per job (result.json, figures, checkpoint).
"""

from common import law_main

if __name__ == "__main__":
    law_main("r1", __doc__)
