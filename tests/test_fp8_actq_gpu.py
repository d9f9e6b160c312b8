"""CUGRAPHLLM_FP8_FUSE_ACTQ (gpu/fp8_actq.py): the fp8 activation quantization fused into its producers must write
exactly what the unfused path writes (gemm_quant.cu quant_act_fp8 on the 16-bit values), bit for bit:
- each fused kernel against its unfused pair on the same input (outputs poisoned first, awkward and 7B shapes,
  with and without a gain, one all-zero row for the scale-1 rule), plus the codes against NumPy's e4m3;
- one layer's ops (norm_qkv_rope, wo, norm_matmul_silu, w2) at switch 0 / 1 / 2 in both products (cuBLASLt's
  outer scaling on / off): x, q and the caches byte-identical; captured and replayed too;
- switch 2's guard: a w2 that cannot take the codes raises instead of reading an unwritten h.
"""
from types import SimpleNamespace

import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.quant import formats

cp = pytest.importorskip("cupy")
from test_gemm_gpu import NAN_BITS, _dtypes, _np_dtype, dev_random, host64, poison, rng_seed  # noqa: E402
from test_quant_prefill_gpu import dev_quant  # noqa: E402

pytestmark = pytest.mark.gpu
NAN_E4M3 = 0x7F
EPS = 1e-5


def _need_fp8():
    from cugraphllm.gpu import cublaslt
    if not cublaslt.fp8_supported():
        pytest.skip("fp8 codes need sm_89+")


def _ref_quant(a, gain):
    """(aq, sa) of the unfused kernel quant_act_fp8 on the 16-bit a, into fresh poisoned arrays."""
    from cugraphllm.gpu import gemm_quant as gq
    M, K = a.shape
    aq, sa = cp.full((M, K), NAN_E4M3, cp.uint8), cp.full(M, np.nan, cp.float32)
    g = gain if gain is not None else sa
    gq._launch("quant_act_fp8", "fp8", a.dtype, (M,), 256,
               (aq, sa, a, g, g, np.int32(K), np.int32(0), np.int32(gain is not None)))
    return aq, sa


def _ws(M, K):
    """gemm_quant's aq / sa workspace views, poisoned."""
    from cugraphllm.gpu import gemm_quant as gq
    aq, sa = gq._view("aq", (M, K), "uint8"), gq._view("sa", (M,), "float32")
    aq.fill(NAN_E4M3)
    sa.fill(np.nan)
    return aq, sa


def _same(tag, got, want):
    g, w = got.view(cp.uint8), want.view(cp.uint8)
    bad = int(cp.count_nonzero(g != w))
    assert bad == 0, f"{tag}: {bad} of {g.size} bytes differ"


def _check_numpy(tag, a, gain, aq, sa):
    """The codes and scales against NumPy's e4m3 of the same float32 values (the documented rule)."""
    v = host64(a).astype(np.float32)
    if gain is not None:
        v = v * gain.get()[None, :]
    amax = np.abs(v).max(axis=1)
    want_sa = np.where(amax > 0, amax / np.float32(448), np.float32(1)).astype(np.float32)
    assert np.array_equal(sa.get(), want_sa), f"{tag}: token scales"
    inv = np.where(amax > 0, np.float32(448) / amax, np.float32(1)).astype(np.float32)
    want = formats.fp8_e4m3_encode_f32((v * inv[:, None]).astype(np.float32))
    assert np.array_equal(aq.get(), want), f"{tag}: codes differ from NumPy's e4m3"


