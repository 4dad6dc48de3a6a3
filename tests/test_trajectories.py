"""Users' trajectories: loaders, estimated accelerations (second order), malformed files, noise."""

from __future__ import annotations

import numpy as np
import pytest

import eqlgn
from eqlgn.cli import main
from eqlgn.errors import ConfigError, DatasetError
from eqlgn.sources import split_in_time
from eqlgn.trajectories import add_noise, from_trajectories, load_trajectories, save_trajectories, trajectories_of

# (law, base stride): strides at which the truncation error dominates float32 rounding
STRIDES = [("spring", 4), ("r1", 8), ("r2", 32), ("charge", 32)]


def median_relative_error(estimated: np.ndarray, exact: np.ndarray) -> float:
    return float(np.median(np.linalg.norm(estimated - exact, axis=-1) / np.linalg.norm(exact, axis=-1)))


@pytest.mark.parametrize("law, base", STRIDES)
def test_central_differences_are_second_order_in_the_step(law, base):
    data = eqlgn.simulate(law, 2, 4, 20, seed=0, steps=2000, save_every=1, progress=False)
    positions, times, masses, charges = trajectories_of(data)
    exact = data.accelerations[np.lexsort((data.times, data.sim_ids))].reshape(20, -1, 4, 2)
    errors = []
    for stride in (4 * base, 2 * base):
        estimated = from_trajectories(positions[:, ::stride], times[::stride], masses, charges, law=law)
        errors.append(median_relative_error(estimated.accelerations, exact[:, ::stride][:, 1:-1].reshape(-1, 4, 2)))
        assert estimated.meta.derivatives == "central differences"
    assert 3.2 < errors[0] / errors[1] < 5.0, errors  # halving the step quarters the error
    assert errors[1] < 0.01


def test_savgol_estimates_accelerations_from_noisy_positions():
    data = eqlgn.simulate("spring", 2, 4, 10, seed=1, steps=1000, save_every=1, progress=False)
    positions, times, masses, charges = trajectories_of(data)
    exact = data.accelerations[np.lexsort((data.times, data.sim_ids))].reshape(10, -1, 4, 2)
    noisy = positions + 1e-4 * np.random.default_rng(0).normal(size=positions.shape)
    stride = 4
    central = from_trajectories(noisy[:, ::stride], times[::stride], masses, charges)
    smooth = from_trajectories(noisy[:, ::stride], times[::stride], masses, charges, method="savgol", window=9)
    truth = exact[:, ::stride]
    error_central = median_relative_error(central.accelerations, truth[:, 1:-1].reshape(-1, 4, 2))
    error_smooth = median_relative_error(smooth.accelerations, truth[:, 4:-4].reshape(-1, 4, 2))
    assert error_smooth < 0.5 * error_central
    assert smooth.meta.derivatives == "savgol(window=9, order=3)"


def test_csv_and_npz_give_the_same_dataset(tmp_path):
    data = eqlgn.simulate("charge", 3, 3, 4, seed=0, steps=60, progress=False)
    a = load_trajectories(save_trajectories(data, tmp_path / "t.csv"), law="charge")
    b = load_trajectories(save_trajectories(data, tmp_path / "t.npz"), law="charge")
    for name in ("nodes", "accelerations", "sim_ids", "times"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.dim, a.n_particles, len(a)) == (3, 3, 4 * (12 - 2))
    np.testing.assert_array_equal(a.charges[:, 0], np.repeat(trajectories_of(data)[3][:, 0], 10))
    assert a.meta.law == "charge" and a.meta.integrator == "trajectory file"


def _rows(path):
    header, *rows = path.read_text().splitlines()
    return header, rows


def test_ragged_simulations_in_one_file_read_as_each_on_its_own(tmp_path):
    """Sims of different lengths and time steps in one CSV: each is differentiated on its own times."""
    data = eqlgn.simulate("r2", 2, 3, 3, seed=0, steps=60, progress=False)  # 12 snapshots per sim
    header, rows = _rows(save_trajectories(data, tmp_path / "t.csv"))
    by_sim = [[r for r in rows if r.startswith(f"{s},")] for s in range(3)]
    # sim 1 loses its last 4 times; sim 2 keeps every other time (twice the step)
    times = sorted({float(r.split(",")[1]) for r in by_sim[0]})
    kept = [by_sim[0], [r for r in by_sim[1] if float(r.split(",")[1]) <= times[7]],
            [r for r in by_sim[2] if times.index(float(r.split(",")[1])) % 2 == 0]]
    ragged = load_trajectories(write_csv(tmp_path / "ragged.csv", sum(kept, []), header), law="r2")
    assert [int((ragged.sim_ids == s).sum()) for s in range(3)] == [10, 6, 4]
    assert ragged.meta.dt is None and ragged.meta.sims == 3  # the steps differ
    for s, part in enumerate(kept):  # the same as that simulation alone in its own file
        alone = load_trajectories(write_csv(tmp_path / f"alone{s}.csv", part, header))
        np.testing.assert_array_equal(ragged.accelerations[ragged.sim_ids == s], alone.accelerations)
        np.testing.assert_array_equal(ragged.times[ragged.sim_ids == s], alone.times)


