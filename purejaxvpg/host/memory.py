"""A conservative estimate of the memory a run needs, checked before compiling.

Per seed, at its peak (every part errs high; measured against XLA's buffer plan and the
process's peak RSS in benchmarks/memory_estimate.py):
  state       the TrainState: actor and critic parameters with their Adam moments, plus
              gradients and updates in flight; the environments' state and observations
              (their shapes read from the environment, normalisation statistics
              included), all twice (the scan carry in and out)
  update      one rollout batch (obs, next obs, action, reward, flags, episode
              statistics per transition), the activations of the critic pass over 2n
              inputs and of the policy and value passes over n, and the GAE arrays
  metrics     every per-update metric (metrics.UpdateMetrics) for every update and, with
              evaluation, every EvalMetrics of each evaluation, on the device and on the host
  evaluation  with eval_every or final_eval: 2 x eval_episodes environments played at once
              (greedy and stochastic), each with its state, observation, actor
              activations, PRNG keys and episode record
The run needs per-seed x seeds; it is compared with what the device can give: the
allocator's limit on an accelerator; on the CPU the smallest of the memory the host has
available, the container's limit (cgroup v2 memory.max, v1 memory.limit_in_bytes, of
this process's cgroup and its parents) less what the cgroup already uses, and the
address-space limit (RLIMIT_AS) less what the process has mapped.
"""

from __future__ import annotations

import dataclasses
import math
import os
import resource
from pathlib import Path

import jax

from purejaxvpg.algo import envstack
from purejaxvpg.algo.metrics import EVAL_METRIC_NAMES, METRIC_NAMES
from purejaxvpg.algo.program import Agent

_FLOAT = 4  # bytes
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF = Path("/proc/self")
_UNLIMITED = 2**62  # cgroup v1 writes "no limit" as a number near 2**63


def _mlp_params(inputs: int, hidden: tuple[int, ...], outputs: int) -> int:
    sizes = (inputs, *hidden, outputs)
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def _nbytes(tree) -> int:
    return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def _env_bytes(stack: envstack.EnvStack) -> int:
    """Bytes of `stack.num_envs` environments' (observation, state), from the shapes the
    environment itself returns (no compile)."""
    out = jax.eval_shape(lambda key: stack.env.reset(key, stack.env_params), jax.random.key(0))
    return _nbytes(out)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Estimated peak bytes of one seed, by part (see the module docstring)."""

    state: int
    update: int
    metrics: int
    evaluation: int

    @property
    def total(self) -> int:
        return self.state + self.update + self.metrics + self.evaluation

    def largest(self) -> tuple[str, str]:
        """(part, the Config field that shrinks it) of the biggest part."""
        fields = {"state": "num_envs", "update": "num_envs", "metrics": "total_steps",
                  "evaluation": "eval_episodes"}
        part = max(fields, key=lambda name: getattr(self, name))
        return part, fields[part]

    def describe(self) -> str:
        return ", ".join(f"{name} {size(getattr(self, name))}" for name in ("state", "update", "metrics", "evaluation"))


def size(nbytes: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(nbytes) < 1024 or unit == "GiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.1f} GiB"


def _encoder(config, obs_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(features per observation, convolution activations per observation, convolution
    parameters) of the config's encoder: 'mlp' flattens (no activations, no parameters)."""
    if config.encoder != "cnn":
        return math.prod(obs_shape), 0, 0
    (h, w, c), activations, params = obs_shape, 0, 0
    for width in config.cnn_channels:  # each 3x3 VALID convolution: [h, w, c] -> [h - 2, w - 2, width]
        h, w, params, c = h - 2, w - 2, params + 9 * c * width + width, width
        activations += h * w * c
    return h * w * c, activations, params


