"""Charge law U = q1 q2 / r (Coulomb): recover it from particle data.

Headline (no flags): EQL route, 2D, 4 particles, seed 0 -> the law read from the EQL weights
and judged recovered; about 5 minutes on 2 CPU cores (simulation ~5 s, training 16 000 steps).

Examples:
    python experiments/charge.py
    python experiments/charge.py --dims 2 3 --ns 4 8 --seeds 0 1 2 3 4 --jobs 2
    python experiments/charge.py --routes eql mlp-l1-linear+operon --compose --out runs/charge

Outputs: OUT/config.toml and one run directory per job (result.json, figures, checkpoint).
"""

from common import law_main

if __name__ == "__main__":
    law_main("charge", __doc__)
