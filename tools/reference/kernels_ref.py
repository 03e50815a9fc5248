"""Reference values for the fused row-wise operations, in float32.

Writes `kernels.json`: for a fixed input `x` (f32[4, 6]) and integer labels,
the value of `jax.nn.softmax`, `jax.nn.log_softmax`, `jax.nn.logsumexp`,
`optax.softmax_cross_entropy_with_integer_labels` and per-row
standardisation (`(x - mean) / sqrt(var + 1e-5)`, the normalisation of
`eqx.nn.LayerNorm`), each with `grad` of `sum(w * f(x))` for a fixed `w`,
and the second derivative `grad(sum(grad(sum(w * f(x))) * v))` for a fixed
`v`.

Usage: python3 kernels_ref.py [OUT_DIR]
"""

import os
import sys

os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import fixture_io as fx  # noqa: E402

EPS = 1e-5


def standardize(x):
    def row(r):
        mean = jnp.mean(r)
        var = jnp.mean((r - mean) ** 2)
        return (r - mean) * jax.lax.rsqrt(var + EPS)

    return jax.vmap(row)(x)


def cases():
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((4, 6)) * 3).astype(np.float32)
    labels = np.array([0, 5, 2, 2], dtype=np.int32)
    v = rng.standard_normal((4, 6)).astype(np.float32)
    ops = {
        "softmax": (lambda x: jax.nn.softmax(x, axis=-1), (4, 6)),
        "softmax_axis0": (lambda x: jax.nn.softmax(x, axis=0), (4, 6)),
        "log_softmax": (lambda x: jax.nn.log_softmax(x, axis=-1), (4, 6)),
        "logsumexp": (lambda x: jax.nn.logsumexp(x, axis=-1), (4,)),
        "softmax_cross_entropy": (
            lambda x: optax.softmax_cross_entropy_with_integer_labels(x, labels),
            (4,),
        ),
        "standardize": (standardize, (4, 6)),
    }
    out = []
    for name, (f, shape) in ops.items():
        w = rng.standard_normal(shape).astype(np.float32)

        def scalar(x, f=f, w=w):
            return jnp.sum(w * f(x))

        def second(x, scalar=scalar):
            return jnp.sum(jax.grad(scalar)(x) * v)

        out.append(
            fx.case(
                name,
                arrays={
                    "x": x,
                    "labels": labels,
                    "w": w,
                    "v": v,
                    "value": f(x),
                    "grad": jax.grad(scalar)(x),
                    "second": jax.grad(second)(x),
                },
            )
        )
    return out


def write(out_dir):
    fx.dump({"meta": fx.meta(), "cases": cases()}, out_dir, "kernels.json")


if __name__ == "__main__":
    out, _ = fx.parse_cli(sys.argv, fx.default_out_dir())
    write(out)
