"""Reference runs of optax 0.2.8 optimisers, transforms and schedules.

Writes three fixtures (float32):

- `optim.json` (optimisers) and `optim_transforms.json` (transforms and
  wrappers): 5 steps (15 micro-steps for MultiSteps) of every optimiser
  and transform on a small tied language model (the seed LM of
  `lm_ref.py`, `eqx.nn.Shared` tying the head's weight to the embedding,
  at VOCAB=3, DIM=2). Each step records the gradient fed in, the updates,
  the parameters after `apply_updates` and every leaf of the state, in
  `jax.tree.leaves` order, concatenated into one list per tree with the
  leaves' paths, dtypes and shapes given once per case. A non-finite gradient is
  recorded as where to put it, since JSON has no NaN.
- `optim_gpt.json`: the same kind of runs on a GPT block with a tied head
  (`TiedGpt`: token embedding, one pre-LayerNorm transformer block of
  `LayerNorm`, `MultiheadAttention` and `MLP`, and a bias-free head whose
  weight `eqx.nn.Shared` ties to the embedding), built from key 0 at tiny
  sizes (VOCAB=3, DIM=4, 2 heads of query/key and value size 1, MLP width 4).
- `optim_schedules.json`: every schedule at counts 0..12.
- `optim_tied.json`: one AdamW step on the seed LM at its full size
  (VOCAB=11, DIM=6) from key 0, with the Equinox model's leaves, so that a
  test can build the same model in solstice and check the tied weight's
  single `mu`/`nu`.

Usage: python3 optim_ref.py [OUT_DIR]
"""

import json
import os
import re
import sys

os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import fixture_io as fx  # noqa: E402

SEED = 0
SMALL = (3, 2)  # VOCAB, DIM of the model the optimisers run on
GPT_VOCAB, GPT_DIM, GPT_HEADS, GPT_WIDTH = 3, 4, 2, 4
FULL = (11, 6)  # the seed LM's size
STEPS = 5
SEQ = 6


class LanguageModel(eqx.Module):
    shared: eqx.nn.Shared

    def __init__(self, vocab, dim, key):
        k1, k2 = jax.random.split(key)
        embedding = eqx.nn.Embedding(vocab, dim, key=k1)
        linear = eqx.nn.Linear(dim, vocab, key=k2)
        self.shared = eqx.nn.Shared(
            (embedding, linear), lambda p: p[1].weight, lambda p: p[0].weight
        )

    def __call__(self, tokens):
        embedding, linear = self.shared()
        return jax.vmap(linear)(jax.vmap(embedding)(tokens))


class Block(eqx.Module):
    """A pre-LayerNorm transformer block on a `[seq, dim]` sequence."""

    ln1: eqx.nn.LayerNorm
    attn: eqx.nn.MultiheadAttention
    ln2: eqx.nn.LayerNorm
    mlp: eqx.nn.MLP

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.ln1 = eqx.nn.LayerNorm(GPT_DIM)
        self.attn = eqx.nn.MultiheadAttention(GPT_HEADS, GPT_DIM, qk_size=1, vo_size=1, key=k1)
        self.ln2 = eqx.nn.LayerNorm(GPT_DIM)
        self.mlp = eqx.nn.MLP(GPT_DIM, GPT_DIM, GPT_WIDTH, 1, key=k2)

    def __call__(self, x):
        h = jax.vmap(self.ln1)(x)
        x = x + self.attn(h, h, h)
        h = jax.vmap(self.ln2)(x)
        return x + jax.vmap(self.mlp)(h)


class TiedGpt(eqx.Module):
    """Token embedding, one block and a bias-free head whose weight is tied
    to the embedding."""

    shared: eqx.nn.Shared
    block: Block

    def __init__(self, key):
        kt, kb, kh = jax.random.split(key, 3)
        wte = eqx.nn.Embedding(GPT_VOCAB, GPT_DIM, key=kt)
        head = eqx.nn.Linear(GPT_DIM, GPT_VOCAB, use_bias=False, key=kh)
        self.shared = eqx.nn.Shared((wte, head), lambda p: p[1].weight, lambda p: p[0].weight)
        self.block = Block(kb)

    def __call__(self, tokens):
        wte, head = self.shared()
        h = self.block(jax.vmap(wte)(tokens))
        return jax.vmap(head)(h)


MODELS = {
    "lm": (lambda: LanguageModel(*SMALL, jax.random.key(SEED)), SMALL[0]),
    "gpt": (lambda: TiedGpt(jax.random.key(SEED)), GPT_VOCAB),
}


