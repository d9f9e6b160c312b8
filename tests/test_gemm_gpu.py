"""Prefill GEMM ops (cugraphllm/gpu/gemm.py) against NumPy float64 references, both implementations.

Fresh random inputs per test (seed printed on failure), outputs poisoned with NaN before each run, cache rows
outside [pos, pos + n_tokens) ∩ [0, S) must keep their old bits. Large shapes are checked on a random sample of
output rows/heads (the float64 reference of a 70B w13 would take minutes on the host).
Tolerance: ||out - ref|| / ||ref|| < TOL[dtype]; T outputs round once or twice (cuBLAS path rounds the GEMM
result to T before its epilogue): fp16 3e-3, bf16 2e-2; f32 residual outputs 1e-3 for both.
"""
import os

import numpy as np
import pytest

from cugraphllm import reference as ref

cp = pytest.importorskip("cupy")
pytestmark = pytest.mark.gpu

TOL = {"float16": 3e-3, "bfloat16": 2e-2}
TOL_F32 = 1e-3
NAN_BITS = {"float16": 0x7E00, "bfloat16": 0x7FC0}


def _dtypes():
    out = ["float16"]
    try:
        import ml_dtypes  # noqa: F401  (CuPy's bfloat16 dtype)
        out.append("bfloat16")
    except ImportError:
        pass
    return out


def _np_dtype(name):
    if name == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def rng_seed():
    seed = int.from_bytes(os.urandom(4), "little")
    return np.random.default_rng(seed), seed


def dev_random(shape, dtype, scale, seed):
    """Device array of N(0, scale^2) values stored as dtype (bf16 by truncating float32 bits)."""
    r = cp.random.default_rng(seed).standard_normal(shape, dtype=cp.float32) * np.float32(scale)
    if dtype == "bfloat16":
        return (r.view(cp.uint32) >> 16).astype(cp.uint16).view(_np_dtype(dtype))
    return r.astype(dtype)


def host64(a):
    """float64 host copy of a device T/f32 array."""
    if str(a.dtype) == "bfloat16":
        u = a.view(cp.uint16).get().astype(np.uint32) << 16
        return u.view(np.float32).astype(np.float64)
    return a.get().astype(np.float64)


def poison(a):
    if str(a.dtype) == "float32":
        a.fill(np.nan)
    else:
        a.view(cp.uint16).fill(NAN_BITS[str(a.dtype)])


def relerr(out, want):
    assert np.all(np.isfinite(out)), "non-finite output (unwritten or overflow)"
    return np.linalg.norm(out - want) / max(np.linalg.norm(want), 1e-30)


def impls(M):
    return ["own", "cublas"] if M <= 64 else ["cublas"]


def _sample(n, k, rng):
    return np.arange(n) if n <= k else np.sort(rng.choice(n, k, replace=False))


# ---- matmul_residual -------------------------------------------------------------------------------------
RES_CASES = [(2, 100, 200), (7, 96, 72), (16, 4096, 4096), (33, 4096, 11008), (128, 12288, 4096),
             (512, 4096, 4096), (16, 8192, 28672), (64, 5120, 13824)]


@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("M,N,K", RES_CASES)
def test_matmul_residual(M, N, K, dtype):
    check_residual(M, N, K, dtype, impls(M))


def check_residual(M, N, K, dtype, impl_list):
    from cugraphllm.gpu import gemm
    rng, seed = rng_seed()
    a, w = dev_random((M, K), dtype, 1.0, seed), dev_random((N, K), dtype, K ** -0.5, seed + 1)
    x0 = dev_random((M, N), "float32", 1.0, seed + 2)
    cols = _sample(N, 512, rng)
    want = host64(x0)[:, cols] + host64(a) @ host64(w[cp.asarray(cols)]).T
    for impl in impl_list:
        x = x0.copy()
        gemm.matmul_residual(x, a, w, impl=impl)
        err = relerr(host64(x)[:, cols], want)
        assert err < TOL_F32, f"{impl} M={M} N={N} K={K} {dtype} seed={seed}: rel err {err:.2e}"


