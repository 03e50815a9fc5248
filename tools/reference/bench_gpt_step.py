"""The Equinox side of `cargo bench --bench gpt_step`.

Times one AdamW training step (value, gradient, optimiser update and
`apply_updates`, all under `eqx.filter_jit`) of the tied-embedding GPT that
`crates/solstice/benches/gpt_step.rs` times in solstice: the same sizes, the
same keys (so the same initial weights), the same data and the same loss.

Prints, one per line:
- `initial_loss <value>`: the loss of the first step;
- `step_ms <value>` for every timed step;
- `final_loss <value>`: the loss of the last step;
- `peak_rss_kb <value>`: this process's peak resident set size.
With `--torch`, times PyTorch eager on the same sizes instead (its own
initialisation, so no `initial_loss`).

Run alone with `python3 tools/reference/bench_gpt_step.py [STEPS]`.
"""

import os
import resource
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

VOCAB, DIM, SEQ, LAYERS, HEADS, BATCH = 4096, 256, 128, 2, 4, 16
LR, B1, B2, EPS, WD = 1e-3, 0.9, 0.999, 1e-8, 1e-4


def data():
    """Tokens `x[b, t] = (131 b + 17 t) % VOCAB` and next tokens `y`."""
    x = [[(131 * b + 17 * t) % VOCAB for t in range(SEQ)] for b in range(BATCH)]
    y = [[(131 * b + 17 * (t + 1)) % VOCAB for t in range(SEQ)] for b in range(BATCH)]
    return x, y


def run_equinox(steps):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    class Block(eqx.Module):
        ln1: eqx.nn.LayerNorm
        attn: eqx.nn.MultiheadAttention
        ln2: eqx.nn.LayerNorm
        fc: eqx.nn.Linear
        proj: eqx.nn.Linear

        def __init__(self, key):
            ka, kf, kp = jax.random.split(key, 3)
            self.ln1 = eqx.nn.LayerNorm(DIM)
            self.attn = eqx.nn.MultiheadAttention(HEADS, DIM, key=ka)
            self.ln2 = eqx.nn.LayerNorm(DIM)
            self.fc = eqx.nn.Linear(DIM, 4 * DIM, key=kf)
            self.proj = eqx.nn.Linear(4 * DIM, DIM, key=kp)

        def __call__(self, x, mask):
            h = jax.vmap(self.ln1)(x)
            x = x + self.attn(h, h, h, mask=mask)
            h = jax.vmap(self.ln2)(x)
            return x + jax.vmap(lambda v: self.proj(jax.nn.gelu(self.fc(v))))(h)

    class GPT(eqx.Module):
        shared: eqx.nn.Shared
        pos: eqx.nn.Embedding
        blocks: list
        ln_f: eqx.nn.LayerNorm

        def __init__(self, key):
            kt, kh, kp, *kb = jax.random.split(key, 3 + LAYERS)
            tok = eqx.nn.Embedding(VOCAB, DIM, key=kt)
            head = eqx.nn.Linear(DIM, VOCAB, key=kh)
            self.shared = eqx.nn.Shared(
                (tok, head), lambda p: p[1].weight, lambda p: p[0].weight
            )
            self.pos = eqx.nn.Embedding(SEQ, DIM, key=kp)
            self.blocks = [Block(k) for k in kb]
            self.ln_f = eqx.nn.LayerNorm(DIM)

        def __call__(self, tokens):
            tok, head = self.shared()
            x = jax.vmap(tok)(tokens) + self.pos.weight
            mask = jnp.tril(jnp.ones((SEQ, SEQ), dtype=bool))
            for block in self.blocks:
                x = block(x, mask)
            return jax.vmap(head)(jax.vmap(self.ln_f)(x))

    def loss(model, x, y):
        logits = jax.vmap(model)(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    optim = optax.adamw(LR, b1=B1, b2=B2, eps=EPS, weight_decay=WD)

    @eqx.filter_jit
    def step(model, state, x, y):
        value, grads = eqx.filter_value_and_grad(loss)(model, x, y)
        updates, state = optim.update(grads, state, eqx.filter(model, eqx.is_array))
        return value, eqx.apply_updates(model, updates), state

    model = GPT(jax.random.key(0))
    state = optim.init(eqx.filter(model, eqx.is_inexact_array))
    x, y = data()
    x, y = jnp.array(x, dtype=jnp.int32), jnp.array(y, dtype=jnp.int32)
    value, model, state = step(model, state, x, y)
    print(f"initial_loss {float(value):.6f}", flush=True)
    for _ in range(steps):
        start = time.perf_counter()
        value, model, state = step(model, state, x, y)
        jax.block_until_ready(value)
        print(f"step_ms {(time.perf_counter() - start) * 1e3:.3f}", flush=True)
    print(f"final_loss {float(value):.6f}", flush=True)


def run_torch(steps):
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(DIM)
            self.attn = nn.MultiheadAttention(DIM, HEADS, bias=False, batch_first=True)
            self.ln2 = nn.LayerNorm(DIM)
            self.mlp = nn.Sequential(
                nn.Linear(DIM, 4 * DIM), nn.GELU("tanh"), nn.Linear(4 * DIM, DIM)
            )

        def forward(self, x, mask):
            h = self.ln1(x)
            x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
            return x + self.mlp(self.ln2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(VOCAB, DIM)
            self.pos = nn.Parameter(torch.randn(SEQ, DIM))
            self.blocks = nn.ModuleList([Block() for _ in range(LAYERS)])
            self.ln_f = nn.LayerNorm(DIM)
            self.head_bias = nn.Parameter(torch.zeros(VOCAB))

        def forward(self, tokens):
            x = self.tok(tokens) + self.pos
            mask = torch.triu(torch.ones(SEQ, SEQ, dtype=torch.bool), 1)
            for block in self.blocks:
                x = block(x, mask)
            return self.ln_f(x) @ self.tok.weight.T + self.head_bias

    model = GPT()
    optim = torch.optim.AdamW(model.parameters(), LR, (B1, B2), EPS, WD)
    x, y = data()
    x, y = torch.tensor(x), torch.tensor(y)
    for i in range(steps + 1):
        start = time.perf_counter()
        optim.zero_grad()
        logits = model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
        loss.backward()
        optim.step()
        if i > 0:
            print(f"step_ms {(time.perf_counter() - start) * 1e3:.3f}", flush=True)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    steps = int(args[0]) if args else 10
    if "--torch" in sys.argv:
        run_torch(steps)
    else:
        run_equinox(steps)
    print(f"peak_rss_kb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", flush=True)


if __name__ == "__main__":
    main()
