"""Equinox `.eqx` checkpoints, written by real Equinox, for the byte-for-byte tests.

Writes `serial/*.eqx` with `eqx.tree_serialise_leaves` and `serial/serial.json`
(each file's sha256 and the sizes used):

- `lm.eqx`: the seed's tied language model (`eqx.nn.Shared` docs example,
  VOCAB=11, DIM=6, `jax.random.key(0)`); the tied head weight is a
  `SharedNode` and is not written;
- `mlp.eqx`: `eqx.nn.MLP(3, 2, 4, 2, key=jax.random.key(1))`;
- `mha.eqx`: `eqx.nn.MultiheadAttention(2, 4, use_output_bias=True,
  dropout_p=0.1, key=jax.random.key(2))`: four weights, a bias, then
  `dropout.p` (an f8 0-d record) and `dropout.inference` (a b1 0-d record);
- `gpt.eqx`: a small GPT built here from Equinox layers (token embedding tied
  to the bias-free head through `Shared`, position embedding, two blocks of
  LayerNorm / MultiheadAttention / LayerNorm / MLP, final LayerNorm),
  `jax.random.key(3)`; the Rust tests build the same structure;
- `state.eqx`: a training state `(lm, 17, jax.random.PRNGKey(5))`: a model, an
  integer step (an i8 record) and a key (its u32[2] words).

`python3 serial_ref.py --check DIR` is the other direction: it loads the
`.eqx` files solstice wrote into DIR (the Rust test `serial_eqx` writes and
commits them to `tests/fixtures/serial/from_solstice/`) with
`eqx.tree_deserialise_leaves` and checks every leaf: solstice doubles every
float array and sets `dropout.p = 0.25`, `dropout.inference = True`, the step
to 18 and the key to `PRNGKey(6)`, so the check is not a copy of the files
above.

Usage: python3 serial_ref.py [OUT_DIR] | --check DIR
"""

import hashlib
import json
import os
import sys

os.environ["JAX_PLATFORMS"] = "cpu"

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

VOCAB, DIM = 11, 6
GPT_VOCAB, GPT_DIM, GPT_CTX, GPT_HEADS, GPT_LAYERS = 13, 8, 5, 2, 2


class LanguageModel(eqx.Module):
    shared: eqx.nn.Shared

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        embedding = eqx.nn.Embedding(VOCAB, DIM, key=k1)
        linear = eqx.nn.Linear(DIM, VOCAB, key=k2)
        self.shared = eqx.nn.Shared(
            (embedding, linear), lambda p: p[1].weight, lambda p: p[0].weight
        )


class Block(eqx.Module):
    ln1: eqx.nn.LayerNorm
    attn: eqx.nn.MultiheadAttention
    ln2: eqx.nn.LayerNorm
    mlp: eqx.nn.MLP

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.ln1 = eqx.nn.LayerNorm(GPT_DIM)
        self.attn = eqx.nn.MultiheadAttention(
            GPT_HEADS,
            GPT_DIM,
            use_query_bias=True,
            use_key_bias=True,
            use_value_bias=True,
            use_output_bias=True,
            dropout_p=0.1,
            key=k1,
        )
        self.ln2 = eqx.nn.LayerNorm(GPT_DIM)
        self.mlp = eqx.nn.MLP(
            GPT_DIM, GPT_DIM, 4 * GPT_DIM, 1, activation=jax.nn.gelu, key=k2
        )


class GPT(eqx.Module):
    shared: eqx.nn.Shared
    wpe: eqx.nn.Embedding
    blocks: list
    ln_f: eqx.nn.LayerNorm

    def __init__(self, key):
        kt, kp, kh, kb = jax.random.split(key, 4)
        wte = eqx.nn.Embedding(GPT_VOCAB, GPT_DIM, key=kt)
        head = eqx.nn.Linear(GPT_DIM, GPT_VOCAB, use_bias=False, key=kh)
        self.shared = eqx.nn.Shared(
            (wte, head), lambda p: p[1].weight, lambda p: p[0].weight
        )
        self.wpe = eqx.nn.Embedding(GPT_CTX, GPT_DIM, key=kp)
        self.blocks = [Block(k) for k in jax.random.split(kb, GPT_LAYERS)]
        self.ln_f = eqx.nn.LayerNorm(GPT_DIM)


def models():
    return {
        "lm": LanguageModel(jax.random.key(0)),
        "mlp": eqx.nn.MLP(3, 2, 4, 2, key=jax.random.key(1)),
        "mha": eqx.nn.MultiheadAttention(
            2, 4, use_output_bias=True, dropout_p=0.1, key=jax.random.key(2)
        ),
        "gpt": GPT(jax.random.key(3)),
        "state": (LanguageModel(jax.random.key(0)), 17, jax.random.PRNGKey(5)),
    }


def write(out_dir):
    serial_dir = os.path.join(out_dir, "serial")
    os.makedirs(serial_dir, exist_ok=True)
    sums = {}
    for name, tree in models().items():
        path = os.path.join(serial_dir, name + ".eqx")
        eqx.tree_serialise_leaves(path, tree)
        with open(path, "rb") as f:
            sums[name + ".eqx"] = hashlib.sha256(f.read()).hexdigest()
    meta = {
        "equinox": eqx.__version__,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "sha256": sums,
    }
    with open(os.path.join(serial_dir, "serial.json"), "w") as f:
        f.write(json.dumps(meta, sort_keys=True, indent=1) + "\n")


def _expected(name, tree):
    """What solstice wrote: float arrays doubled, scalars and keys changed."""

    def double(x):
        if eqx.is_array(x) and jnp.issubdtype(x.dtype, jnp.floating):
            return x * 2
        return x

    tree = jax.tree_util.tree_map(double, tree)
    if name == "mha":
        tree = eqx.tree_at(lambda m: (m.dropout.p, m.dropout.inference), tree, (0.25, True))
    if name == "state":
        tree = (tree[0], 18, jax.random.PRNGKey(6))
    return tree


def check(directory):
    for name, like in models().items():
        path = os.path.join(directory, name + ".eqx")
        loaded = eqx.tree_deserialise_leaves(path, like)
        want = _expected(name, like)
        got_leaves = jax.tree_util.tree_leaves_with_path(loaded)
        want_leaves = jax.tree_util.tree_leaves(want)
        assert len(got_leaves) == len(want_leaves), name
        for (path_, got), exp in zip(got_leaves, want_leaves):
            where = f"{name}{jax.tree_util.keystr(path_)}"
            if callable(exp) and not eqx.is_array(exp):
                continue
            assert type(got) is type(exp), (where, type(got), type(exp))
            if eqx.is_array(exp):
                assert got.dtype == exp.dtype and got.shape == exp.shape, where
                assert np.array_equal(np.asarray(got), np.asarray(exp)), where
            else:
                assert got == exp, (where, got, exp)
        print(f"{name}.eqx: Equinox loads solstice's file to the expected leaves")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures"
        )
        write(os.path.normpath(out))
