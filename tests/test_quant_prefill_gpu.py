"""Prefill ops for quantized weights (cugraphllm/gpu/gemm_quant.py), every path and format, against NumPy float64.

The reference dequantizes the same packed tensors with quant.formats.dequantize (float64), on a random sample of
output rows for the large shapes. Packed weights are drawn at random on the device (codes, scales, zero points,
and optional perm / gain), so the 7B and 70B shapes cost no host quantization; one test goes through
formats.quantize from a float matrix. Outputs are poisoned (NaN) first; cache rows outside the written range
must keep their bits.
Tolerance, ||out - ref|| / ||ref||: "own", "tc" and "dequant" widen the weights to T (fp8 / int8 exactly, int4 rounded
once), then as gemm.py: T outputs fp16 4e-3, bf16 2.5e-2; f32 residual fp16 2e-3, bf16 1e-2 (the activations
are rounded to T again when gathered through perm / gain). "lt" (W8A8) is checked against a reference that
quantizes the activations exactly as the kernel does (same float32 scale and e4m3 rounding), at the same
tolerances, and against the unquantized product at LT_LOOSE (e4m3 rounds each activation by up to 2^-4).
"""
import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.quant import formats

cp = pytest.importorskip("cupy")
from test_gemm_gpu import NAN_BITS, _dtypes, _np_dtype, _sample, dev_random, host64, poison  # noqa: E402
from test_gemm_gpu import check_qkv, check_replay, relerr, rng_seed  # noqa: E402

gpu = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _fp8_actq_off(monkeypatch):
    """These op-level tests read the 16-bit SiLU*up output h, which the default fused activation quantization
    (CUGRAPHLLM_FP8_FUSE_ACTQ=2) leaves unwritten for w2; tests/test_fp8_actq_gpu.py covers 1 and 2."""
    monkeypatch.setenv("CUGRAPHLLM_FP8_FUSE_ACTQ", "0")


TOL = {"float16": 4e-3, "bfloat16": 2.5e-2}
TOL_F32 = {"float16": 2e-3, "bfloat16": 1e-2}
LT_LOOSE = 6e-2
FMTS = ("fp8", "int8", "int4")


