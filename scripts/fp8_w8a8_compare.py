"""Bench-only: are the CUDA engine's two fp8 prefill products right at engine level? (tenth session, s18e: engines
taking the scaled (CUGRAPHLLM_FP8_OUTER_SCALE=1) and unscaled (=0) cuBLASLt products give last logits 6.4-7.8%
apart on 7B-width random weights.) Compares each with the NumPy model of the GPU's W8A8 prefill
(reference.forward(..., w8a8="float16"): quant/w8a8_ref.py) and with the weight-only NumPy reference.

Model: tests/test_prefill_rows_gpu.py's, LLaMA-2-7B width with 2 layers, dummy_checkpoint(seed=13, float32),
fp8 quantized at load (the GPU's quantization is formats.quantize's, bit for bit: the script checks layer 0's
wqkv codes). Prompts: the first 300 / 500 of 2100 random ids (seed 2100), one chunk each (buckets 384 / 512 at
--prefill-rows 512, both >= CUGRAPHLLM_FP8_OUTER_MIN_ROWS = 384, so =1 takes the scaled product).
Also printed: the NumPy W8A8 model with float32 activations against float16 ones, i.e. how far a 2**-11 relative
change of the activations moves the last logits through the e4m3 roundings (the amplification floor).
Usage: python3 -m scripts.fp8_w8a8_compare [--numpy-only]
"""
from __future__ import annotations

import gc
import os
import sys
import time

import numpy as np

from cugraphllm.config import ModelConfig, RuntimeConfig

CFG = ModelConfig.from_preset("llama-2-7b").with_(n_layers=2)
LENS = (300, 500)
PRODUCTS = {"scaled": "1", "unscaled": "0"}  # value of CUGRAPHLLM_FP8_OUTER_SCALE
REFS = ("w8a8", "weight-only")


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def model():
    """(float32 host Weights, the same fp8-quantized as at load, prompt ids)."""
    from cugraphllm.loader import dummy_checkpoint
    from cugraphllm.quant.layers import QuantSpec, quantize_weights
    from cugraphllm.weights import Weights
    w = dummy_checkpoint(CFG, seed=13, dtype="float32").weights
    wq = quantize_weights(Weights(tok_embeddings=w.tok_embeddings, layers=list(w.layers), norm=w.norm,
                                  output=w.output), QuantSpec("fp8"))  # a new layer list: w stays float32
    p = np.random.default_rng(2100).integers(0, CFG.vocab_size, 2100).tolist()
    return w, wq, p


def numpy_last(wq, tokens, w8a8) -> np.ndarray:
    """float64 [V]: the NumPy engine's last-position logits of one prefill of `tokens`."""
    from cugraphllm import reference as R
    x = R.hidden_states(CFG, wq, tokens, 0, R.new_kv_cache(CFG, len(tokens)), w8a8)
    return R._linear(x[-1:], wq.output)[0].astype(np.float64)


def numpy_refs(wq, p, lens=LENS, w8a8="float16") -> dict:
    """{(ref, n): logits}: the W8A8 model (activations rounded to `w8a8` first) and the weight-only reference."""
    return {(r, n): numpy_last(wq, p[:n], w8a8 if r == "w8a8" else False) for n in lens for r in REFS}


def gpu_last(w, wq, p, outer: str, lens=LENS) -> dict:
    """{n: float64 logits} of a fresh fp8 CudaEngine (--prefill-rows 512, float16) with
    CUGRAPHLLM_FP8_OUTER_SCALE=outer, one prefill per prompt; the engine is freed before returning."""
    import cupy as cp
    from cugraphllm.gpu.engine import CudaEngine
    from cugraphllm.sampling import SamplingParams
    old = os.environ.get("CUGRAPHLLM_FP8_OUTER_SCALE")
    os.environ["CUGRAPHLLM_FP8_OUTER_SCALE"] = outer
    try:
        e = CudaEngine(CFG, w, RuntimeConfig(backend="cuda", mode="hybrid", max_seq_len=1024, prefill_rows=512,
                                             quant="fp8"))
        codes = e.w.layers[0].wqkv.qweight.get()
        if not np.array_equal(codes, wq.layers[0].wqkv.qweight):
            raise AssertionError("the engine's fp8 wqkv codes are not NumPy's: the comparison would be moot")
        out = {}
        for n in lens:
            e.reset()
            e.s.logits.fill(np.nan)  # poisoned: a prefill that does not write the logits shows as NaN
            list(e.generate(p[:n], SamplingParams(), 1))
            out[n] = e.s.logits.get()[0].astype(np.float64)
        del e
    finally:
        os.environ.pop("CUGRAPHLLM_FP8_OUTER_SCALE")
        if old is not None:
            os.environ["CUGRAPHLLM_FP8_OUTER_SCALE"] = old
        gc.collect()
        cp.get_default_memory_pool().free_all_blocks()
    return out


def main() -> None:
    t0 = time.time()
    w, wq, p = model()
    refs = numpy_refs(wq, p)
    f32 = {n: numpy_last(wq, p[:n], True) for n in LENS}
    say = lambda s: print(f"[{time.time() - t0:6.1f} s] {s}", flush=True)  # noqa: E731
    for n in LENS:
        say(f"numpy {n}: w8a8(f16) vs weight-only {rel(refs['w8a8', n], refs['weight-only', n]):.4f}  "
            f"w8a8(f32 acts) vs w8a8(f16) {rel(f32[n], refs['w8a8', n]):.4f}")
    if "--numpy-only" in sys.argv[1:]:
        return
    got = {name: gpu_last(w, wq, p, outer) for name, outer in PRODUCTS.items()}
    for n in LENS:
        cells = [f"{name} vs {r} {rel(got[name][n], refs[r, n]):.4f}" for name in PRODUCTS for r in REFS]
        say(f"gpu {n}: " + "  ".join(cells) + f"  scaled vs unscaled {rel(got['scaled'][n], got['unscaled'][n]):.4f}")


if __name__ == "__main__":
    main()
