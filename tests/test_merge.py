"""Seed ranges (`train --seed-start K --num-seeds N`) and `purejaxvpg merge`: ranges trained
apart and merged equal one run of all the seeds; runs that are not parts of one run are
refused, naming the run and the difference, with nothing written."""

import json
import shutil

import chex
import jax
import numpy as np
import pytest

import purejaxvpg as pjv
from purejaxvpg.algo import prng
from purejaxvpg.host import policy, session
from purejaxvpg.tools import cli

# no evaluations during training: they would add ~6 s of compiling per run (merge joins them
# like the other metrics; add "--eval-every", "3", "--eval-episodes", "2" to cover them)
TINY = ["--total-steps", "768", "--num-envs", "4", "--num-steps", "32", "--eval-every", "0",
        "--seed", "7", "--no-progress"]


def _data(k):
    return np.asarray(jax.random.key_data(k))


def test_a_seed_range_holds_the_keys_of_those_seeds_of_one_split():
    """Against jax.random.split itself: seeds k..k+n-1 are children k..k+n-1 of the
    training root, whatever k (also far past the first seeds) and n."""
    for seed, n, start in ((7, 3, 2), (3, 2, 1000)):
        root = jax.random.split(jax.random.key(seed), 2)
        want = _data(jax.random.split(root[0], start + n)[start:])
        np.testing.assert_array_equal(_data(pjv.seed_keys(seed, n, start=start)), want)
        np.testing.assert_array_equal(_data(pjv.seed_keys(seed, start + n))[start:], want)
        want = _data(jax.random.split(root[1], start + n)[start:])
        np.testing.assert_array_equal(_data(prng.eval_keys(seed, n, start=start)), want)