# ---- random packed weights on the device -------------------------------------------------------------------
def dev_quant(fmt, N, K, seed, extras=False, group=128):
    """A device QuantLinear of random packed data with weights of sd ~ K^-0.5 (perm / gain when extras)."""
    g = cp.random.RandomState(seed)
    rs = g.uniform(0.5, 1.5, N, dtype=cp.float32) * np.float32(K ** -0.5)
    if fmt == "fp8":
        table = cp.asarray(formats.fp8_e4m3_encode(np.random.default_rng(seed).standard_normal(1 << 16) * 64))
        ql = formats.QuantLinear("fp8", table[g.randint(0, 1 << 16, (N, K))], rs / np.float32(64), (N, K))
    elif fmt == "int8":
        ql = formats.QuantLinear("int8", g.randint(-127, 128, (N, K)).astype(cp.int8), rs / np.float32(60), (N, K))
    else:
        gs = K if group in (-1, 0) else group
        lo, hi = (g.randint(0, 1 << 16, (N, K // 8)).astype(cp.uint32) for _ in range(2))
        s = (g.uniform(0.5, 1.5, (N, K // gs), dtype=cp.float32) * np.float32(K ** -0.5 / 4)).astype(cp.float16)
        z = g.randint(4, 12, (N, K // gs)).astype(cp.float16)
        ql = formats.QuantLinear("int4", (hi << 16) | lo, s, (N, K), zeros=z, group_size=gs)
    if extras:
        ql.perm = cp.asarray(np.random.default_rng(seed).permutation(K).astype(np.int32))
        ql.gain = g.uniform(0.5, 1.5, K, dtype=cp.float32)
    return ql


def host_rows(ql, rows):
    """Host QuantLinear of the selected output rows (perm / gain kept)."""
    idx = cp.asarray(rows)
    get = lambda a: None if a is None else a.get()  # noqa: E731
    sub = lambda a: None if a is None else a[idx].get()  # noqa: E731
    return formats.QuantLinear(ql.fmt, sub(ql.qweight), sub(ql.scales), (len(rows), ql.shape[1]), sub(ql.zeros),
                               ql.group_size, get(ql.perm), get(ql.gain))


def ref_product(a, ql, rows, lt=False):
    """float64 a @ W[rows].T; lt: with the activations quantized as quant_act_fp8 does."""
    hq = host_rows(ql, rows)
    if not lt:
        return host64(a) @ formats.dequantize(hq).T
    v = host64(a).astype(np.float32)
    if hq.perm is not None:
        v = v[:, hq.perm]
    if hq.gain is not None:
        v = v * hq.gain[None, :]
    amax = np.abs(v).max(axis=1).astype(np.float32)
    inv = np.where(amax > 0, np.float32(448) / amax, np.float32(1)).astype(np.float32)
    sa = np.where(amax > 0, amax / np.float32(448), np.float32(1)).astype(np.float32)
    qa = formats.fp8_e4m3_encode((v * inv[:, None]).astype(np.float32))
    bare = formats.QuantLinear(hq.fmt, hq.qweight, hq.scales, hq.shape)
    return (formats.fp8_e4m3_decode(qa) * sa[:, None].astype(np.float64)) @ formats.dequantize(bare).T


def paths(fmt, M, N, K, dtype="float16"):
    from cugraphllm.gpu import cublaslt, gemm_w4
    out = ["dequant"]
    wg_fmt = fmt == "int4" and K % 32 == 0 and _group(K) >= 32 or fmt == "int8" and K % 16 == 0
    if wg_fmt and dtype == "float16" and gemm_w4.usable():
        out.append("wg")  # Hopper wgmma, dequantized in registers (gemm_w4.py), split-K for small grids
    if K % 8 == 0:
        out.append("own")  # M > 64 runs in chunks of 64 rows
    if fmt == "fp8" and K % 16 == 0 and N % 16 == 0 and cublaslt.fp8_supported():
        out.append("lt")
    if K % (32 if fmt == "int4" else 16) == 0:
        out.append("tc")  # tiled tensor-core kernel (gemm_quant_tc.py), split-K where the grid is small
    return out


def _group(K):
    return 128 if K % 128 == 0 else K


# ---- matmul_residual ---------------------------------------------------------------------------------------
RES_CASES = [(2, 48, 136, False), (5, 40, 100, True), (7, 96, 72, True), (16, 4096, 4096, False),
             (10, 4096, 11008, True), (33, 4096, 11008, False), (128, 4096, 4096, True), (384, 4096, 4096, True),
             (512, 4096, 11008, False), (16, 8192, 28672, False)]


@gpu
@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("M,N,K,extras", RES_CASES)
def test_matmul_residual(M, N, K, extras, fmt, dtype):
    from cugraphllm.gpu import gemm_quant
    if fmt == "int4" and K % 8:
        pytest.skip("int4 packs 8 columns a word: K % 8 == 0 by format")
    rng, seed = rng_seed()
    a = dev_random((M, K), dtype, 1.0, seed)
    w = dev_quant(fmt, N, K, seed + 1, extras, group=_group(K) if K != 136 else 8)
    x0 = dev_random((M, N), "float32", 1.0, seed + 2)
    cols = _sample(N, 384, rng)
    for impl in paths(fmt, M, N, K, dtype):
        x = x0.copy()
        gemm_quant.matmul_residual(x, a, w, impl=impl)
        got = host64(x)[:, cols] - host64(x0)[:, cols]
        tag = f"{impl} {fmt} M={M} N={N} K={K} extras={extras} {dtype} seed={seed}"
        err = relerr(got, ref_product(a, w, cols, lt=impl == "lt"))
        assert err < TOL_F32[dtype], f"{tag}: rel err {err:.2e}"
        if impl == "lt":
            loose = relerr(got, ref_product(a, w, cols))
            assert loose < LT_LOOSE, f"{tag}: rel err {loose:.2e} against unquantized activations"


@gpu
@pytest.mark.parametrize("pipe", [True, False], ids=["overlapped", "one-stream"])
@pytest.mark.parametrize("M,N,K", [(512, 4096, 11008), (96, 22016, 4096), (16, 8192, 28672)])
def test_dequant_slabs(M, N, K, pipe, monkeypatch):
    """The dequant path over many slabs (quant_slabs.py), with the next slab dequantized on a side stream during
    this slab's GEMM (and without): both equal the reference, and both give the same result twice."""
    from cugraphllm.gpu import gemm_quant, quant_slabs
    monkeypatch.setattr(quant_slabs, "PIPE", pipe)
    fmt = "int4"
    rng, seed = rng_seed()
    a = dev_random((M, K), "float16", 1.0, seed)
    w = dev_quant(fmt, N, K, seed + 1, True, group=128)
    assert N > quant_slabs.slab_rows(N, K, 2), "the case must span several slabs"
    x0 = dev_random((M, N), "float32", 1.0, seed + 2)
    cols = _sample(N, 384, rng)
    outs = []
    for _ in range(2):
        x = x0.copy()
        gemm_quant.matmul_residual(x, a, w, impl="dequant")
        outs.append(x)
    assert cp.array_equal(outs[0], outs[1])
    got = host64(outs[0])[:, cols] - host64(x0)[:, cols]
    err = relerr(got, ref_product(a, w, cols))
    assert err < TOL_F32["float16"], f"pipe={pipe} M={M} N={N} K={K} seed={seed}: rel err {err:.2e}"

@gpu
@pytest.mark.parametrize("fmt", FMTS)
def test_from_float_quantize(fmt):
    """Through formats.quantize of a float matrix (the loaders' path) rather than random codes."""
    from cugraphllm.gpu import gemm_quant
    rng, seed = rng_seed()
    M, N, K = 9, 208, 384
    w = rng.standard_normal((N, K)).astype(np.float32) * K ** -0.5
    ql = formats.quantize(w, fmt, group_size=64)
    qd = ql.map(cp.asarray)
    a = dev_random((M, K), "float16", 1.0, seed)
    for impl in paths(fmt, M, N, K):
        x = cp.zeros((M, N), cp.float32)
        gemm_quant.matmul_residual(x, a, qd, impl=impl)
        want = ref_product(a, qd, np.arange(N), lt=impl == "lt")
        assert relerr(host64(x), want) < TOL_F32["float16"], f"{impl} {fmt} seed={seed}"


# ---- matmul_silu ---------------------------------------------------------------------------------------------
SILU_CASES = [(2, 44, 136, False), (7, 48, 96, True), (3, 30, 100, False), (16, 11008, 4096, False),
              (10, 11008, 4096, True), (128, 11008, 4096, False), (256, 11008, 4096, False),
              (512, 11008, 4096, True), (16, 28672, 8192, False)]


@gpu
@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("M,F,K,extras", SILU_CASES)
def test_matmul_silu(M, F, K, extras, fmt, dtype):
    from cugraphllm.gpu import gemm_quant
    if fmt == "int4" and K % 8:
        pytest.skip("int4: K % 8 == 0 by format")
    rng, seed = rng_seed()
    xn = dev_random((M, K), dtype, 1.0, seed)
    w13 = dev_quant(fmt, 2 * F, K, seed + 1, extras, group=_group(K) if K != 136 else 8)
    fs = _sample(F, 384, rng)
    h = cp.empty((M, F), dtype=_np_dtype(dtype))
    for impl in paths(fmt, M, 2 * F, K, dtype):
        lt = impl == "lt"
        want = ref.silu(ref_product(xn, w13, fs, lt)) * ref_product(xn, w13, fs + F, lt)
        poison(h)
        gemm_quant.matmul_silu(h, xn, w13, impl=impl)
        got = host64(h)
        assert np.all(np.isfinite(got)), f"{impl}: unwritten h"
        err = relerr(got[:, fs], want)
        assert err < TOL[dtype], f"{impl} {fmt} M={M} F={F} K={K} extras={extras} {dtype} seed={seed}: {err:.2e}"


# ---- qkv_rope ------------------------------------------------------------------------------------------------
# (M, n_tokens, n_heads, n_kv_heads, head_dim, S, pos, extras)
QKV_CASES = [(2, 1, 3, 1, 32, 64, 0, False), (7, 5, 4, 2, 24, 600, 1, True), (16, 10, 32, 32, 128, 1024, 511, False),
             (10, 10, 32, 32, 128, 4096, 0, True), (33, 30, 4, 2, 32, 100, 80, False),
             (128, 100, 32, 32, 128, 4096, 0, True), (512, 500, 32, 32, 128, 4096, 511, False),
             (16, 7, 64, 8, 128, 4096, 4090, False)]


@gpu
@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("M,ntok,H,KVH,hd,S,pos,extras", QKV_CASES)
def test_qkv_rope(M, ntok, H, KVH, hd, S, pos, extras, fmt, dtype):
    from cugraphllm.gpu import gemm_quant
    rng, seed = rng_seed()
    D, kvd = H * hd, KVH * hd
    xn = dev_random((M, D), dtype, 1.0, seed)
    wqkv = dev_quant(fmt, D + 2 * kvd, D, seed + 1, extras, group=_group(D))
    table = ref.rope_table(S, hd, 10000.0)
    rope = cp.asarray(table.astype(np.float32))
    hq, hk = _sample(H, 6, rng), _sample(KVH, 4, rng)
    rows = np.concatenate([(hq[:, None] * hd + np.arange(hd)).ravel(), D + (hk[:, None] * hd + np.arange(hd)).ravel(),
                           D + kvd + (hk[:, None] * hd + np.arange(hd)).ravel()])
    lo, hi = pos, min(pos + ntok, S)
    pos_d, nt_d = cp.asarray([pos], dtype=cp.int32), cp.asarray([ntok], dtype=cp.int32)
    kc0, vc0 = dev_random((S, KVH, hd), dtype, 1.0, seed + 2), dev_random((S, KVH, hd), dtype, 1.0, seed + 3)
    q = cp.empty((M, D), dtype=_np_dtype(dtype))
    for impl in paths(fmt, M, D + 2 * kvd, D, dtype):
        y = ref_product(xn, wqkv, rows, lt=impl == "lt")
        q_ref, k_ref, v_ref = _split_rope(y, len(hq) * hd, hd, pos, table.astype(np.float32).astype(np.float64))
        kc, vc = kc0.copy(), vc0.copy()
        poison(q)
        kc[lo:hi].view(cp.uint16).fill(NAN_BITS[dtype])
        vc[lo:hi].view(cp.uint16).fill(NAN_BITS[dtype])
        gemm_quant.qkv_rope(q, xn, wqkv, rope, kc, vc, pos_d, nt_d, impl=impl)
        tag = f"{impl} {fmt} M={M} ntok={ntok} H={H} KVH={KVH} S={S} pos={pos} {dtype} seed={seed}"
        check_qkv(tag, q.reshape(M, H, hd), hq, q_ref, [("k", kc, kc0, k_ref), ("v", vc, vc0, v_ref)], hk, lo, hi,
                  TOL[dtype])


def _split_rope(y, nq, hd, pos, table):
    """q (roped, clamped positions), k (roped) and v [M, heads, hd] of the product y [M, q | k | v rows]."""
    M, S = y.shape[0], table.shape[0]
    nk = (y.shape[1] - nq) // 2
    p = np.clip(pos + np.arange(M), 0, S - 1)
    q = ref.apply_rope(y[:, :nq].reshape(M, -1, hd), p, table)
    k = ref.apply_rope(y[:, nq:nq + nk].reshape(M, -1, hd), p, table)
    return q, k, y[:, nq + nk:].reshape(M, -1, hd)


# ---- capture -------------------------------------------------------------------------------------------------
def replay_layer_ops(fmt, M, tag, impl="auto"):
    """allocate(), then a layer's three prefill ops (qkv_rope, matmul_silu, matmul_residual; impl as given) captured
    on a non-blocking stream: replay at two positions == eager (check_replay). Also used by test_fp8_lt_gpu."""
    from cugraphllm.config import ModelConfig
    from cugraphllm.gpu import gemm_quant
    dtype, D, H, KVH, hd, F, S = "float16", 512, 8, 4, 64, 688, 256
    cfg = ModelConfig(dim=D, n_layers=1, n_heads=H, n_kv_heads=KVH, vocab_size=64, hidden_dim=F, max_seq_len=S)
    kvd = KVH * hd
    _, seed = rng_seed()
    s = cp.cuda.Stream(non_blocking=True)
    with s:
        xn = dev_random((M, D), dtype, 1.0, seed)
        wqkv, w13 = dev_quant(fmt, D + 2 * kvd, D, seed + 1, True), dev_quant(fmt, 2 * F, D, seed + 2)
        w2 = dev_quant(fmt, D, F, seed + 3, True, group=F)
        rope = cp.asarray(ref.rope_table(S, hd, 10000.0).astype(np.float32))
        x0 = dev_random((M, D), "float32", 1.0, seed + 4)
        kc0, vc0 = dev_random((S, KVH, hd), dtype, 1.0, seed + 5), dev_random((S, KVH, hd), dtype, 1.0, seed + 6)
        bufs = dict(q=cp.empty((M, D), dtype), h=cp.empty((M, F), dtype), x=x0.copy(), kc=kc0.copy(), vc=vc0.copy())
        pos, ntok = cp.zeros(1, cp.int32), cp.asarray([M - 3], cp.int32)
        gemm_quant.allocate(cfg, fmt, M, dtype)
        gemm_quant.warmup(fmt, dtype, [M], [(D + 2 * kvd, D), (2 * F, D), (D, F)])

        def step():
            b = bufs
            gemm_quant.qkv_rope(b["q"], xn, wqkv, rope, b["kc"], b["vc"], pos, ntok, impl=impl)
            gemm_quant.matmul_silu(b["h"], xn, w13, impl=impl)
            gemm_quant.matmul_residual(b["x"], b["h"], w2, impl=impl)

        check_replay(s, step, bufs, dict(x=x0, kc=kc0, vc=vc0), pos, tag)


@gpu
@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("M", [16, 128])
def test_graph_replay_matches_eager(fmt, M):
    """allocate(), then the three ops captured on a non-blocking stream: replay at two positions == eager."""
    replay_layer_ops(fmt, M, f"{fmt}: ")


# ---- workspace sizing (no GPU) -------------------------------------------------------------------------------
def test_workspace_bytes():
    from cugraphllm.config import ModelConfig
    from cugraphllm.errors import BackendError
    from cugraphllm.gpu import gemm_quant
    cfg = ModelConfig.from_preset("llama-2-7b")
    small, big = (gemm_quant.workspace_bytes(cfg, "int4", m) for m in (64, 512))
    assert big - small == (512 - 64) * (11008 + 22016) * 2  # act [M, hidden] and g [M, 2 * hidden] fp16 rows
    assert gemm_quant.workspace_bytes(cfg, "fp8", 512) > gemm_quant.workspace_bytes(cfg, "int8", 512)
    with pytest.raises(BackendError, match="supported"):
        gemm_quant.workspace_bytes(cfg, "nf4", 512)


# ---- bad weights: one-line BackendError before any launch (host arrays suffice, no GPU) -------------------------
def _bad_weights():
    N, K = 64, 256
    good = {f: formats.quantize(np.random.default_rng(1).standard_normal((N, K)).astype(np.float32), f, 64)
            for f in FMTS}
    import dataclasses as dc
    return [
        ("shape", dc.replace(good["int8"], shape=(N, K + 8))),
        ("int8 qweight", dc.replace(good["int8"], qweight=good["int8"].qweight.astype(np.uint8))),
        ("float32", dc.replace(good["fp8"], scales=good["fp8"].scales.astype(np.float16))),
        ("group size", dc.replace(good["int4"], group_size=48)),
        ("float16", dc.replace(good["int4"], zeros=good["int4"].zeros[:, :2])),
        ("perm", dc.replace(good["fp8"], perm=np.arange(K, dtype=np.int64))),
        ("gain", dc.replace(good["int8"], gain=np.ones(K - 1, np.float32))),
        ("QuantLinear", dc.replace(good["int8"], fmt="nf4")),
    ]


@pytest.mark.parametrize("what,w", _bad_weights(), ids=[b[0] for b in _bad_weights()])
def test_bad_weight_is_one_line_error(what, w):
    from cugraphllm.errors import BackendError
    from cugraphllm.gpu import gemm_quant
    x, a = np.zeros((4, 64), np.float32), np.zeros((4, 256), np.float16)
    with pytest.raises(BackendError, match=what) as e:
        gemm_quant.matmul_residual(x, a, w)
    assert "\n" not in str(e.value)
