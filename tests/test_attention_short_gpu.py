"""The short prefill attention (kernels/attention_short.cu, gpu/attention_short.py) against the float64 NumPy
reference on the prefill attention tests' cases (test_attention_prefill_gpu.Case: q / cache rounded to the storage
dtype first, outputs and every cache row the step must not read poisoned with NaN), at <= 16 rows: padding, a
single token, pos > 0, several 32-key chunks (the kernel is exact past MAX_KEYS too, only slower), GQA / MQA and
awkward head sizes; a captured launch replayed at other positions equals the eager one; then a 7B-width engine
whose short prefills take the short graphs, against the NumPy engine and against the same engine without them."""
import gc
import os

import numpy as np
import pytest
from test_attention_prefill_gpu import NAN_BITS, SHAPES, Case

from cugraphllm.config import ModelConfig, RuntimeConfig
from cugraphllm.sampling import SamplingParams

cp = pytest.importorskip("cupy")
pytestmark = pytest.mark.gpu
SHORT_SHAPES = {**SHAPES, "mqa_hd24": (3, 1, 24), "gqa2_hd40": (6, 3, 40)}
# (M bucket, n_tokens, pos): keys pos + n_tokens from 2 to 116 (four chunks), one far from the start
CASES = [(16, 13, 0), (16, 16, 0), (16, 1, 40), (16, 10, 54), (2, 2, 0), (9, 7, 30), (16, 16, 100), (16, 3, 900)]


def _views(case):
    """q / k / v / att as the storage dtype (Case keeps uint16 bits)."""
    from test_gemm_gpu import _np_dtype
    dt = _np_dtype(case.dt)
    return (case.att.view(dt), case.qd.view(dt), case.kd.view(dt), case.vd.view(dt))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(SHORT_SHAPES))
def test_short_matches_reference(name, dtype):
    from cugraphllm.gpu import attention_short
    for i, (M, n_tokens, pos) in enumerate(CASES):
        case = Case(SHORT_SHAPES[name], dtype, M, seed=int.from_bytes(os.urandom(3), "little") + i)
        case.poison(pos, n_tokens)
        att, q, k, v = _views(case)
        attention_short.launch(att, q, k, v, case.pos, case.ntok)
        case.check(pos, n_tokens, f"{name} {dtype} M={M} n={n_tokens} pos={pos}")


def test_graph_replay_with_changed_pos_equals_eager():
    from cugraphllm.gpu import attention_short
    case = Case(SHAPES["70b_gqa8"], "float16", 16, seed=11)
    att, q, k, v = _views(case)
    cp.cuda.Device().synchronize()
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        case.poison(0, 16)
        attention_short.launch(att, q, k, v, case.pos, case.ntok)  # warm-up before capture
        stream.begin_capture()
        attention_short.launch(att, q, k, v, case.pos, case.ntok)
        graph = stream.end_capture()
        for pos, n_tokens in ((0, 16), (30, 11), (57, 1), (48, 16)):
            case.poison(pos, n_tokens)
            graph.launch(stream)
            replay = case.att.get(stream=stream)
            case.check(pos, n_tokens, f"replay pos={pos} n={n_tokens}")
            case.att.fill(NAN_BITS["float16"])
            attention_short.launch(att, q, k, v, case.pos, case.ntok)
            assert np.array_equal(replay, case.att.get(stream=stream)), f"pos={pos} n={n_tokens}"


def test_refuses_what_it_cannot_run():
    from cugraphllm.errors import BackendError
    from cugraphllm.gpu import attention_short
    q = cp.zeros((32, 256), cp.float16)  # 32 rows: above the 16-row bucket
    k = cp.zeros((64, 2, 128), cp.float16)
    with pytest.raises(BackendError, match="attention_short"):
        attention_short.launch(cp.empty_like(q), q, k, k.copy(), cp.zeros(1, cp.int32), cp.ones(1, cp.int32))


# ---- the engine -------------------------------------------------------------------------------------------
CFG = ModelConfig.from_preset("llama-2-7b").with_(n_layers=2)
PROMPTS = {"10": [10], "16": [16], "40+10": [40, 10], "60+4": [60, 4], "100+10": [100, 10], "3": [3]}


@pytest.fixture(scope="module")
def engine_logits():
    """{setting: {case: last logits}} of a 7B-width engine with the short graphs on / off, the NumPy reference,
    and the prefill graph keys each engine captured."""
    from cugraphllm.gpu import attention_short
    from cugraphllm.gpu.engine import CudaEngine
    from cugraphllm.loader import dummy_checkpoint
    from cugraphllm.reference import forward
    w = dummy_checkpoint(CFG, seed=17, dtype="float32").weights
    ids = np.random.default_rng(312).integers(0, CFG.vocab_size, 110).tolist()
    parts = {k: [ids[sum(v[:i]):sum(v[:i + 1])] for i in range(len(v))] for k, v in PROMPTS.items()}
    out, keys = {"ref": {k: forward(CFG, w, ids[:sum(v)])[-1] for k, v in PROMPTS.items()}}, {}
    saved = attention_short.ENABLED
    try:
        for on in (True, False):
            attention_short.ENABLED = on
            e = CudaEngine(CFG, w, RuntimeConfig(backend="cuda", mode="hybrid", max_seq_len=256))
            out[on] = {}
            for k, ps in parts.items():
                e.reset()
                for p in ps:
                    e.s.logits.fill(np.nan)
                    list(e.generate(p, SamplingParams(), 1))
                out[on][k] = e.s.logits.get()[0].astype(np.float64)
            keys[on] = {k for k in e.rt.graphs if k[0].startswith("prefill")}
            del e
            gc.collect()
            cp.get_default_memory_pool().free_all_blocks()
    finally:
        attention_short.ENABLED = saved
    return out, keys


def _relerr(a, b):
    assert np.isfinite(a).all(), "non-finite logits"
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("case", list(PROMPTS))
def test_engine_short_prefill(engine_logits, case):
    out, keys = engine_logits
    assert ("prefill_short", 16, True) in keys[True] and not any(k[0] == "prefill_short" for k in keys[False])
    err = _relerr(out[True][case], out["ref"][case])
    assert err < 2e-2, f"{case}: short attention vs NumPy {err:.2e}"
    assert _relerr(out[True][case], out[False][case]) < 1e-2, case