@pytest.mark.parametrize("start", [-1, 2**32 - 1, 1.5, True])
def test_a_bad_seed_start_is_refused_naming_it(start, capsys):
    with pytest.raises(ValueError, match="seed_start"):
        pjv.seed_keys(0, 2, start=start)
    with pytest.raises(ValueError, match="seed_start"):
        session.RunOptions(num_seeds=2, seed_start=start).validate()
    if isinstance(start, int) and not isinstance(start, bool):
        assert cli.main(["train", "--num-seeds", "2", "--seed-start", str(start), "--out", "never"]) == 2
        assert "seed_start" in capsys.readouterr().err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Seeds 0..1 and 2..3 of base seed 7 trained apart and merged (given out of order),
    and one run of seeds 0..3. (Ranges of one size: one compile for both; a range's size
    only sets num_seeds, which the gap and overlap refusals and the seed columns check.)"""
    root = tmp_path_factory.mktemp("merge")
    for name, seeds in (("a", ["--num-seeds", "2"]), ("b", ["--num-seeds", "2", "--seed-start", "2"]),
                        ("full", ["--num-seeds", "4"])):
        assert cli.main(["train", *TINY, *seeds, "--out", str(root / name)]) == 0
    assert cli.main(["merge", str(root / "b"), str(root / "a"), "--out", str(root / "merged")]) == 0
    return root


def _npz(path):
    with np.load(path / "metrics.npz") as data:
        return {name: data[name] for name in data.files}


def _csv(path):
    return np.loadtxt(path / "metrics.csv", delimiter=",", skiprows=1)


def test_a_seed_range_names_its_global_seeds(runs):
    info = json.loads((runs / "b" / "config.json").read_text())
    assert info["run"]["seed_start"] == 2 and info["run"]["num_seeds"] == 2
    assert info["code"]["source_sha256"] and info["code"]["jax"] == jax.__version__
    np.testing.assert_array_equal(_npz(runs / "b")["seed"], [2, 3])
    np.testing.assert_array_equal(np.unique(_csv(runs / "b")[:, 0]), [2, 3])


def test_merged_ranges_equal_one_run_of_all_the_seeds(runs):
    merged, full = runs / "merged", runs / "full"
    m, f = _npz(merged), _npz(full)
    assert sorted(m) == sorted(f)
    np.testing.assert_array_equal(m["seed"], np.arange(4))
    chex.assert_trees_all_equal(m, f)
    table, reference = _csv(merged), _csv(full)
    np.testing.assert_array_equal(table[:, :3], reference[:, :3])  # seed, update, env_steps
    np.testing.assert_array_equal(table, reference)
    info, one, part = (json.loads((d / "config.json").read_text()) for d in (merged, full, runs / "a"))
    # the code that computed the parts (not the full run's: others may edit the tree meanwhile)
    assert info["config"] == one["config"] and info["code"] == part["code"]
    assert {k: info["run"][k] for k in ("num_seeds", "seed", "seed_start")} == {"num_seeds": 4, "seed": 7,
                                                                                "seed_start": 0}
    assert [(r["run_dir"], r["seed_start"], r["num_seeds"]) for r in info["merged"]["runs"]] == [
        (str((runs / "a").absolute()), 0, 2), (str((runs / "b").absolute()), 2, 2)]
    chex.assert_trees_all_equal(info["results"]["final_return"], one["results"]["final_return"])
    assert (merged / "learning_curve.png").stat().st_size > 0
    # the final checkpoint: every seed's state, as one run's
    _, n, updates, state, _ = policy.restore_latest(merged)
    _, _, _, reference, _ = policy.restore_latest(full)
    assert (n, updates) == (4, 6)
    chex.assert_trees_all_equal(prng.to_data(state), prng.to_data(reference))


def test_a_merged_run_evaluates_and_loads_like_one_run(runs, capsys):
    merged = runs / "merged"
    assert cli.main(["eval", str(merged), "--episodes", "2"]) == 0
    record = json.loads((merged / "eval.json").read_text())
    assert record["num_seeds"] == 4 and len(record["greedy"]["return_per_seed"]) == 4
    obs = np.zeros(4, np.float32)
    for seed in (1, 3):  # one seed of each range
        assert int(pjv.load_policy(merged, seed=seed)(obs)) == int(pjv.load_policy(runs / "full", seed=seed)(obs))
    assert cli.main(["train", "--resume", str(merged), "--no-progress"]) == 0  # finished: nothing to do
    assert "is finished" in capsys.readouterr().err


def test_a_seed_range_evaluates_with_its_own_seeds_evaluation_keys(runs):
    """`eval` of seeds 2..3 trained as a range plays the episodes seeds 2..3 play in one run of
    seeds 0..3 (evaluation keys K.., not 0..), whatever the evaluation's base seed."""
    for seed in (0, 5):
        records = {}
        for name in ("b", "full"):
            assert cli.main(["eval", str(runs / name), "--episodes", "4", "--seed", str(seed)]) == 0
            records[name] = json.loads((runs / name / "eval.json").read_text())
        assert records["b"]["seeds"] == [2, 3] and records["full"]["seeds"] == [0, 1, 2, 3]
        for mode in ("greedy", "stochastic"):
            np.testing.assert_allclose(records["b"][mode]["return_per_seed"],
                                       records["full"][mode]["return_per_seed"][2:], rtol=1e-6)
        # not a coincidence of returns: seeds 0..1 of the run play other episodes
        assert records["full"]["stochastic"]["return_per_seed"][:2] != records["b"]["stochastic"]["return_per_seed"]


def test_export_numbers_a_range_s_seeds_by_their_global_index(runs, capsys):
    """Two ranges of one run exported together keep distinct seed ids, those of one run."""
    assert cli.main(["export", f"first={runs / 'a'}", f"second={runs / 'b'}", "--format", "csv", "--at", "final"]) == 0
    rows = [line.split(",") for line in capsys.readouterr().out.strip().splitlines()]
    run, seed = rows[0].index("run"), rows[0].index("seed")
    seeds = {label: sorted({int(row[seed]) for row in rows[1:] if row[run] == label}) for label in ("first", "second")}
    assert seeds == {"first": [0, 1], "second": [2, 3]}


