"""Where learned charges start: central pair forces from the accelerations, and the signs they vote for."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import eqlgn
from eqlgn.layout import NodeLayout
from eqlgn.properties import signs_right
from eqlgn.property_starts import charge_signs, pair_forces
from eqlgn.trajectories import save_trajectories


@pytest.mark.parametrize("dim, n, free_columns", [(2, 3, 0), (2, 4, 1), (3, 4, 0), (3, 6, 3)])
def test_pair_forces_give_the_accelerations_and_are_exact_up_to_the_self_stresses(dim, n, free_columns):
    """Accelerations made from known central forces of random sign: the solved forces make the same
    accelerations, differ from the known ones only along the snapshot's self-stresses, and are exact where
    the accelerations fix them (2D: 3 particles; 3D: 4); 4 particles in 2D leave one free, 6 in 3D three."""
    data = eqlgn.simulate("spring", dim, n, 3, seed=0, progress=False)
    rng = np.random.default_rng(0)
    i, j = np.triu_indices(n, 1)
    known = rng.normal(size=(len(data), len(i)))
    unit = data.positions[:, i] - data.positions[:, j]
    unit = unit / np.linalg.norm(unit, axis=-1, keepdims=True)
    force = np.zeros((len(data), n, dim))
    np.add.at(force, (slice(None), i), known[..., None] * unit)
    np.add.at(force, (slice(None), j), -known[..., None] * unit)
    made = eqlgn.ParticleDataset(data.nodes, (force / data.masses[..., None]).astype(np.float32), data.sim_ids,
                                 data.times, replace(data.meta))
    solved, free = pair_forces(made)
    assert np.abs(free).sum(axis=1).astype(bool).sum(axis=1).tolist() == [free_columns] * len(data)
    difference = known - solved
    outside = difference - np.einsum("spq,sq->sp", free, np.einsum("spq,sp->sq", free, difference))
    np.testing.assert_allclose(outside, 0, atol=1e-4)
    if free_columns == 0:
        np.testing.assert_allclose(solved, known, atol=1e-4)


def _withheld_charges(tmp_path, dim, seed, learn=("q",)):
    data = eqlgn.simulate("charge", dim, 4, 40, seed=seed, progress=False)
    path = save_trajectories(data, tmp_path / f"charge-{dim}d-{seed}.csv")
    return eqlgn.load_trajectories(path, law="charge", learn=list(learn)), eqlgn.load_trajectories(path, law="charge")


@pytest.mark.parametrize("dim, learn", [(2, ("q",)), (2, ("m", "q")), (3, ("q",))])
def test_charge_signs_come_out_of_the_pair_forces_up_to_one_flip_per_simulation(tmp_path, dim, learn):
    """Coulomb's law, charges ±1 withheld (and the masses too): the signs are right, up to each simulation's
    flip, in most simulations (a guess: 1 in 8). Measured on 40 simulations, seeds 0-4 (AMD EPYC): 2D
    0.975-1.0, masses withheld too 0.95-1.0, 3D 1.0 (exact pair forces); asserted ≥ 0.85 on seeds 0-2."""
    for seed in (0, 1, 2):
        read, truth = _withheld_charges(tmp_path, dim, seed, learn)
        signs = charge_signs(read)[read.identities_of("q").astype(int)]
        right = signs_right(signs.ravel(), truth.charges.ravel(), np.repeat(truth.sim_ids, 4))
        assert right >= 0.85, (seed, right)


def test_a_species_column_shares_its_charges_sign_over_all_simulations():
    """Three species of charge −1, 0.5 and 2, their identities in the charge column (as a species column
    gives them): one sign pattern for all simulations, the right one."""
    data = eqlgn.simulate("charge", 2, 4, 40, seed=3, charge_choices=(-1.0, 0.5, 2.0), progress=False)
    nodes = data.nodes.copy()
    nodes[..., NodeLayout(2).charge] = np.searchsorted([-1.0, 0.5, 2.0], data.charges)
    meta = replace(data.meta, learned=["q"], identity="species", identities=3)
    species = eqlgn.ParticleDataset(nodes, data.accelerations, data.sim_ids, data.times, meta)
    assert charge_signs(species).tolist() in ([-1, 1, 1], [1, -1, -1])
