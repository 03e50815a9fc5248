"""The JAX/Equinox side of `cargo bench --bench train_step`.

Times one SGD step (value, gradient and update under `eqx.filter_jit`) of
the tied language model that `crates/solstice/benches/train_step.rs` times
in solstice, with the same sizes, and prints the median step time in
microseconds as `jax_jit_step_us <value>`.

With `--serve`, the bench interleaves the two sides: the script compiles
the step, prints `ready`, and then times one round of `STEPS` steps for
each line it reads on standard input, printing `jax_jit_round_us <value>`
(the mean step time of that round), until its input closes.

Run alone with `python3 tools/reference/bench_train_step.py`.
"""

import statistics
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp

VOCAB, DIM, SEQUENCE = 16, 32, 64
ROUNDS, STEPS = 15, 50


class LanguageModel(eqx.Module):
    shared: eqx.nn.Shared
    hidden: eqx.nn.Linear

    def __init__(self, key):
        k1, k2, k3 = jax.random.split(key, 3)
        embedding = eqx.nn.Embedding(VOCAB, DIM, key=k1)
        linear = eqx.nn.Linear(DIM, VOCAB, key=k2)
        self.shared = eqx.nn.Shared(
            (embedding, linear), lambda p: p[1].weight, lambda p: p[0].weight
        )
        self.hidden = eqx.nn.Linear(DIM, DIM, key=k3)

    def __call__(self, tokens):
        embedding, linear = self.shared()
        values = jax.vmap(embedding)(tokens)
        values = jax.vmap(lambda v: jnp.tanh(self.hidden(v)))(values)
        return jax.vmap(linear)(values)


def loss(model, x, y):
    logp = jax.nn.log_softmax(model(x))
    return -jnp.mean(jnp.sum(logp * jax.nn.one_hot(y, VOCAB), -1))


@eqx.filter_jit
def step(model, x, y):
    value, grads = eqx.filter_value_and_grad(loss)(model, x, y)
    updates = jax.tree.map(lambda g: -0.05 * g, grads)
    return value, eqx.apply_updates(model, updates)


def main():
    model = LanguageModel(jax.random.key(0))
    x = jnp.arange(SEQUENCE, dtype=jnp.int32) % VOCAB
    y = (5 * x + 3) % VOCAB
    value, model = step(model, x, y)
    jax.block_until_ready(value)

    def one_round(model):
        start = time.perf_counter()
        for _ in range(STEPS):
            value, model = step(model, x, y)
        jax.block_until_ready(value)
        return (time.perf_counter() - start) / STEPS * 1e6, model

    if "--serve" in sys.argv[1:]:
        print("ready", flush=True)
        for _ in sys.stdin:
            us, model = one_round(model)
            print(f"jax_jit_round_us {us:.2f}", flush=True)
        return
    times = []
    for _ in range(ROUNDS):
        us, model = one_round(model)
        times.append(us)
    print(f"jax_jit_step_us {statistics.median(times):.2f}")


if __name__ == "__main__":
    main()
