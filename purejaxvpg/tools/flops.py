"""FLOPs of any jitted JAX function from XLA's own cost analysis, loops counted in full.

`jax.jit(f).lower(*args).compile().cost_analysis()["flops"]` counts every HLO instruction
once, and a while loop's body is one computation: a `lax.scan` of 10 matmuls and one of 20
both report the flops of one matmul (jax 0.10.2 on the CPU, tested in tests/test_bench.py).
XLA inlines a loop of one trip (counted right) and deletes a loop of zero trips. A program of
nested loops (a training run: updates > rollout steps, GAE steps, value steps) is therefore
undercounted by orders of magnitude.

`loop_aware_flops(f, *args)` traces `f` to a jaxpr, cuts out every loop it can reach without
entering a loop (it descends into jit, custom_jvp/vjp and checkpoint calls), has XLA cost what
is left, and adds each scan body's count, recursively, times the scan's length. In the cut
program a loop's outputs become parameters and its inputs become results, so XLA neither
constant-folds the first nor deletes the second as dead code.

What it counts, and its limits:
  * XLA's "flops": adds, multiplies, compares, ... of the program XLA built for this backend
    (a matmul is 2mnk). Transcendentals (exp, tanh, log) are a separate XLA key, not counted;
    neither is memory traffic. Batched (vmapped) work counts every batch member.
  * Each piece (the cut program, then every loop body) is compiled on its own, so fusion
    across a cut may differ slightly from the whole program's; each piece costs a compile.
  * A `while_loop` of unknown trip count (a `fori_loop` with traced bounds) has its body and
    condition counted once; `FlopCount.while_loops_counted_once` says how many there were.
    `fori_loop` with Python-int bounds is a scan and is counted in full.
  * Loops inside `lax.cond`/`lax.switch` branches are not cut: they stay as XLA counts them.
  * Some jax versions' GPU backends report a matmul turned into a cuBLAS call as (almost) no
    flops in the compiled count (jax-ml/jax#22249); `flops_before_optimisation`, the same count
    on the HLO before XLA's passes, is kept beside it for such backends.

Imports only jax: it counts any function, not just the trainer.
"""

from __future__ import annotations

import contextlib
import dataclasses

import jax

_LOOPS = ("scan", "while")


