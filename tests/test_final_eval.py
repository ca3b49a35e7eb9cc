"""The final evaluation (Config.final_eval, on by default): eval_episodes greedy and
stochastic episodes per seed after the last update, inside the compiled run, whatever
eval_every is; the number a run, `export`, `compare`, `plot` and `sweep` report by default.

Checked against a closed form (the greedy return of the trained Gaussian policy on
ContinuousTarget), against the evaluation's own key rule (never a training key), block by
block as the CLI runs it, and through the files a run writes."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as sps

import purejaxvpg as pjv
from purejaxvpg.algo import prng, program
from purejaxvpg.algo.metrics import EvalMetrics
from purejaxvpg.algo.program import Agent, HyperParams
from purejaxvpg.report import summary

# ContinuousTarget pays -(a - 0.7)^2 for one action per episode; observations are [1.0]
TARGET = pjv.Config(env_id="ContinuousTarget-known", total_steps=4 * 8 * 5, num_envs=4, num_steps=8,
                    hidden_sizes=(8,), eval_episodes=3, policy_lr=3e-2)
# CartPole, 6 updates: eval_every 4 does not divide them, 3 does
CARTPOLE = pjv.Config(env_id="CartPole-v1", total_steps=2 * 16 * 6, num_envs=2, num_steps=16,
                      hidden_sizes=(16,), eval_episodes=2)


def _replace(config, **fields):
    return pjv.Config(**{**config.__dict__, **fields})


def test_final_greedy_return_is_the_closed_form_return_of_the_trained_policy():
    """Greedy plays the Gaussian's mean mu of the *final* parameters: -(mu - 0.7)^2 exactly.
    The parameters before the last update give another mean, so evaluating them fails this."""
    result = pjv.train(TARGET, num_seeds=3, seed=0)
    agent, hp = Agent.build(TARGET), HyperParams.from_config(TARGET)
    obs = jnp.ones((1, 1), jnp.float32)
    mean = jax.jit(lambda params: agent.actor.apply(params, obs).mode()[0, 0])
    before_last = jax.vmap(lambda k: program.run(agent, hp, program.init(agent, hp, k), 0,
                                                 TARGET.num_updates - 1)[0])(pjv.seed_keys(0, 3))
    for seed in range(3):
        mu = float(mean(jax.tree.map(lambda x: x[seed], result.final_state.actor_params)))
        np.testing.assert_allclose(result.final_eval["eval_return_greedy"][seed], -((mu - 0.7) ** 2), rtol=1e-5)
        mu_before = float(mean(jax.tree.map(lambda x: x[seed], before_last.actor_params)))
        assert abs((mu_before - 0.7) ** 2 - (mu - 0.7) ** 2) > 1e-4  # the check tells them apart
    assert (result.final_eval["eval_length_greedy"] == 1).all()


def _recorded_final_key(config, key):
    """The key the final evaluation receives inside one seed's compiled run (from a stand-in
    evaluation that records it), and that seed's final state."""
    seen = []

    def make_evaluate(*args, **kwargs):
        def evaluate(params, env_state, key):
            jax.debug.callback(lambda d: seen.append(np.asarray(d)), jax.random.key_data(key))
            return EvalMetrics(**{n: jnp.zeros(()) for n in EvalMetrics.names()})
        return evaluate

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(program, "make_evaluate", make_evaluate)
        agent = Agent.build(config)
    state, _, _ = jax.jit(lambda k: program.train(agent, HyperParams.from_config(config), k))(key)
    jax.effects_barrier()
    return seen, state


def test_final_evaluation_key_is_the_evaluation_streams_and_no_training_key():
    """eval_every 0: one evaluation, the final one, with fold_in(evaluation stream, U - 1)
    (U updates); it is none of the keys training uses (the seed's key, its four streams, the
    runner's key after reset and after training). A final evaluation drawing from training's
    key fails here."""
    key = pjv.seed_keys(3, 1)[0]
    seen, state = _recorded_final_key(CARTPOLE, key)
    assert len(seen) == 1
    streams = prng.RunStreams.of(key)
    want = prng.in_run_eval_key(streams.evaluation, CARTPOLE.num_updates - 1)
    np.testing.assert_array_equal(seen[0], jax.random.key_data(want))
    agent = Agent.build(CARTPOLE)
    reset_key = program.rollout.reset(agent.stack.env, agent.stack.env_params, streams.env).key
    training = [key, streams.actor, streams.critic, streams.env, streams.evaluation, reset_key, state.runner.key]
    for other in training:
        assert not np.array_equal(seen[0], jax.random.key_data(other))