def loss_fn(model, tokens, targets):
    logp = jax.nn.log_softmax(model(tokens), axis=-1)
    picked = jnp.take_along_axis(logp, targets[:, None], axis=1)[:, 0]
    return -jnp.mean(picked)


def batch(step, vocab):
    """The data of step `step`; the Rust test needs none (grads are stored)."""
    tokens = jnp.asarray([(3 * step + 2 * i) % vocab for i in range(SEQ)], jnp.int32)
    targets = jnp.asarray([(step + 3 * i + 1) % vocab for i in range(SEQ)], jnp.int32)
    return tokens, targets


def grads_at(model, step, vocab):
    return eqx.filter_grad(loss_fn)(model, *batch(step, vocab))


# ---- serialisation: compact arrays, shortest f32 repr -------------------------


def arr(x):
    a = np.asarray(x)
    if a.dtype == np.bool_:
        return {"dtype": "bool", "shape": list(a.shape), "data": [int(v) for v in a.reshape(-1)]}
    if a.dtype == np.float32:
        data = []
        for v in a.reshape(-1):
            if not np.isfinite(v):
                raise ValueError("non-finite value in fixture")
            data.append(float(str(v)))
        return {"dtype": "float32", "shape": list(a.shape), "data": data}
    if a.dtype == np.int32:
        return {"dtype": "int32", "shape": list(a.shape), "data": [int(v) for v in a.reshape(-1)]}
    raise TypeError(f"unsupported dtype {a.dtype}")


def leaves(tree):
    return [arr(x) for x in jax.tree.leaves(tree)]


def flat(tree):
    """Every leaf's data, concatenated in leaf order (see `meta`)."""
    return [v for a in leaves(tree) for v in a["data"]]


def paths(tree):
    flat_, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [jax.tree_util.keystr(p) for p, _ in flat_]


def meta(tree):
    """Path, dtype and shape of each leaf, to split a `flat` list."""
    return [
        {"path": p, "dtype": a["dtype"], "shape": a["shape"]}
        for p, a in zip(paths(tree), leaves(tree))
    ]


def dump(obj, out_dir, filename):
    """Like fixture_io.dump, with each array on one line to stay small."""
    tokens = []

    def compact(o):
        numbers = isinstance(o, list) and all(isinstance(v, (int, float)) for v in o)
        if numbers or (isinstance(o, dict) and set(o) == {"dtype", "shape", "data"}):
            tokens.append(json.dumps(o, sort_keys=True, separators=(",", ":")))
            return f"@@{len(tokens) - 1}@@"
        if isinstance(o, dict):
            return {k: compact(v) for k, v in o.items()}
        if isinstance(o, list):
            return [compact(v) for v in o]
        return o

    text = json.dumps(compact(obj), sort_keys=True, indent=1, allow_nan=False)
    text = re.sub(r'"@@(\d+)@@"', lambda m: tokens[int(m.group(1))], text) + "\n"
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, filename), "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


# ---- the runs ---------------------------------------------------------------


def poison(grads, value):
    """The gradient with its first leaf's first element set to `value`."""
    first = jax.tree.leaves(grads)[0]
    bad = first.reshape(-1).at[0].set(value).reshape(first.shape)
    return jax.tree.map(lambda x: bad if x is first else x, grads)


def run(name, opt, spec, steps=STEPS, nonfinite=None, set_lr=None, micro=1, model="lm"):
    """`steps` optimiser steps on `MODELS[model]`; `nonfinite` maps a step
    to the value put in its gradient; `set_lr` maps a step to the injected
    learning rate set before it."""
    make, vocab = MODELS[model]
    model = make()
    params = eqx.filter(model, eqx.is_inexact_array)
    state = opt.init(params)
    record = {
        "name": name,
        "spec": spec,
        "params_meta": meta(params),
        "state_meta": meta(state),
        "init_params": flat(params),
        "init_state": flat(state),
        "steps": [],
    }
    if nonfinite:
        record["nonfinite"] = {str(k): v for k, v in nonfinite.items()}
    if set_lr:
        record["set_lr"] = {str(k): v for k, v in set_lr.items()}
    for s in range(steps * micro):
        g = grads_at(model, s, vocab)
        clean = flat(g)
        if nonfinite and s in nonfinite:
            g = poison(g, float(nonfinite[s]))
        if set_lr and s in set_lr:
            state.hyperparams["learning_rate"] = jnp.asarray(set_lr[s], jnp.float32)
        updates, state = opt.update(g, state, params)
        model = eqx.apply_updates(model, updates)
        params = eqx.filter(model, eqx.is_inexact_array)
        record["steps"].append({
            "grads": clean,
            "updates": flat(updates),
            "params": flat(params),
            "state": flat(state),
        })
    return record


