"""Reference values for solstice's threefry2x32 PRNG (`solstice::random`).

Writes `random.json`: key data from integer seeds, `split`, `fold_in`, raw
32-bit `bits`, `uniform` / `normal` / `truncated_normal` / `bernoulli`
samples in float32 and float64, int32 `randint`, and `permutation`; the
`api_*` cases call the samplers as a user would in JAX's default mode.

Everything uses JAX's defaults (threefry2x32 with
`jax_threefry_partitionable=True`, CPU backend). Seeds are turned into keys
with 64-bit mode off, as `jax.random.key(seed)` does by default. The float64
samples need `jax_enable_x64`, so they come from a child interpreter started
with JAX_ENABLE_X64=1 (see `fixture_io.run_x64`) and are merged into the same
file; their keys are given as explicit key data so they do not depend on x64
seeding.

Every case carries an `op` field naming what it checks, the input `key` data
where there is one, and the op's parameters (`seed`, `num`, `fold_data`,
`minval`, `maxval`, `lower`, `upper`, `p`, `n`). Boolean `bernoulli`
samples are stored as uint32 0/1 with `"output_dtype": "bool"`.

Note: `normal` goes through XLA's `erf_inv`, whose float rounding depends on
the compiler (XLA:CPU contracts multiply-adds into FMAs on CPUs that have
them). These values were produced on an x86-64 CPU with FMA.

Usage: python3 random_ref.py [OUT_DIR]
"""

import json
import os
import sys
import tempfile

os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import fixture_io as fx  # noqa: E402

FILENAME = "random.json"
PART_F64 = "random_f64.part.json"

SEEDS = [0, 1, 42, 2**32 + 7, 2**40]
SHAPES = [(), (7,), (3, 4), (2, 3, 5), (1000,)]
# A range whose width and offset are not exactly representable, so the
# scale-and-shift rounding is exercised.
CUSTOM_RANGE = (-3.7, 11.3)
TRUNCATION_BOUNDS = [(-2.0, 2.0), (-1.5, 2.0), (0.5, 3.0), (3.0, 5.0), (-10.0, -3.3)]
BERNOULLI = [(0.3, (48,)), (0.5, (3, 4))]
# Spans below and above 2**16 (where randint's modular reduction changes),
# the full int32 range, and an empty range.
RANDINT_RANGES = [(0, 10), (-5, 1000), (-7, 2**16 - 7), (0, 100000), (-(2**31), 2**31 - 1), (5, 3)]
# 1626 is the smallest size that takes two sorting rounds.
PERMUTATION_SIZES = [0, 1, 2, 10, 100, 1626]


def _kd(key):
    """Key data of a typed key as a plain list of two ints."""
    return [int(v) for v in np.asarray(jax.random.key_data(key))]


def _key(data):
    return jax.random.wrap_key_data(np.asarray(data, dtype=np.uint32))


def _shape_name(shape):
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _sampler_keys():
    """Fixed key data for the sampler cases, derived with default seeding."""
    with jax.enable_x64(False):
        return {
            "uniform": _kd(jax.random.key(0)),
            "uniform_custom": _kd(jax.random.key(1)),
            "normal": _kd(jax.random.key(0)),
            "normal_alt": _kd(jax.random.fold_in(jax.random.key(42), 3)),
        }


def _sampler_cases(dtype):
    """Float sampler cases for `dtype` ("float32" or "float64")."""
    suffix = "f32" if dtype == "float32" else "f64"
    keys = _sampler_keys()
    cases = []
    for shape in SHAPES:
        sn = _shape_name(shape)
        kd = keys["uniform"]
        cases.append(
            fx.case(
                f"uniform_{suffix}_{sn}",
                jax.random.uniform(_key(kd), shape, dtype),
                op="uniform",
                key=kd,
                minval=0.0,
                maxval=1.0,
            )
        )
        lo, hi = CUSTOM_RANGE
        kd = keys["uniform_custom"]
        cases.append(
            fx.case(
                f"uniform_{suffix}_{sn}_range",
                jax.random.uniform(_key(kd), shape, dtype, minval=lo, maxval=hi),
                op="uniform",
                key=kd,
                minval=lo,
                maxval=hi,
            )
        )
        kd = keys["normal"]
        cases.append(
            fx.case(
                f"normal_{suffix}_{sn}",
                jax.random.normal(_key(kd), shape, dtype),
                op="normal",
                key=kd,
            )
        )
    kd = keys["normal_alt"]
    cases.append(
        fx.case(
            f"normal_{suffix}_64_alt_key",
            jax.random.normal(_key(kd), (64,), dtype),
            op="normal",
            key=kd,
        )
    )
    for lower, upper in TRUNCATION_BOUNDS:
        cases.append(
            fx.case(
                f"truncated_normal_{suffix}_{lower}_{upper}",
                jax.random.truncated_normal(_key(kd), lower, upper, (20,), dtype),
                op="truncated_normal",
                key=kd,
                lower=lower,
                upper=upper,
            )
        )
    for c in cases:
        assert c["dtype"] == dtype, c["name"]
    return cases + _bernoulli_cases(dtype, keys["uniform"])


def _bernoulli_cases(dtype, kd):
    """bernoulli with a `dtype` probability; booleans stored as uint32."""
    suffix = "f32" if dtype == "float32" else "f64"
    cases = []
    for p, shape in BERNOULLI:
        sample = jax.random.bernoulli(_key(kd), jnp.asarray(p, dtype), shape)
        assert sample.dtype == jnp.bool_
        cases.append(
            fx.case(
                f"bernoulli_{suffix}_{p}_{_shape_name(shape)}",
                np.asarray(sample).astype(np.uint32),
                op="bernoulli",
                key=kd,
                p=p,
                p_dtype=dtype,
                output_dtype="bool",
            )
        )
    return cases


