"""The short prefill's attention inside its qkv GEMM (gpu/qkv_attn.py, kernels/qkv_attn.cuh): q / k / v as
gemm.qkv_rope writes them, and att against a NumPy float64 causal attention over the device's own q and caches
(fresh random inputs, awkward and 7B / 70B shapes, GQA, several key chunks, outputs poisoned first, cache rows past
the step untouched); the group counters back at zero and a second launch bit-identical; then a 7B-width engine
whose short prefills take the fused path, against the NumPy engine and against the same engine without it."""
import gc

import numpy as np
import pytest
from test_gemm_gpu import (NAN_BITS, TOL, _dtypes, _np_dtype, _qkv_reference, _sample, check_qkv, dev_random, host64,
                           poison, relerr, rng_seed)

from cugraphllm import reference as ref
from cugraphllm.config import ModelConfig, RuntimeConfig
from cugraphllm.sampling import SamplingParams

cp = pytest.importorskip("cupy")
pytestmark = pytest.mark.gpu
EPS = 1e-5


def _attention64(q64, k64, v64, pos, ntok, R):
    """float64 att [ntok, H, hd]: causal softmax(q k^T / sqrt(hd)) v, query n at position pos + n."""
    _, H, hd = q64.shape
    out = np.zeros((ntok, H, hd))
    for n in range(ntok):
        L = pos + n + 1
        for h in range(H):
            s = k64[:L, h // R] @ q64[n, h] / np.sqrt(hd)
            p = np.exp(s - s.max())
            out[n, h] = p @ v64[:L, h // R] / p.sum()
    return out


def _run(att, q, xn, wqkv, table, kc, vc, pos, ntok, ss):
    from cugraphllm.gpu import qkv_attn
    qkv_attn.qkv_rope_attn(att, q, xn, wqkv, table, kc, vc, cp.asarray([pos], dtype=cp.int32),
                           cp.asarray([ntok], dtype=cp.int32), ss=ss, eps=EPS)


CASES = [(2, 1, 3, 1, 32, 64, 0), (7, 5, 4, 2, 24, 600, 1), (9, 9, 8, 2, 64, 128, 30), (16, 10, 32, 32, 128, 1024, 0),
         (16, 16, 32, 32, 128, 300, 200), (16, 7, 64, 8, 128, 4096, 100), (13, 13, 40, 40, 128, 512, 47)]


@pytest.mark.parametrize("norm", [False, True])
@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("M,ntok,H,KVH,hd,S,pos", CASES)
def test_fused_attention(M, ntok, H, KVH, hd, S, pos, dtype, norm):
    from cugraphllm.gpu import qkv_attn
    rng, seed = rng_seed()
    D, kvd, R = H * hd, KVH * hd, H // KVH
    xn = dev_random((M, D), dtype, 3.0 if norm else 1.0, seed)
    x64 = host64(xn)
    ss, inv = None, np.ones(M)
    if norm:  # the fused prefill norm: xn = T(x) un-normed, ss its 16-column sums of squares
        sq = (x64.reshape(M, D // 16, 16) ** 2).sum(axis=2)
        ss = cp.asarray(sq.astype(np.float32).ravel())
        inv = 1.0 / np.sqrt(sq.astype(np.float32).astype(np.float64).sum(axis=1) / D + EPS)
    wqkv = dev_random((D + 2 * kvd, D), dtype, D ** -0.5, seed + 1)
    table = ref.rope_table(S, hd, 10000.0)
    hq, hk = _sample(H, 6, rng), _sample(KVH, 4, rng)
    rows = np.concatenate([(hq[:, None] * hd + np.arange(hd)).ravel(), D + (hk[:, None] * hd + np.arange(hd)).ravel(),
                           D + kvd + (hk[:, None] * hd + np.arange(hd)).ravel()])
    q_ref, k_ref, v_ref = _qkv_reference(x64 * inv[:, None], host64(wqkv[cp.asarray(rows)]), hq, hk, D, kvd, hd,
                                         ntok, pos, table.astype(np.float32).astype(np.float64))
    lo, hi = pos, pos + ntok
    kc0, vc0 = dev_random((S, KVH, hd), dtype, 1.0, seed + 2), dev_random((S, KVH, hd), dtype, 1.0, seed + 3)
    kc, vc = kc0.copy(), vc0.copy()
    kc[lo:hi].view(cp.uint16).fill(NAN_BITS[dtype])
    vc[lo:hi].view(cp.uint16).fill(NAN_BITS[dtype])
    q, att = cp.empty((M, D), dtype=_np_dtype(dtype)), cp.empty((M, D), dtype=_np_dtype(dtype))
    poison(q)
    poison(att)
    tcs = cp.asarray(table.astype(np.float32))
    _run(att, q, xn, wqkv, tcs, kc, vc, pos, ntok, ss)
    tag = f"M={M} ntok={ntok} H={H} KVH={KVH} hd={hd} S={S} pos={pos} {dtype} norm={norm} seed={seed}"
    check_qkv(tag, q.reshape(M, H, hd), hq, q_ref, [("k", kc, kc0, k_ref), ("v", vc, vc0, v_ref)], hk, lo, hi,
              TOL[dtype])
    want = _attention64(host64(q).reshape(M, H, hd), host64(kc), host64(vc), pos, ntok, R)
    got = host64(att).reshape(M, H, hd)
    err = relerr(got[:ntok], want)
    assert err < TOL[dtype], f"{tag}: att rel err {err:.2e}"
    assert (att[ntok:].view(cp.uint16).get() == 0).all(), f"{tag}: padded rows not zero"
    assert (qkv_attn.counters(KVH)[:KVH].get() == 0).all(), f"{tag}: group counters not reset"
    first = att.copy()
    poison(att)
    _run(att, q, xn, wqkv, tcs, kc, vc, pos, ntok, ss)  # the caches now hold this step's rows: same inputs
    assert (att.view(cp.uint16) == first.view(cp.uint16)).all(), f"{tag}: second launch differs"


def test_refuses_what_it_cannot_run():
    from cugraphllm.errors import BackendError
    from cugraphllm.gpu import qkv_attn
    M, D, hd = 32, 256, 128  # 32 rows: above the 16-row bucket
    args = (cp.empty((M, D), cp.float16), cp.empty((M, D), cp.float16), cp.ones((M, D), cp.float16),
            cp.ones((3 * D, D), cp.float16), cp.ones((64, hd // 2, 2), cp.float32),
            cp.zeros((64, 2, hd), cp.float16), cp.zeros((64, 2, hd), cp.float16), cp.zeros(1, cp.int32),
            cp.ones(1, cp.int32))
    with pytest.raises(BackendError, match="qkv_rope_attn"):
        qkv_attn.qkv_rope_attn(*args)


# ---- the engine -------------------------------------------------------------------------------------------
CFG = ModelConfig.from_preset("llama-2-7b").with_(n_layers=2)
PROMPTS = {"10": [10], "16": [16], "100+10": [100, 10], "250+6": [250, 6], "300+12": [300, 12]}


@pytest.fixture(scope="module")
def engine_logits():
    """{setting: {case: last logits}} of a 7B-width engine with the fused attention on / off, the NumPy reference,
    and the prefill graph keys each engine captured."""
    from cugraphllm.gpu import qkv_attn
    from cugraphllm.gpu.engine import CudaEngine
    from cugraphllm.loader import dummy_checkpoint
    from cugraphllm.reference import forward
    w = dummy_checkpoint(CFG, seed=17, dtype="float32").weights
    ids = np.random.default_rng(312).integers(0, CFG.vocab_size, 312).tolist()
    parts = {k: [ids[sum(v[:i]):sum(v[:i + 1])] for i in range(len(v))] for k, v in PROMPTS.items()}
    out, keys = {"ref": {k: forward(CFG, w, ids[:sum(v)])[-1] for k, v in PROMPTS.items()}}, {}
    saved = qkv_attn.ENABLED
    try:
        for on in (True, False):
            qkv_attn.ENABLED = on
            e = CudaEngine(CFG, w, RuntimeConfig(backend="cuda", mode="hybrid", max_seq_len=512))
            out[on], keys[on] = {}, set()
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
        qkv_attn.ENABLED = saved
    return out, keys


@pytest.mark.parametrize("case", list(PROMPTS))
def test_engine_short_prefill(engine_logits, case):
    out, keys = engine_logits
    assert ("prefill_short", 16, True) in keys[True] and not any(k[0] == "prefill_short" for k in keys[False])
    err = relerr(out[True][case], out["ref"][case])
    assert err < 2e-2, f"{case}: fused attention vs NumPy {err:.2e}"
    assert relerr(out[True][case], out[False][case]) < 1e-2, case
