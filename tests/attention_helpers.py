"""Shared by the attention GPU tests: 16-bit storage bits of float64 data, and the per-dtype tolerance check.

bfloat16 rounding is the loader's own (cugraphllm.safetensors_io), so tests and checkpoints round alike.
"""
import numpy as np

from cugraphllm.safetensors_io import bf16_to_f32, f32_to_bf16

# (atol, rtol) of |out - ref| against the float64 reference, per storage dtype
TOL = {"float16": (1e-3, 4e-3), "bfloat16": (4e-3, 1.6e-2)}


def to_bits(x, dtype):
    """float64 array -> (uint16 storage bits, float64 value of the rounded storage)."""
    if dtype == "float16":
        h = x.astype(np.float16)
        return h.view(np.uint16), h.astype(np.float64)
    b = f32_to_bf16(x.astype(np.float32))
    return b, bf16_to_f32(b).astype(np.float64)


def from_bits(bits, dtype):
    if dtype == "float16":
        return bits.view(np.float16).astype(np.float64)
    return bf16_to_f32(bits).astype(np.float64)


def assert_close(out, ref, dtype, what):
    atol, rtol = TOL[dtype]
    err = np.abs(out - ref)
    bad = ~(err <= atol + rtol * np.abs(ref))
    assert not bad.any(), f"{what}: {bad.sum()} bad of {bad.size}, max err {np.nanmax(err):.3g}"