# ---- matmul_silu -----------------------------------------------------------------------------------------
SILU_CASES = [(2, 44, 136), (7, 48, 96), (16, 11008, 4096), (33, 13824, 5120), (128, 11008, 4096),
              (512, 11008, 4096), (16, 28672, 8192)]


@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("M,F,K", SILU_CASES)
def test_matmul_silu(M, F, K, dtype):
    check_silu(M, F, K, dtype, impls(M))


def check_silu(M, F, K, dtype, impl_list):
    from cugraphllm.gpu import gemm
    rng, seed = rng_seed()
    xn, w13 = dev_random((M, K), dtype, 1.0, seed), dev_random((2 * F, K), dtype, 2 * K ** -0.5, seed + 1)
    fs = _sample(F, 512, rng)
    x64 = host64(xn)
    g1 = x64 @ host64(w13[cp.asarray(fs)]).T
    g3 = x64 @ host64(w13[cp.asarray(fs + F)]).T
    want = ref.silu(g1) * g3
    h = cp.empty((M, F), dtype=_np_dtype(dtype))
    for impl in impl_list:
        poison(h)
        gemm.matmul_silu(h, xn, w13, impl=impl)
        assert np.all(np.isfinite(host64(h))), f"{impl}: unwritten h"
        err = relerr(host64(h)[:, fs], want)
        assert err < TOL[dtype], f"{impl} M={M} F={F} K={K} {dtype} seed={seed}: rel err {err:.2e}"


# ---- qkv_rope --------------------------------------------------------------------------------------------
# (M, n_tokens, n_heads, n_kv_heads, head_dim, S, pos)
QKV_CASES = [(2, 1, 3, 1, 32, 64, 0), (7, 6, 2, 1, 20, 64, 3), (7, 5, 4, 2, 24, 600, 1), (16, 10, 32, 32, 128, 1024, 511),
             (33, 30, 4, 2, 32, 100, 80), (128, 100, 40, 40, 128, 4096, 0), (512, 500, 32, 32, 128, 4096, 511),
             (16, 7, 64, 8, 128, 4096, 4090), (64, 64, 64, 8, 128, 4096, 4032), (512, 300, 64, 8, 128, 4096, 3900)]


def _qkv_reference(xn64, wsel, hq, hk, D, kvd, hd, ntok, pos, table):
    """float64 q of heads hq (all M rows, clamped positions) and k/v of kv heads hk (real rows)."""
    M = xn64.shape[0]
    y = xn64 @ wsel.T
    nq, nk = len(hq) * hd, len(hk) * hd
    S = table.shape[0]
    p = np.clip(pos + np.arange(M), 0, S - 1)
    q = ref.apply_rope(y[:, :nq].reshape(M, len(hq), hd), p, table)
    k = ref.apply_rope(y[:, nq:nq + nk].reshape(M, len(hk), hd), p, table)
    v = y[:, nq + nk:].reshape(M, len(hk), hd)
    return q, k, v


@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("M,ntok,H,KVH,hd,S,pos", QKV_CASES)
def test_qkv_rope(M, ntok, H, KVH, hd, S, pos, dtype):
    check_qkv_rope(M, ntok, H, KVH, hd, S, pos, dtype, impls(M))


