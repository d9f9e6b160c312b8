"""The CUDA engine's two fp8 W8A8 prefill products (cuBLASLt scaled: CUGRAPHLLM_FP8_OUTER_SCALE=1, and unscaled
with our epilogue: =0) against the NumPy model of that prefill (reference.forward(..., w8a8="float16"),
quant/w8a8_ref.py), at engine level: scripts/fp8_w8a8_compare.py's model (LLaMA-2-7B width, 2 layers, seeded
random float32 weights quantized to fp8 at load) and prompts of 300 and 500 random ids, one chunk each.

TOLERANCE NOT YET MEASURED ON A GPU. What it rests on (NumPy, this CPU, 2026-11-30): on this model the W8A8 map is
chaotic at the level of single e4m3 code flips: the NumPy model with float32 activations against the same with
float16-rounded ones (a 2**-11 relative change before quantization) differs by 0.100 / 0.097 in the last logits
at 300 / 500 tokens (relative L2), while W8A8 against weight-only is 0.128 / 0.136; even float64 against float32
compute (activations still float16-rounded) moves it by 0.026 at 300 tokens, where the weight-only reference
moves by 2.4e-6 (amplification ~1e4: a flipped code is a jump of one e4m3 step). The GPU differs from the
model by perturbations of that order or smaller (float32 accumulation order, float16 q / k / v and KV cache,
rsqrtf), so a correct product is expected at about that floor from the model (the two products were 0.072 apart
in the tenth session). The test measures the floor itself (`floor` below, the float32-vs-float16 figure) and
asserts that each product is within 2 * floor of the model, and the two products within 2 * floor of each other:
a wrong scale rule (a missing, doubled or misplaced token or row scale, wrong rows) is off by O(1) and fails;
a subtle rule change (e.g. a different rounding of a few codes) cannot be told from the chaos and passes. The four
figures of each prompt are printed (-s) for the record.
"""
import numpy as np
import pytest

pytestmark = pytest.mark.gpu
LENS = (300, 500)


@pytest.fixture(scope="module")
def data():
    from scripts import fp8_w8a8_compare as C
    w, wq, p = C.model()
    refs = C.numpy_refs(wq, p, LENS)
    floor = {n: C.rel(C.numpy_last(wq, p[:n], True), refs["w8a8", n]) for n in LENS}
    got = {name: C.gpu_last(w, wq, p, outer, LENS) for name, outer in C.PRODUCTS.items()}
    return C, refs, floor, got


@pytest.mark.parametrize("product", ["scaled", "unscaled"])
@pytest.mark.parametrize("n", LENS)
def test_product_within_the_w8a8_floor(data, product, n):
    C, refs, floor, got = data
    y = got[product][n]
    assert np.isfinite(y).all(), f"{product} {n}: non-finite logits (the poisoned buffer was not written?)"
    e_w8, e_wo = C.rel(y, refs["w8a8", n]), C.rel(y, refs["weight-only", n])
    print(f"{product} {n}: vs w8a8 model {e_w8:.4f}  vs weight-only {e_wo:.4f}  floor {floor[n]:.4f}")
    assert 0 < floor[n] < 0.5, f"floor {floor[n]}: the NumPy W8A8 model is not what this test assumes"
    assert e_w8 <= 2 * floor[n], f"{product} {n}: {e_w8:.4f} from the W8A8 model, floor {floor[n]:.4f}"


@pytest.mark.parametrize("n", LENS)
def test_products_within_the_floor_of_each_other(data, n):
    C, _, floor, got = data
    d = C.rel(got["scaled"][n], got["unscaled"][n])
    print(f"scaled vs unscaled {n}: {d:.4f}  floor {floor[n]:.4f}")
    assert d <= 2 * floor[n]