def ndim2(tree):
    return jax.tree.map(lambda x: x.ndim >= 2, tree)


def bias_only(tree):
    """A tree of bools: true on the head's bias only (a filter spec)."""
    spec = jax.tree.map(lambda _: False, tree)
    return eqx.tree_at(lambda t: t.shared.pytree[1].bias, spec, replace=True)


def labels(tree):
    return jax.tree.map(lambda x: "decay" if x.ndim >= 2 else "plain", tree)


def optimiser_cases():
    wcd = optax.warmup_cosine_decay_schedule(0.0, 0.01, 2, 5, 0.001)
    cases = [
        run("sgd", optax.sgd(0.1), "sgd(0.1)"),
        run("sgd_momentum", optax.sgd(0.1, momentum=0.9), "sgd(0.1, momentum=0.9)"),
        run(
            "sgd_nesterov",
            optax.sgd(0.1, momentum=0.9, nesterov=True),
            "sgd(0.1, momentum=0.9, nesterov=True)",
        ),
        run("adam", optax.adam(0.01), "adam(0.01)"),
        run(
            "adam_options",
            optax.adam(0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8),
            "adam(0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8)",
        ),
        run("nadam", optax.nadam(0.01), "nadam(0.01)"),
        run("adamw", optax.adamw(0.01), "adamw(0.01)"),
        run(
            "adamw_mask_ndim",
            optax.adamw(0.01, weight_decay=0.1, mask=ndim2),
            "adamw(0.01, weight_decay=0.1, mask=ndim >= 2)",
        ),
        run(
            "adamw_mask_spec",
            optax.adamw(0.01, weight_decay=0.1, mask=bias_only(
                eqx.filter(LanguageModel(*SMALL, jax.random.key(SEED)), eqx.is_inexact_array))),
            "adamw(0.01, weight_decay=0.1, mask=tree of bools, true on the head's bias only)",
        ),
        run(
            "gpt_recipe",
            optax.chain(
                optax.clip_by_global_norm(0.5),
                optax.adamw(wcd, b2=0.95, weight_decay=0.1, mask=ndim2),
            ),
            "chain(clip_by_global_norm(0.5), adamw(warmup_cosine_decay_schedule(0, 0.01, 2, 5, "
            "0.001), b2=0.95, weight_decay=0.1, mask=ndim >= 2))",
        ),
        run(
            "adamw_wd_schedule",
            optax.adamw(0.01, weight_decay=optax.linear_schedule(0.1, 0.0, 4)),
            "adamw(0.01, weight_decay=linear_schedule(0.1, 0.0, 4))",
        ),
        run("rmsprop", optax.rmsprop(0.01), "rmsprop(0.01)"),
        run(
            "rmsprop_centered",
            optax.rmsprop(
                0.01, decay=0.8, eps=1e-4, initial_scale=0.1, eps_in_sqrt=False,
                centered=True, momentum=0.9, nesterov=True, bias_correction=True,
            ),
            "rmsprop(0.01, decay=0.8, eps=1e-4, initial_scale=0.1, eps_in_sqrt=False, "
            "centered=True, momentum=0.9, nesterov=True, bias_correction=True)",
        ),
        run("adagrad", optax.adagrad(0.1), "adagrad(0.1)"),
        run("lion", optax.lion(0.001), "lion(0.001)"),
        run(
            "lion_mask",
            optax.lion(0.001, b1=0.95, b2=0.98, weight_decay=0.5, mask=ndim2),
            "lion(0.001, b1=0.95, b2=0.98, weight_decay=0.5, mask=ndim >= 2)",
        ),
        run("adafactor", optax.adafactor(0.01), "adafactor(0.01)"),
        run(
            "adafactor_factored",
            optax.adafactor(0.01, min_dim_size_to_factor=2, momentum=0.9,
                            weight_decay_rate=0.01),
            "adafactor(0.01, min_dim_size_to_factor=2, momentum=0.9, weight_decay_rate=0.01)",
        ),
    ]
    return cases


