"""Regenerate every reference fixture used by the differential tests.

Usage: python3 tools/reference/generate.py [--out DIR]

DIR defaults to `tests/fixtures/` at the repository root.
"""

import argparse
import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "fixtures"))

# Must be set before JAX is imported anywhere in this process.
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ.pop("JAX_ENABLE_X64", None)
sys.path.insert(0, HERE)

MODULES = ["random_ref", "layers_ref", "layers2_ref", "lm_ref", "transforms_ref", "optim_ref", "serial_ref", "ties_ref", "kernels_ref", "kernels_inf_ref", "api_ref", "hf_gpt2_ref"]
OPTIONAL = {"random_ref"}
# Modules that need torch and transformers (requirements-hf.txt), which are
# large: without them these are skipped, with a message.
NEEDS_TORCH = {"hf_gpt2_ref"}


def torch_missing():
    """Why torch-based fixtures cannot be made, or None."""
    try:
        import safetensors  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        return str(e)
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args()
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    for name in MODULES:
        if name in OPTIONAL and not os.path.exists(os.path.join(HERE, name + ".py")):
            continue
        if name in NEEDS_TORCH:
            why = torch_missing()
            if why is not None:
                print(
                    f"{name}: skipped ({why}); install tools/reference/requirements-hf.txt "
                    "to regenerate the Hugging Face fixtures"
                )
                continue
        module = importlib.import_module(name)
        module.write(out_dir)
        print(f"{name}: done")


if __name__ == "__main__":
    main()
