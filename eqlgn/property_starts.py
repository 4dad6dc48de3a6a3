"""Where learned masses and charges start: what the accelerations say before any law is known.

Two facts hold for any pair law in an isolated system, and each fixes part of what
:mod:`eqlgn.properties` learns before training begins:

* **Momentum conservation** (Newton's third law): ``Σ_i m_i a_i = 0`` at every snapshot, so the
  masses of one simulation are, up to one factor, the null vector of its particles'
  accelerations (:func:`inertial_masses`); :func:`momentum_groups` names the identities that
  share that factor.
* **Central pair forces**: ``m_i a_i = Σ_j F_ij (x_i − x_j)/r_ij`` with one signed magnitude
  ``F_ij`` per pair. Solved per snapshot (:func:`pair_forces`, least squares of minimum norm),
  the sign of ``F_ij`` is the sign of ``q_i q_j`` times the law's own sign, so the charges' signs
  follow, up to the flip of all of them that the law leaves free (:func:`charge_signs`). In 2D
  with 4 particles the snapshot fixes the six magnitudes only up to one self-stress (8
  equations, 3 of them momentum and angular momentum), so the signs come from a vote over
  snapshots, then from a search over each simulation's sign patterns against one pair law
  ``q_i q_j f(r)`` read from the data, the self-stresses left free (measured in docs/results.md,
  "Charges nobody measured"). In 3D with 4 particles, and for 3 particles in 2D, the magnitudes
  are exact.
"""

from __future__ import annotations

import itertools

import numpy as np

from .data import ParticleDataset

CHUNK = 4096  # snapshots per batched SVD of pair_forces
BINS = 30  # quantile bins of log r in which charge_signs reads the pair law
PATTERN_LIMIT = 8  # charge_signs tries every sign pattern of a simulation up to this many identities


def inertial_masses(data: ParticleDataset) -> np.ndarray:
    """Masses per identity from momentum conservation, ``Σ_i m_i a_i = 0`` at every snapshot (any pair law).

    Per-particle identities: for each simulation the smallest right singular vector of its
    accelerations stacked over snapshots and axes (each snapshot scaled by its largest
    acceleration, so close encounters do not decide alone), normalised to geometric mean 1.
    Species: the same with one column per species over all simulations. A simulation whose
    vector is not all positive (too noisy, or not an isolated system) keeps masses 1.
    """
    return momentum_start(data)[0]


def momentum_groups(data: ParticleDataset) -> np.ndarray:
    """The group of each identity whose masses momentum conservation fixes up to one common factor: the smallest
    identity of its simulation (of all species, with species); an identity it did not solve is its own group."""
    return momentum_start(data)[1]


def momentum_start(data: ParticleDataset) -> tuple[np.ndarray, np.ndarray]:
    """(:func:`inertial_masses`, :func:`momentum_groups`) from one pass over the simulations."""
    masses, group = np.ones(data.meta.identities), np.arange(data.meta.identities)
    for present, vector in _momentum_solutions(data):
        if vector is not None:
            masses[present], group[present] = vector, present.min()
    return masses, group


def _momentum_solutions(data: ParticleDataset) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """``(identities, masses of geometric mean 1 or None)`` per simulation (one for all, with species)."""
    ids = data.identities_of("m").astype(np.int64)
    accelerations = data.accelerations.astype(np.float64)
    scale = 1.0 / np.maximum(np.linalg.norm(accelerations, axis=-1).max(axis=1), 1e-300)
    weighted = accelerations * scale[:, None, None]  # [S, n, D]
    groups = [np.flatnonzero(data.sim_ids == s) for s in np.unique(data.sim_ids)]
    if data.meta.identity == "species":
        groups = [np.arange(len(data))]
    solutions = []
    for rows in groups:
        present = np.unique(ids[rows])
        columns = np.zeros((len(rows), data.dim, len(present)))  # Σ of a_i over the particles of each identity
        for k, identity in enumerate(present):
            columns[..., k] = (weighted[rows] * (ids[rows] == identity)[..., None]).sum(axis=1)
        vector = None
        if len(present) >= 2:
            vector = np.linalg.svd(columns.reshape(-1, len(present)), full_matrices=False)[2][-1]
            vector = vector * np.sign(vector.sum())
            vector = vector / np.exp(np.log(vector).mean()) if (vector > 0).all() else None
        solutions.append((present, vector))
    return solutions


