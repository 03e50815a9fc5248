"""Reference values for the fused row-wise operations, in float32.

Writes `kernels.json`: for a fixed input `x` (f32[4, 6]) and integer labels,
the value of `jax.nn.softmax`, `jax.nn.log_softmax`, `jax.nn.logsumexp`,
`optax.softmax_cross_entropy_with_integer_labels`, `jax.nn.gelu` (tanh) and
per-row standardisation (`(x - mean) / sqrt(var + 1e-5)`, the normalisation of
`eqx.nn.LayerNorm`), each with `grad` of `sum(w * f(x))` for a fixed `w`,
the second derivative `grad(sum(grad(sum(w * f(x))) * v))` for a fixed
`v`, the same Hessian-vector product by forward over reverse
(`jax.jvp` of `jax.grad`), and, for the operations on rows, the second
derivative of each row on its own under `jax.vmap` (per-example second
derivatives). `standardize_2axes` standardises each of two [2, 6] examples
over both of its axes, as `eqx.nn.LayerNorm` of shape (2, 6) does.

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


def standardize_all(e):
    mean = jnp.mean(e)
    var = jnp.mean((e - mean) ** 2)
    return (e - mean) * jax.lax.rsqrt(var + EPS)


# The operations on one row (or, for `standardize_2axes`, one example of two
# rows), given that row's label.
ROW_OPS = {
    "softmax": lambda r, lab: jax.nn.softmax(r),
    "log_softmax": lambda r, lab: jax.nn.log_softmax(r),
    "logsumexp": lambda r, lab: jax.nn.logsumexp(r),
    "softmax_cross_entropy": lambda r, lab: optax.softmax_cross_entropy_with_integer_labels(
        r, lab
    ),
    "standardize": lambda r, lab: standardize_all(r),
    "gelu_tanh": lambda r, lab: jax.nn.gelu(r, approximate=True),
}


def per_row_second(name, x, labels, w, v):
    """The second derivative of each row (example) on its own, under vmap."""
    if name == "standardize_2axes":
        f = ROW_OPS["standardize"]
        x, w, v = (a.reshape(2, 2, 6) for a in (x, w, v))
        labels = labels.reshape(2, 2)
    else:
        f = ROW_OPS[name]

    def one(r, lab, wr, vr):
        def scalar(r):
            return jnp.sum(wr * f(r, lab))

        return jax.grad(lambda r: jnp.sum(jax.grad(scalar)(r) * vr))(r)

    return jax.vmap(one)(x, labels, w, v).reshape(4, 6)


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
        "gelu_tanh": (lambda x: jax.nn.gelu(x, approximate=True), (4, 6)),
        "standardize_2axes": (
            lambda x: jax.vmap(standardize_all)(x.reshape(2, 2, 6)).reshape(4, 6),
            (4, 6),
        ),
    }
    out = []
    for name, (f, shape) in ops.items():
        w = rng.standard_normal(shape).astype(np.float32)

        def scalar(x, f=f, w=w):
            return jnp.sum(w * f(x))

        def second(x, scalar=scalar):
            return jnp.sum(jax.grad(scalar)(x) * v)

        arrays = {
            "x": x,
            "labels": labels,
            "w": w,
            "v": v,
            "value": f(x),
            "grad": jax.grad(scalar)(x),
            "second": jax.grad(second)(x),
            "hvp": jax.jvp(jax.grad(scalar), (x,), (v,))[1],
        }
        if name != "softmax_axis0":
            arrays["second_per_row"] = per_row_second(name, x, labels, w, v)
        out.append(fx.case(name, arrays=arrays))
    return out


def write(out_dir):
    fx.dump({"meta": fx.meta(), "cases": cases()}, out_dir, "kernels.json")


if __name__ == "__main__":
    out, _ = fx.parse_cli(sys.argv, fx.default_out_dir())
    write(out)
