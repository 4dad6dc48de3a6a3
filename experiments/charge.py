"""Charge law U = q1 q2 / r (Coulomb): recover it from particle data.

Headline (no flags): EQL route, 2D, 4 particles, seed 0, about 5 minutes on 2 CPU cores
(training 16 000 steps). Measured: NOT recovered with the shared configuration — the GN does
not fit the charge accelerations in this budget (test MAE 0.59 against 0.06 for r1), so the
equation it prints is the product clutter of docs/results.md. The MLP-bottleneck + operon
route (--routes mlp-bottleneck+operon) gets closer (OOD R² 0.40) but does not pass either.

Examples:
    python experiments/charge.py
    python experiments/charge.py --dims 2 3 --ns 4 8 --seeds 0 1 2 3 4 --jobs 2
    python experiments/charge.py --routes eql mlp-l1-linear+operon --compose --out runs/charge

Outputs: OUT/config.toml and one run directory per job (result.json, figures, checkpoint).
"""

from common import law_main

if __name__ == "__main__":
    law_main("charge", __doc__)