def parameter_count(config, obs_shape: tuple[int, ...], action_size: int) -> int:
    """Parameters of the actor and the critic together (the Gaussian's log-std counted
    whether or not it is learned)."""
    features, _, conv_params = _encoder(config, obs_shape)
    H = config.recurrent_size if config.recurrent != "none" else 0
    # the embedding; the GRU's input maps (with biases) and recurrent maps (one with a bias)
    gru_params = (features * H + H) + 3 * (H * H + H) + 3 * H * H + H if H else 0
    head_in = H or features  # the hidden_sizes layers read the GRU state, or the features
    actor = _mlp_params(head_in, config.hidden_sizes, action_size) + action_size  # + log-std
    critic = _mlp_params(head_in, config.hidden_sizes, 1)
    return actor + critic + 2 * (conv_params + gru_params)  # each network has its own encoder and core


def estimate(agent: Agent) -> Estimate:
    """Estimated peak bytes of one seed of the agent's run, by part, read from its
    environment stacks (nothing built here)."""
    config, stack = agent.config, agent.stack
    obs_size, action_size = math.prod(stack.obs_shape), stack.spec.size
    _, conv_activations, _ = _encoder(config, stack.obs_shape)
    hidden = sum(config.hidden_sizes) + conv_activations
    H = config.recurrent_size if config.recurrent != "none" else 0
    params = parameter_count(config, stack.obs_shape, action_size)
    # params, Adam mu and nu, gradients, updates; environments; x2: scan carry in and out
    state = 2 * (5 * params * _FLOAT + _env_bytes(stack) + 2 * config.num_envs * H * _FLOAT)  # + hidden states

    n = config.batch_size
    # per transition: obs, next_obs, action, reward, terminated, truncated, episode return,
    # length and finished flag (flags counted as floats)
    rollout = n * (2 * obs_size + action_size + 6) * _FLOAT
    # activations kept for backprop: critic over 2n inputs, actor over n, both hidden
    # stacks, x3 for forward, backward and XLA temporaries; GAE: values, next values,
    # deltas, advantages, returns, normalised advantages
    activations = 3 * (3 * n) * (hidden + obs_size + action_size) * _FLOAT
    gae = 6 * n * _FLOAT
    # a GRU's sequences, kept for backpropagation through time: for actor, critic and the
    # critic's next-observation pass, the embedding, the hidden state and its 3 gates per step
    recurrence = 3 * 3 * n * 5 * H * _FLOAT
    update = rollout + activations + gae + recurrence

    # every metric is 4 bytes; evaluations come back once per eval_every updates
    values = config.num_updates * len(METRIC_NAMES) + config.num_evals * len(EVAL_METRIC_NAMES)
    metrics = 2 * values * _FLOAT  # on the device, then on the host

    evaluation = 0
    if config.evaluates:  # in-run or final: one evaluation's episodes at a time
        K = config.eval_episodes
        env = _env_bytes(agent.eval_stack)  # observations and states of K environments
        # per environment: the state and observation 3x (carry in, carry out, the
        # step's outputs before the auto-reset select), actor activations (each hidden
        # layer, pre- and post-activation, and the action distribution), a key pair per
        # split (3 splits), the episode record (return, length, finished)
        per_env = (2 * hidden + 7 * H + 4 * action_size) * _FLOAT + 3 * 8 + 3 * _FLOAT  # + the GRU's
        evaluation = 2 * (3 * env + K * per_env)  # the greedy and the stochastic episodes at once
    return Estimate(state=state, update=update, metrics=metrics, evaluation=evaluation)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _stat(path: Path, *keys: str) -> int:
    """The first of `keys` in a cgroup memory.stat file (0 if none)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0
    values = dict(line.split(maxsplit=1) for line in lines if " " in line)
    for key in keys:
        if key in values and values[key].strip().isdigit():
            return int(values[key])
    return 0


def _cgroup_dirs(relative: str, base: Path) -> list[Path]:
    """base/relative and each of its parents up to base (limits of parents apply too)."""
    path = base / relative.strip("/") if relative.strip("/") else base
    dirs = [path]
    while path != base and base in path.parents:
        path = path.parent
        dirs.append(path)
    return dirs


def cgroup_available() -> int | None:
    """Bytes this process's cgroup may still allocate (limit less its anonymous memory;
    page cache is reclaimable), the tightest over the cgroup and its parents; None if
    there is no limit."""
    try:
        lines = (PROC_SELF / "cgroup").read_text().splitlines()
    except OSError:
        return None
    best = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers, relative = parts[1], parts[2]
        if parts[0] == "0" and controllers == "":  # v2: memory.max, memory.stat "anon"
            candidates = [(d / "memory.max", d / "memory.stat", ("anon",))
                          for d in _cgroup_dirs(relative, CGROUP_ROOT)]
        elif "memory" in controllers.split(","):  # v1: memory.limit_in_bytes, "total_rss"
            base = CGROUP_ROOT / "memory"
            dirs = _cgroup_dirs(relative, base)
            if not (base / relative.strip("/")).exists():  # a namespace shows its own cgroup as the root
                dirs = [base]
            candidates = [(d / "memory.limit_in_bytes", d / "memory.stat", ("total_rss", "rss")) for d in dirs]
        else:
            continue
        for limit_path, stat_path, keys in candidates:
            limit = _read_int(limit_path)
            if limit is None or limit >= _UNLIMITED:
                continue
            available = max(0, limit - _stat(stat_path, *keys))
            best = available if best is None else min(best, available)
    return best


def _status_kib(key: str) -> int:
    try:
        for line in (PROC_SELF / "status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def host_limits() -> dict[str, int]:
    """Bytes the process can still allocate, by what limits it: "host" (MemAvailable,
    else physical RAM), "cgroup" (the container), "RLIMIT_AS" (address space)."""
    limits = {}
    available = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    limits["host"] = available or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cgroup = cgroup_available()
    if cgroup is not None:
        limits["cgroup"] = cgroup
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits["RLIMIT_AS"] = max(0, soft - _status_kib("VmSize") * 1024)
    return limits


def device_limit(device: jax.Device | None = None) -> tuple[int, str]:
    """(bytes the device can give us, what sets that number)."""
    device = device or jax.devices()[0]
    try:
        stats = device.memory_stats()
    except Exception:  # some backends do not implement memory_stats
        stats = None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]), f"{device.device_kind} allocator limit"
    return host_limit()


def host_limit() -> tuple[int, str]:
    """(bytes the host can give us, what sets that number): the tightest of host_limits."""
    limits = host_limits()
    source = min(limits, key=limits.get)
    return limits[source], source


def joined_bytes(one_seed_state, config, num_seeds: int) -> int:
    """Host bytes a chunked run's join (seed_ranges.py) holds at once: every seed's final
    state (`one_seed_state`: driver.abstract_state of one seed) and its metrics, twice
    (the chunks' copies and the joined one)."""
    state = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(one_seed_state))
    evals = config.num_evals if config.eval_every else 0
    metrics = 4 * (len(METRIC_NAMES) * config.num_updates + len(EVAL_METRIC_NAMES) * evals)
    return 2 * num_seeds * (state + metrics)


def device_bytes(device: jax.Device | None = None) -> int:
    """Memory the device can give us: the allocator's limit, or on the CPU the tightest
    of the host's available memory, the cgroup limit and RLIMIT_AS."""
    return device_limit(device)[0]


def seeds_that_fit(agent: Agent) -> int:
    """How many seeds of the agent's run one device can hold at once; a ValueError naming
    the field to lower when not even one fits (before anything compiles)."""
    config, one = agent.config, estimate(agent)
    have, source = device_limit()
    if one.total > have:
        part, field = one.largest()
        raise ValueError(
            f"{field}: one seed needs an estimated {size(one.total)} ({one.describe()}; "
            f"num_envs * num_steps = {config.batch_size}, {config.num_updates} updates, "
            f"eval_episodes = {config.eval_episodes if config.evaluates else 0}) but only "
            f"{size(have)} can be allocated ({source}); the {part} part is the largest: "
            f"lower {field}."
        )
    return int(have // one.total)
