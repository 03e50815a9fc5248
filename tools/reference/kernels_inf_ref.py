"""Reference values of the fused row-wise operations on rows holding
infinities and NaN, in float32.

Writes `kernels_inf.json`: for a fixed f32[5, 3] input whose rows hold
+inf, -inf and NaN, the value of `jax.nn.softmax`, `jax.nn.log_softmax`,
`jax.nn.logsumexp` and `optax.softmax_cross_entropy_with_integer_labels`
along the last axis, and `grad` of `sum(w * f(x))` for a fixed finite `w`.

Fixture files hold finite numbers only, so each float array `a` is stored
as two: `a` with its non-finite elements set to 0, and `a_class` (int32),
0 where finite, 1 for NaN, 2 for +inf and 3 for -inf.

Usage: python3 kernels_inf_ref.py [OUT_DIR]
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

INF = np.float32(np.inf)
NAN = np.float32(np.nan)


def split(name, a):
    """`{name: finite part, name_class: kind of each element}`."""
    a = np.asarray(a, dtype=np.float32)
    kind = np.zeros(a.shape, dtype=np.int32)
    kind[np.isnan(a)] = 1
    kind[np.isposinf(a)] = 2
    kind[np.isneginf(a)] = 3
    return {name: np.where(np.isfinite(a), a, 0).astype(np.float32), name + "_class": kind}


def cases():
    x = np.array(
        [
            [INF, 1.0, 2.0],
            [INF, INF, 2.0],
            [-INF, -INF, -INF],
            [-INF, 0.5, 1.0],
            [NAN, 1.0, 2.0],
        ],
        dtype=np.float32,
    )
    labels = np.array([1, 2, 0, 2, 1], dtype=np.int32)
    ops = {
        "softmax": (lambda x: jax.nn.softmax(x, axis=-1), (5, 3)),
        "log_softmax": (lambda x: jax.nn.log_softmax(x, axis=-1), (5, 3)),
        "logsumexp": (lambda x: jax.nn.logsumexp(x, axis=-1), (5,)),
        "softmax_cross_entropy": (
            lambda x: optax.softmax_cross_entropy_with_integer_labels(x, labels),
            (5,),
        ),
    }
    rng = np.random.default_rng(11)
    out = []
    for name, (f, shape) in ops.items():
        w = rng.standard_normal(shape).astype(np.float32)

        def scalar(x, f=f, w=w):
            return jnp.sum(w * f(x))

        arrays = {"labels": labels, "w": w}
        arrays.update(split("x", x))
        arrays.update(split("value", f(x)))
        arrays.update(split("grad", jax.grad(scalar)(x)))
        out.append(fx.case(name, arrays=arrays))
    return out


def write(out_dir):
    fx.dump({"meta": fx.meta(), "cases": cases()}, out_dir, "kernels_inf.json")


if __name__ == "__main__":
    out, _ = fx.parse_cli(sys.argv, fx.default_out_dir())
    write(out)