def check_qkv_rope(M, ntok, H, KVH, hd, S, pos, dtype, impl_list):
    from cugraphllm.gpu import gemm
    rng, seed = rng_seed()
    D, kvd = H * hd, KVH * hd
    xn = dev_random((M, D), dtype, 1.0, seed)
    wqkv = dev_random((D + 2 * kvd, D), dtype, D ** -0.5, seed + 1)
    table = ref.rope_table(S, hd, 10000.0)
    rope = cp.asarray(table.astype(np.float32))
    hq, hk = _sample(H, 6, rng), _sample(KVH, 4, rng)
    rows = np.concatenate([(hq[:, None] * hd + np.arange(hd)).ravel(),
                           D + (hk[:, None] * hd + np.arange(hd)).ravel(),
                           D + kvd + (hk[:, None] * hd + np.arange(hd)).ravel()])
    q_ref, k_ref, v_ref = _qkv_reference(host64(xn), host64(wqkv[cp.asarray(rows)]), hq, hk, D, kvd, hd, ntok,
                                         pos, table.astype(np.float32).astype(np.float64))
    lo, hi = pos, min(pos + ntok, S)          # cache rows that must be written
    pos_d, nt_d = cp.asarray([pos], dtype=cp.int32), cp.asarray([ntok], dtype=cp.int32)
    kc0 = dev_random((S, KVH, hd), dtype, 1.0, seed + 2)
    vc0 = dev_random((S, KVH, hd), dtype, 1.0, seed + 3)
    q = cp.empty((M, D), dtype=_np_dtype(dtype))
    for impl in impl_list:
        kc, vc = kc0.copy(), vc0.copy()
        poison(q)
        kc[lo:hi].view(cp.uint16).fill(NAN_BITS[dtype])
        vc[lo:hi].view(cp.uint16).fill(NAN_BITS[dtype])
        gemm.qkv_rope(q, xn, wqkv, rope, kc, vc, pos_d, nt_d, impl=impl)
        tag = f"{impl} M={M} ntok={ntok} H={H} KVH={KVH} S={S} pos={pos} {dtype} seed={seed}"
        check_qkv(tag, q.reshape(M, H, hd), hq, q_ref, [("k", kc, kc0, k_ref), ("v", vc, vc0, v_ref)], hk, lo, hi,
                  TOL[dtype])


# ---- own-kernel configs (gemm.cu's RT / XS / PF / WS / PR knobs, bench_gemm --tune) ------------------------
# (WM, WK, STAGES, RT, XS[, PF, WS, PR]): RT = 2 row tiles per warp, XS = x ring in shared memory, both, deeper
# rings, an odd WK, the L2 prefetch hint (PF, no effect on results), WS = W through per-warp rings, with XS,
# PR = one-barrier K-group reduction (WK 3, 16 and 2), WS 2-4 = row loads.
KNOB_CONFIGS = [(2, 4, 2, 2, 0), (1, 8, 2, 2, 0), (2, 4, 2, 1, 1), (4, 2, 3, 1, 1), (1, 8, 2, 2, 1), (2, 2, 3, 2, 1),
                (1, 3, 2, 2, 1, 2, 0, 1), (2, 2, 3, 1, 0, 0, 1), (2, 2, 2, 1, 1, 0, 1, 1), (1, 2, 3, 2, 1, 2, 1),
                (2, 16, 2, 1, 0, 0, 0, 1), (2, 4, 2, 1, 0, 1), (2, 2, 2, 1, 0, 2), (1, 8, 2, 1, 0, 0, 0, 1),
                # row loads (WS 2 / 3 / 4: 1 / 2 / 4 whole rows a warp load), RT 2, PF; XS with them is refused
                (1, 4, 2, 1, 0, 0, 2, 1), (2, 2, 2, 1, 0, 0, 2), (1, 8, 2, 1, 0, 2, 3, 1), (2, 2, 2, 2, 0, 0, 3),
                (1, 16, 2, 1, 0, 0, 4, 1), (2, 4, 2, 1, 0, 1, 4), (2, 2, 2, 1, 1, 0, 3)]
# per op: M from 2 to 64 (NT 1, 2, 5, 8), rows not a multiple of 16 * tiles, K not a multiple of 64 (and 11008 =
# 172 chunks, uneven over WK), real 7B / 70B shapes at M = 16
KNOB_CASES = {"residual": [(2, 100, 200), (16, 4096, 4096), (33, 72, 11008), (64, 130, 520)],
              "silu": [(7, 44, 136), (16, 11008, 4096), (64, 40, 264)],
              "qkv": [(7, 5, 4, 2, 24, 600, 1), (16, 10, 32, 32, 128, 1024, 511), (33, 30, 4, 2, 32, 100, 80),
                      (16, 7, 64, 8, 128, 4096, 4090)]}
_KNOB_PARAMS = [(op, c) for op, cases in KNOB_CASES.items() for c in cases]


