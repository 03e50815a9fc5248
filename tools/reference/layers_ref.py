"""Reference values for `eqx.nn.Linear` and `eqx.nn.Embedding` initialisation.

Writes `layers.json` (default float32 mode) and, from a separate interpreter
started with JAX_ENABLE_X64=1, `layers_f64.json` (default float64 mode).

Usage: python3 layers_ref.py [OUT_DIR]
"""

import dataclasses
import os
import sys

os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import fixture_io as fx  # noqa: E402


def _key_data(key):
    return jax.random.key_data(key)


def _printed(module):
    return {
        "fields": [f.name for f in dataclasses.fields(module)],
        "repr": repr(module),
        "pformat": eqx.tree_pformat(module),
        "pformat_width40": eqx.tree_pformat(module, width=40),
    }


def _linear_case(name, in_features, out_features, seed, use_bias=True, x=None, dtype=None):
    key = jax.random.key(seed)
    kwargs = {} if dtype is None else {"dtype": dtype}
    layer = eqx.nn.Linear(in_features, out_features, use_bias=use_bias, key=key, **kwargs)
    wkey, bkey = jax.random.split(key, 2)
    arrays = {
        "key_data": _key_data(key),
        "wkey_data": _key_data(wkey),
        "bkey_data": _key_data(bkey),
        "weight": layer.weight,
    }
    if layer.bias is not None:
        arrays["bias"] = layer.bias
    if x is not None:
        arrays["x"] = x
        arrays["y"] = layer(x)
    return fx.case(
        name,
        arrays=arrays,
        layer="Linear",
        in_features=in_features,
        out_features=out_features,
        use_bias=use_bias,
        key_seed=seed,
        **_printed(layer),
    )


def _embedding_case(name, num, size, seed, index):
    key = jax.random.key(seed)
    layer = eqx.nn.Embedding(num, size, key=key)
    idx = jnp.asarray(index, dtype=jnp.int32)
    return fx.case(
        name,
        arrays={
            "key_data": _key_data(key),
            "weight": layer.weight,
            "index": idx,
            "y": layer(idx),
        },
        layer="Embedding",
        num_embeddings=num,
        embedding_size=size,
        key_seed=seed,
        **_printed(layer),
    )


def _cases():
    return [
        _linear_case("linear_4_3", 4, 3, 0),
        _linear_case("linear_4_3_nobias", 4, 3, 1, use_bias=False),
        _linear_case("linear_5_2_call", 5, 2, 7, x=jnp.linspace(-1.0, 1.0, 5)),
        _linear_case("linear_scalar_in", "scalar", 3, 2, x=jnp.asarray(0.5)),
        _linear_case(
            "linear_scalar_out", 3, "scalar", 3, x=jnp.asarray([0.25, -0.5, 1.0])
        ),
        _embedding_case("embedding_10_4", 10, 4, 1, 3),
    ]


def _write_f32(out_dir):
    with jax.enable_x64(False):
        cases = _cases()
        for c in cases:
            assert c["arrays"]["weight"]["dtype"] == "float32", c["name"]
        obj = {"meta": fx.meta(), "cases": cases}
    fx.dump(obj, out_dir, "layers.json")


def _write_f64(out_dir):
    assert jax.config.jax_enable_x64, "must run with JAX_ENABLE_X64=1"
    cases = [
        _linear_case("linear_4_3_f64", 4, 3, 0),
        _linear_case("linear_5_2_call_f64", 5, 2, 7, x=jnp.linspace(-1.0, 1.0, 5)),
        _embedding_case("embedding_10_4_f64", 10, 4, 1, 3),
        # Explicit dtype=float32 while x64 is on: same values as layers.json/linear_4_3.
        _linear_case("linear_4_3_explicit_f32", 4, 3, 0, dtype=jnp.float32),
    ]
    for c in cases[:3]:
        assert c["arrays"]["weight"]["dtype"] == "float64", c["name"]
    fx.dump({"meta": fx.meta(), "cases": cases}, out_dir, "layers_f64.json")


def write(out_dir):
    _write_f32(out_dir)
    fx.run_x64(__file__, out_dir)


if __name__ == "__main__":
    out, x64 = fx.parse_cli(sys.argv, fx.default_out_dir())
    if x64:
        _write_f64(out)
    else:
        write(out)