def test_final_evaluation_is_the_last_in_run_one_when_eval_every_divides_the_updates():
    """eval_every 3 of 6 updates: the evaluation after update 5 is the final one (same key,
    same parameters), so it is reused, not played twice; eval_every 4: a final one is played,
    and the last in-run one (after update 3) differs from it."""
    divides = pjv.train(_replace(CARTPOLE, eval_every=3), num_seeds=4)
    for name, values in divides.final_eval.items():
        np.testing.assert_array_equal(values, divides.eval_metrics[name][:, -1])
    seen, _ = _recorded_final_key(_replace(CARTPOLE, eval_every=3), pjv.seed_keys(0, 1)[0])
    assert len(seen) == 2  # after updates 2 and 5: no third
    apart = pjv.train(_replace(CARTPOLE, eval_every=4), num_seeds=4)
    assert apart.eval_metrics["eval_return_greedy"].shape == (4, 1)
    only_final = pjv.train(CARTPOLE, num_seeds=4)  # eval_every 0: the same final evaluation
    for name, values in apart.final_eval.items():
        np.testing.assert_array_equal(values, only_final.final_eval[name])
        np.testing.assert_array_equal(values, divides.final_eval[name])


def test_final_evaluation_is_set_only_by_the_block_that_runs_the_last_update():
    """program.run in blocks (as the CLI runs it, the block index traced): NaN until the
    block holding update U - 1, then equal to the whole run's."""
    agent, hp = Agent.build(CARTPOLE), HyperParams.from_config(CARTPOLE)
    keys = pjv.seed_keys(0, 2)
    whole = jax.jit(jax.vmap(lambda k: program.train(agent, hp, k)))(keys)[0].final_eval
    block = jax.jit(jax.vmap(lambda s, first: program.run(agent, hp, s, first, 4), in_axes=(0, None)))
    state = jax.vmap(lambda k: program.init(agent, hp, k))(keys)
    state, *_ = block(state, jnp.int32(0))  # updates 0-3
    assert np.isnan(np.asarray(state.final_eval.eval_return_greedy)).all()
    state, *_ = block(state, jnp.int32(4))  # updates 4-7: 6 and 7 are past the end
    jax.tree.map(np.testing.assert_array_equal, state.final_eval, whole)


def test_final_eval_off_compiles_no_evaluation_and_reports_the_training_return():
    config = _replace(CARTPOLE, final_eval=False)
    assert Agent.build(config).evaluate is None
    result = pjv.train(config, num_seeds=2)
    assert result.final_state.final_eval is None and result.final_eval == {}
    metric, scores = summary.final_scores(result)
    assert metric == "episode_return"
    np.testing.assert_array_equal(scores, result.metrics["episode_return"][:, -1])
    assert "final training return: IQM" in summary.summary(result, reps=50)
    with pytest.raises(ValueError, match="metric: eval_return_greedy .*final_eval is off"):
        summary.final_values(result, "eval_return_greedy")


