"""The int4 decode GEMVs at exactly the shapes, paths and weight layout that tests/test_tp_gpu.py's
test_tp2_quantized_logits_within_tolerance_of_tp1[int4-load] runs, on ONE GPU (the prologue merge 0a29a4d made
that test fail: TP2 decode logits 5-10% from TP1; every kernel it launches is here, with a float64 reference).

int4 at load, group 128: no perm and no gain (the norm gain is folded before quantizing), fp16 activations, the
default plan (gemv_plan.QUANT_PLANS["int4"]: tiles from 6144 row pairs, the half2 path below). Per GPU:
- TP2 (h2 path unless noted): wqkv + norm + RoPE [6144, 4096] (3072 pairs, ksplit 2), w13 + norm + SiLU
  [11008, 4096] (5504 pairs), the wo / w2 partial products through the logits kernel (N 4096, K 2048: fewer
  chunks than threads; K 5504: 688 chunks, past the kept ones), the LM head + norm [16000, 4096] (tiles, 8 warps);
- TP1: wqkv (6144 pairs) and w13 (11008) on the tiles, wo / w2 residual + ss on h2 (K 4096 / 11008), LM head
  [32000, 4096] (tiles, 16 warps).
The chained test runs the step's order (w13 + norm reads xn / ss, the w2 residual update rewrites x / xn / ss,
optionally with 4 looping blocks like TP2's 4-block all-reduce, then the fused-norm GEMV under test), nothing but
PDL between them, several times from the same state: bit-identical, and within tolerance of the float64
reference of the x actually produced. The engine tests at the end run the TP1 / TP2 engines of the TP test
against the NumPy engine, to tell which side is off.
"""
import dataclasses

import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu import gemv_plan
from cugraphllm.gpu.state import Residual
from kernel_helpers import TOL_T, host64, poison, produced_x, rand_t, rel_err, twice
from quant_helpers import TOL_H2, deq_matvec, make_layer

pytestmark = pytest.mark.gpu
EPS, G, T, S = 1e-5, 128, "float16", 256
D, H, HD = 4096, 32, 128


def _norm64(x):
    return ref.rmsnorm(host64(x)[0], np.ones(x.shape[1]), EPS)


_layers: dict = {}


def layer(cp, N, K, seed):
    """(host, device) int4 layer [N, K] as quantized at load (no perm, no gain), made once per shape."""
    if (N, K) not in _layers:
        _layers[(N, K)] = make_layer(cp, N, K, "int4", seed=seed, group_size=G, perm=False, gain=False)
    return _layers[(N, K)]


def _path(pairs):
    p = gemv_plan.plan_for("int4")
    return "tiles" if p.use_mma(pairs) else ("h2" if p.hacc else "f32")


def run_qkv(cp, ops, r, heads, before):
    """norm_qkv_rope of `heads` query and KV heads (hd 128) on the fused norm of r, twice (before() right ahead of
    each launch); [(got, want)] for q, the K row and the V row."""
    Dq = heads * HD
    host, w = layer(cp, 3 * Dq, D, seed=Dq)
    table = ref.rope_table(S, HD, 10000.0)
    rope, pos = cp.asarray(table.astype(np.float32)), 37
    kc, vc = rand_t(cp, (S, heads, HD), T, seed=1), rand_t(cp, (S, heads, HD), T, seed=2)
    rows = []

    def run(q):
        before()
        ops.norm_qkv_rope(q, r, EPS, w, rope, kc, vc, cp.asarray([pos], dtype=cp.int32), cp.ones(1, cp.int32))
        rows.append((kc[pos].copy(), vc[pos].copy()))
    q = twice(cp, run, (1, Dq), cp.float16)
    assert all(cp.array_equal(a, b) for a, b in zip(rows[0], rows[1])), "K / V rows not deterministic"
    y = deq_matvec(host, _norm64(r.x))
    qr = ref.apply_rope(y[:Dq].reshape(1, heads, HD), np.array([pos]), table).reshape(Dq)
    kr = ref.apply_rope(y[Dq:2 * Dq].reshape(1, heads, HD), np.array([pos]), table).reshape(Dq)
    return [(host64(q)[0], qr), (host64(kc[pos]).reshape(Dq), kr), (host64(vc[pos]).reshape(Dq), y[2 * Dq:])]


