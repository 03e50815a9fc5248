"""A tiny random GPT-2 made with `transformers`, for `solstice-gpt`'s
`import-hf` / `export-hf` tests. Nothing is downloaded.

Writes `crates/solstice-gpt/tests/fixtures/hf-gpt2/` (or `OUT_DIR/hf-gpt2/`):

- `model.safetensors`, `config.json`: `GPT2LMHeadModel(GPT2Config(vocab_size=256,
  n_positions=32, n_embd=32, n_layer=2, n_head=4))` after `torch.manual_seed(0)`,
  every parameter then redrawn from a seeded normal (biases and LayerNorms
  included, so a misplaced bias or transpose shows), saved with
  `save_pretrained`: the tied `lm_head.weight` is left out, as `transformers`
  always does;
- `reference.json`: a prompt, its UTF-8 bytes as token ids, the logits
  `[seq, vocab]` of `model(ids)`, and the greedy continuation
  `model.generate(ids, do_sample=False, max_new_tokens=16)`.

`--check-export [DIR ...]` is the other direction: it loads each directory
solstice's `export-hf` wrote with `GPT2LMHeadModel.from_pretrained` and
compares its logits and greedy tokens with the `expected.json` solstice wrote
beside them (the Rust test `hf::tests::exports_for_transformers` writes and
commits `hf-gpt2/from_solstice/{tied,untied}/`, the imported model with
perturbed weights, tied and untied). It prints one line per directory and
exits with status 1 if any differs by more than 1e-5.

Usage: python3 hf_gpt2_ref.py [OUT_DIR] | --check-export [DIR ...]
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
FIXTURE = os.path.join(REPO, "crates", "solstice-gpt", "tests", "fixtures", "hf-gpt2")
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures")

PROMPT = "Once upon"
NEW_TOKENS = 16
TOLERANCE = 1e-5


def _versions():
    import safetensors
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
    }


def _floats(t):
    return [float(v) for v in t.reshape(-1).tolist()]


def build_model():
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=256,
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=4,
        # Token ids inside the byte vocabulary, so generate() never stops
        # early at an end-of-text token the bytes do not have.
        bos_token_id=None,
        eos_token_id=None,
    )
    model = GPT2LMHeadModel(config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            # Large position embeddings make the greedy continuation move
            # between tokens rather than repeat one.
            scale = {"wte.weight": 0.3, "wpe.weight": 1.0}.get(name.split(".", 1)[-1], 0.15)
            noise = torch.randn(p.shape, generator=generator, dtype=p.dtype) * scale
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.copy_(1.0 + noise)
            else:
                p.copy_(noise)
    assert model.lm_head.weight is model.transformer.wte.weight
    return model.eval()


def logits_and_greedy(model, tokens):
    import torch

    ids = torch.tensor([tokens], dtype=torch.long)
    with torch.no_grad():
        logits = model(ids).logits[0]
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=NEW_TOKENS,
            pad_token_id=0,
        )
    return logits, [int(t) for t in out[0, len(tokens):].tolist()]


def write(out_dir):
    target = FIXTURE if os.path.abspath(out_dir) == DEFAULT_OUT else os.path.join(out_dir, "hf-gpt2")
    os.makedirs(target, exist_ok=True)
    model = build_model()
    model.save_pretrained(target, safe_serialization=True)
    tokens = list(PROMPT.encode("utf-8"))
    logits, greedy = logits_and_greedy(model, tokens)
    reference = {
        "meta": _versions(),
        "prompt": PROMPT,
        "tokens": tokens,
        "logits": {"shape": list(logits.shape), "data": _floats(logits)},
        "greedy": greedy,
    }
    with open(os.path.join(target, "reference.json"), "w") as f:
        f.write(json.dumps(reference, sort_keys=True, indent=1) + "\n")
    # save_pretrained may also write a generation config; the tests need
    # only these three files.
    extra = os.path.join(target, "generation_config.json")
    if os.path.exists(extra):
        os.remove(extra)


def check_export(directory):
    import torch
    from transformers import GPT2LMHeadModel

    with open(os.path.join(directory, "expected.json")) as f:
        expected = json.load(f)
    model = GPT2LMHeadModel.from_pretrained(directory).eval()
    tied = model.lm_head.weight is model.transformer.wte.weight
    logits, greedy = logits_and_greedy(model, expected["tokens"])
    want = torch.tensor(expected["logits"]["data"], dtype=torch.float32).reshape(
        expected["logits"]["shape"]
    )
    diff = float((logits - want).abs().max())
    same_tokens = greedy == expected["greedy"]
    ok = diff <= TOLERANCE and same_tokens and tied == expected["tied"]
    print(
        f"hf_gpt2_ref --check-export {os.path.relpath(directory, REPO)}: transformers "
        f"{_versions()['transformers']} loads solstice's export; max |logits - solstice's| = "
        f"{diff:.3g} over {list(logits.shape)}; greedy tokens equal: {same_tokens}; "
        f"head tied: {tied} (expected {expected['tied']}); {'ok' if ok else 'MISMATCH'}"
    )
    return ok


def main():
    args = sys.argv[1:]
    if args and args[0] == "--check-export":
        dirs = args[1:] or [
            os.path.join(FIXTURE, "from_solstice", "tied"),
            os.path.join(FIXTURE, "from_solstice", "untied"),
        ]
        results = [check_export(os.path.abspath(d)) for d in dirs]
        sys.exit(0 if all(results) else 1)
    write(args[0] if args else DEFAULT_OUT)
    print("hf_gpt2_ref: done")


if __name__ == "__main__":
    main()
