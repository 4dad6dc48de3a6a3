"""Particle properties nobody measured, learned with the law: the table, the training, the run."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import eqlgn
from eqlgn.cli import main
from eqlgn.models import GN, NodeMLP
from eqlgn.properties import (
    LearnedProperties,
    MassErrors,
    WithProperties,
    agreement,
    bake,
    properties_table,
    signs_right,
)
from eqlgn.property_starts import inertial_masses
from eqlgn.sources import DataSource, split_in_time
from eqlgn.symbolic_edge import SymbolicEdge
from eqlgn.trajectories import save_trajectories


def test_the_table_fills_each_identitys_value_and_learns_from_the_loss():
    table = LearnedProperties(2, ("m", "q"), identities=3, seed=0)
    with torch.no_grad():
        table.log_mass.copy_(torch.log(torch.tensor([1.0, 2.0, 4.0])))
    nodes = torch.tensor([[[0.1, 0.2, 0.3, 0.4, 2.0, 2.0], [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]]])
    filled = table(nodes)
    assert filled[0, :, 5].tolist() == pytest.approx([4.0, 1.0])
    assert filled[0, :, 4].tolist() == pytest.approx([table.charge[2].item(), table.charge[0].item()])
    assert torch.equal(filled[..., :4], nodes[..., :4])
    filled[..., 4:].sum().backward()
    assert table.log_mass.grad.tolist() == pytest.approx([1.0, 0.0, 4.0]) and table.charge.grad.tolist() == [1, 0, 1]


def test_the_table_names_the_species_of_each_learned_value(tmp_path):
    """A species column (positions only, masses learned per species): properties.csv's rows carry the labels."""
    data = eqlgn.simulate("spring", 2, 3, 4, seed=0, steps=50, progress=False)
    lines = save_trajectories(data, tmp_path / "t.csv").read_text().splitlines()
    names = ["ion", "grain", "dust, fine"]  # a label that needs quoting in CSV
    rows = [",".join(line.split(",")[:5]) + f',"{names[int(line.split(",")[2])]}"' for line in lines[1:]]
    path = tmp_path / "species.csv"
    path.write_text("\n".join(["sim,t,particle,x,y,species", *rows]) + "\n")
    read = eqlgn.load_trajectories(path, law="spring")
    assert (read.meta.learned, read.meta.identity, read.meta.species) == (["m"], "species",
                                                                        ["dust, fine", "grain", "ion"])
    network = GN(SymbolicEdge(["dx", "dy"], 2, 2), NodeMLP(6, 2, 2, 8, 1), "bottleneck")
    model = WithProperties(network, LearnedProperties(2, ("m",), read.meta.identities))
    table = properties_table(model, read, read)
    assert [(row["identity"], row["species"]) for row in table] == [(0, "dust, fine"), (1, "grain"), (2, "ion")]
    _, (filled,) = bake(model, read)
    assert filled.meta.species == [] and (filled.masses == 1).all()


def test_agreement_forgives_what_the_law_leaves_free():
    truth = np.array([0.5, 1.0, 2.0, 4.0])
    assert agreement(3 * truth, truth, "m") == pytest.approx(1.0)
    assert agreement(truth[::-1], truth, "m") < 0
    charges = np.array([1.0, -1.0, -1.0, 1.0])
    assert agreement(-0.2 * charges, charges, "q") == pytest.approx(1.0)
    assert agreement(np.array([1.0, 1.0, -1.0, -1.0]), charges, "q") < 0.5
    flipped = np.array([1.0, -1.0, 1.0, -1.0])  # the second simulation's charges all flipped
    assert agreement(flipped, charges, "q") < 0.5
    assert agreement(flipped, charges, "q", groups=np.array([0, 0, 1, 1])) == pytest.approx(1.0)
    sims = np.array([0, 0, 1, 1])  # both learned: m -> c m and q -> sqrt(c) q within a simulation change nothing
    masses, both = truth * np.array([1, 1, 9, 9]), flipped * np.array([1, 1, 3, 3])
    assert agreement(masses, truth, "m") < 0.9 and agreement(masses, truth, "m", factors=sims) == pytest.approx(1.0)
    assert agreement(both, charges, "q", sims) < 0.9
    assert agreement(both, charges, "q", sims, factors=sims) == pytest.approx(1.0)
    assert MassErrors.of(masses, truth, factors=sims).within_10_percent == 1.0
    assert MassErrors.of(masses, truth).within_10_percent == 0.0  # one factor: every particle off by 3x


def test_mass_errors_per_particle_are_not_decided_by_one_outlier():
    truth = np.geomspace(0.5, 4.0, 20)
    learned = 3 * truth * np.where(np.arange(20) % 2 == 0, 1.05, 1 / 1.05)  # every particle 5 % off, one factor
    learned[0] = 3 * truth[0] * 100  # and one particle a hundred times off
    errors = MassErrors.of(learned, truth)
    assert errors.log_r2 < 0.5  # one particle decides the log-R² ...
    assert errors.median_log_error == pytest.approx(np.log(1.05), rel=1e-6)  # ... not the per-particle figures
    assert errors.within_10_percent == pytest.approx(19 / 20) and errors.particles == 20
    assert MassErrors.of(2 * truth, truth).within_10_percent == 1.0
    with pytest.raises(ValueError, match="positive"):
        MassErrors.of(np.array([1.0, -1.0]), np.array([1.0, 1.0]))