def transform_cases():
    return [
        run(
            "clip_scale",
            optax.chain(optax.clip(0.05), optax.scale(-0.1)),
            "chain(clip(0.05), scale(-0.1))",
        ),
        run(
            "clip_global_adam",
            optax.chain(
                optax.clip_by_global_norm(0.1),
                optax.scale_by_adam(),
                optax.scale_by_learning_rate(0.01),
            ),
            "chain(clip_by_global_norm(0.1), scale_by_adam(), scale_by_learning_rate(0.01))",
        ),
        run(
            "decay_trace_schedule",
            optax.chain(
                optax.add_decayed_weights(0.1),
                optax.trace(0.5),
                optax.scale_by_schedule(
                    optax.exponential_decay(-0.1, 2, 0.5, staircase=True)),
            ),
            "chain(add_decayed_weights(0.1), trace(0.5), "
            "scale_by_schedule(exponential_decay(-0.1, 2, 0.5, staircase=True)))",
        ),
        run(
            "lr_schedule",
            optax.chain(
                optax.scale_by_adam(),
                optax.scale_by_learning_rate(
                    optax.piecewise_constant_schedule(0.01, {2: 0.5, 4: 0.1})),
            ),
            "chain(scale_by_adam(), scale_by_learning_rate(piecewise_constant_schedule("
            "0.01, {2: 0.5, 4: 0.1})))",
        ),
        run(
            "masked_adam",
            optax.chain(optax.masked(optax.scale_by_adam(), ndim2), optax.scale(-0.01)),
            "chain(masked(scale_by_adam(), ndim >= 2), scale(-0.01))",
        ),
        run(
            "multi_transform",
            optax.multi_transform(
                {"decay": optax.adamw(0.01, weight_decay=0.1), "plain": optax.sgd(0.1)}, labels
            ),
            "multi_transform({'decay': adamw(0.01, weight_decay=0.1), 'plain': sgd(0.1)}, "
            "labels: 'decay' where ndim >= 2 else 'plain')",
        ),
        run(
            "multi_steps",
            optax.MultiSteps(optax.adamw(0.01), every_k_schedule=3),
            "MultiSteps(adamw(0.01), every_k_schedule=3), 15 micro-steps",
            micro=3,
        ),
        run(
            "apply_if_finite",
            optax.apply_if_finite(optax.adam(0.01), max_consecutive_errors=2),
            "apply_if_finite(adam(0.01), max_consecutive_errors=2); NaN in the gradient "
            "of step 1, +inf in step 2",
            nonfinite={1: "nan", 2: "inf"},
        ),
        run(
            "inject_adam",
            optax.inject_hyperparams(optax.adam)(learning_rate=0.01),
            "inject_hyperparams(adam)(learning_rate=0.01); learning rate set to 0.003 "
            "before step 2",
            set_lr={2: 0.003},
        ),
        run(
            "inject_schedule",
            optax.inject_hyperparams(optax.sgd)(
                learning_rate=optax.linear_schedule(0.1, 0.0, 4), momentum=0.9),
            "inject_hyperparams(sgd)(learning_rate=linear_schedule(0.1, 0.0, 4), "
            "momentum=0.9)",
        ),
    ]


def gpt_cases():
    """The optimisers, transforms and wrappers that matter most for a GPT,
    on the tied GPT block."""
    wcd = optax.warmup_cosine_decay_schedule(0.0, 0.01, 2, 5, 0.001)
    return [
        run(
            "gpt_recipe",
            optax.chain(
                optax.clip_by_global_norm(0.5),
                optax.adamw(wcd, b2=0.95, weight_decay=0.1, mask=ndim2),
            ),
            "chain(clip_by_global_norm(0.5), adamw(warmup_cosine_decay_schedule(0, 0.01, 2, 5, "
            "0.001), b2=0.95, weight_decay=0.1, mask=ndim >= 2))",
            model="gpt",
        ),
        run("adam", optax.adam(0.01), "adam(0.01)", model="gpt"),
        run(
            "sgd_momentum",
            optax.sgd(0.1, momentum=0.9),
            "sgd(0.1, momentum=0.9)",
            model="gpt",
        ),
        run("lion", optax.lion(0.001), "lion(0.001)", model="gpt"),
        run(
            "adafactor_factored",
            optax.adafactor(0.01, min_dim_size_to_factor=2, momentum=0.9),
            "adafactor(0.01, min_dim_size_to_factor=2, momentum=0.9)",
            model="gpt",
        ),
        run(
            "multi_steps",
            optax.MultiSteps(optax.adamw(0.01), every_k_schedule=3),
            "MultiSteps(adamw(0.01), every_k_schedule=3), 15 micro-steps",
            micro=3,
            model="gpt",
        ),
        run(
            "apply_if_finite",
            optax.apply_if_finite(optax.adam(0.01), max_consecutive_errors=2),
            "apply_if_finite(adam(0.01), max_consecutive_errors=2); NaN in the gradient "
            "of step 1, +inf in step 2",
            nonfinite={1: "nan", 2: "inf"},
            model="gpt",
        ),
        run(
            "inject_adam",
            optax.inject_hyperparams(optax.adam)(learning_rate=0.01),
            "inject_hyperparams(adam)(learning_rate=0.01); learning rate set to 0.003 "
            "before step 2",
            set_lr={2: 0.003},
            model="gpt",
        ),
    ]


