"""Several processes (machines) as one run, through JAX's own distributed runtime.

    import purejaxvpg as pjv
    pjv.distributed.initialize()          # on Slurm, Open MPI, a TPU pod: found automatically
    pjv.distributed.initialize("10.0.0.1:1234", num_processes=2, process_id=0)   # elsewhere
    result = pjv.train(config, num_seeds=4096)   # the seeds split over every process's devices

`initialize` starts `jax.distributed` (its coordination service runs in process 0) before
anything touches a device; afterwards `jax.devices()` lists every process's devices, the
seed mesh spans them (placement.py), every process builds the same global keys and trains
the seeds its own devices hold, and every block's metrics are all-gathered, so each process
ends with every seed's numbers. On CPU the collectives go through gloo (TCP).

A process that dies ends the others in bounded time (what jax 0.10.2 does, measured with
kill -9 on localhost): a survivor's next all-gather fails at once (its TCP peer is gone),
and `stopped` says so and names the lost process once the coordination service has missed
its heartbeats for `heartbeat_timeout_seconds`. At that same moment the coordination service
itself ends every other process (jax's fatal "tasks ... stopped sending heartbeats", SIGABRT),
also one that never reaches a collective; whichever comes first names the lost process.
When process 0 (the coordination service) dies, the others end at once that way.
"""

from __future__ import annotations

import os
import sys

import jax

DEFAULT_HEARTBEAT_SECONDS = 100  # jax.distributed's own default
DEFAULT_INIT_SECONDS = 300
_joined = {}  # this process's settings once `initialize` succeeded (heartbeat_timeout_seconds)


def _explicit(coordinator_address, num_processes, process_id) -> bool:
    """Whether the three explicit settings are given (all of them) or left to detection
    (none); ValueError naming the missing ones when only some are given."""
    given = {"coordinator_address": coordinator_address, "num_processes": num_processes,
             "process_id": process_id}
    missing = [name for name, value in given.items() if value is None]
    if missing and len(missing) < len(given):
        raise ValueError(
            f"distributed: {', '.join(missing)} missing: give coordinator_address (HOST:PORT), "
            "num_processes and process_id together (--coordinator-address, --num-processes, --process-id), "
            "or none of them to detect the cluster (Slurm, Open MPI, TPU pod)."
        )
    return not missing


def _positive_int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"distributed: {name} must be an integer >= {low}, got {value!r}.")
    return value


def check(coordinator_address=None, num_processes=None, process_id=None,
          heartbeat_timeout_seconds=DEFAULT_HEARTBEAT_SECONDS,
          initialization_timeout=DEFAULT_INIT_SECONDS) -> bool:
    """ValueError naming the setting that is wrong, before anything starts; True when the
    settings are explicit, False when they are left to cluster detection."""
    _positive_int("heartbeat_timeout_seconds", heartbeat_timeout_seconds)
    _positive_int("initialization_timeout", initialization_timeout)
    if not _explicit(coordinator_address, num_processes, process_id):
        return False
    host, sep, port = str(coordinator_address).rpartition(":")
    if not (isinstance(coordinator_address, str) and sep and host and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"distributed: coordinator_address must be HOST:PORT (port 1-65535), "
                         f"got {coordinator_address!r}.")
    _positive_int("num_processes", num_processes)
    if isinstance(process_id, bool) or not isinstance(process_id, int) or not 0 <= process_id < num_processes:
        raise ValueError(f"distributed: process_id must be an integer in 0..{num_processes - 1} "
                         f"(num_processes={num_processes}), got {process_id!r}.")
    return True


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, local_device_ids=None,
               heartbeat_timeout_seconds: int = DEFAULT_HEARTBEAT_SECONDS,
               initialization_timeout: int = DEFAULT_INIT_SECONDS) -> None:
    """Join this process to a distributed run: `jax.distributed.initialize`, explicit or
    (no address, count, id) detected from Slurm, Open MPI or a TPU pod. Call it once,
    before anything uses a device. heartbeat_timeout_seconds: how long the others wait
    for a process that stopped responding before they fail (see the module doc)."""
    explicit = check(coordinator_address, num_processes, process_id, heartbeat_timeout_seconds,
                     initialization_timeout)
    if jax.distributed.is_initialized():
        raise ValueError("distributed: this process has joined a distributed run already "
                         "(initialize is called once per process).")
    if jax.config.jax_cpu_collectives_implementation in (None, "none"):  # older jax: none on CPU
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address, num_processes, process_id, local_device_ids=local_device_ids,
            heartbeat_timeout_seconds=heartbeat_timeout_seconds, initialization_timeout=initialization_timeout)
    except ValueError as error:
        if explicit:
            raise ValueError(f"distributed: {error}") from error
        raise ValueError(
            f"distributed: no cluster detected ({error}); outside Slurm, Open MPI and TPU pods give "
            "coordinator_address, num_processes and process_id (--coordinator-address, --num-processes, "
            "--process-id)."
        ) from error
    except RuntimeError as error:  # jax refuses once a backend is in use
        raise ValueError(f"distributed: {error} (initialize before anything uses a device)") from error
    _joined["heartbeat_timeout_seconds"] = heartbeat_timeout_seconds