def _key_cases():
    cases = []
    for seed in SEEDS:
        cases.append(
            fx.case(
                f"key_seed_{seed}",
                jax.random.key_data(jax.random.key(seed)),
                op="key",
                seed=seed,
            )
        )
        # The legacy raw-key constructor must agree.
        assert _kd(jax.random.key(seed)) == [
            int(v) for v in np.asarray(jax.random.PRNGKey(seed))
        ]

    split_keys = [
        _kd(jax.random.key(0)),
        _kd(jax.random.key(42)),
        _kd(jax.random.key(2**32 + 7)),
        [0x12345678, 0x9ABCDEF0],
    ]
    for kd in split_keys:
        for num in (2, 3):
            cases.append(
                fx.case(
                    f"split_{kd[0]}_{kd[1]}_{num}",
                    jax.random.key_data(jax.random.split(_key(kd), num)),
                    op="split",
                    key=kd,
                    num=num,
                )
            )
    # Split of a split: the second of three children of key(0), split again.
    child = _kd(jax.random.split(jax.random.key(0), 3)[1])
    for num in (2, 5):
        cases.append(
            fx.case(
                f"split_of_split_{num}",
                jax.random.key_data(jax.random.split(_key(child), num)),
                op="split",
                key=child,
                num=num,
                parent={"key": _kd(jax.random.key(0)), "num": 3, "index": 1},
            )
        )

    for kd in (_kd(jax.random.key(0)), _kd(jax.random.key(42)), [0x12345678, 0x9ABCDEF0]):
        for data in (0, 7, 2**31, 2**32 - 1):
            cases.append(
                fx.case(
                    f"fold_in_{kd[0]}_{kd[1]}_{data}",
                    jax.random.key_data(jax.random.fold_in(_key(kd), data)),
                    op="fold_in",
                    key=kd,
                    fold_data=data,
                )
            )

    kd = _kd(jax.random.key(42))
    for shape in SHAPES[:4]:
        cases.append(
            fx.case(
                f"bits_u32_{_shape_name(shape)}",
                jax.random.bits(_key(kd), shape, jnp.uint32),
                op="bits",
                key=kd,
            )
        )
    kd = _kd(jax.random.key(7))
    for lo, hi in RANDINT_RANGES:
        cases.append(
            fx.case(
                f"randint_{lo}_{hi}",
                jax.random.randint(_key(kd), (20,), lo, hi, jnp.int32),
                op="randint",
                key=kd,
                minval=lo,
                maxval=hi,
            )
        )
    for n in PERMUTATION_SIZES:
        cases.append(
            fx.case(
                f"permutation_{n}",
                jax.random.permutation(_key(kd), n),
                op="permutation",
                key=kd,
                n=n,
            )
        )
    return cases


def _api_cases():
    """Cases for solstice's Array-level samplers with the arguments a user
    passes in JAX's default mode: multi-dimensional and 0-d shapes, a
    Python-float `p`, and the edge probabilities 0 and 1."""
    cases = []
    kd = _kd(jax.random.key(5))
    for shape in [(2, 3), ()]:
        cases.append(
            fx.case(
                f"api_truncated_normal_{_shape_name(shape)}",
                jax.random.truncated_normal(_key(kd), -1.0, 1.0, shape, jnp.float32),
                op="truncated_normal",
                key=kd,
                lower=-1.0,
                upper=1.0,
            )
        )
    for p, shape in [(0.25, (4, 5)), (0.0, (6,)), (1.0, (6,)), (0.5, ())]:
        sample = jax.random.bernoulli(_key(kd), p, shape)
        cases.append(
            fx.case(
                f"api_bernoulli_{p}_{_shape_name(shape)}",
                np.asarray(sample).astype(np.uint32),
                op="bernoulli",
                key=kd,
                p=p,
                p_dtype="float32",
                output_dtype="bool",
            )
        )
    for shape in [(2, 3), ()]:
        cases.append(
            fx.case(
                f"api_randint_{_shape_name(shape)}",
                jax.random.randint(_key(kd), shape, -3, 3),
                op="randint",
                key=kd,
                minval=-3,
                maxval=3,
            )
        )
    cases.append(
        fx.case(
            "api_permutation_7",
            jax.random.permutation(_key(kd), 7),
            op="permutation",
            key=kd,
            n=7,
        )
    )
    return cases


def _write_f64_part(out_dir):
    """Child-interpreter entry point: float64 cases into a partial file."""
    assert jax.config.jax_enable_x64, "must run with JAX_ENABLE_X64=1"
    fx.dump({"cases": _sampler_cases("float64")}, out_dir, PART_F64)


def write(out_dir):
    with jax.enable_x64(False):
        cases = _key_cases() + _sampler_cases("float32") + _api_cases()
    with tempfile.TemporaryDirectory() as tmp:
        fx.run_x64(__file__, tmp)
        with open(os.path.join(tmp, PART_F64), encoding="utf-8") as f:
            cases += json.load(f)["cases"]
    meta = fx.meta(
        backend=jax.default_backend(),
        float64_cases="computed with jax_enable_x64=True in a child interpreter",
        seeding="jax.random.key(seed) with jax_enable_x64=False",
    )
    fx.dump({"meta": meta, "cases": cases}, out_dir, FILENAME)


if __name__ == "__main__":
    out, x64 = fx.parse_cli(sys.argv, fx.default_out_dir())
    if x64:
        _write_f64_part(out)
    else:
        write(out)