def test_a_resumed_seed_range_trains_its_own_seeds(runs, tmp_path):
    """--resume reads seed_start from config.json: the rest of the run trains seeds 2..3."""
    copy = _copy(runs, tmp_path)
    _unfinished(copy)
    assert cli.main(["train", "--resume", str(copy), "--no-progress"]) == 0
    chex.assert_trees_all_equal(_npz(copy), _npz(runs / "b"))


def _copy(runs, tmp_path, name="b"):
    copy = tmp_path / f"{name}-copy"
    shutil.copytree(runs / name, copy)
    return copy


def _edit(run_dir, change):
    info = json.loads((run_dir / "config.json").read_text())
    change(info)
    (run_dir / "config.json").write_text(json.dumps(info))


def _unfinished(run_dir):
    """What an interrupted run looks like: no final checkpoint, no results, no metrics.npz."""
    shutil.rmtree(run_dir / "checkpoints" / "6")
    _edit(run_dir, lambda info: info.pop("results"))
    (run_dir / "metrics.npz").unlink()


def _gap(run_dir):
    """The range of b moved to seeds 3..4, consistently (config.json and metrics.npz)."""
    _edit(run_dir, lambda info: info["run"].update(seed_start=3))
    np.savez(run_dir / "metrics.npz", **{**_npz(run_dir), "seed": np.arange(3, 5)})


REFUSALS = {  # name -> (how the copy of b is changed, what the error names)
    "config": (lambda d: _edit(d, lambda i: i["config"].update(policy_lr=0.5)), "different configs (policy_lr"),
    "base seed": (lambda d: _edit(d, lambda i: i["run"].update(seed=8)), "different run options (seed 8 vs 7"),
    "code": (lambda d: _edit(d, lambda i: i["code"].update(source_sha256="0" * 64)), "other code"),
    "resumed under other code": (
        lambda d: _edit(d, lambda i: i.setdefault("resumes", []).append({"code": {**i["code"], "jax": "0.0"}})),
        "other code"),
    "unfinished": (_unfinished, "is not finished"),
    "gap": (_gap, "seeds 2..2 are missing"),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_runs_that_are_not_parts_of_one_run_are_refused(name, runs, tmp_path, capsys):
    change, says = REFUSALS[name]
    copy = _copy(runs, tmp_path)
    change(copy)
    out = tmp_path / "out" / "merged"
    assert cli.main(["merge", str(runs / "a"), str(copy), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert says in err and str(copy) in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing written


def test_overlapping_ranges_are_refused(runs, tmp_path, capsys):
    out = tmp_path / "merged"
    assert cli.main(["merge", str(runs / "a"), str(runs / "b"), str(runs / "full"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "overlap in seeds 0..1" in err and str(runs / "full") in err
    assert cli.main(["merge", str(runs / "a"), str(runs / "b"), str(runs / "a"), "--out", str(out)]) == 2
    assert f"{runs / 'a'} given twice" in capsys.readouterr().err
    assert not out.exists()


def test_load_policy_of_a_seed_range_indexes_its_own_seeds(runs):
    """Index i of a range trained with --seed-start 2 is global seed 2 + i: its policy is that
    seed's policy in the one run of seeds 0..3, not seed i's."""
    obs = np.linspace(-0.2, 0.2, 4 * 64, dtype=np.float32).reshape(64, 4)
    act = lambda run, seed: np.asarray(jax.vmap(pjv.load_policy(run, seed=seed))(obs))  # noqa: E731
    for i in (0, 1):
        np.testing.assert_array_equal(act(runs / "b", i), act(runs / "full", 2 + i))
    assert not np.array_equal(act(runs / "full", 0), act(runs / "full", 2))  # the check can tell seeds apart