def run_silu(cp, ops, r, F, before):
    host, w = layer(cp, 2 * F, D, seed=F)

    def run(h):
        before()
        ops.norm_matmul_silu(h, r, EPS, w)
    h = twice(cp, run, (1, F), cp.float16)
    y = deq_matvec(host, _norm64(r.x))
    return [(host64(h)[0], ref.silu(y[:F]) * y[F:])]


def run_head(cp, ops, r, V, before):
    host, w = layer(cp, V, D, seed=V)
    n = cp.ones(1, cp.int32)

    def run(out):
        before()
        ops.norm_matmul_logits(out, r, EPS, w, n)
    out = twice(cp, run, (1, V), cp.float32)
    return [(out.get()[0].astype(np.float64), deq_matvec(host, _norm64(r.x)))]


def _pairs(what, size):
    return {run_qkv: 3 * size * HD // 2, run_silu: size, run_head: size // 2}[what]


# (name, op, size): size = query / KV heads of wqkv, F of w13, V of the LM head
FUSED = [("tp2_wqkv", run_qkv, 16), ("tp2_w13", run_silu, 5504), ("tp2_head", run_head, 16000),
         ("tp1_wqkv", run_qkv, 32), ("tp1_w13", run_silu, 11008), ("tp1_head", run_head, 32000)]


@pytest.mark.parametrize("name,what,size", FUSED, ids=[f[0] for f in FUSED])
def test_fused_norm_gemv_at_tp_shapes(cp, ops, name, what, size):
    """Each fused-norm GEMV of the TP1 / TP2 engines, x, xn, ss as the decode embedding writes them."""
    x, xn, ss = produced_x(cp, ops, D, T, seed=size)
    for got, want in what(cp, ops, Residual(x, xn, ss), size, lambda: None):
        err = rel_err(got, want)
        assert err < TOL_T[T], f"{name} ({_path(_pairs(what, size))} path): rel err {err:.2e}"


@pytest.mark.parametrize("K", [2048, 5504, 4096, 11008])
def test_partial_product_gemv_at_tp_shapes(cp, ops, K):
    """The wo / w2 products (N 4096: 2048 row pairs, the h2 path): TP2's partial p = a @ w.T through the logits
    kernel (K 2048: fewer chunks than threads; 5504: past the kept chunks), TP1's residual update with xn and ss
    (K 4096 / 11008)."""
    from cugraphllm.gpu.ops import norm_chunk
    host, w = layer(cp, D, K, seed=K)
    a = rand_t(cp, (1, K), T, seed=K + 1)
    want = deq_matvec(host, host64(a)[0])
    p = poison(cp, (1, D), cp.float32)
    ops.matmul_logits(p, a, w)
    assert rel_err(p.get()[0], want) < TOL_H2, f"partial product, K {K}"
    x0, _, _ = produced_x(cp, ops, D, T, seed=K)
    x, xn, ss = x0.copy(), poison(cp, (1, D), cp.float16), poison(cp, ((D + 1) // 2,), cp.float32)
    ops.matmul_residual(Residual(x, xn, ss), a, w)
    x64 = host64(x)[0]
    assert rel_err(x64 - host64(x0)[0], want) < TOL_H2, f"residual update, K {K}"
    assert cp.array_equal(xn, x.astype(cp.float16))
    c = norm_chunk(D)
    ss_ref = np.array([np.sum(x64[i:i + c] ** 2) for i in range(0, D, c)])
    assert rel_err(host64(ss[:D // c]), ss_ref) < 1e-5


CHAINS = [("tp2_wqkv", run_qkv, 16), ("tp2_w13", run_silu, 5504), ("tp2_head", run_head, 16000),
          ("tp1_wqkv", run_qkv, 32), ("tp1_w13", run_silu, 11008), ("tp1_head", run_head, 32000)]


@pytest.mark.parametrize("blocks", [0, 4], ids=["full-grid", "4-blocks"])
@pytest.mark.parametrize("name,what,size", CHAINS, ids=[c[0] for c in CHAINS])
def test_engine_order_chain(cp, ops, name, what, size, blocks):
    """The decode step's order with nothing between the kernels but PDL: w13 + norm + SiLU reads x's xn / ss,
    the w2 residual update (K 5504; 4 looping blocks: as narrow and long-running as TP2's 4-block all-reduce,
    so the next GEMV's blocks wait in griddepcontrol.wait meanwhile) rewrites x, xn and ss, and the fused-norm GEMV
    under test reads them; six times from the same state (restored by plain copies, ahead of the PDL chain):
    bit-identical each time and within tolerance of the float64 reference of the x actually produced."""
    F = 5504
    _, w13 = layer(cp, 2 * F, D, seed=F)
    _, w2 = layer(cp, D, F, seed=F)
    x0, xn0, ss0 = produced_x(cp, ops, D, T, seed=7)
    x, xn, ss, h = x0.copy(), xn0.copy(), ss0.copy(), poison(cp, (1, F), cp.float16)
    plan = gemv_plan.QUANT_PLANS["int4"]
    narrow = dataclasses.replace(plan, max_blocks=blocks)

    def step():  # after the output's poisoning; the copies are plain kernels, the GEMVs PDL launches
        x[...], xn[...], ss[...] = x0, xn0, ss0
        ops.norm_matmul_silu(h, Residual(x, xn, ss), EPS, w13)
        gemv_plan.QUANT_PLANS["int4"] = narrow
        try:
            ops.matmul_residual(Residual(x, xn, ss), h, w2)
        finally:
            gemv_plan.QUANT_PLANS["int4"] = plan
    runs = [what(cp, ops, Residual(x, xn, ss), size, step) for _ in range(3)]
    assert bool(cp.isfinite(h).all()) and not cp.array_equal(x, x0)
    for got in runs[1:]:
        assert all(np.array_equal(g, g0) for (g, _), (g0, _) in zip(got, runs[0])), f"{name}: not deterministic"
    for got, want in runs[0]:
        err = rel_err(got, want)
        assert err < TOL_T[T], f"{name} after the producer ({blocks or 'all'} blocks): rel err {err:.2e}"


def _engine_errs(tp):
    """Per-decode-step logits rel errs of the TP1 / TP2 engine of test_tp2_quantized_logits_within_tolerance_of_tp1
    [int4-load] (same config, weights and runtime) against the NumPy engine on the host-quantized, norm-folded
    weights; decode steps from position 0. Skips below `tp` GPUs. The engine is built here, so plan / PDL
    monkeypatches made before the call apply to every kernel it compiles."""
    from cugraphllm.config import ModelConfig, RuntimeConfig
    from cugraphllm.loader import dummy_weights
    from cugraphllm.reference import NumpyEngine
    from kernel_helpers import gpu_count
    from test_engine_gpu import _step_logits
    from test_quant_engine_gpu import folded_reference
    if gpu_count() < tp:
        pytest.skip(f"needs {tp} CUDA GPUs")
    cfg = ModelConfig(dim=D, n_layers=2, n_heads=H, n_kv_heads=H, vocab_size=32000, hidden_dim=11008, max_seq_len=256)
    rng = np.random.default_rng(4)
    w = dummy_weights(cfg, seed=11, dtype="float16")
    for lw in w.layers:
        lw.attention_norm[:] = 1 + 0.2 * rng.standard_normal(cfg.dim)
    rc = RuntimeConfig(backend="cuda", mode="hybrid", max_seq_len=128, quant="int4", group_size=G, quant_head=True)
    if tp == 1:
        from cugraphllm.gpu.engine import CudaEngine
        eng = CudaEngine(cfg, w, rc)
    else:
        from cugraphllm.gpu.tp_engine import TPEngine
        eng = TPEngine(cfg, w, dataclasses.replace(rc, tp=2))
    try:
        eng.wait_ready()
        return _step_logits(eng, NumpyEngine(cfg, folded_reference(w, "int4"), max_seq_len=128),
                            rng.integers(3, cfg.vocab_size, 6).tolist())
    finally:
        if tp == 2:
            eng.close()


@pytest.mark.parametrize("tp", [1, 2], ids=["tp1", "tp2"])
def test_int4_at_load_7b_width_engine_matches_numpy(tp):
    """The TP1 / TP2 engines each against the NumPy engine: tells which side of a TP1 / TP2 mismatch is off; the
    engine tests' fp16 tolerance."""
    errs = _engine_errs(tp)
    assert errs.max() < 2e-2, errs


@dataclasses.dataclass(frozen=True)
class _VariantPlan(gemv_plan.QuantPlan):
    """A quantized plan whose tiles run only where `tiles(n_pairs)` is true (None: the plan's own rule), with at
    most `head_warps` warps (0: the rule's) on the tiles of >= 16000 row pairs (the TP1 LM head; 16 by the rule)."""
    tiles: object = None
    head_warps: int = 0

    def use_mma(self, n_pairs: int, kernel: str | None = None, K: int | None = None) -> bool:
        return super().use_mma(n_pairs, kernel, K) if self.tiles is None else bool(self.mma) and self.tiles(n_pairs)

    def mma_config(self, n_pairs: int) -> tuple[int, int, int]:
        warps, unroll, ms = super().mma_config(n_pairs)
        if self.head_warps and n_pairs >= 16000:
            warps = min(warps, self.head_warps)
        return warps, unroll, min(ms, warps)


def _int4_variant(**kw):
    base = gemv_plan.QUANT_PLANS["int4"]
    return _VariantPlan(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)}, **kw)


# TP1 int4 row pairs: wqkv 6144, w13 11008, LM head 16000 (wo / w2: 2048, on the tiles through mma_shapes unless a
# variant's `tiles` says otherwise)
TP1_VARIANTS = {
    "pdl-off": None,
    "head-tiles-only": lambda: dataclasses.replace(gemv_plan.QUANT_PLANS["int4"], mma_min_pairs=12000),
    "no-head-tiles": lambda: _int4_variant(tiles=lambda n: 6144 <= n < 16000),
    "head-8-warps": lambda: _int4_variant(head_warps=8),
    "wqkv-only-tiles": lambda: _int4_variant(tiles=lambda n: n == 6144),
}


@pytest.mark.parametrize("variant", list(TP1_VARIANTS))
def test_tp1_int4_engine_variants(monkeypatch, variant):
    """The TP1 engine against the NumPy engine (it fails by default: 6-11% from the first step) with PDL off, or
    the tensor-core tiles on only some of wqkv / w13 / the LM head, or the head's tiles at 8 warps (256-thread
    blocks) instead of 16: which variants pass says which tiled GEMV, next to PDL, is at fault."""
    from cugraphllm.gpu import pdl
    if TP1_VARIANTS[variant] is None:
        monkeypatch.setattr(pdl, "PDL", False)
    else:
        monkeypatch.setitem(gemv_plan.QUANT_PLANS, "int4", TP1_VARIANTS[variant]())
    plan = gemv_plan.plan_for("int4")
    paths = {n: plan.gemv_config("qgemv", D, p) if plan.use_mma(p) else "rows"
             for n, p in (("wqkv", 6144), ("w13", 11008), ("head", 16000))}
    errs = _engine_errs(1)
    assert np.isfinite(errs).all() and errs.max() < 2e-2, f"{variant} (tiles (warps, unroll, ms): {paths}): {errs}"


VARIANTS = {"pdl-off": None, "no-tiles": dict(mma=0), "f32-rows": dict(hacc=0, mma=0)}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_tp2_int4_within_tolerance_of_tp1_variants(monkeypatch, variant):
    """test_tp_gpu's int4-load TP1 / TP2 comparison (decode steps) with PDL off, or with every int4 GEMV kept off
    the tensor-core tiles (half2 rows) or on the fp32 rows: where the default fails, which of these pass says
    whether the kernel order (PDL) or a staging path is at fault."""
    from cugraphllm.config import ModelConfig
    from cugraphllm.gpu import pdl
    from cugraphllm.loader import dummy_weights
    from kernel_helpers import gpu_count
    from test_tp_gpu import _pair, _step_logits
    if gpu_count() < 2:
        pytest.skip("needs 2 CUDA GPUs")
    if VARIANTS[variant] is None:
        monkeypatch.setattr(pdl, "PDL", False)
    else:
        monkeypatch.setitem(gemv_plan.QUANT_PLANS, "int4",
                            dataclasses.replace(gemv_plan.QUANT_PLANS["int4"], **VARIANTS[variant]))
    cfg = ModelConfig(dim=D, n_layers=2, n_heads=H, n_kv_heads=H, vocab_size=32000, hidden_dim=11008, max_seq_len=256)
    rng = np.random.default_rng(4)
    w = dummy_weights(cfg, seed=11, dtype="float16")
    for lw in w.layers:
        lw.attention_norm[:] = 1 + 0.2 * rng.standard_normal(cfg.dim)
    one, two = _pair(cfg, w, "hybrid", max_seq_len=128, quant="int4", group_size=G, quant_head=True)
    try:
        tokens = rng.integers(3, cfg.vocab_size, 6).tolist()
        a, b = _step_logits(one, tokens), _step_logits(two, tokens)
    finally:
        two.close()
    errs = [np.linalg.norm(x - y) / np.linalg.norm(x) for x, y in zip(a, b)]
    assert all(np.isfinite(e) for e in errs) and max(errs) < 1e-2, errs