def is_primary() -> bool:
    """Whether this is process 0: the one that writes the run directory and prints."""
    return jax.process_index() == 0


def is_distributed() -> bool:
    return jax.process_count() > 1


def barrier(name: str) -> None:
    """Wait until every process of a distributed run got here (nothing to wait for alone)."""
    if is_distributed():
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"purejaxvpg:{name}")


def first_signal(received: int | None) -> int | None:
    """The signal (SIGINT / SIGTERM number) any process of the run has received, or None:
    one all-gather, so every process learns it after the same block and all of them
    checkpoint that block and stop together (a scheduler signals them at slightly
    different times)."""
    import numpy as np
    from jax.experimental import multihost_utils

    return int(np.max(multihost_utils.process_allgather(np.int32(received or 0)))) or None


def lost_process(error: BaseException) -> bool:
    """Whether `error` is what a distributed run raises when a process is gone: a failed
    collective (JaxRuntimeError) in a run of several processes."""
    return (isinstance(error, jax.errors.JaxRuntimeError) and jax.distributed.is_initialized()
            and is_distributed())


def stopped(error: BaseException) -> None:
    """Report a lost process and end this one with exit code 1, at once.

    Says first what failed (the collective's error), then names the processes the
    coordination service no longer hears from (it answers once their heartbeats are
    overdue, when jax may end this process first: see the module doc). Exits with
    os._exit: a normal exit would wait in jax.distributed's shutdown barrier for the lost
    process and then abort."""
    first = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
    count, me = jax.process_count(), jax.process_index()
    seconds = _joined.get("heartbeat_timeout_seconds")
    timeout = f"heartbeat timeout {seconds} s" if seconds else "heartbeat timeout"
    print(f"purejaxvpg: error: process {me} of {count}: another process of this distributed run stopped "
          f"({first}); waiting for the coordination service to name it ({timeout})", file=sys.stderr, flush=True)
    try:  # jax has no public call for this; the run ends either way
        from jax._src import distributed as state

        alive = state.global_state.client.get_live_nodes(list(range(count)))
        gone = [p for p in range(count) if p not in alive]
        print(f"purejaxvpg: error: lost process(es) {', '.join(map(str, gone)) or 'none'} of {count} "
              f"(no heartbeat within the {timeout}); this process stops too. Resume the run with --resume "
              "once every process can run again.", file=sys.stderr, flush=True)
    except Exception as detail:  # the coordinator itself is gone
        print(f"purejaxvpg: error: the coordination service is unreachable ({str(detail).splitlines()[0][:200]}): "
              "process 0 (the coordinator) stopped; this process stops too.", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)