def pair_forces(data: ParticleDataset, masses: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Central pair forces from ``m_i a_i`` per snapshot: ``(forces [S, P], free [S, P, K])``.

    ``forces`` is the signed magnitude within each pair ``i < j`` (``numpy.triu_indices`` order; positive
    pushes the two apart) of least squares' minimum-norm solution; ``free`` holds, per snapshot, an
    orthonormal basis of the ``K`` (at most) directions the accelerations do not fix (self-stresses; zero
    columns where fewer are free; float32): every ``forces + free @ λ`` gives the same accelerations.
    ``masses [S, n]`` default to the data's (pass :func:`inertial_masses`' where the masses are learned: one
    factor per simulation)."""
    n, dim = data.n_particles, data.dim
    i, j = np.triu_indices(n, 1)
    pairs = np.arange(len(i))
    positions = data.positions.astype(np.float64)
    weighted = (data.masses if masses is None else masses).astype(np.float64)[..., None] * data.accelerations
    forces, free = np.empty((len(data), len(i))), []
    for first in range(0, len(data), CHUNK):
        rows = slice(first, first + CHUNK)
        unit = positions[rows, i] - positions[rows, j]  # [s, P, D]
        unit /= np.maximum(np.linalg.norm(unit, axis=-1, keepdims=True), 1e-300)
        system = np.zeros((len(unit), n, dim, len(i)))
        system[:, i, :, pairs] = unit.transpose(1, 0, 2)
        system[:, j, :, pairs] = -unit.transpose(1, 0, 2)
        u, s, vt = np.linalg.svd(system.reshape(len(unit), n * dim, len(i)), full_matrices=True)
        values = np.zeros((len(unit), len(i)))
        values[:, : s.shape[1]] = s
        fixed = values > 1e-9 * values[:, :1]
        inverse = np.where(fixed, 1.0 / np.maximum(values, 1e-300), 0.0)[:, : s.shape[1]]
        forces[rows] = np.einsum("skp,sk,sqk,sq->sp", vt[:, : s.shape[1]], inverse, u[..., : s.shape[1]],
                                 weighted[rows].reshape(len(unit), -1))
        width = int((~fixed).sum(axis=1).max())  # the free directions are the last rows of vt
        free.append((vt[:, len(i) - width:].transpose(0, 2, 1) * ~fixed[:, None, len(i) - width:]).astype(np.float32))
    width = max(block.shape[2] for block in free)
    return forces, np.concatenate([np.pad(block, ((0, 0), (0, 0), (width - block.shape[2], 0))) for block in free])


def charge_signs(data: ParticleDataset, rounds: int = 3) -> np.ndarray:
    """``±1`` per identity of the learned charges, up to one flip per simulation (per species column, one flip
    in all), from the central pair forces of :func:`pair_forces`, assuming each is ``q_i q_j f(r)`` with one
    ``f`` of the distance.

    First each pair's sign is a vote over snapshots, each weighted by the pair's share of the snapshot's
    force, and the signs are read along the spanning tree of the most decided pairs. Then, ``rounds`` times:
    ``f`` is the median of ``F_ij / (s_i s_j)`` in quantile bins of ``log r`` over all snapshots, and each
    simulation takes the sign pattern whose forces ``α s_i s_j f(r_ij)`` (one ``α ≥ 0`` per simulation: masses
    and charges unknown up to a factor) fit its snapshots best, each snapshot's self-stresses free and its
    residual relative to its force. Groups of more than :data:`PATTERN_LIMIT` identities keep the tree's signs.
    """
    masses = data.masses
    if "m" in data.meta.learned:
        masses = inertial_masses(data)[data.identities_of("m").astype(np.int64)]
    forces, free = pair_forces(data, masses)
    i, j = np.triu_indices(data.n_particles, 1)
    ids = data.identities_of("q").astype(np.int64)
    groups = [np.arange(len(data))] if data.meta.identity == "species" else \
        [np.flatnonzero(data.sim_ids == s) for s in np.unique(data.sim_ids)]
    share = np.abs(forces) / np.maximum(np.abs(forces).sum(axis=1, keepdims=True), 1e-300)
    signs = np.ones(data.meta.identities)
    places = []  # per group: its rows, its identities, each particle's index among them
    for rows in groups:
        present, local = np.unique(ids[rows], return_inverse=True)
        places.append((rows, present, local.reshape(len(rows), -1)))
    for rows, present, local in places:
        votes = np.zeros((len(present), len(present)))
        np.add.at(votes, (local[:, i], local[:, j]), (np.sign(forces) * share)[rows])
        signs[present] = _tree_signs(votes + votes.T)
    distance = np.linalg.norm(data.positions[:, i] - data.positions[:, j], axis=-1).astype(np.float64)
    edges = np.quantile(np.log(distance), np.linspace(0, 1, BINS + 1)[1:-1])
    bins = np.searchsorted(edges, np.log(distance))  # [S, P] in 0 .. BINS - 1
    weight = 1.0 / np.maximum((forces**2).sum(axis=1), 1e-300)  # each snapshot's residual relative to its force
    for _ in range(rounds):
        products = signs[ids[:, i]] * signs[ids[:, j]]
        law = np.array([np.median((forces / products)[bins == b]) if (bins == b).any() else 0.0
                        for b in range(BINS)])
        for rows, present, local in places:
            if len(present) > PATTERN_LIMIT:
                continue
            patterns = np.array([(1, *p) for p in itertools.product((1, -1), repeat=len(present) - 1)])
            misfit = np.concatenate([  # a few patterns at a time: [K, s, P] would not fit for a large species group
                _misfit(forces[rows], free[rows], chunk[:, local[:, i]] * chunk[:, local[:, j]] * law[bins[rows]],
                        weight[rows]) for chunk in np.array_split(patterns, -(-len(patterns) // 8))])
            signs[present] = patterns[np.argmin(misfit)]
    return signs


def _misfit(forces: np.ndarray, free: np.ndarray, shapes: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``[K]`` weighted residual of ``forces [s, P]`` against ``α · shapes[k]`` (the best ``α ≥ 0`` for each
    ``k``), each snapshot's self-stresses (``free [s, P, F]``) projected out."""
    def project(x):  # the part of x the accelerations fix: x − free freeᵀ x
        return x - np.einsum("spq,...sq->...sp", free, np.einsum("spq,...sp->...sq", free, x))

    fixed, shapes = project(forces), project(shapes)
    alpha = np.einsum("s,ksp,sp->k", weight, shapes, fixed) / np.maximum(
        np.einsum("s,ksp->k", weight, shapes**2), 1e-300)
    alpha = np.maximum(alpha, 0.0)[:, None, None]
    return np.einsum("s,ksp->k", weight, (fixed[None] - alpha * shapes) ** 2)


def _tree_signs(votes: np.ndarray) -> np.ndarray:
    """Signs along the maximum spanning tree of ``|votes|`` (Prim), the first identity ``+1``; ``q_i q_j`` takes
    the sign of ``votes[i, j]``."""
    k = len(votes)
    signs, inside = np.ones(k), np.zeros(k, dtype=bool)
    inside[0] = True
    for _ in range(k - 1):
        strength = np.where(inside[:, None] & ~inside[None, :], np.abs(votes), -1.0)
        a, b = np.unravel_index(np.argmax(strength), strength.shape)
        if strength[a, b] <= 0:  # the rest is reached by no decided pair
            break
        signs[b], inside[b] = signs[a] * np.sign(votes[a, b]), True
    return signs
