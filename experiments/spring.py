"""Spring law U = (r - 1)^2: recover it from particle data.

Headline (no flags): EQL route, 2D, 4 particles, seed 0 -> the law read from the EQL weights
and judged recovered; about 3 minutes on 2 CPU cores (measured seeds 0 and 1: recovered, OOD
R² ≥ 0.9994) (simulation ~5 s, training 16 000 steps).

Examples:
    python experiments/spring.py
    python experiments/spring.py --dims 2 3 --ns 4 8 --seeds 0 1 2 3 4 --jobs 2
    python experiments/spring.py --routes eql mlp-l1-linear+operon --compose --out runs/spring

Outputs: OUT/config.toml and one run directory per job (result.json, figures, checkpoint).
"""

from common import law_main

if __name__ == "__main__":
    law_main("spring", __doc__)