@pytest.fixture(scope="module")
def withheld(tmp_path_factory):
    """Gravity trajectories (2D, 4 bodies, 40 simulations) read back with their masses withheld, and the truth."""
    data = eqlgn.simulate("r2", 2, 4, 40, seed=0, progress=False)
    path = save_trajectories(data, tmp_path_factory.mktemp("withheld") / "gravity.csv")
    read = eqlgn.load_trajectories(path, law="r2", learn=["m"])
    truth = eqlgn.load_trajectories(path, law="r2").masses
    return path, read, truth


def test_momentum_conservation_gives_the_masses_within_each_simulation_whatever_the_law(withheld, tmp_path):
    """Σ m_i a_i = 0 at every snapshot: exact accelerations give the masses up to one factor per simulation."""
    _, read, truth = withheld
    estimate = inertial_masses(read)[read.identities_of("m").astype(int)]
    first = read.sim_ids == read.sim_ids[0]
    for masses in (estimate, truth):  # both rows of one simulation, normalised to geometric mean 1
        masses[first] = masses[first] / np.exp(np.log(masses[first][0]).mean())
    np.testing.assert_allclose(estimate[first], truth[first], rtol=1e-3)
    for law in ("spring", "charge"):  # any pair law: a species column shares the masses over simulations
        data = eqlgn.simulate(law, 2, 3, 6, seed=1, progress=False)
        masses = np.array([0.5, 1.0, 3.0])[np.arange(len(data) * 3).reshape(-1, 3) % 3]
        nodes = data.nodes.copy()
        nodes[..., 5] = np.arange(3)  # the identities of three species, one per particle slot
        accelerations = data.accelerations * data.masses[..., None] / masses[..., None]  # same forces
        meta = replace(data.meta, learned=["m"], identity="species", identities=3)
        species = eqlgn.ParticleDataset(nodes, accelerations, data.sim_ids, data.times, meta)
        found = inertial_masses(species)
        np.testing.assert_allclose(found / found[1], [0.5, 1.0, 3.0], rtol=1e-3)


def test_masses_are_learned_with_a_known_law_up_to_one_factor(withheld):
    """The edge model fixed to Newton's law (constant trainable): only the masses and the node model learn, each
    mass on its own (``masses="free"``; the default keeps each simulation's ratios: the next test).

    On IQR-pruned data, as a run prunes them (unpruned, close encounters of the softened simulator pull
    the masses off). The masses start from momentum conservation, right within each simulation but
    with an arbitrary factor per simulation (log-R² 0.767 alone): training must find those factors.
    Measured (Intel Xeon, 1500 steps): log-R² after one global factor 0.978, 0.978, 0.973 (seeds
    0-2; from masses all 1: 0.980, 0.988, 0.991); asserted > 0.9 on each.
    """
    torch.set_num_threads(1)
    _, read, truth = withheld
    train, val, _ = split_in_time(read.prune_outliers()[0])
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        network = GN(SymbolicEdge(["0.5*m2*dx/r**3", "0.5*m2*dy/r**3"], 2, 2, r_min=0.01),
                     NodeMLP(6, 2, 2, 32, 2), "bottleneck")
        model = WithProperties(network, LearnedProperties(2, ("m",), read.meta.identities, seed))
        config = eqlgn.recommended_config("mlp", variant="bottleneck", steps=1500, seed=seed, hidden=32, layers=2,
                                          device="cpu", masses="free")
        trained = eqlgn.fit(train, config, val=val, model=model, progress=False).model
        _, (filled,) = bake(trained, read)
        r2 = agreement(filled.masses.ravel(), truth.ravel(), "m")
        assert r2 > 0.9, (seed, r2)


def test_a_run_that_learns_masses_writes_them_and_reads_its_equations_from_filled_data(withheld, tmp_path):
    path, read, _ = withheld
    config = eqlgn.recommended_config("eql", steps=60, starts=2, hidden=16, layers=2, batch_size=64, device="cpu")
    result = eqlgn.run("r2", edge="eql", out=tmp_path / "run", data=DataSource(str(path), learn=("m",)),
                       train=config, progress=False)
    learned = result.data["learned"]
    assert {k: learned[k] for k in ("properties", "identity", "identities", "file")} == {
        "properties": ["m"], "identity": "particle", "identities": 160, "file": "properties.csv"}
    assert "learned masses of 160 particles" in result.summary()
    lines = (tmp_path / "run" / "properties.csv").read_text().splitlines()
    assert lines[0] == "identity,sim,particle,snapshots,m" and len(lines) == 161
    untrained = [line for line in lines[1:] if line.split(",")[3] == "0"]
    assert len(untrained) == learned["untrained"] and all(line.endswith(",1.0") for line in untrained)
    few = [line for line in lines[1:] if 0 < int(line.split(",")[3]) < 10]
    assert learned["poorly_fixed"] == {"count": len(few), "below_snapshots": 10}
    model, (train, val, test) = eqlgn.rundir.RunDirectory(tmp_path / "run").model_and_splits()
    assert isinstance(model, GN) and train.meta.learned == [] and (test.masses > 0).all()
    both = np.intersect1d(train.sim_ids, test.sim_ids)  # IQR pruning may empty a simulation's test part
    assert len(both) > 30 and all(test.times[test.sim_ids == s].min() > train.times[train.sim_ids == s].max()
                                  for s in both)
    assert main(["run", "--learn", "m", "--out", str(tmp_path / "r2")]) == 2


