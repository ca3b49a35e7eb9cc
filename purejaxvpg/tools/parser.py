"""The flags of every `purejaxvpg` command, in one argparse parser (cli.py runs them).

Every Config field is a flag of `train` and `sweep` (flags.add_config_flags); `--help`
lists them with their defaults. docs/cli-reference.md is generated from this parser.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from purejaxvpg.config import SWEEPABLE
from purejaxvpg.tools import flags
from purejaxvpg.version import __version__

DESCRIPTION = "Command line: `purejaxvpg train|eval|sweep|bench|export|merge`."

DEVICES_HELP = ("where the seeds run: every device of this machine (of every process with --distributed), "
                "or the first N; the results do not depend on it (default: all)")


class _Parser(argparse.ArgumentParser):
    """A flag argparse refuses is one line, like every other bad input (argparse's own
    error prints the command's whole usage first: 34 lines for `train`)."""

    def error(self, message: str):
        self.exit(2, f"purejaxvpg: error: {message} (`{self.prog} --help` lists what it takes)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="purejaxvpg", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"purejaxvpg {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train seeds in one jitted, vmapped program, with progress and checkpoints")
    # None defaults: --resume must tell a flag given from one left out
    train.add_argument("--num-seeds", type=int, default=None, help="seeds trained at once (default: 8)")
    train.add_argument("--seed", type=int, default=None, help="base seed (default: 0)")
    train.add_argument("--seed-start", type=int, default=None, metavar="K",
                       help="train seeds K..K+N-1 (N: --num-seeds) of --seed's key sequence, e.g. one task "
                            "of a Slurm array job; `purejaxvpg merge` joins the ranges into one run (default: 0)")
    train.add_argument("--chunk-size", type=int, default=None, metavar="C",
                       help="seeds per session: more seeds train in sequential chunks of C, each a sub-run "
                            "in RUN_DIR/chunks/ (checkpointed, resumable), joined into one run at the end "
                            "(default: all at once when they fit in device memory, estimate; else as many as fit)")
    train.add_argument("--out", type=Path, default=None,
                       help="run directory (default: runs/<env-id>-<date>-<time>)")
    train.add_argument("--devices", type=flags.parse_devices, default=None, metavar="N|all",
                       help=DEVICES_HELP + "; a --resume may change it")
    train.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                       help="continue an interrupted run from its newest intact checkpoint (from update 0, "
                            "with a message, if it has none); its config and options are read from "
                            "RUN_DIR/config.json and only --checkpoint-every, --progress, --log, --wandb-group "
                            "and --devices may be given with it")
    train.add_argument("--log-every", type=int, default=None,
                       help="updates per block between progress refreshes (default: about 50 blocks per run)")
    train.add_argument("--checkpoint-every", type=int, default=None,
                       help="updates between checkpoints (default: about every tenth of the run, in whole "
                            "blocks, so a killed run loses at most ~10%%; 0: only at the end). Ctrl-C and "
                            "SIGTERM checkpoint the last finished block before exiting")
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bar on stderr (default: on; a --resume keeps the run's choice unless given)")
    train.add_argument("--log", default=None, metavar="NAMES",
                       help="also log every block to: tensorboard (RUN_DIR/tensorboard/; extra [tensorboard]), "
                            "wandb (Weights & Biases; extra [wandb]), comma-separated. metrics.csv is always "
                            "written; a --resume keeps the run's choice unless given (--log '' for none)")
    train.add_argument("--wandb-group", default=None, metavar="GROUP",
                       help="W&B group of the run, e.g. one per sweep (default: the run directory's name)")
    _add_compile_cache_flag(train, CACHE_DEFAULT)
    _add_distributed_flags(train)
    _add_config_source_flags(train)
    flags.add_config_flags(train)

    evaluate = commands.add_parser("eval", help="greedy and stochastic evaluation episodes of a trained run")
    evaluate.add_argument("run_dir", type=Path, help="a run directory written by `purejaxvpg train`")
    evaluate.add_argument("--episodes", type=int, default=32, help="episodes per seed for each policy (default: 32)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes (default: 0)")
    evaluate.add_argument("--max-steps", type=int, default=None,
                          help="cut each episode after this many steps; 0: the environment's time limit "
                               "(default: the run's eval_max_steps)")
    evaluate.add_argument("--devices", type=flags.parse_devices, default=None, metavar="N|all", help=DEVICES_HELP)
    _add_compile_cache_flag(evaluate, CACHE_DEFAULT)

    sweep = commands.add_parser("sweep", help="a grid or random sample of hyperparameters x seeds in one jitted call")
    sweep.add_argument("--grid", action="append", metavar="NAME=V1,V2,...",
                       help=f"values of one hyperparameter; repeat for a product grid. NAME in {', '.join(SWEEPABLE)}")
    sweep.add_argument("--samples", type=int, default=0, help="random settings drawn from the --range flags")
    sweep.add_argument("--range", action="append", metavar="NAME=LOW:HIGH[:log]",
                       help="sampling range of one hyperparameter (log: log-uniform)")
    sweep.add_argument("--num-seeds", type=int, default=8, help="seeds per setting (default: 8)")
    sweep.add_argument("--rank", choices=("final", "auc"), default="final",
                       help="rank settings by the IQM of their final returns (default) or of each run's mean "
                            "return over all updates (auc: the area under the learning curve)")
    sweep.add_argument("--metric", default=None,
                       help="what settings are summarised and ranked by: each run's final value of this metric "
                            "(default: eval_return_greedy, the final greedy evaluation; episode_return with "
                            "--no-final-eval)")
    sweep.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    sweep.add_argument("--devices", type=flags.parse_devices, default=None, metavar="N|all", help=DEVICES_HELP)
    sweep.add_argument("--out", type=Path, default=None,
                       help="write sweep.json (every run), sweep.csv (one row per setting: its "
                       "hyperparameters, diverged runs, IQM / mean / median with 95%% CIs) and settings/NNN/ (each "
                       "setting's curves as a run directory: plot, compare and export read the folder)")
    _add_compile_cache_flag(sweep, CACHE_DEFAULT)
    _add_config_source_flags(sweep)
    flags.add_config_flags(sweep)

    bench = commands.add_parser("bench", help="throughput across seeds and benchmark scenarios")
    bench.add_argument("--scenario", action="append", default=None,
                       help="a scenario of purejaxvpg.tools.bench.SCENARIOS (cartpole-500k, defaults, wide; smoke: "
                            "seconds, to check the harness runs); repeat for several (default: all but smoke)")
    # the flag's old name, hidden (a scenario is not a config preset); old commands still run
    bench.add_argument("--preset", action="append", dest="scenario", help=argparse.SUPPRESS)
    bench.add_argument("--num-seeds", default="1,16,256,1024,4096,8192",
                       help="comma-separated seed counts (default: 1,16,256,1024,4096,8192)")
    bench.add_argument("--devices", default="1", metavar="N[,N...]",
                       help="device counts to measure each point on, e.g. 1,2,4,8: the seeds split over the "
                            "first N devices; a count above the devices there are is skipped in a list, "
                            "refused alone (default: 1)")
    bench.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                       help="folder for <hardware>-throughput.json and .png")
    _add_compile_cache_flag(bench, "off: a benchmark times the compile")

    export = commands.add_parser("export", help="finished runs as rliable score arrays or a long CSV / Parquet")
    export.add_argument("run_dirs", nargs="+", metavar="[LABEL=]RUN_DIR",
                        help="run directories of `purejaxvpg train`; LABEL (default: the directory's name) "
                             "names the run, rliable's algorithm: give the runs of one algorithm one label")
    export.add_argument("--format", required=True, metavar="rliable|csv|parquet",
                        help="rliable: {label: [seeds, envs]} arrays in an .npz with a .json naming the envs; "
                             "csv / parquet: one row per run, seed, point and metric (parquet: [export] extra)")
    export.add_argument("--out", type=Path, default=None,
                        help="file to write (default: scores.npz, metrics.parquet, CSV on stdout); never "
                             "replaced without --force")
    export.add_argument("--force", action="store_true", help="replace an existing --out")
    export.add_argument("--metric", default=None,
                        help="metric (comma-separated, or all, for csv / parquet; default: eval_return_greedy, the "
                             "final greedy evaluation, when every run has it, else episode_return)")
    export.add_argument("--at", default=None, metavar="final|all",
                        help="the last point of each seed, or every update / evaluation (default: final for "
                             "rliable, all for csv / parquet)")

    merge = commands.add_parser(
        "merge", help="finished runs of seed ranges (train --seed-start K --num-seeds N) as one run directory")
    merge.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                       help="finished runs of one config, base seed and code version, with ranges that neither "
                            "overlap nor leave gaps (any order)")
    merge.add_argument("--out", type=Path, required=True, help="the new run directory")

    compare = commands.add_parser(
        "compare", help="runs of several algorithms or settings: aggregates, probability of improvement, figures")
    compare.add_argument("run_dirs", nargs="+", metavar="[LABEL=]RUN_DIR",
                         help="finished runs; LABEL (default: the directory's name) names the algorithm or setting: "
                              "one run per environment per label")
    compare.add_argument("--baseline", default=None, metavar="LABEL",
                         help="the label the others are compared with (default: the first)")
    compare.add_argument("--metric", default=None, help="the score: each seed's last value of this metric, for an "
                         "eval_* metric the final evaluation's (default: eval_return_greedy when every run has it, "
                         "else episode_return)")
    compare.add_argument("--gap-target", type=float, default=None, metavar="SCORE",
                         help="also the optimality gap: the mean shortfall of runs below SCORE")
    compare.add_argument("--score-range", action="append", default=[], metavar="ENV=LOW:HIGH",
                         help="normalise ENV's scores so LOW is 0 and HIGH is 1 (repeat; needed for several "
                              "environments)")
    compare.add_argument("--out", type=Path, default=None,
                         help="a new folder for compare.json, performance_profile.png and sample_efficiency.png")
    compare.add_argument("--reps", type=int, default=2000, help="bootstrap replicates (default: 2000)")
    compare.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (default: 0)")

    plot = commands.add_parser(
        "plot", help="runs side by side: one IQM curve with its 95%% band per run, a panel per environment")
    plot.add_argument("run_dirs", nargs="+", metavar="[LABEL=]RUN_DIR",
                      help="finished runs; LABEL (default: the directory's name) is the legend's; one panel per "
                           "environment")
    plot.add_argument("--metric", default=None,
                      help="a metric of metrics.npz (default: eval_return_greedy when every run has in-run "
                           "evaluations, --eval-every, else episode_return); eval_* are drawn as points at the "
                           "evaluations, the final one included")
    plot.add_argument("--smooth", type=int, default=1, metavar="N",
                      help="centred moving average over N points (odd) of each seed's curve (default: 1, none)")
    plot.add_argument("--x", default="env_steps", metavar="env_steps|updates|seconds",
                      help="the x axis (default: env_steps per seed)")
    plot.add_argument("--out", type=Path, default=Path("plot.png"),
                      help="the figure: .png, .pdf or .svg (default: plot.png); never replaced without --force")
    plot.add_argument("--force", action="store_true", help="replace an existing --out")

    config = commands.add_parser("config", help="a run's configuration as a TOML file that --config reads back")
    config.add_argument("source", type=Path, metavar="RUN_DIR|FILE",
                        help="a run directory, its config.json, or a TOML file of Config fields")
    config.add_argument("--format", choices=("toml", "json"), default="toml",
                        help="toml (default; `--config` reads it) or json (the fields as config.json holds them)")
    config.add_argument("--out", type=Path, default=None, help="file to write (default: stdout); never replaced")
    return parser


def _add_distributed_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "several machines (jax.distributed; start the same command once per process, --out on a shared filesystem)")
    group.add_argument("--distributed", action="store_true",
                       help="join a jax.distributed run: the seeds split over every process's devices; process 0 "
                            "writes the run directory and prints. Without the three flags below the cluster is "
                            "detected (Slurm, Open MPI, TPU pod)")
    group.add_argument("--coordinator-address", default=None, metavar="HOST:PORT",
                       help="where process 0 runs the coordination service (with --distributed)")
    group.add_argument("--num-processes", type=int, default=None, metavar="P", help="processes in the run")
    group.add_argument("--process-id", type=int, default=None, metavar="I", help="this process: 0..P-1")
    group.add_argument("--heartbeat-timeout", type=int, default=None, metavar="SECONDS",
                       help="a process silent this long counts as lost and the others stop with an error "
                            "(default: 100, jax's)")


def _add_compile_cache_flag(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--compile-cache", default=None, metavar="DIR|off",
                        help="JAX's persistent compilation cache: a rerun of the same program loads it instead of "
                             f"compiling (default: {default}; $PUREJAXVPG_COMPILE_CACHE=DIR|off sets it too)")


CACHE_DEFAULT = "~/.cache/purejaxvpg/jax-cache"


def _add_config_source_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, metavar="FILE|RUN_DIR",
                        help="Config fields from a TOML file (top-level keys named like the fields), a run's "
                             "config.json, or its run directory; flags override it")
    parser.add_argument("--preset", action="store_true",
                        help="start from the shipped config for --env-id (purejaxvpg.presets.PRESETS)")
