"""Reference values for Equinox's other layers: `MLP`, `LayerNorm`, `RMSNorm`,
`Dropout`, `MultiheadAttention`, `RotaryPositionalEmbedding`, `Sequential`,
`Lambda`, `Identity`, and the `jax.nn` activations.

Writes `layers2.json` (float32, JAX's default mode). Every layer is built
with real Equinox from a fixed key. A case records, as arrays:

- `init<path>`: each array leaf of the layer as constructed, by its key path
  (`init.layers[0].weight`);
- `param<path>`: the leaf used for the call, where it differs from `init`
  (the normalisation layers get random weights so the affine part matters);
- `x0`, `x1`, ...: the inputs; `mask` (0/1 as uint32) where there is one;
- `y`: the output;
- `grad<path>` and `grad_x0`, ...: the gradient of `sum(y ** 2)` with
  respect to the layer's floating leaves and the inputs.

and as fields the constructor options and `pformat`, Equinox's
`tree_pformat` with memory addresses removed (`<function relu>`).

Usage: python3 layers2_ref.py [OUT_DIR]
"""

import os
import re
import sys

os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import equinox as eqx  # noqa: E402
import equinox.nn._embedding as eqx_embedding  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import fixture_io as fx  # noqa: E402

FILENAME = "layers2.json"


def gelu_exact(x):
    return jax.nn.gelu(x, approximate=False)


def gelu_tanh(x):
    return jax.nn.gelu(x, approximate=True)


# The activations under the names solstice gives them.
ACTIVATIONS = {
    "relu": jax.nn.relu,
    "gelu": gelu_exact,
    "gelu_tanh": gelu_tanh,
    "silu": jax.nn.silu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
    "identity": lambda x: x,
}


def _pformat(tree):
    """`eqx.tree_pformat` without memory addresses, so that it is stable."""
    text = eqx.tree_pformat(tree)
    text = re.sub(r"<PjitFunction of <function (\w+) at 0x[0-9a-f]+>>", r"<function \1>", text)
    text = re.sub(r"<function (\w+) at 0x[0-9a-f]+>", r"<function \1>", text)
    return text


def _leaves(tree, prefix):
    """The floating array leaves of `tree` as `{prefix + keypath: array}`."""
    flat, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(tree, eqx.is_inexact_array))
    return {prefix + jax.tree_util.keystr(path): leaf for path, leaf in flat}


def _inputs(seed, *shapes):
    keys = jax.random.split(jax.random.key(seed), len(shapes))
    return [jax.random.normal(k, s, jnp.float32) for k, s in zip(keys, shapes)]


def _layer_case(name, layer, inputs, call=None, params=None, mask=None, **fields):
    """Records `layer` (or `params`, a copy with other weights, for the
    call), its inputs, output and gradients."""
    used = layer if params is None else params
    call = call or (lambda m, *xs: m(*xs))
    arrays = _leaves(layer, "init")
    if params is not None:
        arrays.update(_leaves(params, "param"))
    for i, x in enumerate(inputs):
        arrays[f"x{i}"] = x
    if mask is not None:
        arrays["mask"] = np.asarray(mask).astype(np.uint32)

    def loss(model_and_inputs):
        model, *xs = model_and_inputs
        return jnp.sum(call(model, *xs) ** 2)

    arrays["y"] = call(used, *inputs)
    grads = eqx.filter_grad(loss)((used, *inputs))
    arrays.update(_leaves(grads[0], "grad"))
    for i, g in enumerate(grads[1:]):
        arrays[f"grad_x{i}"] = g
    return fx.case(name, arrays=arrays, layer=type(layer).__name__, pformat=_pformat(layer), **fields)


def _activation_case():
    x = jnp.asarray(
        [-25.0, -10.0, -3.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 3.0, 10.0, 25.0], jnp.float32
    )
    arrays = {"x": x}
    for name, f in ACTIVATIONS.items():
        arrays[f"y_{name}"] = f(x)
        arrays[f"grad_{name}"] = jax.grad(lambda v: jnp.sum(f(v)))(x)
    return fx.case("activations", arrays=arrays, activations=list(ACTIVATIONS))


