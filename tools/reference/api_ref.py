"""Reference values for the array API: the operations of `jax.numpy` and
`jax.lax` that solstice provides (sorting, top_k, slicing, concatenation,
einsum, cumsum, rounding, pow, clip, division, ...) and the JAX semantics
where solstice once differed (integer division, relu's derivative at NaN,
softmax of infinities and of empty arrays, dropout's scaling), in float32.

Writes `api.json`. Each op case holds its inputs `x` (and `y` for a second
operand), the output `out` (several for ops with several), and the gradient
`grad_x` (`grad_y`) of `sum(out * w)` with `w = cos(0.7 * arange)` in the
output's shape. Non-finite floats are written as the strings "nan", "inf"
and "-inf", which the strict helper in `fixture_io` refuses.

Usage: python3 api_ref.py [OUT_DIR]
"""

import os
import sys

os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import fixture_io as fx  # noqa: E402

DTYPES = ("float32", "int32", "uint32", "uint8")


def arr(x):
    a = np.asarray(x)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    name = a.dtype.name
    if name not in DTYPES:
        raise TypeError(f"unsupported dtype {name}")
    if name.startswith("float"):
        data = []
        for v in a.reshape(-1):
            v = float(v)
            if v != v:
                data.append("nan")
            elif v in (float("inf"), float("-inf")):
                data.append("inf" if v > 0 else "-inf")
            else:
                data.append(v)
    else:
        data = [int(v) for v in a.reshape(-1)]
    return {"dtype": name, "shape": [int(d) for d in a.shape], "data": data}


def weights(shape):
    n = int(np.prod(shape)) if shape else 1
    return jnp.cos(0.7 * jnp.arange(n, dtype=jnp.float32)).reshape(shape)


def op_case(name, fn, *inputs, **fields):
    """`fn(*inputs)` (an array or a tuple whose first item is differentiated),
    with gradients for every float input."""
    out = fn(*inputs)
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    arrays = {}
    for key, x in zip(("x", "y"), inputs):
        arrays[key] = x
    for i, o in enumerate(outs):
        arrays["out" if i == 0 else f"out{i}"] = o

    def loss(*xs):
        y = fn(*xs)
        y = y[0] if isinstance(y, (tuple, list)) else y
        return jnp.sum(y * weights(y.shape))

    for i, (key, x) in enumerate(zip(("x", "y"), inputs)):
        if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) and jnp.issubdtype(
            outs[0].dtype, jnp.floating
        ):
            arrays["grad_" + key] = jax.grad(loss, argnums=i)(*inputs)
    c = {"name": name}
    c.update(fields)
    c["arrays"] = {k: arr(v) for k, v in arrays.items()}
    return c


