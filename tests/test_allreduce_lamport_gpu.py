"""The two peer-access protocols of gpu/allreduce.py against each other on 2 GPUs with peer access (skipped
otherwise; tests/test_allreduce_gpu.py runs its tests on each protocol alone): lamport (kernels/allreduce_lamport.cu,
values as flags) sums bit-identical to custom (allreduce.cu, flags) on random inputs of awkward sizes and D = 4096 /
5120 / 8192, vector and scalar paths, with -0.0, +0.0 and inputs whose bits are lamport's sentinel among them, and
within one rounding of the float64 sum; all-gathers identical but for the sentinel's bits (a NaN either way); the fused
residual update bit-identical; and lamport's buffers after a run of calls across the wrap of the call counter hold
the sentinel everywhere but in the last call's generation, which holds exactly the peer's values.

Above the decode cap (ar_lamport_wide, buffers sized for a 70B TP2 prefill, 512 x 8192 f32 per rank, on grids of 64,
128, 512 and 1024 blocks): prefill-size all-reduces (128 x 8192, 512 x 4096, 512 x 8192 = the cap, 3 * 65536 + 1000, and
scalar-path sizes: n % 4 != 0, a 4-byte offset) mixed with decode ones, in and out of place, the rank-order f32 sum
bit for bit; the buffers afterwards hold only each block's last first-chunk values (later chunks all reset after
read); and TP2 engines at 70B and 7B widths whose every collective is lamport's (no NCCL call at all) give the NCCL
engine's logits and greedy tokens bit for bit after prompts of 17, 37 and 300 tokens (f32 partial sums,
CUGRAPHLLM_ALLREDUCE_T16=0), and within the rounding of 16-bit partial sums with the default. The packed prefill
update (16-bit partial sums, fp16 and bf16, launch_packed): x + the rank-order f32 sum of the widened values bit for
bit on both GPUs, between f32 calls on the same generations.

    python3 -m pytest -q tests/test_allreduce_lamport_gpu.py     # 2 GPUs with peer access
"""
import os

import numpy as np
import pytest

from cugraphllm.config import ModelConfig, RuntimeConfig
from cugraphllm.sampling import SamplingParams
from kernel_helpers import gpu_count
from peer_helpers import (launch_both, lone_rank_trap_seconds, on as _on, residual_on_both, sync_both as _sync,
                          two_streams)

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(gpu_count() < 2, reason="needs 2 CUDA GPUs")]
SIZES = [1, 3, 5, 1023, 1025, 4096, 5120, 8192, 12347, 65536]
QNAN = 0x7FFFFFFF
CAP, WIDE_CAP = 65536, 512 * 8192  # the decode cap; the 70B TP2 prefill residual per rank


@pytest.fixture(scope="module")
def both():
    from cugraphllm.gpu import allreduce as ar
    if not ar.peer_access([0, 1]):
        pytest.skip("GPUs 0 and 1 have no peer access")
    pbs = {p: ar.PeerBuffers([0, 1], p) for p in ar.PROTOCOLS}
    streams = two_streams()
    yield pbs, streams
    _sync()


def _inputs(rng, n, sentinel=True):
    """Two ranks' f32 inputs of mixed magnitudes and signs; -0.0 / +0.0 in either or both ranks and (sentinel) a few
    elements with the bits 0xFFFFFFFF."""
    from cugraphllm.gpu.allreduce import EMPTY
    a = [(rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3, n)).astype(np.float32) for _ in range(2)]
    for i in range(0, n, 61):
        a[i % 2][i], a[1 - i % 2][i] = np.float32(-0.0), np.float32((-0.0, 0.0, 2.5)[i % 3])
    if sentinel:
        for i in range(30, n, 1009):
            a[i % 2].view(np.uint32)[i] = EMPTY
    return a


def _collect(pbs, streams, a, n, gather, off):
    """{protocol: [rank 0's out, rank 1's out]} of one call on fresh copies (off: a 4-byte offset, scalar path)."""
    import cupy as cp
    out = {}
    for name, pb in pbs.items():
        def put(r):
            src = cp.asarray(np.concatenate([np.zeros(off, np.float32), a[r]]))[off:]
            return src, cp.full(n * (2 if gather else 1) + off, np.nan, cp.float32)[off:]
        bufs = [_on(r, lambda: put(r)) for r in (0, 1)]
        launch_both(pb, streams, [b[0] for b in bufs], [b[1] for b in bufs], n, gather)
        out[name] = [_on(r, lambda: bufs[r][1].get()) for r in (0, 1)]
    return out


