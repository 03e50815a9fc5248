"""Shared helpers for the reference-fixture scripts.

Every fixture file has the layout

    {"meta": {"jax": ..., "equinox": ..., ...},
     "cases": [{"name": ..., <fields>, "dtype": ..., "shape": [...], "data": [...]}, ...]}

where a case holding several arrays uses ``"arrays": {name: {dtype, shape, data}}``
instead of the top-level ``dtype``/``shape``/``data`` triple. Arrays are stored
flat in row-major order. Floats are written with Python's ``repr`` of the exact
value (an f32 element is widened to a Python float, which is exact), so the
files are byte-for-byte reproducible.
"""

import json
import os
import subprocess
import sys

import numpy as np

ALLOWED_DTYPES = ("float32", "float64", "int32", "uint32")


def array(x, dtype=None):
    """Convert an array-like into ``{"dtype", "shape", "data"}``."""
    a = np.asarray(x)
    if dtype is not None:
        a = a.astype(dtype)
    name = a.dtype.name
    if name not in ALLOWED_DTYPES:
        raise TypeError(f"unsupported fixture dtype {name!r}")
    if name.startswith("float"):
        data = [float(v) for v in a.reshape(-1)]
        for v in data:
            if v != v or v in (float("inf"), float("-inf")):
                raise ValueError("non-finite value in fixture")
    else:
        data = [int(v) for v in a.reshape(-1)]
    return {"dtype": name, "shape": [int(d) for d in a.shape], "data": data}


def case(name, value=None, arrays=None, **fields):
    """Build one case: either a single array ``value`` or a dict ``arrays``."""
    c = {"name": name}
    c.update(fields)
    if value is not None:
        c.update(array(value))
    if arrays is not None:
        c["arrays"] = {k: array(v) for k, v in arrays.items()}
    return c


def meta(**extra):
    import equinox
    import jax

    m = {
        "jax": jax.__version__,
        "equinox": equinox.__version__,
        "numpy": np.__version__,
        "x64": bool(jax.config.jax_enable_x64),
        "prng_impl": str(jax.config.jax_default_prng_impl),
        "threefry_partitionable": bool(jax.config.jax_threefry_partitionable),
    }
    m.update(extra)
    return m


def dump(obj, out_dir, filename):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, filename)
    text = json.dumps(obj, sort_keys=True, indent=1, allow_nan=False) + "\n"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    return path


def run_x64(script, out_dir):
    """Run ``script --x64 OUT_DIR`` in a fresh interpreter with 64-bit JAX."""
    env = dict(os.environ)
    env["JAX_ENABLE_X64"] = "1"
    env["JAX_PLATFORMS"] = "cpu"
    subprocess.run(
        [sys.executable, os.path.abspath(script), "--x64", os.path.abspath(out_dir)],
        env=env,
        check=True,
    )


def parse_cli(argv, default_out):
    """Return (out_dir, x64_worker) from ``[--x64] [OUT_DIR]``."""
    args = list(argv[1:])
    x64 = False
    if args and args[0] == "--x64":
        x64 = True
        args = args[1:]
    if len(args) > 1:
        raise SystemExit(f"usage: {argv[0]} [OUT_DIR]")
    return (args[0] if args else default_out), x64


def default_out_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "tests", "fixtures"))
