"""The optax side of `cargo bench --bench optim`.

Times one `optax.adamw(3e-4)` update (`opt.update` under `jax.jit`) of a
2.66 M-parameter tree: the shapes of a small GPT (an embedding and three
blocks of attention and MLP weights, biases and layer norms), the same list
as `crates/solstice/benches/optim.rs`. Prints the median update time in
microseconds as `optax_jit_update_us <value>`.

Run alone with `python3 tools/reference/bench_optim.py`.
"""

import os
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

VOCAB, DIM, BLOCKS = 1130, 256, 3
ROUNDS, STEPS = 15, 20


def shapes():
    out = [(VOCAB, DIM)]
    for _ in range(BLOCKS):
        out += [(DIM,), (DIM,), (3 * DIM, DIM), (3 * DIM,), (DIM, DIM), (DIM,)]
        out += [(DIM,), (DIM,), (4 * DIM, DIM), (4 * DIM,), (DIM, 4 * DIM), (DIM,)]
    out += [(DIM,), (DIM,)]
    return out


def tree(seed):
    keys = jax.random.split(jax.random.key(seed), len(shapes()))
    return [jax.random.normal(k, s, jnp.float32) for k, s in zip(keys, shapes())]


def main():
    params, grads = tree(0), tree(1)
    opt = optax.adamw(3e-4)
    state = opt.init(params)
    update = jax.jit(opt.update)
    u, state = update(grads, state, params)
    jax.block_until_ready(u)
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(STEPS):
            u, state = update(grads, state, params)
        jax.block_until_ready(u)
        times.append((time.perf_counter() - start) / STEPS * 1e6)
    n = sum(x.size for x in params)
    print(f"parameters {n}")
    print(f"optax_jit_update_us {statistics.median(times):.1f}")


if __name__ == "__main__":
    main()