def _mlp_cases():
    specs = [
        # name, in, out, width, depth, activation, final activation, use_bias, use_final_bias
        ("mlp_3_4_w5_d2", 3, 4, 5, 2, "relu", "identity", True, True),
        ("mlp_scalar_w4_d1_tanh_sigmoid", "scalar", "scalar", 4, 1, "tanh", "sigmoid", True, True),
        ("mlp_4_2_d0_no_final_bias", 4, 2, 7, 0, "relu", "identity", True, False),
        ("mlp_3_2_w6_d3_silu_softplus_no_bias", 3, 2, 6, 3, "silu", "softplus", False, True),
        ("mlp_2_3_w4_d2_gelu_gelu_tanh", 2, 3, 4, 2, "gelu", "gelu_tanh", True, True),
    ]
    cases = []
    for seed, (name, i, o, w, d, act, final, bias, final_bias) in enumerate(specs):
        kwargs = {"use_bias": bias, "use_final_bias": final_bias}
        # The defaults are left to Equinox, so its own default functions print.
        if act != "relu":
            kwargs["activation"] = ACTIVATIONS[act]
        if final != "identity":
            kwargs["final_activation"] = ACTIVATIONS[final]
        mlp = eqx.nn.MLP(i, o, w, d, key=jax.random.key(seed), **kwargs)
        (x,) = _inputs(100 + seed, () if i == "scalar" else (i,))
        cases.append(
            _layer_case(
                name,
                mlp,
                [x],
                key_seed=seed,
                in_size=i,
                out_size=o,
                width_size=w,
                depth=d,
                activation=act,
                final_activation=final,
                use_bias=bias,
                use_final_bias=final_bias,
            )
        )
    return cases


def _random_affine(layer, seed):
    """`layer` with random weight and bias (where present)."""
    kw, kb = jax.random.split(jax.random.key(seed))
    if layer.weight is not None:
        layer = eqx.tree_at(
            lambda m: m.weight, layer, 1.0 + 0.5 * jax.random.normal(kw, layer.shape)
        )
    if layer.bias is not None:
        layer = eqx.tree_at(lambda m: m.bias, layer, 0.5 * jax.random.normal(kb, layer.shape))
    return layer


def _norm_cases():
    specs = [
        ("layer_norm_4", eqx.nn.LayerNorm, (4,), {}),
        ("layer_norm_2x3_eps_no_bias", eqx.nn.LayerNorm, (2, 3), {"eps": 1e-3, "use_bias": False}),
        ("rms_norm_5", eqx.nn.RMSNorm, (5,), {}),
        ("rms_norm_2x3_no_weight", eqx.nn.RMSNorm, (2, 3), {"use_weight": False}),
    ]
    cases = []
    for seed, (name, cls, shape, kwargs) in enumerate(specs):
        layer = cls(shape, **kwargs)
        (x,) = _inputs(200 + seed, shape)
        x = 2.0 * x + 0.5
        cases.append(
            _layer_case(
                name,
                layer,
                [x],
                params=_random_affine(layer, 300 + seed),
                shape=list(shape),
                eps=layer.eps,
                use_weight=layer.use_weight,
                use_bias=layer.use_bias,
            )
        )
    return cases


def _dropout_cases():
    cases = []
    for name, p, shape, seed in [("dropout_0.3", 0.3, (4, 5), 7), ("dropout_0.5_3d", 0.5, (2, 2, 3), 8)]:
        layer = eqx.nn.Dropout(p)
        (x,) = _inputs(400 + seed, shape)
        key = jax.random.key(seed)
        cases.append(
            _layer_case(
                name,
                layer,
                [x],
                call=lambda m, v, key=key: m(v, key=key),
                p=p,
                call_key_seed=seed,
            )
        )
    return cases