def test_mass_ratios_mode_keeps_each_simulations_ratios_and_learns_one_factor_each(withheld):
    """``masses="ratios"``: after training (two starts side by side) the masses of every simulation are momentum
    conservation's up to one factor, which training moved; with Newton's law known the factors come out right.

    Measured (AMD EPYC, the known-law part, 1500 steps): log-R² 0.9952, 0.9953, 0.9947 on seeds 0-2, against 0.982,
    0.978, 0.974 with ``masses="free"`` (the test above); asserted > 0.98 on seed 0."""
    torch.set_num_threads(1)
    _, read, truth = withheld
    train, val, _ = split_in_time(read.prune_outliers()[0])
    config = eqlgn.recommended_config("eql", steps=40, starts=2, hidden=16, layers=2, batch_size=64, device="cpu",
                                      masses="ratios")
    model = eqlgn.fit(train, config, val=val, progress=False).model
    start = inertial_masses(train)
    learned = model.properties.values("m").detach().numpy()
    ids = train.identities_of("m").astype(int)
    factors = []
    for sim in np.unique(train.sim_ids):
        present = np.unique(ids[train.sim_ids == sim])
        np.testing.assert_allclose(learned[present] / start[present], learned[present[0]] / start[present[0]],
                                   rtol=1e-5)
        factors.append(learned[present[0]] / start[present[0]])
    assert np.ptp(np.log(factors)) > 1e-3  # training moved the factors, not the same for every simulation

    torch.manual_seed(0)  # Newton's law given: the factors are what is left to learn
    network = GN(SymbolicEdge(["0.5*m2*dx/r**3", "0.5*m2*dy/r**3"], 2, 2, r_min=0.01), NodeMLP(6, 2, 2, 32, 2),
                 "bottleneck")
    model = WithProperties(network, LearnedProperties(2, ("m",), read.meta.identities, 0))
    config = eqlgn.recommended_config("mlp", variant="bottleneck", steps=1500, seed=0, hidden=32, layers=2,
                                      device="cpu", masses="ratios")
    _, (filled,) = bake(eqlgn.fit(train, config, val=val, model=model, progress=False).model, read)
    assert agreement(filled.masses.ravel(), truth.ravel(), "m") > 0.98


def test_charges_are_learned_with_a_known_law_from_the_signs_of_the_pair_forces(tmp_path):
    """Coulomb's law fixed (its constant and the node model trained), charges ±1 withheld: started from the pair
    forces' signs (``charges="pairs"``, the default), the learned charges match the truth up to a factor and a
    sign per simulation. Measured (AMD EPYC, 1500 steps, 40 simulations): R² 0.861 and 0.770, signs right in
    95 % and 97.5 % of simulations (seeds 0, 1); from random starts (``"random"``) R² 0.507 and 0.455.
    Asserted: R² > 0.6 and signs right in ≥ 80 % of simulations on each seed."""
    torch.set_num_threads(1)
    for seed in (0, 1):
        data = eqlgn.simulate("charge", 2, 4, 40, seed=seed, progress=False)
        path = save_trajectories(data, tmp_path / f"charge-{seed}.csv")
        read = eqlgn.load_trajectories(path, law="charge", learn=["q"])
        truth = eqlgn.load_trajectories(path, law="charge").charges
        train, val, _ = split_in_time(read.prune_outliers()[0])
        torch.manual_seed(seed)
        network = GN(SymbolicEdge(["0.5*q1*q2*dx/r**3", "0.5*q1*q2*dy/r**3"], 2, 2, r_min=0.01),
                     NodeMLP(6, 2, 2, 32, 2), "bottleneck")
        model = WithProperties(network, LearnedProperties(2, ("q",), read.meta.identities, seed))
        config = eqlgn.recommended_config("mlp", variant="bottleneck", steps=1500, seed=seed, hidden=32, layers=2,
                                          device="cpu")
        _, (filled,) = bake(eqlgn.fit(train, config, val=val, model=model, progress=False).model, read)
        sims = np.repeat(read.sim_ids, 4)
        r2 = agreement(filled.charges.ravel(), truth.ravel(), "q", sims)
        right = signs_right(filled.charges.ravel(), truth.ravel(), sims)
        assert r2 > 0.6 and right >= 0.8, (seed, r2, right)
