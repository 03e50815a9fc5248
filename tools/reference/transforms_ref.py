"""Reference values for JAX autodiff transforms, in float64.

Writes `transforms.json`. The values are computed in a separate interpreter
started with JAX_ENABLE_X64=1 so that nothing else in the calling process is
switched to 64-bit mode.

Usage: python3 transforms_ref.py [OUT_DIR]
"""

import os
import sys

os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import fixture_io as fx  # noqa: E402


def f1(x):
    return jnp.sum(jnp.tanh(x) * x * x)


def f2(x):
    return jnp.log(jnp.sum(jnp.exp(x)))


def f3(W, x):
    return jnp.sum(jnp.tanh(W @ x))


def f4(w, x):
    return jnp.sum(jnp.tanh(w @ x) ** 2)


def _scalar_fn_case(name, fn, formula, x):
    return fx.case(
        name,
        arrays={
            "x": x,
            "value": fn(x),
            "grad": jax.grad(fn)(x),
            "hessian": jax.hessian(fn)(x),
            "jacfwd": jax.jacfwd(fn)(x),
            "jacrev": jax.jacrev(fn)(x),
        },
        formula=formula,
    )


def _cases():
    f64 = jnp.float64
    x1 = jnp.asarray([-1.5, -0.5, 0.25, 1.0], dtype=f64)
    v1 = jnp.asarray([1.0, -2.0, 0.5, 3.0], dtype=f64)
    x2 = jnp.asarray([0.1, -0.4, 1.3, 0.0, 2.2], dtype=f64)
    W3 = jnp.linspace(-1.0, 1.0, 12, dtype=f64).reshape(3, 4)
    x3 = jnp.asarray([0.5, -1.0, 1.5, 2.0], dtype=f64)
    A = jnp.asarray(
        [[0.2, -0.3, 0.5, 1.0], [-0.7, 0.4, 0.0, 0.25], [1.2, 0.6, -0.9, -0.1]],
        dtype=f64,
    )
    xg = jnp.asarray([0.3, -0.6, 0.9, -1.2], dtype=f64)
    w4 = jnp.linspace(-0.5, 0.6, 12, dtype=f64).reshape(3, 4)
    xs4 = jnp.linspace(-2.0, 2.0, 20, dtype=f64).reshape(5, 4)

    def g(x):
        return jnp.tanh(A @ x)

    hvp = jax.jvp(jax.grad(f1), (x1,), (v1,))[1]

    cases = [
        _scalar_fn_case("f1", f1, "f1(x) = sum(tanh(x) * x * x)", x1),
        _scalar_fn_case("f2", f2, "f2(x) = log(sum(exp(x)))", x2),
        fx.case(
            "f3",
            arrays={
                "W": W3,
                "x": x3,
                "value": f3(W3, x3),
                "grad_W": jax.grad(f3, argnums=0)(W3, x3),
                "grad_x": jax.grad(f3, argnums=1)(W3, x3),
                "hessian_x": jax.hessian(f3, argnums=1)(W3, x3),
            },
            formula="f3(W, x) = sum(tanh(W @ x))",
        ),
        fx.case(
            "g_jacobian",
            arrays={
                "A": A,
                "x": xg,
                "value": g(xg),
                "jacfwd": jax.jacfwd(g)(xg),
                "jacrev": jax.jacrev(g)(xg),
            },
            formula="g(x) = tanh(A @ x)",
        ),
        fx.case(
            "f1_hvp",
            arrays={"x": x1, "v": v1, "hvp": hvp},
            formula="f1(x) = sum(tanh(x) * x * x)",
            method="jvp(grad(f1), (x,), (v,))",
        ),
        fx.case(
            "f4_per_example_grad",
            arrays={
                "w": w4,
                "xs": xs4,
                "values": jax.vmap(f4, in_axes=(None, 0))(w4, xs4),
                "grads": jax.vmap(jax.grad(f4), in_axes=(None, 0))(w4, xs4),
            },
            formula="f4(w, x) = sum(tanh(w @ x) ** 2)",
            method="vmap(grad(f4), in_axes=(None, 0))(w, xs)",
        ),
    ]
    for c in cases:
        for k, a in c["arrays"].items():
            assert a["dtype"] == "float64", (c["name"], k)
    return cases


def _write_x64(out_dir):
    assert jax.config.jax_enable_x64, "must run with JAX_ENABLE_X64=1"
    fx.dump({"meta": fx.meta(), "cases": _cases()}, out_dir, "transforms.json")


def write(out_dir):
    fx.run_x64(__file__, out_dir)


if __name__ == "__main__":
    out, x64 = fx.parse_cli(sys.argv, fx.default_out_dir())
    if x64:
        _write_x64(out)
    else:
        write(out)