@pytest.mark.parametrize("aligned", [True, False], ids=["vec", "scalar"])
def test_lamport_equals_custom_bit_for_bit(both, aligned):
    from cugraphllm.gpu.allreduce import EMPTY
    pbs, streams = both
    rng = np.random.default_rng(21 + aligned)
    for n in SIZES + rng.integers(2, 65536, 3).tolist():
        a = _inputs(rng, n)
        odd = (a[0].view(np.uint32) == EMPTY) | (a[1].view(np.uint32) == EMPTY)
        s = _collect(pbs, streams, a, n, False, 0 if aligned else 1)
        for name, (g0, g1) in s.items():
            assert np.array_equal(g0.view(np.uint32), g1.view(np.uint32)), (name, n)  # the same on both GPUs
        lp, fl = s["lamport"][0], s["custom"][0]
        assert np.array_equal(np.isnan(lp), odd) and np.array_equal(np.isnan(fl), odd), n  # NaN only there
        assert np.array_equal(lp[~odd].view(np.uint32), fl[~odd].view(np.uint32)), n  # -0.0 sums included
        want = (a[0] + a[1])[~odd]
        assert np.array_equal(lp[~odd].view(np.uint32), want.view(np.uint32)), n  # the f32 sum, rank order
        ref = a[0][~odd].astype(np.float64) + a[1][~odd].astype(np.float64)
        assert np.all(np.abs(lp[~odd] - ref) <= 2.0 ** -24 * (np.abs(a[0][~odd]) + np.abs(a[1][~odd]))), n
        g = _collect(pbs, streams, a, n, True, 0 if aligned else 1)
        cat = np.concatenate(a).view(np.uint32)
        for r in (0, 1):
            assert np.array_equal(g["custom"][r].view(np.uint32), cat), n
            assert np.array_equal(g["lamport"][r].view(np.uint32), np.where(cat == EMPTY, QNAN, cat)), n


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_fused_residual_lamport_equals_custom(both, dtype):
    import ml_dtypes
    from cugraphllm.gpu.ops import norm_chunk
    pbs, streams = both
    T = np.float16 if dtype == "float16" else ml_dtypes.bfloat16
    rng = np.random.default_rng(7 + len(dtype))
    for D in (4096, 5120, 8192, 4100):
        C = norm_chunk(D)
        x = rng.standard_normal(D).astype(np.float32)
        p = [0.1 * v for v in _inputs(rng, D, sentinel=False)]
        got = {}
        for name, pb in pbs.items():
            pb.warmup(dtype)
            bufs = residual_on_both(pb, streams, p, x, T, C)
            got[name] = [_on(r, lambda: {k: bufs[r][k].get().reshape(-1).view(np.uint8) for k in ("x", "xn", "ss")})
                         for r in (0, 1)]
        want = x + (p[0] + p[1])
        n = -(-D // C)
        ss64 = np.array([np.sum(want[i:i + C].astype(np.float64) ** 2) for i in range(0, D, C)])
        for r in (0, 1):
            for k in ("x", "xn", "ss"):
                assert np.array_equal(got["lamport"][r][k], got["custom"][0][k]), (D, k, r)
        lx = got["lamport"][0]
        np.testing.assert_array_equal(lx["x"].view(np.float32), want, err_msg=f"D={D}")
        np.testing.assert_allclose(lx["ss"].view(np.float32)[:n], ss64, rtol=2e-6)
        assert np.isnan(lx["ss"].view(np.float32)[n:]).all()


def test_lamport_buffers_hold_only_the_last_call(both):
    _buffers_hold_only_the_last_call(both[0]["lamport"], both[1], [65536, 5, 4096, 1025, 3000, 8192, 2048])


def _buffers_hold_only_the_last_call(pb, streams, calls):
    """Calls across the wrap of the call counter (seq moved to just below SEQ_WRAP, keeping its value mod 3 so that
    the generations continue), then per rank and block: seq advanced by the block's calls (mod SEQ_WRAP), equal on
    both ranks; generation seq % 3 of the peer's slot holds exactly the peer's values of the block's first chunk in
    its last call and the sentinel past them; every other generation, every later chunk (reset after read), and the
    rank's own slot hold only the sentinel."""
    import cupy as cp
    from cugraphllm.gpu import allreduce as ar
    seq0 = [_on(r, lambda: pb.seq[r].get().astype(np.int64)) for r in (0, 1)]
    assert np.array_equal(seq0[0], seq0[1])
    start = ar.SEQ_WRAP - 3 + seq0[0] % 3
    for r in (0, 1):
        _on(r, lambda: pb.seq[r].set(start.astype(np.uint32)))
    _sync()
    rng = np.random.default_rng(3)
    last, count = {}, np.zeros(ar.SEQ_BLOCKS, np.int64)
    for n in calls:
        a = _inputs(rng, n, sentinel=False)
        src = [_on(r, lambda: cp.asarray(a[r])) for r in (0, 1)]
        dst = [_on(r, lambda: cp.full(n, np.nan, cp.float32)) for r in (0, 1)]
        launch_both(pb, streams, src, dst, n, False)
        for r in (0, 1):
            np.testing.assert_array_equal(_on(r, lambda: dst[r].get()), a[0] + a[1], err_msg=f"n={n}")
        for b in range(len(ar.lamport_chunks(n, pb.cap, pb.wide))):
            last[b], count[b] = (n, a), count[b] + 1
    for r in (0, 1):
        seq = _on(r, lambda: pb.seq[r].get().astype(np.int64))
        np.testing.assert_array_equal(seq, (start + count) % ar.SEQ_WRAP)
        data = _on(r, lambda: pb.data[r].get()).view(np.uint32).reshape(ar.GENERATIONS, 2, pb.cap)
        want = np.full_like(data, ar.EMPTY)
        for b, (n, a) in last.items():
            lo, hi = b * ar.CHUNK, min(n, (b + 1) * ar.CHUNK)
            want[seq[b] % 3, 1 - r, lo:hi] = a[1 - r][lo:hi].view(np.uint32)
        bad = np.argwhere(data != want)
        assert bad.size == 0, f"rank {r}: {len(bad)} words differ, first (gen, src, i) {bad[:5].tolist()}"


# ---- above the decode cap: ar_lamport_wide -------------------------------------------------------------------------
@pytest.fixture(scope="module", params=[64, 128, 512, 1024], ids=["wide64", "wide128", "wide512", "wide1024"])
def wide(request):
    """Lamport buffers sized for WIDE_CAP f32 per rank, ar_lamport_wide on `param` blocks (the grid setting)."""
    from cugraphllm.gpu import allreduce as ar
    if not ar.peer_access([0, 1]):
        pytest.skip("GPUs 0 and 1 have no peer access")
    old = os.environ.get(ar.WIDE_ENV)
    os.environ[ar.WIDE_ENV] = str(request.param)
    try:
        pb = ar.PeerBuffers([0, 1], "lamport", WIDE_CAP)
    finally:
        os.environ.pop(ar.WIDE_ENV) if old is None else os.environ.__setitem__(ar.WIDE_ENV, old)
    assert pb.cap == WIDE_CAP and pb.wide == request.param and pb.nbytes == 4 * (3 * 2 * WIDE_CAP + ar.SEQ_BLOCKS)
    yield pb, two_streams()
    _sync()


# prefill sizes (70B / 13B / 7B buckets), the cap's edge, awkward and scalar-path sizes, decode sizes in between
WIDE_SIZES = [128 * 8192, 512 * 4096, 3 * CAP + 1000, 4096, WIDE_CAP, 3 * CAP + 1001, CAP + 1, 37 * 5120, 8192,
              CAP + 4, 32 * 8192, 192 * 5120 + 12]


def test_wide_all_reduce_is_the_rank_order_sum(wide):
    """Two rounds of WIDE_SIZES (every generation reused, decode calls between): out of place, with a 4-byte offset
    (scalar path) and in place in turn, each size another way in the second round; outputs poisoned with NaN."""
    import cupy as cp
    from cugraphllm.gpu.allreduce import EMPTY
    pb, streams = wide
    rng = np.random.default_rng(17)
    for i, n in enumerate(WIDE_SIZES * 2):
        a = _inputs(rng, n)
        way = (i + i // len(WIDE_SIZES)) % 3
        off, inplace = int(way == 1), way == 2

        def put(r):
            src = cp.asarray(np.concatenate([np.zeros(off, np.float32), a[r]]))[off:]
            return src, src if inplace else cp.full(n + off, np.nan, cp.float32)[off:]
        bufs = [_on(r, lambda: put(r)) for r in (0, 1)]
        launch_both(pb, streams, [b[0] for b in bufs], [b[1] for b in bufs], n, False)
        got = [_on(r, lambda: bufs[r][1].get()) for r in (0, 1)]
        odd = (a[0].view(np.uint32) == EMPTY) | (a[1].view(np.uint32) == EMPTY)
        assert np.array_equal(got[0].view(np.uint32), got[1].view(np.uint32)), n  # the same on both GPUs
        assert np.array_equal(np.isnan(got[0]), odd), n  # NaN exactly where an input had the sentinel's bits
        want = (a[0] + a[1])[~odd]
        assert np.array_equal(got[0][~odd].view(np.uint32), want.view(np.uint32)), (n, off, inplace)
        ref = a[0][~odd].astype(np.float64) + a[1][~odd].astype(np.float64)
        assert np.all(np.abs(got[0][~odd] - ref) <= 2.0 ** -24 * (np.abs(a[0][~odd]) + np.abs(a[1][~odd]))), n


def test_wide_all_reduce_add_is_x_plus_the_rank_order_sum(wide):
    """add (the prefill residual update, CustomComm.all_reduce_add): x += p0 + p1 with the f32 operations of the
    all-reduce then tp.cu residual_add, bit for bit, each rank with its own x; plain calls in between."""
    import cupy as cp
    pb, streams = wide
    rng = np.random.default_rng(23)
    for n in [s for s in WIDE_SIZES if s > CAP] + [128 * 8192]:
        a = _inputs(rng, n, sentinel=False)
        x0 = [(rng.standard_normal(n) * 4.0).astype(np.float32) for _ in range(2)]
        srcs = [_on(r, lambda: cp.asarray(a[r])) for r in (0, 1)]
        xs = [_on(r, lambda: cp.asarray(x0[r])) for r in (0, 1)]
        _sync()  # staged on the legacy default stream: the launches below go to non-blocking streams
        for r in (0, 1):
            with cp.cuda.Device(r), streams[r]:
                pb.launch(r, srcs[r], xs[r], n, False, add=True)
        _sync()
        for r in (0, 1):
            got = _on(r, lambda: xs[r].get())
            want = x0[r] + (a[0] + a[1])
            assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (n, r)
        plain = [_on(r, lambda: cp.asarray(a[r])) for r in (0, 1)]
        launch_both(pb, streams, plain, plain, n, False)  # the next call reuses the generations as usual
        assert np.array_equal(_on(0, lambda: plain[0].get()).view(np.uint32), (a[0] + a[1]).view(np.uint32)), n


def _halves(rng, n, tname):
    """Two ranks' 16-bit partial sums as (uint16 bits, their f32 values): mixed magnitudes and signs, -0.0 / +0.0,
    and a few words (element pairs 2w, 2w + 1) of bits 0xFFFF 0xFFFF, lamport's sentinel as a word."""
    bits = []
    for _ in range(2):
        v = (rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3, n)).astype(np.float32)
        b = (v.view(np.uint32) >> 16).astype(np.uint16) if tname == "bfloat16" else v.astype(np.float16).view(np.uint16)
        b[::53] = 0x8000  # -0.0
        bits.append(b)
    for w in range(7, n // 2, 997):
        bits[w % 2][2 * w: 2 * w + 2] = 0xFFFF
    f32 = [(b.astype(np.uint32) << 16).view(np.float32) if tname == "bfloat16" else b.view(np.float16)
           .astype(np.float32) for b in bits]
    return bits, f32


@pytest.mark.parametrize("tname", ["float16", "bfloat16"])
def test_packed_add_is_x_plus_the_rank_order_sum_of_16bit_partials(wide, tname):
    """launch_packed (the 16-bit prefill residual update): x += f32(p0) + f32(p1), bit for bit and the same on both
    GPUs, for sizes below and above the decode cap (as words) up to the buffers' cap, with f32 wide and decode-size
    calls in between on the same generations; a word of the sentinel's bits gives NaN in both of its elements."""
    import cupy as cp
    from cugraphllm.gpu.state import storage_dtype
    pb, streams = wide
    pb.warmup(tname)
    rng = np.random.default_rng(29)
    for n in (8, 4104, 2 * CAP, 2 * CAP + 8, 128 * 8192, 3 * CAP + 1000, 2 * WIDE_CAP, 512 * 4096 + 24):
        bits, f32 = _halves(rng, n, tname)
        x0 = [(rng.standard_normal(n) * 4.0).astype(np.float32) for _ in range(2)]
        ps = [_on(r, lambda: cp.asarray(bits[r]).view(storage_dtype(tname))) for r in (0, 1)]
        xs = [_on(r, lambda: cp.asarray(x0[r])) for r in (0, 1)]
        _sync()
        for r in (0, 1):
            with cp.cuda.Device(r), streams[r]:
                pb.launch_packed(r, ps[r], xs[r])
        _sync()
        got = [_on(r, lambda: xs[r].get()) for r in (0, 1)]
        odd = np.repeat((bits[0].reshape(-1, 2) == 0xFFFF).all(1) | (bits[1].reshape(-1, 2) == 0xFFFF).all(1), 2)
        for r in (0, 1):
            assert np.array_equal(np.isnan(got[r]), odd), (n, r)
            want = x0[r] + (f32[0] + f32[1])
            assert np.array_equal(got[r][~odd].view(np.uint32), want[~odd].view(np.uint32)), (n, r, tname)
        f = rng.standard_normal(3 * CAP + 5).astype(np.float32)
        plain = [_on(r, lambda: cp.asarray(f * (r + 1))) for r in (0, 1)]
        launch_both(pb, streams, plain, plain, f.size, False)  # f32 wide calls on the same slots in between
        assert np.array_equal(_on(1, lambda: plain[1].get()).view(np.uint32), (f + f * 2).view(np.uint32)), n
        small = [_on(r, lambda: cp.asarray(f[:4096])) for r in (0, 1)]
        launch_both(pb, streams, small, small, 4096, False)  # and a decode-size one
        assert np.array_equal(_on(0, lambda: small[0].get()).view(np.uint32), (f[:4096] * 2).view(np.uint32)), n


def test_packed_add_refuses_what_it_cannot_do(wide):
    """n % 8 != 0, more than 2 x cap elements, an f32 partial, a misaligned x: a ValueError before any launch."""
    import cupy as cp
    pb, _ = wide
    pb.warmup("float16")
    with cp.cuda.Device(0):
        for n, xoff, dt in ((12, 0, cp.float16), (2 * WIDE_CAP + 8, 0, cp.float16), (64, 0, cp.float32),
                            (64, 1, cp.float16)):
            p = cp.ones(n, dt)
            x = cp.zeros(n + xoff, cp.float32)[xoff:]
            with pytest.raises(ValueError, match="packed add"):
                pb.launch_packed(0, p, x)


def test_wide_buffers_hold_only_the_last_call(wide):
    _buffers_hold_only_the_last_call(*wide, [WIDE_CAP, 4096, 3 * CAP + 1000, 5, 512 * 4096, CAP + 1, 128 * 8192,
                                             8192, 3 * CAP + 1001, 2048, 40 * 4096])


def test_a_lone_rank_traps_in_the_wide_kernel_too(both):
    """ar_lamport_wide on rank 0 alone (CUGRAPHLLM_ALLREDUCE_TIMEOUT_MS=200): an error within seconds, not a hang."""
    assert lone_rank_trap_seconds("lamport", 3 * CAP + 1000, 4 * CAP) < 30


ENGINES = {"70b": (ModelConfig(dim=8192, n_layers=2, n_heads=64, n_kv_heads=8, vocab_size=32000, hidden_dim=28672,
                               max_seq_len=512), "hybrid"),
           "7b": (ModelConfig(dim=4096, n_layers=2, n_heads=32, n_kv_heads=32, vocab_size=32000, hidden_dim=11008,
                              max_seq_len=512), "eager")}


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_engine_prefill_over_lamport_equals_nccl(monkeypatch, name):
    """TP2 engines (seeded dummy weights, the same on both backends) at 70B / 7B widths, context 512 (the lamport
    buffers sized for 512 x D): after prompts of 300, 37 and 17 tokens (prefill buckets of 384, 64, 32 rows) the
    logits bit-identical to NCCL's, then 6 more greedy tokens identical (CUGRAPHLLM_ALLREDUCE_FUSE=0: every value
    as NCCL computes it); fused (the default), the logits after each prompt bit-identical too. The lamport engine makes no NCCL call at all: its prefill all-reduces (above 65536 f32)
    go to ar_lamport_wide."""
    from cugraphllm.gpu import tp
    from cugraphllm.gpu.tp_engine import TPEngine
    cfg, mode = ENGINES[name]
    rng = np.random.default_rng(23)
    prompts = [rng.integers(3, cfg.vocab_size, n).tolist() for n in (300, 37, 17)]
    collective, out, seen = tp.Group.collective, {}, []

    def spy(group, rank, call):  # every rendezvous: (kind, elements per rank)
        seen.append((call[0], call[3]))
        return collective(group, rank, call)
    monkeypatch.setattr(tp.Group, "collective", spy)
    for backend, fuse, t16 in (("nccl", "0", "0"), ("lamport", "0", "0"), ("lamport-fused", "1", "0"),
                               ("lamport-t16", "1", "1")):
        seen.clear()
        monkeypatch.setenv("CUGRAPHLLM_ALLREDUCE", backend.split("-")[0])
        monkeypatch.setenv("CUGRAPHLLM_ALLREDUCE_FUSE", fuse)
        monkeypatch.setenv("CUGRAPHLLM_ALLREDUCE_T16", t16)
        e = TPEngine(cfg, None, RuntimeConfig(backend="cuda", mode=mode, max_seq_len=512, tp=2))
        try:
            e.wait_ready()
            assert e.allreduce == backend.split("-")[0]
            runs = []
            for p in prompts:
                e.reset()
                first = list(e.generate(p, SamplingParams(), 1))
                logits = e.s.logits.get()[0].copy()
                runs.append((first + list(e.generate(first, SamplingParams(), 6)), logits))
            out[backend] = runs, e.peers.cap if e.peers is not None else None
        finally:
            e.close()
        kinds = {k for k, _ in seen}
        big = max(n for _, n in seen)
        if backend != "nccl":
            assert kinds == {"meet"} and CAP < big <= out[backend][1] == 512 * cfg.dim, (kinds, big)
        else:
            assert "allreduce" in kinds and big > CAP
    for (toks, logits), (ref_toks, ref_logits) in zip(out["lamport"][0], out["nccl"][0]):
        assert np.isfinite(logits).all()
        diff = np.abs(logits.astype(np.float64) - ref_logits).max()
        assert np.array_equal(logits.view(np.uint32), ref_logits.view(np.uint32)), f"max |lamport - nccl| = {diff}"
        assert toks == ref_toks
    # fused (the default): the prefill's residual updates are ar_lamport_wide with add, the same f32 operations as
    # the all-reduce then residual_add, so the logits after each prompt are NCCL's bit for bit (decode steps then
    # add the norm's partial sums in another order: their tokens are not compared)
    for (_, logits), (_, ref_logits) in zip(out["lamport-fused"][0], out["nccl"][0]):
        assert np.array_equal(logits.view(np.uint32), ref_logits.view(np.uint32))
    # 16-bit partials (the default): each rank's prefill partial sums rounded once to the activation dtype, so the
    # logits after each prompt differ from NCCL's by that rounding only
    for (_, logits), (_, ref_logits) in zip(out["lamport-t16"][0], out["nccl"][0]):
        err = np.abs(logits.astype(np.float64) - ref_logits).max() / ref_logits.std()
        assert np.isfinite(logits).all() and 0 < err < 0.02, err