@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("cfg", KNOB_CONFIGS, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("op,case", _KNOB_PARAMS, ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v)))
def test_own_configs(op, case, cfg, dtype, monkeypatch):
    """impl="own" at a non-default config; one the kernel cannot build (XS ring over 48 KiB at large NT) must
    be refused by the launcher with a BackendError, nothing launched."""
    from cugraphllm.errors import BackendError
    from cugraphllm.gpu import gemm
    nt = (case[0] + 7) // 8
    monkeypatch.setitem(gemm.OWN_CONFIG, (op, nt), cfg)
    check = {"residual": check_residual, "silu": check_silu, "qkv": check_qkv_rope}[op]
    if gemm.own_config_ok(op, gemm.full_config(cfg), nt):
        with pytest.raises(BackendError, match="own config"):
            check(*case, dtype, ["own"])
        return
    check(*case, dtype, ["own"])


def _bitwise_case(op, seed):
    """(call, outputs, reset) of one op at M = 16 with K = 4104 (a partial last chunk), fp16."""
    from cugraphllm.gpu import gemm
    M, K, dt = 16, 4104, "float16"
    xn = dev_random((M, K), dt, 1.0, seed)
    if op == "residual":
        w, x0 = dev_random((200, K), dt, K ** -0.5, seed + 1), dev_random((M, 200), "float32", 1.0, seed + 2)
        x = x0.copy()
        return (lambda: gemm.matmul_residual(x, xn, w, impl="own")), [x], lambda: x.__setitem__(Ellipsis, x0)
    if op == "silu":
        w13, h = dev_random((88, K), dt, 2 * K ** -0.5, seed + 1), cp.empty((M, 44), dt)
        return (lambda: gemm.matmul_silu(h, xn, w13, impl="own")), [h], lambda: poison(h)
    xq = dev_random((M, 96), dt, 1.0, seed)  # qkv: D = K = 96 (4 heads of 24), 2 kv heads
    wqkv, rope = dev_random((192, 96), dt, 96 ** -0.5, seed + 1), cp.asarray(ref.rope_table(64, 24, 1e4), cp.float32)
    q, kc, vc = cp.empty((M, 96), dt), cp.empty((64, 2, 24), dt), cp.empty((64, 2, 24), dt)
    pos, nt = cp.asarray([3], cp.int32), cp.asarray([12], cp.int32)  # cache rows 3..14 written, the rest stay 0

    def reset():
        poison(q)
        kc.fill(0)
        vc.fill(0)
    return (lambda: gemm.qkv_rope(q, xq, wqkv, rope, kc, vc, pos, nt, impl="own")), [q, kc, vc], reset