def _input(M, K, dtype, seed):
    """T [M, K] of N(0, 1) values with one all-zero row (scale 1, codes 0) and one row 100x larger."""
    r = dev_random((M, K), "float32", 1.0, seed)
    r[M // 3] = 0
    r[M // 2] *= 100
    if dtype == "bfloat16":  # as dev_random: truncated float32 bits
        return (r.view(cp.uint32) >> 16).astype(cp.uint16).view(_np_dtype(dtype))
    return r.astype(dtype)


def _gain(K, on, seed):
    return cp.random.RandomState(seed).uniform(0.5, 1.5, K, dtype=cp.float32) if on else None


@pytest.fixture
def fuse(monkeypatch):
    from cugraphllm.gpu import fp8_actq

    def set_mode(m):
        monkeypatch.setenv("CUGRAPHLLM_FP8_FUSE_ACTQ", str(m))
    fp8_actq.forget()
    yield set_mode
    fp8_actq.forget()


# ---- kernel against kernel -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("gain_on", [False, True], ids=["nogain", "gain"])
@pytest.mark.parametrize("M,K", [(37, 400), (3, 104), (512, 4096), (512, 11008)])
def test_quant_v_equals_quant_act_fp8(M, K, gain_on, dtype, fuse):
    from cugraphllm.gpu import fp8_actq
    _need_fp8()
    fuse(1)
    _, seed = rng_seed()
    a, gain = _input(M, K, dtype, seed), _gain(K, gain_on, seed + 1)
    want_q, want_s = _ref_quant(a, gain)
    aq, sa = _ws(M, K)
    w = SimpleNamespace(perm=None, gain=gain)
    assert fp8_actq.quant(a, w, aq, sa)
    tag = f"M={M} K={K} gain={gain_on} {dtype} seed={seed}"
    _same(tag + " aq", aq, want_q)
    _same(tag + " sa", sa, want_s)
    _check_numpy(tag, a, gain, aq, sa)


@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("gain_on", [False, True], ids=["nogain", "gain"])
@pytest.mark.parametrize("M,D,op", [(37, 400, "silu"), (512, 4096, "qkv"), (40, 8192, "silu")])
def test_norm_fp8_equals_rmsnorm_then_quant(M, D, op, gain_on, dtype, fuse):
    from cugraphllm.gpu import fp8_actq, ops
    _need_fp8()
    fuse(1)
    _, seed = rng_seed()
    x = dev_random((M, D), "float32", 3.0, seed)
    x[M // 3] = 0
    w = dev_quant("fp8", 2 * D if op == "silu" else 3 * D, D, seed + 1)
    w.gain = _gain(D, gain_on, seed + 2)
    xn = cp.empty((M, D), _np_dtype(dtype))
    ops.rmsnorm(xn, x, None, EPS)
    want_q, want_s = _ref_quant(xn, w.gain)
    got_xn = cp.empty_like(xn)
    poison(got_xn)
    aq, sa = _ws(M, D)
    assert fp8_actq.norm(SimpleNamespace(x=x, xn=got_xn), EPS, w, op)
    tag = f"M={M} D={D} gain={gain_on} {dtype} seed={seed}"
    _same(tag + " aq", aq, want_q)
    _same(tag + " sa", sa, want_s)
    assert int(cp.count_nonzero(got_xn.view(cp.uint16) != NAN_BITS[dtype])) == 0, f"{tag}: xn was written"
    _check_numpy(tag, xn, w.gain, aq, sa)
    assert fp8_actq.take(got_xn, w) and not fp8_actq.take(got_xn, w), "hand-off not offered once"


def _silu_inputs(M, F, scaled, dtype, seed):
    """(src, sa_in, sw): g T [M, 2F], or d f32 [M, 2F] with w13's token scales and row scales."""
    if scaled:
        return dev_random((M, 2 * F), dtype, 2.0, seed), None, None
    rs = cp.random.RandomState(seed + 1)
    d = dev_random((M, 2 * F), "float32", 200.0, seed)
    return d, rs.uniform(0.5, 2.0, M, dtype=cp.float32) / np.float32(64), rs.uniform(0.5, 2.0, 2 * F, dtype=cp.float32)


def _silu_unfused(h, src, sa_in, sw, F):
    from cugraphllm.gpu import gemm
    from cugraphllm.gpu import gemm_quant as gq
    M = h.shape[0]
    if sa_in is None:
        gemm._epi_launch("silu_mul_rows", h.dtype, M, F, (h, src, np.int32(F), np.int32(F % 8 == 0)))
    else:
        gq._launch("w8a8_silu_rows", "fp8", h.dtype, ((F + 255) // 256, M), 256, (h, src, sa_in, sw, np.int32(F)))


@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("scaled", [True, False], ids=["T", "f32"])
@pytest.mark.parametrize("mode", [1, 2])
@pytest.mark.parametrize("M,F", [(37, 104), (48, 1000), (512, 11008)])
def test_silu_quant_equals_epilogue_then_quant(M, F, mode, scaled, dtype, fuse):
    from cugraphllm.gpu import fp8_actq
    from cugraphllm.gpu import gemm_quant as gq
    _need_fp8()
    fuse(mode)
    _, seed = rng_seed()
    D = 4096
    src, sa_in, sw = _silu_inputs(M, F, scaled, dtype, seed)
    h_ref = cp.empty((M, F), _np_dtype(dtype))
    poison(h_ref)
    _silu_unfused(h_ref, src, sa_in, sw, F)
    want_q, want_s = _ref_quant(h_ref, None)
    h = cp.empty_like(h_ref)
    poison(h)
    aq, sa = _ws(M, F)
    if sa_in is not None:
        sa[...] = sa_in  # w13's token scales, overwritten in place with w2's
    w13 = SimpleNamespace(shape=(2 * F, D), scales=sw)
    assert fp8_actq.silu(h, src, sa, w13, scaled)
    tag = f"mode={mode} M={M} F={F} scaled={scaled} {dtype} seed={seed}"
    _same(tag + " aq", gq._view("aq", (M, F), "uint8"), want_q)
    _same(tag + " sa", sa, want_s)
    skip_h = mode == 2 and F % 16 == 0 and M > gq.AUTO_OWN_MAX_M["residual"]
    if skip_h:
        assert int(cp.count_nonzero(h.view(cp.uint16) != NAN_BITS[dtype])) == 0, f"{tag}: h was written"
    else:
        _same(tag + " h", h, h_ref)
    _check_numpy(tag, h_ref, None, gq._view("aq", (M, F), "uint8"), sa)
    assert fp8_actq.take(h, SimpleNamespace(perm=None, gain=None)), "hand-off not offered"


# ---- one layer's ops at every switch value -----------------------------------------------------------------------
_CFGS = {"awkward": (400, 5, 5, 80, 1008), "7b": (4096, 32, 32, 128, 11008)}  # D, H, KVH, hd, F


def _layer(cfg, M, dtype, seed, extras):
    D, H, KVH, hd, F = _CFGS[cfg]
    kvd, S = KVH * hd, 1024
    w = dict(wqkv=dev_quant("fp8", D + 2 * kvd, D, seed), wo=dev_quant("fp8", D, D, seed + 1),
             w13=dev_quant("fp8", 2 * F, D, seed + 2), w2=dev_quant("fp8", D, F, seed + 3))
    if extras == "gain":  # gain only (the norm fuses with it; w2's codes cannot carry it: requantized)
        for k in w:
            w[k].gain = _gain(w[k].shape[1], True, seed + 10)
    elif extras == "perm":  # perm and gain on every matrix: nothing fuses except the SiLU*up codes, not taken
        for k in w:
            w[k] = dev_quant("fp8", *w[k].shape, seed + 20 + len(k), True)
    data = dict(x=dev_random((M, D), "float32", 1.0, seed + 4), att=dev_random((M, D), dtype, 1.0, seed + 5),
                kc=dev_random((S, KVH, hd), dtype, 1.0, seed + 6), vc=dev_random((S, KVH, hd), dtype, 1.0, seed + 7),
                rope=cp.asarray(ref.rope_table(S, hd, 10000.0).astype(np.float32)))
    return w, data, (D, F, S, hd)


def _fresh(data, dims, M, dtype, pos):
    """Outputs of one layer run: x, caches copied from data, q and h poisoned; the residual stream; pos / count."""
    from cugraphllm.gpu.state import Residual
    D, F, S, hd = dims
    out = dict(x=data["x"].copy(), kc=data["kc"].copy(), vc=data["vc"].copy(),
               q=cp.empty((M, D), _np_dtype(dtype)), h=cp.empty((M, F), _np_dtype(dtype)))
    poison(out["q"])
    poison(out["h"])
    r = Residual(out["x"], cp.empty((M, D), _np_dtype(dtype)))
    return out, r, cp.asarray([pos], cp.int32), cp.asarray([M - 3], cp.int32)


def _step(w, data, out, r, p, n):
    """One layer of gpu/model.py forward, attention replaced by the fixed att (no allocation: capturable)."""
    from cugraphllm.gpu import ops
    ops.norm_qkv_rope(out["q"], r, EPS, w["wqkv"], data["rope"], out["kc"], out["vc"], p, n)
    ops.matmul_residual(r, data["att"], w["wo"])
    ops.norm_matmul_silu(out["h"], r, EPS, w["w13"])
    ops.matmul_residual(r, out["h"], w["w2"])


def _run_layer(w, data, dims, M, dtype, pos):
    out, r, p, n = _fresh(data, dims, M, dtype, pos)
    _step(w, data, out, r, p, n)
    return out


@pytest.mark.parametrize("outer", ["outer0", "outer1"])
@pytest.mark.parametrize("cfg,M,dtype,extras", [("awkward", 37, "float16", "none"), ("awkward", 48, "bfloat16", "gain"),
                                                ("awkward", 40, "float16", "perm"), ("7b", 512, "float16", "none"),
                                                ("7b", 128, "bfloat16", "none")])
def test_layer_bitwise_at_every_switch(cfg, M, dtype, extras, outer, fuse, monkeypatch):
    _need_fp8()
    if dtype not in _dtypes():
        pytest.skip("no bfloat16 (ml_dtypes)")
    monkeypatch.setenv("CUGRAPHLLM_FP8_OUTER_SCALE", "1" if outer == "outer1" else "0")
    monkeypatch.setenv("CUGRAPHLLM_FP8_OUTER_MIN_ROWS", "0")
    _, seed = rng_seed()
    w, data, dims = _layer(cfg, M, dtype, seed, extras)
    fuse(0)
    want = _run_layer(w, data, dims, M, dtype, 7)
    assert np.all(np.isfinite(host64(want["x"]))), "layer output not finite"
    for mode in (1, 2) if extras == "none" else (1,):  # 2 with a gain / perm on w2: the guard test below
        fuse(mode)
        got = _run_layer(w, data, dims, M, dtype, 7)
        for k in ("x", "q", "kc", "vc") + (("h",) if mode == 1 else ()):
            _same(f"{cfg} M={M} {dtype} {extras} {outer} mode={mode} seed={seed} {k}", got[k], want[k])


def test_switch2_refuses_unwritten_h(fuse):
    """Switch 2 leaves h unwritten; a w2 with perm / gain cannot take the codes: the product raises."""
    from cugraphllm.errors import BackendError
    _need_fp8()
    _, seed = rng_seed()
    w, data, dims = _layer("awkward", 48, "float16", seed, "none")
    w["w2"] = dev_quant("fp8", *w["w2"].shape, seed + 30, True)
    fuse(2)
    with pytest.raises(BackendError, match="unwritten"):
        _run_layer(w, data, dims, 48, "float16", 7)


def test_graph_replay_switch2_matches_eager_switch0(fuse):
    """The layer captured under switch 2 (hand-offs decided at capture) replays to switch 0's eager bytes."""
    from cugraphllm.gpu import gemm_quant
    from cugraphllm.config import ModelConfig
    _need_fp8()
    _, seed = rng_seed()
    M, dtype = 64, "float16"
    s = cp.cuda.Stream(non_blocking=True)
    with s:
        w, data, dims = _layer("awkward", M, dtype, seed, "none")
        D, F, S, hd = dims
        cfg = ModelConfig(dim=D, n_layers=1, n_heads=5, n_kv_heads=5, vocab_size=64, hidden_dim=F, max_seq_len=S)
        gemm_quant.allocate(cfg, "fp8", M, dtype)
        gemm_quant.warmup("fp8", dtype, [M], [w[k].shape for k in w])
        fuse(0)
        want = _run_layer(w, data, dims, M, dtype, 100)
        fuse(2)
        _run_layer(w, data, dims, M, dtype, 100)  # eager first: nothing compiles or tunes inside the capture
        out, r, p, n = _fresh(data, dims, M, dtype, 100)
        s.begin_capture()
        _step(w, data, out, r, p, n)
        graph = s.end_capture()
        for k in ("x", "kc", "vc"):
            out[k][...] = data[k]
        poison(out["q"])
        graph.launch()
        s.synchronize()
    for k in ("x", "q", "kc", "vc"):
        _same(f"graph seed={seed} {k}", out[k], want[k])