def test_final_eval_must_be_a_bool():
    with pytest.raises(ValueError, match="final_eval: must be True or False"):
        pjv.Config(final_eval=1).validate()


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """`purejaxvpg train` in a fresh process from outside the checkout, 8 seeds, with an
    in-run evaluation every 4 of 6 updates and the final one."""
    out = tmp_path_factory.mktemp("final") / "run"
    where = tmp_path_factory.mktemp("elsewhere")
    flags = ["--env-id", "CartPole-v1", "--total-steps", "192", "--num-envs", "2", "--num-steps", "16",
             "--hidden-sizes", "16", "--eval-episodes", "2", "--eval-every", "4", "--num-seeds", "8"]
    done = subprocess.run([sys.executable, "-m", "purejaxvpg", "train", *flags, "--out", str(out)],
                          cwd=where, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out, done.stdout


def test_a_run_reports_its_final_greedy_evaluation_and_says_so(cli_run):
    out, stdout = cli_run
    arrays = np.load(out / "metrics.npz")
    greedy = arrays["final_eval_return_greedy"]
    assert greedy.shape == (8,) and int(arrays["final_env_steps"]) == 192
    assert "reported" in stdout and "eval_return_greedy" in stdout
    results = json.loads((out / "config.json").read_text())["results"]
    assert results["final"]["metric"] == "eval_return_greedy"
    assert results["final"]["iqm"] == pytest.approx(sps.trim_mean(greedy, 0.25), rel=1e-6)
    assert results["final"]["mean"] == pytest.approx(greedy.mean(), rel=1e-6)
    assert results["final_eval"]["eval_return_stochastic"]["mean"] == pytest.approx(
        arrays["final_eval_return_stochastic"].mean(), rel=1e-6)
    assert results["final_return"]["mean"] == pytest.approx(arrays["episode_return"][:, -1].mean(), rel=1e-6)


def test_export_defaults_to_the_final_greedy_evaluation(cli_run, tmp_path):
    """rliable scores are each seed's final greedy evaluation; the long table's evaluation
    rows are the in-run one (after update 3) then the final one (after update 5)."""
    from purejaxvpg.tools import export

    out, _ = cli_run
    arrays = np.load(out / "metrics.npz")
    done = subprocess.run([sys.executable, "-m", "purejaxvpg", "export", str(out), "--format", "rliable",
                           "--out", str(tmp_path / "scores.npz")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "metric: eval_return_greedy" in done.stderr
    scores = np.load(tmp_path / "scores.npz")["run"]
    np.testing.assert_array_equal(scores[:, 0], arrays["final_eval_return_greedy"].astype(np.float64))
    table = export.long_table(export.load_runs(out), ["eval_return_greedy"], "all")
    assert sorted(set(table["update"].tolist())) == [3, 5]
    assert sorted(set(table["env_steps"].tolist())) == [128, 192]
    last = table["value"][table["update"] == 5]
    np.testing.assert_array_equal(last, arrays["final_eval_return_greedy"].astype(np.float64))


def test_sweep_ranks_settings_by_the_final_greedy_evaluation():
    from purejaxvpg.tools import sweep

    swept = sweep.run(CARTPOLE, [{"policy_lr": 1e-3}, {"policy_lr": 3e-2}], num_seeds=4, reps=50)
    assert swept.metric == "eval_return_greedy"
    np.testing.assert_array_equal(swept.final_scores.reshape(-1), swept.result.final_eval["eval_return_greedy"])
    iqms = [sps.trim_mean(row, 0.25) for row in swept.final_scores]
    assert swept.ranking() == sorted(range(2), key=lambda i: -iqms[i])
    training = sweep.run(CARTPOLE, [{"policy_lr": 1e-3}], num_seeds=4, reps=50, metric="episode_return")
    np.testing.assert_array_equal(training.final_scores[0], training.result.metrics["episode_return"][:, -1])
    with pytest.raises(ValueError, match="metric: eval_return_greedy needs the final evaluation"):
        sweep.check_metric(_replace(CARTPOLE, final_eval=False), "eval_return_greedy")
    with pytest.raises(ValueError, match="metric: unknown 'return'"):
        sweep.check_metric(CARTPOLE, "return")


def test_plot_draws_the_final_evaluation_after_the_in_run_ones(cli_run, tmp_path):
    """The evaluation curve's points: after update 3 (the in-run one), then the final one at
    the run's last env step; y is the IQM across seeds of each (scipy's trimmed mean)."""
    from purejaxvpg.tools import export, plot

    out, _ = cli_run
    arrays = np.load(out / "metrics.npz")
    (band,) = plot.curves(export.load_runs(out), "eval_return_greedy", "env_steps", 1, reps=50)["CartPole-v1"].values()
    np.testing.assert_array_equal(band.x, [128, 192])
    np.testing.assert_allclose(band.point, [sps.trim_mean(arrays["eval_return_greedy"][:, 0], 0.25),
                                            sps.trim_mean(arrays["final_eval_return_greedy"], 0.25)], rtol=1e-6)
    done = subprocess.run([sys.executable, "-m", "purejaxvpg", "plot", str(out), "--out", str(tmp_path / "p.png")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "(metric: eval_return_greedy)" in done.stdout, done.stderr


def test_plot_draws_the_training_return_of_runs_evaluated_only_at_the_end(tmp_path, capsys):
    """One final evaluation is a point, not a curve: plot's default is then episode_return."""
    from purejaxvpg.tools import cli

    flags = ["--env-id", "CartPole-v1", "--total-steps", "192", "--num-envs", "2", "--num-steps", "16",
             "--hidden-sizes", "16", "--eval-episodes", "2", "--num-seeds", "2", "--no-progress"]
    assert cli.main(["train", *flags, "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    assert cli.main(["plot", str(tmp_path / "r"), "--out", str(tmp_path / "p.png")]) == 0
    assert "(metric: episode_return)" in capsys.readouterr().out
    assert cli.main(["plot", str(tmp_path / "r"), "--metric", "eval_return_greedy", "--out",
                     str(tmp_path / "q.png")]) == 0  # asked for: one point per run
    assert "(metric: eval_return_greedy)" in capsys.readouterr().out