def _cases():
    f32 = jnp.float32
    x = jnp.asarray(
        [[0.3, -1.2, 0.7, 0.7, -0.05], [1.5, 0.25, -0.5, 2.0, -2.5]], dtype=f32
    )
    halves = jnp.asarray([[0.5, 1.5, 2.5, -0.5, -1.5], [-2.5, 0.49, 3.7, -3.7, 0.0]], f32)
    with_nan = jnp.asarray([[1.0, jnp.nan, 3.0, 1.0, 3.0], [2.0, -1.0, 2.0, 0.0, -1.0]], f32)
    y = jnp.asarray([[1.1, 0.4, -0.3, 2.0, 0.9], [0.6, -0.8, 1.3, 0.2, 0.5]], dtype=f32)
    pos = jnp.abs(x) + 0.5
    small = x * 1e-3
    i32 = jnp.int32
    cases = [
        op_case("argmax", lambda a: jnp.argmax(a, axis=-1), x),
        op_case("argmin", lambda a: jnp.argmin(a, axis=0), x),
        op_case("argmax_nan", lambda a: jnp.argmax(a, axis=-1), with_nan),
        op_case("argmin_nan", lambda a: jnp.argmin(a, axis=-1), with_nan),
        op_case("min", lambda a: jnp.min(a, axis=1), x),
        op_case("min_ties", lambda a: jnp.min(a, axis=0), jnp.asarray([[1.0, 2.0], [1.0, 0.5]], f32)),
        op_case("var", lambda a: jnp.var(a, axis=1), x),
        op_case("std", lambda a: jnp.std(a, axis=0), x),
        op_case("pow", lambda a, b: jnp.power(a, b), pos, y),
        op_case("pow_negative_base", lambda a: jnp.power(a, 3.0), x),
        op_case("clip", lambda a: jnp.clip(a, -0.5, 0.7), x),
        op_case("floor", jnp.floor, halves),
        op_case("ceil", jnp.ceil, halves),
        op_case("round", jnp.round, halves),
        op_case("log1p", jnp.log1p, small),
        op_case("expm1", jnp.expm1, small),
        op_case("where", lambda a: jnp.where(a > 0, a, a * a), x),
        op_case("cumsum", lambda a: jnp.cumsum(a, axis=1), x),
        op_case("cumsum_reverse", lambda a: jax.lax.cumsum(a, axis=0, reverse=True), x),
        op_case("sort", lambda a: jnp.sort(a, axis=-1), x),
        op_case("sort_descending", lambda a: jnp.sort(a, axis=-1, descending=True), x),
        op_case("argsort_nan", lambda a: jnp.argsort(a, axis=-1), with_nan),
        op_case(
            "argsort_descending_nan",
            lambda a: jnp.argsort(a, axis=-1, descending=True),
            with_nan,
        ),
        op_case("argsort_axis0", lambda a: jnp.argsort(a, axis=0), x),
        op_case("top_k", lambda a: jax.lax.top_k(a, 3), x, k=3),
        op_case("top_k_nan", lambda a: jax.lax.top_k(a, 2), with_nan, k=2),
        op_case("concatenate", lambda a, b: jnp.concatenate([a, b, a], axis=1), x, y),
        op_case("stack", lambda a, b: jnp.stack([a, b], axis=1), x, y),
        op_case("split", lambda a: tuple(jnp.split(a, [1, 4], axis=1)), x),
        op_case("slice", lambda a: a[1:2, 1:4], x),
        op_case(
            "dynamic_slice",
            lambda a: jax.lax.dynamic_slice(a, (jnp.int32(1), jnp.int32(1)), (1, 3)),
            x,
        ),
        op_case(
            "dynamic_slice_clamped",
            lambda a: jax.lax.dynamic_slice(a, (jnp.int32(-1), jnp.int32(4)), (2, 3)),
            x,
        ),
        op_case(
            "dynamic_update_slice",
            lambda a, b: jax.lax.dynamic_update_slice(a, b[:1, :2] * 10.0, (i32(1), i32(2))),
            x,
            y,
        ),
        op_case(
            "dynamic_update_slice_clamped",
            lambda a, b: jax.lax.dynamic_update_slice(a, b[:, :3], (i32(0), i32(4))),
            x,
            y,
        ),
    ]
    a3 = jax.random.normal(jax.random.key(1), (2, 3, 4), f32)
    b3 = jax.random.normal(jax.random.key(2), (2, 4, 5), f32)
    q = jax.random.normal(jax.random.key(3), (2, 2, 3, 4), f32)
    k = jax.random.normal(jax.random.key(4), (2, 2, 5, 4), f32)
    m = jax.random.normal(jax.random.key(5), (3, 4), f32)
    v = jax.random.normal(jax.random.key(6), (4,), f32)
    for spec, a, b in [
        ("ij,jk->ik", m, m.T),
        ("ij,jk->ki", m, m.T),
        ("bij,bjk->bik", a3, b3),
        ("bhqd,bhkd->bhqk", q, k),
        ("ij,ij->", m, m),
        ("i,j->ij", v, v),
        ("ij,j->i", m, v),
        ("ijk,j->ik", a3.transpose(1, 0, 2), jnp.ones(2, f32) * 0.5),
        ("ij,k->i", m, v),
    ]:
        cases.append(
            op_case("einsum " + spec, lambda a, b, s=spec: jnp.einsum(s, a, b), a, b, spec=spec)
        )

    # JAX's semantics where solstice once differed.
    ia = jnp.asarray([7, -7, 6, -6, 0], i32)
    ib = jnp.asarray([2, 2, -4, -4, 3], i32)
    fa = ia.astype(f32) + 0.5
    fb = ib.astype(f32)
    cases += [
        op_case("int_divide", jnp.divide, ia, ib),
        op_case("int_floor_divide", jnp.floor_divide, ia, ib),
        op_case("int_remainder", jnp.remainder, ia, ib),
        op_case("float_floor_divide", jnp.floor_divide, fa, fb),
        op_case("float_remainder", jnp.remainder, fa, fb),
        op_case("fmod", jnp.fmod, fa, fb),
        op_case("relu_grad_nan", jax.vmap(jax.grad(jax.nn.relu)), jnp.asarray([jnp.nan, -1.0, 0.0, 2.0], f32)),
        op_case("softmax_inf", jax.nn.softmax, jnp.asarray([jnp.inf, 0.0], f32)),
        op_case("softmax_all_masked", jax.nn.softmax, jnp.asarray([-jnp.inf, -jnp.inf], f32)),
        op_case("softmax_empty", jax.nn.softmax, jnp.zeros((0,), f32)),
        op_case("softmax_empty_rows", lambda a: jax.nn.softmax(a, axis=-1), jnp.zeros((2, 0), f32)),
        op_case("logsumexp_empty", jax.nn.logsumexp, jnp.zeros((0,), f32)),
        op_case("logsumexp_empty_rows", lambda a: jax.nn.logsumexp(a, axis=-1), jnp.zeros((2, 0), f32)),
        op_case("log_softmax_inf", jax.nn.log_softmax, jnp.asarray([jnp.inf, 0.0], f32)),
    ]
    dx = jax.random.normal(jax.random.key(11), (1500,), f32)
    for p in (0.1, 0.3):
        dropout = eqx.nn.Dropout(p)
        cases.append(
            {
                "name": f"dropout_{p}",
                "p": p,
                "seed": 0,
                "arrays": {"x": arr(dx), "out": arr(dropout(dx, key=jax.random.key(0)))},
            }
        )
    return cases


def write(out_dir):
    fx.dump({"meta": fx.meta(), "cases": _cases()}, out_dir, "api.json")


if __name__ == "__main__":
    out, _ = fx.parse_cli(sys.argv, fx.default_out_dir())
    write(out)
