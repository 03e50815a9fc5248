"""Reference values for a tiny tied-weight language model built with `eqx.nn.Shared`.

Writes `language_model.json` (float32).

Case "lm_tied" is the `eqx.nn.Shared` documentation example: the weight of
`Linear(DIM, VOCAB)` is tied to the `Embedding(VOCAB, DIM)` weight.
Case "lm_transposed" ties the weight of `Linear(VOCAB, DIM)` (shape DIM x VOCAB)
to the transpose of the embedding weight; the linear layer projects a one-hot
encoding of the tokens and the embedding weight is used as the output
projection.

Usage: python3 lm_ref.py [OUT_DIR]
"""

import os
import sys

os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import fixture_io as fx  # noqa: E402

VOCAB = 11
DIM = 6
SEED = 0
LR = 0.1
TOKENS = [1, 4, 2, 9, 0, 10, 5]
TARGETS = [4, 2, 9, 0, 10, 5, 3]


class LanguageModel(eqx.Module):
    shared: eqx.nn.Shared

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        embedding = eqx.nn.Embedding(VOCAB, DIM, key=k1)
        linear = eqx.nn.Linear(DIM, VOCAB, key=k2)
        self.shared = eqx.nn.Shared(
            (embedding, linear), lambda p: p[1].weight, lambda p: p[0].weight
        )

    def __call__(self, tokens):
        embedding, linear = self.shared()
        return jax.vmap(linear)(jax.vmap(embedding)(tokens))


class TransposedLanguageModel(eqx.Module):
    shared: eqx.nn.Shared

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        embedding = eqx.nn.Embedding(VOCAB, DIM, key=k1)
        linear = eqx.nn.Linear(VOCAB, DIM, key=k2)
        self.shared = eqx.nn.Shared(
            (embedding, linear),
            lambda p: p[1].weight,
            lambda p: jnp.transpose(p[0].weight),
        )

    def __call__(self, tokens):
        embedding, linear = self.shared()
        h = jax.vmap(linear)(jax.nn.one_hot(tokens, VOCAB))
        return jax.vmap(lambda e: embedding.weight @ e)(h)


def loss_fn(model, tokens, targets):
    logp = jax.nn.log_softmax(model(tokens), axis=-1)
    picked = jnp.take_along_axis(logp, targets[:, None], axis=1)[:, 0]
    return -jnp.mean(picked)


def _run(model_cls, with_sgd):
    key = jax.random.key(SEED)
    k1, k2 = jax.random.split(key)
    tokens = jnp.asarray(TOKENS, dtype=jnp.int32)
    targets = jnp.asarray(TARGETS, dtype=jnp.int32)
    model = model_cls(key)
    embedding, linear = model.shared.pytree
    loss, grads = eqx.filter_value_and_grad(loss_fn)(model, tokens, targets)
    g_embedding, g_linear = grads.shared.pytree
    # The tied slot is replaced by a placeholder, so it has no gradient of its own.
    assert g_linear.weight is None
    arrays = {
        "k1_data": jax.random.key_data(k1),
        "k2_data": jax.random.key_data(k2),
        "embedding_weight": embedding.weight,
        "linear_bias": linear.bias,
        "tokens": tokens,
        "targets": targets,
        "logits": model(tokens),
        "loss": loss,
        "grad_embedding_weight": g_embedding.weight,
        "grad_linear_bias": g_linear.bias,
    }
    if with_sgd:
        new_model = eqx.apply_updates(model, jax.tree.map(lambda g: -LR * g, grads))
        new_embedding, new_linear = new_model.shared.pytree
        arrays["sgd_embedding_weight"] = new_embedding.weight
        arrays["sgd_linear_bias"] = new_linear.bias
        arrays["sgd_logits"] = new_model(tokens)
        arrays["sgd_loss"] = loss_fn(new_model, tokens, targets)
    return model, arrays


def _cases():
    model, arrays = _run(LanguageModel, with_sgd=True)
    tied = fx.case(
        "lm_tied",
        arrays=arrays,
        vocab=VOCAB,
        dim=DIM,
        key_seed=SEED,
        lr=LR,
        embedding="Embedding(VOCAB, DIM, key=k1)",
        linear="Linear(DIM, VOCAB, key=k2)",
        where="p[1].weight",
        get="p[0].weight",
        forward="vmap(linear)(vmap(embedding)(tokens))",
        loss_formula="mean_i(-log_softmax(logits)[i, targets[i]])",
        sgd="apply_updates(model, tree_map(lambda g: -lr * g, grads))",
        model_pformat=eqx.tree_pformat(model),
    )
    model_t, arrays_t = _run(TransposedLanguageModel, with_sgd=False)
    transposed = fx.case(
        "lm_transposed",
        arrays=arrays_t,
        vocab=VOCAB,
        dim=DIM,
        key_seed=SEED,
        embedding="Embedding(VOCAB, DIM, key=k1)",
        linear="Linear(VOCAB, DIM, key=k2)",
        where="p[1].weight",
        get="transpose(p[0].weight)",
        forward="h = vmap(linear)(one_hot(tokens, VOCAB)); "
        "logits = vmap(lambda e: embedding.weight @ e)(h)",
        loss_formula="mean_i(-log_softmax(logits)[i, targets[i]])",
    )
    return [tied, transposed]


def write(out_dir):
    with jax.enable_x64(False):
        obj = {"meta": fx.meta(), "cases": _cases()}
    fx.dump(obj, out_dir, "language_model.json")


if __name__ == "__main__":
    out, _ = fx.parse_cli(sys.argv, fx.default_out_dir())
    write(out)