def test_several_files_or_a_folder_make_one_dataset(tmp_path):
    data = eqlgn.simulate("spring", 2, 3, 4, seed=0, steps=60, progress=False)
    whole = load_trajectories(save_trajectories(data, tmp_path / "whole.csv"))
    header, rows = _rows(tmp_path / "whole.csv")
    folder = tmp_path / "tracks"
    folder.mkdir()
    write_csv(folder / "a.csv", [r for r in rows if r[0] in "01"], header)
    later = [r for r in rows if r[0] in "23"]  # its own sim numbers: 0 and 1 again
    write_csv(folder / "b.csv", [str(int(r[0]) - 2) + r[1:] for r in later], header)
    (folder / "notes.txt").write_text("not data")
    for given in (folder, [folder / "a.csv", folder / "b.csv"]):
        read = load_trajectories(given)
        for name in ("nodes", "accelerations", "sim_ids", "times"):
            np.testing.assert_array_equal(getattr(read, name), getattr(whole, name))
    swapped = load_trajectories([folder / "b.csv", folder / "a.csv"])  # numbered in the order given
    np.testing.assert_array_equal(swapped.nodes[swapped.sim_ids == 0], whole.nodes[whole.sim_ids == 2])


def test_files_that_cannot_share_a_run_are_refused_by_name(tmp_path):
    two = save_trajectories(eqlgn.simulate("spring", 2, 3, 2, seed=0, steps=60, progress=False), tmp_path / "2d.csv")
    three = save_trajectories(eqlgn.simulate("spring", 3, 3, 2, seed=0, steps=60, progress=False), tmp_path / "3d.npz")
    four = save_trajectories(eqlgn.simulate("spring", 2, 4, 2, seed=0, steps=60, progress=False), tmp_path / "n4.csv")
    (tmp_path / "empty").mkdir()
    cases = [([two, three], r"3d.npz' sim 0 is 3D but .*2d.csv' sim 0 \(from row 2\) is 2D"),
             ([two, four], r"n4.csv' sim 0 \(from row 2\) has 4 particle\(s\) but .*2d.csv' .* has 3"),
             ([two, tmp_path / "2d.csv"], "named twice"), ([tmp_path / "empty"], "holds no .csv or .npz"),
             ([two, tmp_path / "missing.csv"], "missing.csv' does not exist"), ([], "no trajectory file")]
    for paths, match in cases:
        with pytest.raises(DatasetError, match=match):
            load_trajectories(paths)