def _mha_cases():
    cases = []
    # name, heads, query size, options, (q_seq, kv_seq), mask kind, dropout key seed
    specs = [
        ("mha_2h_8", 2, 8, {}, (3, 5), None, None),
        ("mha_2h_8_mask", 2, 8, {}, (3, 5), "2d", None),
        (
            "mha_3h_sizes_biases_head_mask",
            3,
            6,
            {
                "key_size": 5,
                "value_size": 4,
                "output_size": 7,
                "qk_size": 2,
                "vo_size": 3,
                "use_query_bias": True,
                "use_key_bias": True,
                "use_value_bias": True,
                "use_output_bias": True,
            },
            (4, 3),
            "3d",
            None,
        ),
        ("mha_1h_4_key_bias", 1, 4, {"use_key_bias": True, "use_output_bias": True}, (2, 2), None, None),
        ("mha_2h_4_dropout", 2, 4, {"dropout_p": 0.4}, (3, 4), "2d", 11),
    ]
    for seed, (name, heads, qsize, opts, (qs, kvs), mask_kind, dkey) in enumerate(specs):
        mha = eqx.nn.MultiheadAttention(heads, qsize, key=jax.random.key(seed), **opts)
        q, k, v = _inputs(
            500 + seed, (qs, mha.query_size), (kvs, mha.key_size), (kvs, mha.value_size)
        )
        mask = None
        if mask_kind is not None:
            shape = (qs, kvs) if mask_kind == "2d" else (heads, qs, kvs)
            mask = jax.random.bernoulli(jax.random.key(600 + seed), 0.6, shape)
            if mask_kind == "3d":
                # One query of one head sees nothing: its weights come out uniform.
                mask = mask.at[1, 0, :].set(False)
        key = None if dkey is None else jax.random.key(dkey)

        def call(m, q, k, v, mask=mask, key=key):
            return m(q, k, v, mask, key=key)

        cases.append(
            _layer_case(
                name,
                mha,
                [q, k, v],
                call=call,
                mask=mask,
                key_seed=seed,
                num_heads=heads,
                query_size=qsize,
                options=opts,
                mask_kind=mask_kind,
                call_key_seed=dkey,
            )
        )
    return cases


def _rope_cases():
    cases = []
    for name, size, theta, seq in [("rope_8", 8, 10_000.0, 5), ("rope_4_theta_500", 4, 500.0, 6)]:
        # Equinox caches the tables by size and dtype only, not theta.
        eqx_embedding.internal_rope_embedding_cache.clear()
        layer = eqx.nn.RotaryPositionalEmbedding(size, theta=theta)
        (x,) = _inputs(700 + size, (seq, size))
        cases.append(_layer_case(name, layer, [x], embedding_size=size, theta=theta))
    eqx_embedding.internal_rope_embedding_cache.clear()
    return cases


def _sequential_cases():
    k1, k2 = jax.random.split(jax.random.key(9))
    seq = eqx.nn.Sequential(
        [
            eqx.nn.Linear(3, 4, key=k1),
            eqx.nn.Lambda(jax.nn.relu),
            eqx.nn.Dropout(0.25),
            eqx.nn.Linear(4, 2, key=k2),
            eqx.nn.Identity(),
        ]
    )
    (x,) = _inputs(800, (3,))
    key = jax.random.key(10)
    return [
        _layer_case(
            "sequential_linear_relu_dropout_linear_identity",
            seq,
            [x],
            call=lambda m, v: m(v, key=key),
            key_seed=9,
            call_key_seed=10,
        ),
        fx.case("identity", layer="Identity", pformat=_pformat(eqx.nn.Identity())),
    ]


def write(out_dir):
    with jax.enable_x64(False):
        cases = (
            [_activation_case()]
            + _mlp_cases()
            + _norm_cases()
            + _dropout_cases()
            + _mha_cases()
            + _rope_cases()
            + _sequential_cases()
        )
        meta = fx.meta(loss="sum(y ** 2)")
    fx.dump({"meta": meta, "cases": cases}, out_dir, FILENAME)


if __name__ == "__main__":
    out, _ = fx.parse_cli(sys.argv, fx.default_out_dir())
    write(out)
