"""Reference printing of ties and of the GELU activations with real Equinox.

Writes `ties.json`: `eqx.tree_pformat` of
- "shared_node": a whole `Linear` tied to a `MultiheadAttention`'s key
  projection (Equinox's `test_shared_node`), printed `key_proj=SharedNode`;
- "named_get": the seed's model with the head tied to the transpose of the
  embedding through a function named `transpose`, printed
  `get=<function transpose>`;
- "mlp_gelu": an MLP with `jax.nn.gelu` (the tanh form, its default) and the
  exact form `functools.partial(jax.nn.gelu, approximate=False)`.

Usage: python3 ties_ref.py [OUT_DIR]
"""

import functools
import os
import sys

os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import fixture_io as fx  # noqa: E402

# Module-level lambdas print as `<function <lambda>>`.
key_proj = lambda p: p[1].key_proj  # noqa: E731
whole = lambda p: p[0]  # noqa: E731
head_weight = lambda p: p[1].weight  # noqa: E731


def transpose(p):
    return jnp.transpose(p[0].weight)


def cases():
    k1, k2 = jax.random.split(jax.random.key(0))
    attention = eqx.nn.MultiheadAttention(3, 12, inference=True, key=k1)
    my_proj = eqx.nn.Linear(12, 12, use_bias=False, key=k2)
    shared_node = eqx.nn.Shared((my_proj, attention), key_proj, whole)

    embedding = eqx.nn.Embedding(11, 6, key=k1)
    head = eqx.nn.Linear(11, 6, key=k2)
    named = eqx.nn.Shared((embedding, head), head_weight, transpose)

    mlp = eqx.nn.MLP(
        2,
        3,
        4,
        1,
        activation=jax.nn.gelu,
        final_activation=functools.partial(jax.nn.gelu, approximate=False),
        key=k1,
    )
    return [
        fx.case("shared_node", pformat=eqx.tree_pformat(shared_node)),
        fx.case("named_get", pformat=eqx.tree_pformat(named)),
        fx.case("mlp_gelu", pformat=eqx.tree_pformat(mlp)),
    ]


def write(out_dir):
    fx.dump({"meta": fx.meta(), "cases": cases()}, out_dir, "ties.json")


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else fx.default_out_dir())