@dataclasses.dataclass(frozen=True)
class FlopCount:
    flops: float = 0.0  # loop bodies times their trip counts, from the compiled pieces
    flops_before_optimisation: float = 0.0  # the same from the HLO before XLA's passes
    pieces_compiled: int = 0  # programs XLA costed (each cut program, each loop body)
    while_loops_counted_once: int = 0  # while loops of unknown trip count

    def __add__(self, other: FlopCount) -> FlopCount:
        return FlopCount(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

    def times(self, trips: int) -> FlopCount:
        """The FLOPs of `trips` runs of the same piece (pieces and loops are counted once)."""
        return dataclasses.replace(
            self, flops=trips * self.flops, flops_before_optimisation=trips * self.flops_before_optimisation
        )


def flops_of(stage) -> float:
    """The "flops" entry of a jax Compiled's or Lowered's cost analysis (0 where there is none)."""
    cost = stage.cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax: one dict per program
        cost = cost[0] if cost else None
    return float((cost or {}).get("flops", 0.0))


def xla_flops(fn, *args) -> float:
    """XLA's "flops" of the compiled `jax.jit(fn)(*args)` (loop bodies counted once)."""
    return _xla_costs(fn, *args)[0]


def _xla_costs(fn, *args) -> tuple[float, float]:
    """("flops" of the compiled program, "flops" of the program before XLA's passes)."""
    lowered = jax.jit(fn).lower(*args)
    try:  # the count is of the HLO after XLA's passes; LLVM's optimisation level only
        # changes the machine code (same flops, half the compile time on the CPU)
        compiled = lowered.compile(compiler_options={"xla_backend_optimization_level": 0})
    except Exception:  # a backend or jax version without the option
        compiled = lowered.compile()
    return flops_of(compiled), flops_of(lowered)


def loop_aware_flops(fn, *args) -> FlopCount:
    """FLOPs of `fn(*args)` from XLA's cost analysis, every scan body times its length.

    `args` may be arrays or `jax.ShapeDtypeStruct`s; nothing is run on the device.
    """
    return _count(jax.make_jaxpr(fn)(*args))


def _core():
    from jax.extend import core  # jax >= 0.4.30

    return core


def _sub_call(eqn):
    """(jaxpr, consts) of a call-like equation (jit, custom_jvp/vjp, checkpoint), else None."""
    core = _core()
    if eqn.primitive.name in (*_LOOPS, "cond"):
        return None
    for value in eqn.params.values():
        inner, consts = (value.jaxpr, value.consts) if isinstance(value, core.ClosedJaxpr) else (value, ())
        if (
            isinstance(inner, core.Jaxpr)
            and len(inner.invars) == len(eqn.invars)
            and len(inner.outvars) == len(eqn.outvars)
        ):
            return inner, consts
    return None


def _has_loop(jaxpr) -> bool:
    core = _core()
    return any(
        eqn.primitive.name in _LOOPS or any(_has_loop(j) for j in core.jaxprs_in_params(eqn.params))
        for eqn in jaxpr.eqns
    )


def _cut_into(eqn):
    """The (jaxpr, consts) of a call whose loops are cut out in place, else None."""
    sub = _sub_call(eqn)
    return sub if sub is not None and _has_loop(sub[0]) else None


def _loops(jaxpr):
    """The loop equations reachable without entering a loop, in evaluation order."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in _LOOPS:
            yield eqn
        elif (sub := _cut_into(eqn)) is not None:
            yield from _loops(sub[0])


def _eval_cut(jaxpr, consts, args, loop_outputs, loop_inputs: list) -> list:
    """Evaluate `jaxpr` with every loop (in `_loops`'s order) cut out: its outputs are read
    from the iterator `loop_outputs`, its inputs are appended to `loop_inputs`."""
    core = _core()
    env = dict(zip(jaxpr.constvars, consts)) | dict(zip(jaxpr.invars, args))

    def read(v):
        return v.val if isinstance(v, core.Literal) else env[v]

    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        if eqn.primitive.name in _LOOPS:
            loop_inputs.extend(x for v, x in zip(eqn.invars, invals) if not isinstance(v, core.Literal))
            outs = [next(loop_outputs) for _ in eqn.outvars]
        elif (sub := _cut_into(eqn)) is not None:
            outs = _eval_cut(sub[0], sub[1], invals, loop_outputs, loop_inputs)
        else:
            bound = eqn.primitive.get_bind_params(eqn.params)  # older jax: (subfuns, params)
            subfuns, params = bound if isinstance(bound, tuple) else ((), bound)
            with getattr(getattr(eqn, "ctx", None), "manager", contextlib.nullcontext()):
                outs = eqn.primitive.bind(*subfuns, *invals, **params)
            outs = outs if eqn.primitive.multiple_results else [outs]
        for var, val in zip(eqn.outvars, outs):
            if not isinstance(var, core.DropVar):
                env[var] = val
    return [read(v) for v in jaxpr.outvars]


def _spec(var) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(var.aval.shape, var.aval.dtype)


def _count(closed) -> FlopCount:
    """The FLOPs of one evaluation of `closed` (a ClosedJaxpr), loops in full."""
    loops = list(_loops(closed.jaxpr))
    n_in = len(closed.jaxpr.invars)

    def cut(*flat):  # program inputs, then every loop's outputs -> (outputs, loops' inputs)
        loop_inputs = []
        outs = _eval_cut(closed.jaxpr, closed.consts, flat[:n_in], iter(flat[n_in:]), loop_inputs)
        return outs, loop_inputs

    specs = [_spec(v) for v in closed.jaxpr.invars] + [_spec(v) for eqn in loops for v in eqn.outvars]
    total = FlopCount(*_xla_costs(cut, *specs), pieces_compiled=1)
    for eqn in loops:
        if eqn.primitive.name == "scan":
            if eqn.params["length"] > 0:
                total += _count(eqn.params["jaxpr"]).times(eqn.params["length"])
        else:  # while: trip count unknown until run time; body and condition once
            body_and_cond = _count(eqn.params["cond_jaxpr"]) + _count(eqn.params["body_jaxpr"])
            total += body_and_cond + FlopCount(while_loops_counted_once=1)
    return total