def write_csv(path, rows, header="sim,t,particle,x,y,q,m"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def good_rows(sims=1, times=4, particles=2):
    return [f"{s},{0.1 * t:.1f},{p},{p + 0.01 * t ** 2},{0.5 * p},1,{1 + p}"
            for s in range(sims) for t in range(times) for p in range(particles)]


@pytest.mark.parametrize("edit, header, match", [
    (lambda r: [",".join(x.split(",")[:2] + x.split(",")[3:]) for x in r], "sim,t,x,y,q,m",
     r"header lacks column\(s\) \['particle'\]"),
    (lambda r: r[:3] + r[4:], None, "no row for particle 1 at t=0.1 in sim 0, though it has rows at other times "
     r"of that simulation \(from row 3\); particles that enter or leave"),
    (lambda r: r + ["1,0.0,0,0,0,1,1", "1,0.1,0,0,0,1,1", "1,0.2,0,0,0,1,1", "1,0.3,0,0,0,1,1"], None,
     r"sim 1 \(from row 10\) has 1 particle\(s\) but .* sim 0 \(from row 2\) has 2"),
    (lambda r: r[:5] + ["0,0.2,1,nan,0.5,1,2"] + r[6:], None, "row 7: NaN or inf"),
    (lambda r: r[:2], None, "at least 3 time steps"),
    (lambda r: [x.replace("0.3,", "0.35,") for x in r], None, "time steps are not uniform"),
    (lambda r: r + r[:1], None, "row 10: particle 0 at t=0 in sim 0 appears more than once"),
    (lambda r: r[:1] + ["0,0.0,1,abc,0,1,2"] + r[2:], None, "row 3: expected numbers"),
    (lambda r: r[:7] + ["0,0.3,1,1.09,0.5,1,3"], None, "row 9: the mass of particle 1 changes over time"),
    (lambda r: [], None, "has a header but no rows"),
])
def test_malformed_csv_names_the_row_or_column(tmp_path, edit, header, match):
    path = write_csv(tmp_path / "bad.csv", edit(good_rows()), header or "sim,t,particle,x,y,q,m")
    with pytest.raises(DatasetError, match=match):
        load_trajectories(path)


def test_a_good_csv_without_charges_loads(tmp_path):
    rows = [",".join(r.split(",")[:5] + r.split(",")[6:]) for r in good_rows(sims=2, times=5)]
    data = load_trajectories(write_csv(tmp_path / "ok.csv", rows, "sim,t,particle,x,y,m"))
    assert (len(data), data.n_particles) == (2 * 3, 2)
    assert (data.charges == 0).all()
    np.testing.assert_allclose(data.accelerations[:, 1, 0], 2.0, rtol=1e-5)  # x = 1 + 0.01 (10 t)^2 -> x'' = 2


@pytest.mark.parametrize("arrays, match", [
    ({"times": np.arange(5.0), "masses": np.ones(2)}, r"missing array\(s\) \['positions'\]"),
    ({"positions": np.zeros((5, 2, 2)), "times": np.arange(5.0), "masses": np.ones(3)}, "array 'masses' has shape"),
    ({"positions": np.full((5, 2, 2), np.nan), "times": np.arange(5.0), "masses": np.ones(2)},
     "array 'positions' holds 20 NaN"),
    ({"positions": np.zeros((5, 2)), "times": np.arange(5.0), "masses": np.ones(2)}, "must be \\[S, T, n, D\\]"),
    ({"positions": np.zeros((5, 2, 2)), "times": np.arange(5.0), "masses": -np.ones(2)}, "positive"),
])
def test_malformed_npz_names_the_array(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=match):
        load_trajectories(path)


def test_noise_has_the_promised_relative_size(small_spring):
    noisy = add_noise(small_spring, 0.05, "accelerations", seed=1)
    size = np.linalg.norm(small_spring.accelerations, axis=-1, keepdims=True)
    ratio = (noisy.accelerations - small_spring.accelerations) / size
    assert abs(ratio.std() - 0.05) < 0.003 and noisy.meta.noise == {"relative": 0.05, "on": "accelerations", "seed": 1}
    moved = add_noise(small_spring, 0.01, "positions")
    assert np.array_equal(moved.accelerations, small_spring.accelerations)
    assert 0 < np.abs(moved.positions - small_spring.positions).mean() < 0.05
    with pytest.raises(ConfigError, match="did you mean 'positions'"):
        add_noise(small_spring, 0.1, "position")


def test_cli_simulate_saves_trajectories_and_run_reads_them(tmp_path, capsys):
    traj = tmp_path / "t.csv"
    assert main(["simulate", "--sims", "6", "--steps", "60", "--out", str(tmp_path / "d.npz"), "--noise", "0.01",
                 "--save-trajectories", str(traj), "--no-progress"]) == 0
    assert "saved trajectories" in capsys.readouterr().out
    assert eqlgn.load_dataset(tmp_path / "d.npz").meta.noise["relative"] == 0.01
    assert main(["run", "--data", str(traj), "--edge", "eql", "--steps", "20", "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "data of unknown law 2D n=4" in printed and "judge" not in printed
    assert main(["run", "--data", str(traj), "--law", "spring", "--steps", "20", "--out", str(tmp_path / "r2"),
                 "--no-progress"]) == 0
    assert "judge: " in capsys.readouterr().out
    assert main(["run", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "r3")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_run_reads_several_files_and_a_rerun_rebuilds_the_same_data(tmp_path, capsys):
    data = eqlgn.simulate("spring", 2, 3, 10, seed=0, steps=60, progress=False)
    header, rows = _rows(save_trajectories(data, tmp_path / "whole.csv"))
    first = write_csv(tmp_path / "first.csv", [r for r in rows if int(r.split(",")[0]) < 5], header)
    second = write_csv(tmp_path / "second.csv", [r for r in rows if int(r.split(",")[0]) >= 5], header)
    out = tmp_path / "run"
    assert main(["run", "--data", str(first), str(second), "--law", "spring", "--edge", "eql", "--steps", "20",
                 "--out", str(out), "--no-progress"]) == 0
    source = eqlgn.RunResult.load(out).config.data_source
    assert source["paths"] == [str(first.resolve()), str(second.resolve())]
    from eqlgn.rundir import RunDirectory

    rebuilt = RunDirectory(out).read().data_source.load("spring")
    np.testing.assert_array_equal(rebuilt.nodes, load_trajectories(tmp_path / "whole.csv").nodes)
    assert main(["run", "--data", str(first), str(tmp_path / "d.npz"), "--out", str(tmp_path / "r2")]) == 2
    assert "d.npz' does not exist" in capsys.readouterr().err


def test_a_run_record_that_named_one_path_still_reads():
    from eqlgn.sources import DataSource

    old = DataSource.from_dict({"path": "/data/t.csv", "derivative": "savgol", "window": 9})
    assert old == DataSource(("/data/t.csv",), "savgol", 9) == DataSource("/data/t.csv", "savgol", 9)


def test_an_eqlgn_dataset_is_read_alone(tmp_path):
    from eqlgn.sources import load_data

    data = eqlgn.simulate("spring", 2, 3, 2, seed=0, steps=60, progress=False)
    dataset, csv_file = data.save(tmp_path / "d.npz"), save_trajectories(data, tmp_path / "t.csv")
    assert len(load_data([dataset])) == len(data)
    with pytest.raises(DatasetError, match="d.npz' is an eqlgn dataset, which a run reads alone"):
        load_data([csv_file, dataset])


def test_masses_left_out_are_learned_per_particle_and_split_in_time(tmp_path):
    data = eqlgn.simulate("r2", 2, 3, 4, seed=0, steps=60, progress=False)
    header, rows = _rows(save_trajectories(data, tmp_path / "t.csv"))
    without = write_csv(tmp_path / "no-m.csv", [r.rsplit(",", 1)[0] for r in rows], header.rsplit(",", 1)[0])
    read = load_trajectories(without, law="r2")
    assert (read.meta.learned, read.meta.identity, read.meta.identities) == (["m"], "particle", 12)
    np.testing.assert_array_equal(read.identities_of("m"), 3 * read.sim_ids[:, None] + np.arange(3))
    np.testing.assert_array_equal(read.accelerations, load_trajectories(tmp_path / "t.csv").accelerations)
    train, val, test = split_in_time(read)
    assert (len(train), len(val), len(test)) == (32, 4, 4)  # 10 snapshots per simulation: 8 / 1 / 1
    assert all(train.times[train.sim_ids == s].max() < test.times[test.sim_ids == s].min() for s in range(4))
    hidden = load_trajectories(tmp_path / "t.csv", learn=["m", "q"])  # given values withheld on purpose
    assert hidden.meta.learned == ["m", "q"]
    np.testing.assert_array_equal(hidden.identities_of("q"), hidden.identities_of("m"))


def test_species_share_a_learned_value_and_must_agree_on_given_ones(tmp_path):
    rows = [r + f",{'ab'[int(r.split(',')[2])]}" for r in good_rows(sims=3, times=5)]  # particle 0: a, 1: b
    read = load_trajectories(write_csv(tmp_path / "s.csv", rows, "sim,t,particle,x,y,q,m,species"), learn=["q"])
    assert (read.meta.learned, read.meta.identity, read.meta.identities) == (["q"], "species", 2)
    assert read.meta.species == ["a", "b"]
    np.testing.assert_array_equal(read.identities_of("q")[:, 1], 1.0)
    assert (read.masses[:, 1] == 2).all()  # given masses stay
    clash = rows[:-1] + [rows[-1].replace(",1,2,b", ",1,3,b")]
    clash = [r.replace(",1,2,b", ",1,3,b") if r.startswith("2,") else r for r in clash]
    with pytest.raises(DatasetError, match="species 'b' has mass 3 here but 2 in"):
        load_trajectories(write_csv(tmp_path / "clash.csv", clash, "sim,t,particle,x,y,q,m,species"))
    header, plain = "sim,t,particle,x,y,q,m", good_rows(sims=3, times=5)
    with pytest.raises(DatasetError, match="has no species column but"):
        load_trajectories([write_csv(tmp_path / "a.csv", plain, header), tmp_path / "s.csv"])
    no_mass = write_csv(tmp_path / "b.csv", [r.rsplit(",", 1)[0] for r in plain], "sim,t,particle,x,y,q")
    with pytest.raises(DatasetError, match="gives no masses but .* does; give masses for every simulation"):
        load_trajectories([tmp_path / "a.csv", no_mass])
    no_charge = write_csv(tmp_path / "c.csv", [",".join(r.split(",")[:5] + r.split(",")[6:]) for r in plain],
                          "sim,t,particle,x,y,m")
    with pytest.raises(DatasetError, match="gives no charges but .* does; give charges for every simulation"):
        load_trajectories([no_charge, tmp_path / "a.csv"])
    with pytest.raises(DatasetError, match="row 3: no value in column 'species'"):
        load_trajectories(write_csv(tmp_path / "gap.csv", rows[:1] + [rows[1][:-1]] + rows[2:],
                                    "sim,t,particle,x,y,q,m,species"))