SCHEDULES = {
    "constant": ("constant_schedule(0.3)", optax.constant_schedule(0.3)),
    "linear": ("linear_schedule(0.1, 0.02, 7, 2)", optax.linear_schedule(0.1, 0.02, 7, 2)),
    "polynomial": (
        "polynomial_schedule(0.1, 0.01, 2, 8, 1)",
        optax.polynomial_schedule(0.1, 0.01, 2, 8, 1),
    ),
    "polynomial_frac": (
        "polynomial_schedule(0.1, 0.01, 0.5, 8)",
        optax.polynomial_schedule(0.1, 0.01, 0.5, 8),
    ),
    "cosine_decay": ("cosine_decay_schedule(0.1, 9)", optax.cosine_decay_schedule(0.1, 9)),
    "cosine_decay_alpha": (
        "cosine_decay_schedule(0.1, 9, alpha=0.2, exponent=2.0)",
        optax.cosine_decay_schedule(0.1, 9, alpha=0.2, exponent=2.0),
    ),
    "exponential_decay": (
        "exponential_decay(0.1, 3, 0.5, transition_begin=2)",
        optax.exponential_decay(0.1, 3, 0.5, transition_begin=2),
    ),
    "exponential_staircase": (
        "exponential_decay(0.1, 3, 0.5, staircase=True, end_value=0.02)",
        optax.exponential_decay(0.1, 3, 0.5, staircase=True, end_value=0.02),
    ),
    "exponential_growth": (
        "exponential_decay(0.1, 2, 1.5, end_value=0.3)",
        optax.exponential_decay(0.1, 2, 1.5, end_value=0.3),
    ),
    "warmup_cosine_decay": (
        "warmup_cosine_decay_schedule(0.0, 0.01, 3, 10, 0.001)",
        optax.warmup_cosine_decay_schedule(0.0, 0.01, 3, 10, 0.001),
    ),
    "piecewise_constant": (
        "piecewise_constant_schedule(0.1, {3: 0.5, 7: 0.1})",
        optax.piecewise_constant_schedule(0.1, {3: 0.5, 7: 0.1}),
    ),
    "join": (
        "join_schedules([constant_schedule(0.1), linear_schedule(0.1, 0.0, 5)], [4])",
        optax.join_schedules(
            [optax.constant_schedule(0.1), optax.linear_schedule(0.1, 0.0, 5)], [4]),
    ),
}


def schedule_cases():
    counts = jnp.arange(13, dtype=jnp.int32)
    out = []
    for name, (spec, sched) in SCHEDULES.items():
        values = jnp.stack([jnp.asarray(sched(c), jnp.float32) for c in counts])
        out.append({"name": name, "spec": spec, "values": arr(values)})
    return out


def tied_case():
    """One AdamW step on the full-size seed LM from key 0."""
    vocab, dim = FULL
    model = LanguageModel(vocab, dim, jax.random.key(SEED))
    params = eqx.filter(model, eqx.is_inexact_array)
    opt = optax.adamw(0.01)
    state = opt.init(params)
    g = grads_at(model, 0, vocab)
    updates, state = opt.update(g, state, params)
    adam_state = state[0]
    return {
        "name": "adamw_tied",
        "spec": "adamw(0.01), one step, seed LM at VOCAB=11, DIM=6 from key 0",
        "params": leaves(params),
        "grads": leaves(g),
        "updates": leaves(updates),
        "mu": leaves(adam_state.mu),
        "nu": leaves(adam_state.nu),
        "mu_paths": paths(adam_state.mu),
        "state_paths": paths(state),
    }


def write(out_dir):
    with jax.enable_x64(False):
        m = fx.meta(optax=optax.__version__)
        dump({"meta": m, "cases": optimiser_cases()}, out_dir, "optim.json")
        dump({"meta": m, "cases": transform_cases()}, out_dir, "optim_transforms.json")
        dump({"meta": m, "cases": gpt_cases()}, out_dir, "optim_gpt.json")
        dump({"meta": m, "cases": schedule_cases()}, out_dir, "optim_schedules.json")
        dump({"meta": m, "cases": [tied_case()]}, out_dir, "optim_tied.json")


if __name__ == "__main__":
    out, _ = fx.parse_cli(sys.argv, fx.default_out_dir())
    write(out)
