"""The actor (policy) and critic (value) networks, with separate parameters.

Each reads observations with its `Encoder`: 'mlp' flattens them, input [N, *obs_shape] ->
[N, prod(obs_shape)]; 'cnn' applies 3x3 convolutions to images [N, H, W, C] first, then
flattens. The hidden_sizes layers and the head follow.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from purejaxvpg.algo.distributions import Categorical, DiagGaussian


def orthogonal(scale: float = 1.0):
    """Orthogonal initializer (Saxe et al., 2014) built from matrix products only.

    flax's `orthogonal` calls LAPACK's QR. Inside `jax.vmap(train)` that becomes a batched
    QR, which jaxlib's CPU backend (seen with 0.10.2 on 2 cores) runs with a parallel batch
    map on the same thread pool that executes the program: the workers wait on each other
    and the run hangs forever in block_until_ready. Gram-Schmidt (done twice, "twice is
    enough" for float32) on a Gaussian matrix gives the same distribution, the Q factor
    of a QR with positive diag(R), which is Haar-distributed.

    The projection is written `v @ q`: for one seed XLA compiled `q.T @ v` as a transposed
    copy and a fused loop that sums in another order than the batched dot it uses for
    several seeds, so a seed's initial weights depended on how many seeds ran with it.
    """

    def init(key, shape, dtype=jnp.float32):
        if len(shape) > 2:  # a convolution's (kh, kw, in, out): orthogonal over its kh * kw * in inputs
            return init(key, (int(np.prod(shape[:-1])), shape[-1]), dtype).reshape(shape)
        rows, cols = shape
        transpose = rows < cols
        tall = (cols, rows) if transpose else (rows, cols)  # orthonormalise the columns
        a = jax.random.normal(key, tall, jnp.float32)

        def add_column(j, q):
            v = a[:, j]
            for _ in range(2):  # q's columns >= j are still zero, so they project to nothing
                v = v - q @ (v @ q)  # not q.T @ v (see the docstring)
            return q.at[:, j].set(v / jnp.linalg.norm(v))

        q = jax.lax.fori_loop(0, tall[1], add_column, jnp.zeros(tall, jnp.float32))
        return (scale * (q.T if transpose else q)).astype(dtype)

    return init


_ACTIVATIONS = {
    "tanh": nn.tanh,
    "relu": nn.relu,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
}


class MLP(nn.Module):
    """Hidden layers with orthogonal(sqrt 2) init, then a linear head with gain `out_scale`.

    The small head gain for the policy starts it near uniform / near mean zero, a
    standard choice for on-policy methods (Andrychowicz et al., 2021).
    """

    hidden_sizes: Sequence[int]
    out_size: int
    activation: str
    out_scale: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        for width in self.hidden_sizes:
            x = act(nn.Dense(width, kernel_init=orthogonal(np.sqrt(2.0)))(x))
        return nn.Dense(self.out_size, kernel_init=orthogonal(self.out_scale))(x)


class Conv(nn.Module):
    """A 3x3 convolution, stride 1, no padding: [N, H, W, C] -> [N, H - 2, W - 2, features],
    out[n, i, j] = sum over di, dj of x[n, i + di, j + dj] @ kernel[di, dj] + bias.

    Written as the 9 shifted slices concatenated ([N, H - 2, W - 2, 9C], in kernel order) and
    one matrix product with the kernel as [9C, features]: on the CPU XLA's own convolution,
    and its gradient, ran the Breakout-MinAtar program 16x slower than the MLP at one seed
    (benchmarks/network_speed.py); slices and a matmul vectorise over seeds like the MLP's."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h, w, c = x.shape[-3:]
        kernel = self.param("kernel", orthogonal(np.sqrt(2.0)), (3, 3, c, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        patches = jnp.concatenate([x[..., i:i + h - 2, j:j + w - 2, :] for i in range(3) for j in range(3)], axis=-1)
        return patches @ kernel.reshape(9 * c, self.features) + bias


class Encoder(nn.Module):
    """obs [N, *obs_shape] -> features [N, F]. 'mlp': the observation flattened. 'cnn': for
    each of `channels`, x <- relu(conv3x3(x)) (stride 1, no padding: [H, W] -> [H - 2, W - 2]),
    orthogonal(sqrt 2) kernels, then flattened (MinAtar's network: one 16-channel convolution)."""

    kind: str = "mlp"
    channels: Sequence[int] = (16,)

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs.astype(jnp.float32)
        if self.kind == "cnn":
            for width in self.channels:
                x = nn.relu(Conv(width)(x))
        return x.reshape(x.shape[0], -1)


class Actor(nn.Module):
    """obs [N, *obs_shape] -> Categorical(logits [N, A]) or DiagGaussian(mean [N, A], log_std [A])."""

    hidden_sizes: Sequence[int]
    action_size: int
    discrete: bool
    activation: str = "tanh"
    log_std_init: float = -0.5
    learn_log_std: bool = True
    encoder: str = "mlp"
    cnn_channels: Sequence[int] = (16,)

    @nn.compact
    def __call__(self, obs: jax.Array):
        x = Encoder(self.encoder, self.cnn_channels)(obs)
        out = MLP(self.hidden_sizes, self.action_size, self.activation, out_scale=0.01)(x)
        if self.discrete:
            return Categorical(logits=out)
        if self.learn_log_std:
            log_std = self.param(
                "log_std", nn.initializers.constant(self.log_std_init), (self.action_size,)
            )
        else:
            log_std = jnp.full((self.action_size,), self.log_std_init, jnp.float32)
        return DiagGaussian(mean=out, log_std=log_std)


class Critic(nn.Module):
    """obs [N, *obs_shape] -> V(s) [N]."""

    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    encoder: str = "mlp"
    cnn_channels: Sequence[int] = (16,)

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = Encoder(self.encoder, self.cnn_channels)(obs)
        return MLP(self.hidden_sizes, 1, self.activation, out_scale=1.0)(x)[:, 0]


class _Recurrent(nn.Module):
    """The recurrent ('gru') networks' common body, in three steps the algorithm calls apart
    (recurrent.py): `features(obs)` batched over every step, `step(hidden, x, first)` in a
    scan over time, `head(hidden)` batched again. One step of acting is `__call__`.

        x_t = act(Dense(encoder(s_t)))                       [N, H]
        h_t = GRU(0 if first_t else h_{t-1}, x_t)            [N, H]
        out_t = MLP(h_t)                                     (the hidden_sizes layers and a head)

    first_t: s_t is the first observation of an episode (the step after a termination or a
    truncation, or the run's first), so no memory of another episode reaches it.
    """

    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    encoder: str = "mlp"
    cnn_channels: Sequence[int] = (16,)
    recurrent_size: int = 128

    def setup(self):
        self.encode = Encoder(self.encoder, self.cnn_channels)
        self.embed = nn.Dense(self.recurrent_size, kernel_init=orthogonal(np.sqrt(2.0)))
        # our orthogonal init (flax's calls LAPACK's QR: see `orthogonal`)
        self.cell = nn.GRUCell(self.recurrent_size, kernel_init=orthogonal(1.0), recurrent_kernel_init=orthogonal(1.0))
        self.setup_head()

    def features(self, obs: jax.Array) -> jax.Array:
        """obs [N, *obs_shape] -> x [N, H]."""
        return _ACTIVATIONS[self.activation](self.embed(self.encode(obs)))

    def step(self, hidden: jax.Array, x: jax.Array, first: jax.Array) -> jax.Array:
        """hidden [N, H], x [N, H], first [N] bool -> the next hidden [N, H]."""
        hidden = jnp.where(first[:, None], jnp.zeros_like(hidden), hidden)
        return self.cell(hidden, x)[0]

    def __call__(self, hidden: jax.Array, obs: jax.Array, first: jax.Array):
        """One step: (hidden [N, H], obs [N, *obs_shape], first [N]) -> (next hidden, output)."""
        hidden = self.step(hidden, self.features(obs), first)
        return hidden, self.head(hidden)


class RecurrentActor(_Recurrent):
    """hidden [N, H] -> Categorical(logits [N, A]) or DiagGaussian(mean [N, A], log_std [A]),
    after the recurrent body (_Recurrent); the head as Actor's."""

    action_size: int = 1
    discrete: bool = True
    log_std_init: float = -0.5
    learn_log_std: bool = True

    def setup_head(self):
        self.torso = MLP(self.hidden_sizes, self.action_size, self.activation, out_scale=0.01)
        if not self.discrete and self.learn_log_std:
            self.log_std = self.param("log_std", nn.initializers.constant(self.log_std_init), (self.action_size,))

    def head(self, hidden: jax.Array):
        out = self.torso(hidden)
        if self.discrete:
            return Categorical(logits=out)
        log_std = self.log_std if self.learn_log_std else jnp.full((self.action_size,), self.log_std_init, jnp.float32)
        return DiagGaussian(mean=out, log_std=log_std)


class RecurrentCritic(_Recurrent):
    """hidden [N, H] -> V [N], after the recurrent body (_Recurrent)."""

    def setup_head(self):
        self.torso = MLP(self.hidden_sizes, 1, self.activation, out_scale=1.0)

    def head(self, hidden: jax.Array) -> jax.Array:
        return self.torso(hidden)[:, 0]