@pytest.mark.parametrize("cfg", KNOB_CONFIGS, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("op", ["residual", "silu", "qkv"])
def test_own_configs_bitwise(op, cfg, monkeypatch):
    """No knob but the row loads changes an output's summation order (per warp chunks kk, kk + WK, ..., k-steps in
    order; K groups added kk = 0, 1, ...): outputs are bitwise those of the plain config (2, WK, 2) with the same WK.
    Row loads (WS >= 2) give warp kk whole supersteps of 256 / RLR columns (kk, kk + WK, ...), another fixed
    grouping: their outputs are bitwise the same from one launch to the next (test_own_configs checks the values)."""
    from cugraphllm.gpu import gemm
    if gemm.own_config_ok(op, gemm.full_config(cfg), 2):
        pytest.skip("config refused at NT=2 (test_own_configs checks the refusal)")
    call, outs, reset = _bitwise_case(op, int.from_bytes(os.urandom(4), "little"))
    got = []
    for c in ((2, cfg[1], 2) if gemm.full_config(cfg)[6] < 2 else cfg, cfg):
        monkeypatch.setitem(gemm.OWN_CONFIG, (op, 2), c)
        reset()
        call()
        got.append([o.view(cp.uint8).copy() for o in outs])
    assert all(np.all(np.isfinite(host64(o))) for o in outs), f"{op} {cfg}: output not fully written"
    for a, b in zip(*got):
        assert cp.array_equal(a, b), f"{op} {cfg}: differs from (2, {cfg[1]}, 2)"


# ---- capture ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("M", [16, 128])
def test_graph_replay_matches_eager(M):
    """All three ops captured on a non-blocking stream; replay at two positions == eager at those positions."""
    from cugraphllm.gpu import gemm
    dtype, D, H, KVH, hd, F, S = "float16", 512, 8, 4, 64, 688, 256
    kvd = KVH * hd
    seed = int.from_bytes(os.urandom(4), "little")
    s = cp.cuda.Stream(non_blocking=True)
    with s:
        xn = dev_random((M, D), dtype, 1.0, seed)
        wqkv = dev_random((D + 2 * kvd, D), dtype, D ** -0.5, seed + 1)
        w13 = dev_random((2 * F, D), dtype, D ** -0.5, seed + 2)
        w2 = dev_random((D, F), dtype, F ** -0.5, seed + 3)
        rope = cp.asarray(ref.rope_table(S, hd, 10000.0).astype(np.float32))
        x0 = dev_random((M, D), "float32", 1.0, seed + 4)
        kc0, vc0 = dev_random((S, KVH, hd), dtype, 1.0, seed + 5), dev_random((S, KVH, hd), dtype, 1.0, seed + 6)
        bufs = dict(q=cp.empty((M, D), dtype), h=cp.empty((M, F), dtype), x=x0.copy(), kc=kc0.copy(), vc=vc0.copy())
        pos, ntok = cp.zeros(1, cp.int32), cp.asarray([M - 3], cp.int32)
        gemm.prepare(M, max(D + 2 * kvd, 2 * F), dtype)

        def step():
            b = bufs
            gemm.qkv_rope(b["q"], xn, wqkv, rope, b["kc"], b["vc"], pos, ntok)
            gemm.matmul_silu(b["h"], xn, w13)
            gemm.matmul_residual(b["x"], b["h"], w2)

        check_replay(s, step, bufs, dict(x=x0, kc=kc0, vc=vc0), pos, "")


def check_qkv(tag, q, hq, q_ref, caches, hk, lo, hi, tol):
    """The checks of a qkv_rope result: q [M, H, Dh] rows of the real tokens (heads hq) against q_ref; each
    (name, cache, cache before, want) changed only in rows [lo, hi), those written (heads hk) and equal to want."""
    q64 = host64(q)
    assert np.all(np.isfinite(q64)), f"{tag}: q not fully written"
    n_real = hi - lo
    err = relerr(q64[:n_real, hq], q_ref[:n_real])
    assert err < tol, f"{tag}: q rel err {err:.2e}"
    for name, c, c0, want in caches:
        cu, c0u = c.view(cp.uint16).get(), c0.view(cp.uint16).get()
        assert np.array_equal(cu[:lo], c0u[:lo]) and np.array_equal(cu[hi:], c0u[hi:]), \
            f"{tag}: {name} cache touched outside [{lo}, {hi})"
        got = host64(c)[lo:hi]
        assert np.all(np.isfinite(got)), f"{tag}: {name} cache rows not written"
        err = relerr(got[:, hk], want[:n_real])
        assert err < tol, f"{tag}: {name} rel err {err:.2e}"

def check_replay(s, step, bufs, init, pos, tag):
    """Inside `with s`: step() eager at positions 3 and 100, then captured on s and replayed at both: every buffer
    byte-identical. Before each run q and h are poisoned and init's buffers (x, kc, vc) restored."""
    def reset(p):
        for k in ("q", "h"):
            poison(bufs[k])
        for k, v in init.items():
            bufs[k][...] = v
        pos.fill(p)

    results = {}
    for p in (3, 100):
        reset(p)
        step()
        results[p] = {k: v.copy() for k, v in bufs.items()}
    s.begin_capture()
    step()
    graph = s.end_capture()
    for p in (3, 100):
        reset(p)
        graph.launch()
        for k, v in bufs.items():
            assert cp.array_equal(v.view(cp.uint8), results[p][k].view(cp.uint8)), f"{tag}{k} differs at pos {p}"
    s.synchronize()
