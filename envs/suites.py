"""The optional environment suites: ids "<suite>/<name>", each behind its own extra, imported lazily.

A suite is a prefix, the package that must be installed (looked up with `find_spec`, never
imported just to list ids), the pip extra that installs it, the names it offers, and the
adapter that builds one of them ("module:function", imported only when an id of the suite
is built). Every adapter returns an environment that honours the contract of
`envs/__init__.py`: same-step auto-reset, the pre-reset observation in
info["final_observation"], a time limit always `truncated`, termination winning when both
happen on one step.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util


@dataclasses.dataclass(frozen=True)
class Suite:
    prefix: str            # ids are prefix + name, e.g. "jumanji/Snake-v1"
    package: str           # the import name whose presence means the extra is installed
    extra: str             # pip install 'purejaxvpg[<extra>]'
    names: tuple[str, ...]  # the names listed by envs.registered()
    builder: str           # "module:function"; function(name) -> (env, params)
    download: str = "none"  # what, beyond pip, an environment needs (README's table)
    # True: an unlisted name still goes to the builder, which builds it or raises a ValueError
    # saying why not (e.g. Jumanji's multi-discrete action specs); False: only listed names
    open_names: bool = False

    @property
    def ids(self) -> list[str]:
        return [self.prefix + n for n in self.names]

    def available(self) -> bool:
        return _installed(self.package)

    def build(self, name: str):
        """(env, params) for one name of this suite; imports the adapter (and its library) now.
        A library that `find_spec` finds but that fails to import (e.g. built for another jax)
        is reported here, once for every suite, naming the extra to reinstall."""
        module_name, _, function = self.builder.partition(":")
        try:
            return getattr(importlib.import_module(module_name), function)(name)
        except ImportError as error:
            raise ValueError(
                f"env_id: {self.prefix}{name}: {self.package} is installed but does not import ({error}); "
                f"reinstall it: pip install 'purejaxvpg[{self.extra}]'."
            ) from error


@functools.cache
def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


SUITES: tuple[Suite, ...] = (
    Suite(
        prefix="brax/", package="brax", extra="brax", builder="purejaxvpg.envs.brax_adapter:make",
        names=(
            "ant", "fast", "halfcheetah", "hopper", "humanoid", "humanoidstandup",
            "inverted_double_pendulum", "inverted_pendulum", "pusher", "reacher", "swimmer", "walker2d",
        ),
    ),
    Suite(
        prefix="jumanji/", package="jumanji", extra="jumanji", builder="purejaxvpg.envs.jumanji_adapter:make",
        open_names=True,
        names=(  # single-agent, DiscreteArray action spec, no download (the others are refused by name;
            # Sokoban-v0 downloads its levels, Sudoku-* are MultiDiscreteArray)
            "CVRP-v1", "Game2048-v1", "GraphColoring-v1", "Knapsack-v1", "Maze-v0", "PacMan-v1",
            "SlidingTilePuzzle-v0", "Snake-v1", "TSP-v1",
        ),
    ),
    Suite(
        prefix="craftax/", package="craftax", extra="craftax", builder="purejaxvpg.envs.craftax_adapter:make",
        names=("Craftax-Classic-Symbolic-v1", "Craftax-Symbolic-v1"),
    ),
    Suite(
        prefix="xminigrid/", package="xminigrid", extra="xminigrid", builder="purejaxvpg.envs.xminigrid_adapter:make",
        names=(  # the MiniGrid-* ids: no benchmark download needed (XLand-* rulesets need one)
            "MiniGrid-BlockedUnlockPickUp", "MiniGrid-DoorKey-5x5", "MiniGrid-DoorKey-6x6",
            "MiniGrid-DoorKey-8x8", "MiniGrid-DoorKey-16x16", "MiniGrid-Empty-5x5", "MiniGrid-Empty-6x6",
            "MiniGrid-Empty-8x8", "MiniGrid-Empty-16x16", "MiniGrid-EmptyRandom-5x5", "MiniGrid-EmptyRandom-6x6",
            "MiniGrid-EmptyRandom-8x8", "MiniGrid-EmptyRandom-16x16", "MiniGrid-FourRooms", "MiniGrid-LockedRoom",
            "MiniGrid-MemoryS8", "MiniGrid-MemoryS16", "MiniGrid-MemoryS32", "MiniGrid-MemoryS64",
            "MiniGrid-MemoryS128", "MiniGrid-Playground", "MiniGrid-Unlock", "MiniGrid-UnlockPickUp",
        ),
    ),
    Suite(
        prefix="playground/", package="mujoco_playground", extra="playground",
        builder="purejaxvpg.envs.playground_adapter:make",
        names=(  # the dm_control_suite environments (no download needed)
            "AcrobotSwingup", "AcrobotSwingupSparse", "BallInCup", "CartpoleBalance", "CartpoleBalanceSparse",
            "CartpoleSwingup", "CartpoleSwingupSparse", "CheetahRun", "FingerSpin", "FingerTurnEasy",
            "FingerTurnHard", "FishSwim", "HopperHop", "HopperStand", "HumanoidStand", "HumanoidWalk",
            "HumanoidRun", "PendulumSwingup", "PointMass", "ReacherEasy", "ReacherHard", "SwimmerSwimmer6",
            "WalkerRun", "WalkerStand", "WalkerWalk",
        ),
    ),
)


def suite_of(env_id: str) -> Suite | None:
    """The suite whose prefix `env_id` starts with (listed name or not), else None."""
    return next((s for s in SUITES if isinstance(env_id, str) and env_id.startswith(s.prefix)), None)


def available_ids() -> list[str]:
    """Every listed id of every installed suite (nothing is imported)."""
    return [i for s in SUITES if s.available() for i in s.ids]


def build(env_id: str):
    """(env, params) for a suite id, or a ValueError naming the extra or the listed names."""
    suite = suite_of(env_id)
    name = env_id[len(suite.prefix):]
    if not suite.available():
        raise ValueError(
            f"env_id: {env_id} needs the {suite.extra!r} extra ({suite.package} is not installed): "
            f"pip install 'purejaxvpg[{suite.extra}]'."
        )
    if name not in suite.names and not suite.open_names:
        raise ValueError(
            f"env_id: {env_id!r} is not one of the {suite.prefix[:-1]} environments purejaxvpg adapts: "
            f"{', '.join(suite.ids)}."
        )
    return suite.build(name)
