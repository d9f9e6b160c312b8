"""The custom all-reduce (gpu/allreduce.py, kernels/allreduce.cu and allreduce_lamport.cu) on 2 GPUs with peer access
(skipped otherwise), every kernel-level test and the stories engine test once per protocol (custom: flags; lamport:
values as flags; the cross-protocol comparison is tests/test_allreduce_lamport_gpu.py): sums bit-identical on both
GPUs and equal to the float32 sum in rank order (within one rounding of the float64 sum) on random awkward sizes and
D = 4096 / 5120 / 8192, vector and scalar paths; all-gather exact; the Comm interface in place, with NCCL above CAP;
100 replays of captured graphs that make fresh inputs inside the graph, with the GPUs skewed, never reading stale
data; a lone GPU's kernel traps instead of hanging; TP2 engines over the custom backend: stories260K greedy tokens
equal to the golden TP1 tokens in every mode, and 7B-width logits bit-identical to the NCCL backend's (a sum of two
f32 values is the same correctly rounded number whichever backend adds them), fused logits of both protocols
bit-identical to each other."""
import numpy as np
import pytest

from cugraphllm.config import ModelConfig, RuntimeConfig
from cugraphllm.sampling import SamplingParams
from kernel_helpers import gpu_count
from peer_helpers import (launch_both, lone_rank_trap_seconds, on as _on, residual_on_both, sync_both as _sync,
                          two_streams)


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(gpu_count() < 2, reason="needs 2 CUDA GPUs")]
GREEDY = SamplingParams()
SIZES = [1, 3, 5, 1023, 1024, 1025, 4096, 5120, 8192, 12347, 16000, 65536]


@pytest.fixture(scope="module")
def peer_gpus():
    from cugraphllm.gpu import allreduce as ar
    if not ar.peer_access([0, 1]):
        pytest.skip("GPUs 0 and 1 have no peer access")


@pytest.fixture(scope="module", params=["custom", "lamport"])
def peers(request, peer_gpus):
    from cugraphllm.gpu import allreduce as ar
    pb = ar.PeerBuffers([0, 1], request.param)
    streams = two_streams()
    yield pb, streams
    _sync()


def _inputs(rng, n):
    """Two ranks' f32 inputs of mixed magnitudes (1e-3 .. 1e3) and signs: the sums round; a few -0.0 (in one rank or
    in both: a sum of -0.0) and +0.0."""
    a = [(rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3, n)).astype(np.float32) for _ in range(2)]
    for i in range(0, n, 97):
        a[0][i], a[1][i] = np.float32(-0.0), np.float32((-0.0, 0.0, 1.5)[i % 3])
    return a


@pytest.mark.parametrize("aligned", [True, False], ids=["vec", "scalar"])
def test_sum_is_bit_identical_and_correct(peers, aligned):
    import cupy as cp
    pb, streams = peers
    rng = np.random.default_rng(1 + aligned)
    for n in SIZES + rng.integers(2, 65536, 4).tolist():
        a = _inputs(rng, n)
        off = 0 if aligned else 1  # a 4-byte offset: the scalar path even when n % 4 == 0

        def put(r):
            big = cp.asarray(np.concatenate([np.zeros(off, np.float32), a[r]]))
            return big[off:], cp.full(n + off, np.nan, cp.float32)[off:]
        bufs = [_on(r, lambda: put(r)) for r in (0, 1)]
        launch_both(pb, streams, [b[0] for b in bufs], [b[1] for b in bufs], n, False)
        got = [_on(r, lambda: bufs[r][1].get()) for r in (0, 1)]
        assert np.array_equal(got[0].view(np.uint32), got[1].view(np.uint32)), n   # bit-identical on both GPUs
        np.testing.assert_array_equal(got[0], a[0] + a[1], err_msg=f"n={n}")       # f32 sum, rank order
        ref = a[0].astype(np.float64) + a[1].astype(np.float64)
        assert np.all(np.abs(got[0] - ref) <= 2.0 ** -24 * (np.abs(a[0]) + np.abs(a[1]))), n
        for r in (0, 1):  # out of place: the inputs are untouched
            np.testing.assert_array_equal(_on(r, lambda: bufs[r][0].get()), a[r])


def test_all_gather_is_exact(peers):
    import cupy as cp
    pb, streams = peers
    rng = np.random.default_rng(5)
    for n in (1, 7, 1024, 16000, 12345, 65536):
        a = _inputs(rng, n)
        src = [_on(r, lambda: cp.asarray(a[r])) for r in (0, 1)]
        dst = [_on(r, lambda: cp.full(2 * n, np.nan, cp.float32)) for r in (0, 1)]
        launch_both(pb, streams, src, dst, n, True)
        for r in (0, 1):
            np.testing.assert_array_equal(_on(r, lambda: dst[r].get()), np.concatenate(a), err_msg=f"n={n}")


def test_comm_in_place_with_nccl_above_cap(peers):
    """CustomComm: all_reduce(buf) in place at D = 4096 / 5120 / 8192 (one decode row) and a 37-row prefill of 4096
    (151552 > CAP elements: NCCL), all_gather of a 16000-logit slice; same values on both GPUs."""
    import cupy as cp
    from cugraphllm.gpu import tp
    from cugraphllm.gpu.allreduce import CAP, CustomComm
    pb, _ = peers
    g = tp.Group([0, 1])
    w = tp.Workers(g.devices, g)
    try:
        comms = [_on(r, lambda: CustomComm(g, r, 37, 8192, 16000, pb)) for r in (0, 1)]
        assert all(c.backend == pb.protocol for c in comms)
        rng = np.random.default_rng(9)
        for rows, D in ((1, 4096), (1, 5120), (1, 8192), (37, 4096)):
            a = _inputs(rng, rows * D)
            bufs = [_on(r, lambda: cp.asarray(a[r].reshape(rows, D))) for r in (0, 1)]

            def step(r):
                with cp.cuda.Stream(non_blocking=True) as s:
                    comms[r].all_reduce(bufs[r])
                    s.synchronize()
            _sync()  # staged on the legacy default stream, which step's non-blocking stream does not wait for
            w.run(step)
            assert (rows * D > CAP) == (rows == 37)
            for r in (0, 1):
                np.testing.assert_array_equal(_on(r, lambda: bufs[r].get()).reshape(-1), a[0] + a[1])
        a = _inputs(rng, 16000)
        for r in (0, 1):
            with cp.cuda.Device(r):
                comms[r].logits[:] = cp.asarray(a[r][None])
        out = [_on(r, lambda: cp.full((1, 32000), np.nan, cp.float32)) for r in (0, 1)]

        def gather(r):
            with cp.cuda.Stream(non_blocking=True) as s:
                comms[r].all_gather(comms[r].logits, out[r])
                s.synchronize()
        _sync()
        w.run(gather)
        for r in (0, 1):
            np.testing.assert_array_equal(_on(r, lambda: out[r].get())[0], np.concatenate(a))
    finally:
        w.close()
        g.close()


# ---- graphs: 100 replays, fresh inputs made inside the graph, the GPUs skewed --------------------------------------
HELPERS = r"""
__device__ unsigned mix(unsigned i, unsigned s, unsigned salt, unsigned rank) {
    unsigned h = (i * 2654435761u) ^ ((s * 97u + salt) * 40503u) ^ (rank * 2654435769u);
    h ^= h >> 15; h *= 739982445u; h ^= h >> 12;
    return h;
}
// x[i] = an exact float k / 4096, k in [-2^19, 2^19), from (replay, salt, rank, i)
extern "C" __global__ void gen(float* x, const unsigned* step, int rank, int n, unsigned salt) {
    const unsigned s = *step;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        x[i] = (float)((int)(mix(i, s, salt, rank) & 0xFFFFFu) - 0x80000) * (1.0f / 4096.0f);
}
// the rank whose turn it is spins `ns` first, so the other one runs ahead into its next collective
extern "C" __global__ void delay(const unsigned* step, int rank, int phase, unsigned long long ns) {
    if ((*step + rank + phase) % 3 != 0) return;
    unsigned long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (t - t0 < ns);
}
extern "C" __global__ void record(float* hist, const float* x, const unsigned* step, int n) {
    const unsigned s = *step;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        hist[(long long)s * n + i] = x[i];
}
extern "C" __global__ void advance(unsigned* step) { *step += 1; }
"""


def _gen_np(n, s, salt, rank):
    M, u = 0xFFFFFFFF, np.uint32
    c = (((s * 97 + salt) * 40503) & M) ^ ((rank * 2654435769) & M)  # the step's constant, in Python ints
    h = (np.arange(n, dtype=np.uint32) * u(2654435761)) ^ u(c)       # array ops wrap mod 2^32 as in C
    h ^= h >> u(15)
    h *= u(739982445)
    h ^= h >> u(12)
    return ((h & u(0xFFFFF)).astype(np.int64) - 0x80000).astype(np.float32) * np.float32(1 / 4096)


def test_graph_replays_never_read_stale_data(peers):
    import cupy as cp
    from cugraphllm.gpu.runtime import capture_graph
    pb, _ = peers
    REPLAYS = 100
    ar_sizes, gsize = (4096, 5120, 8192), 16000
    st = []
    for r in (0, 1):
        with cp.cuda.Device(r):
            m = cp.RawModule(code=HELPERS)
            k = {name: m.get_function(name) for name in ("gen", "delay", "record", "advance")}
            for f in k.values():
                f.attributes  # compiled and loaded now: no module load inside the capture
            b = dict(step=cp.zeros(1, cp.uint32), x=[cp.full(n, np.nan, cp.float32) for n in ar_sizes],
                     gx=cp.full(gsize, np.nan, cp.float32), gy=cp.full(2 * gsize, np.nan, cp.float32),
                     hist=[cp.full(REPLAYS * n, np.nan, cp.float32) for n in ar_sizes],
                     ghist=cp.full(REPLAYS * 2 * gsize, np.nan, cp.float32), stream=cp.cuda.Stream(non_blocking=True))
            st.append((k, b))

    def body(r):
        k, b = st[r]
        for j, n in enumerate(ar_sizes):
            k["gen"]((64,), (256,), (b["x"][j], b["step"], np.int32(r), np.int32(n), np.uint32(j)))
            k["delay"]((1,), (1,), (b["step"], np.int32(r), np.int32(j), np.uint64(20_000)))
            pb.launch(r, b["x"][j], b["x"][j], n, False)
            k["record"]((64,), (256,), (b["hist"][j], b["x"][j], b["step"], np.int32(n)))
        k["gen"]((64,), (256,), (b["gx"], b["step"], np.int32(r), np.int32(gsize), np.uint32(7)))
        pb.launch(r, b["gx"], b["gy"], gsize, True)
        k["record"]((64,), (256,), (b["ghist"], b["gy"], b["step"], np.int32(2 * gsize)))
        k["advance"]((1,), (1,), (b["step"],))

    _sync()  # the buffers were filled on the legacy default stream; the graphs run on non-blocking streams
    graphs = []
    for r in (0, 1):
        with cp.cuda.Device(r):
            graphs.append(capture_graph(st[r][1]["stream"], lambda: body(r)))
    for _ in range(REPLAYS):
        for r in (0, 1):
            with cp.cuda.Device(r):
                graphs[r].launch(st[r][1]["stream"])
    _sync()
    for r in (0, 1):
        k, b = st[r]
        assert _on(r, lambda: int(b["step"].get()[0])) == REPLAYS
        for j, n in enumerate(ar_sizes):
            hist = _on(r, lambda: b["hist"][j].get()).reshape(REPLAYS, n)
            for s in range(REPLAYS):
                want = _gen_np(n, s, j, 0) + _gen_np(n, s, j, 1)
                np.testing.assert_array_equal(hist[s], want, err_msg=f"rank {r} replay {s} all-reduce {j}")
        ghist = _on(r, lambda: b["ghist"].get()).reshape(REPLAYS, 2 * gsize)
        for s in range(REPLAYS):
            want = np.concatenate([_gen_np(gsize, s, 7, 0), _gen_np(gsize, s, 7, 1)])
            np.testing.assert_array_equal(ghist[s], want, err_msg=f"rank {r} replay {s} all-gather")
    del graphs


def test_a_lone_rank_traps_instead_of_hanging(peers):
    from cugraphllm.gpu.allreduce import CAP
    assert lone_rank_trap_seconds(peers[0].protocol, 4096, CAP) < 30


# ---- engines over the custom backend -------------------------------------------------------------------------------
def _tp2(monkeypatch, backend, config, weights, mode, max_seq_len=None, fuse="1", t16="1"):
    from cugraphllm.gpu.tp_engine import TPEngine
    monkeypatch.setenv("CUGRAPHLLM_ALLREDUCE", backend)
    monkeypatch.setenv("CUGRAPHLLM_ALLREDUCE_FUSE", fuse)
    monkeypatch.setenv("CUGRAPHLLM_ALLREDUCE_T16", t16)
    e = TPEngine(config, weights, RuntimeConfig(backend="cuda", mode=mode, max_seq_len=max_seq_len, tp=2))
    e.wait_ready()
    assert e.allreduce == backend and all(rk.comm.backend == backend for rk in e.ranks)
    return e


@pytest.mark.parametrize("mode", ["eager", "graph", "hybrid"])
def test_stories_tp2_custom_greedy_equals_tp1(monkeypatch, stories_ckpt, peers, mode):
    from conftest import stories_golden
    golden = stories_golden()
    two = _tp2(monkeypatch, peers[0].protocol, stories_ckpt.config, stories_ckpt.weights, mode)
    try:
        prompt, want = golden["prompt_ids"], golden["generated_ids"]
        assert list(two.generate(prompt, GREEDY, len(want))) == want
        two.sync()
        logits = [_on(rk.device, lambda: rk.s.logits.get()) for rk in two.ranks]
        assert np.isfinite(logits[0]).all() and np.array_equal(logits[0], logits[1])
        long = (prompt * 200)[:300]  # a 512-row prefill bucket: 512 x 64 elements, still the custom kernel
        two.reset()
        first = list(two.generate(long, GREEDY, 40))
        two.reset()
        assert list(two.generate(long, GREEDY, 40)) == first
        two.reset()
        got = list(two.generate(prompt, SamplingParams(temperature=0.9, top_p=0.95, seed=3), 60))
        two.sync()
        n = len(prompt) + len(got)
        assert np.array_equal(two.ranks[0].s.hist_host[:n], two.ranks[1].s.hist_host[:n])
        if mode == "graph":
            assert 0 < two.collective_us(reps=5) < 1e5
            two.reset()
            assert list(two.generate(prompt, GREEDY, len(want))) == want
    finally:
        two.close()


def test_7b_width_logits_custom_against_nccl(monkeypatch, peer_gpus):
    """Unfused (CUGRAPHLLM_ALLREDUCE_FUSE=0) both custom protocols compute every value as NCCL does: bit-identical
    logits. Fused (the default), the norm's partial sums of squares add in another order: the TP tests' fp16
    tolerance, and the two protocols' fused logits bit-identical to each other with f32 prefill partial sums
    (CUGRAPHLLM_ALLREDUCE_T16=0; the flag protocol has no 16-bit ones); lamport's default, 16-bit partial sums in
    prefill, within the same tolerance of NCCL."""
    from cugraphllm.loader import dummy_weights
    cfg = ModelConfig(dim=4096, n_layers=2, n_heads=32, n_kv_heads=32, vocab_size=32000, hidden_dim=11008,
                      max_seq_len=256)
    w = dummy_weights(cfg, seed=4, dtype="float16")
    rng = np.random.default_rng(4)
    prompt = rng.integers(3, cfg.vocab_size, 37).tolist()  # 37-row prefill: NCCL in both; then custom decode steps
    feed = rng.integers(3, cfg.vocab_size, 6).tolist()
    out = {}
    for backend, fuse, t16 in (("nccl", "1", "0"), ("custom", "0", "0"), ("custom", "1", "0"), ("lamport", "0", "0"),
                               ("lamport", "1", "0"), ("lamport", "1", "1")):
        e = _tp2(monkeypatch, backend, cfg, w, "hybrid", max_seq_len=128, fuse=fuse, t16=t16)
        try:
            toks = list(e.generate(prompt, GREEDY, 1))
            logits = [e.s.logits.get()[0].copy()]
            for t in feed:  # the same inputs for every engine, whatever each one sampled
                toks += list(e.generate([t], GREEDY, 1))
                logits.append(e.s.logits.get()[0].copy())
        finally:
            e.close()
        out[backend + fuse + ("t16" if t16 == "1" else "")] = toks, np.array(logits, np.float64)
    ref, unfused, fused = out["nccl1"], out["custom0"], out["custom1"]
    assert np.isfinite(unfused[1]).all() and np.isfinite(fused[1]).all()
    for name in ("custom0", "lamport0"):
        diff = np.abs(out[name][1] - ref[1]).max()
        assert out[name][0] == ref[0] and np.array_equal(out[name][1], ref[1]), f"max |{name} - nccl| = {diff}"
    errs = [np.linalg.norm(a - b) / np.linalg.norm(b) for a, b in zip(fused[1], ref[1])]
    assert max(errs) < 1e-2, errs
    assert out["lamport1"][0] == fused[0] and np.array_equal(out["lamport1"][1], fused[1])
    errs = [np.linalg.norm(a - b) / np.linalg.norm(b) for a, b in zip(out["lamport1t16"][1], ref[1])]
    assert max(errs) < 1e-2, errs


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_fused_residual_update(peers, dtype):
    """ar_residual / ar_lamport_residual: x += p0 + p1 (the f32 values of the unfused path, bit for bit), xn = T(x),
    ss = the norm's
    partial sums of squares (float64 reference), identical on both GPUs, at D = 4096 / 5120 / 8192 and 4100."""
    import ml_dtypes
    from cugraphllm.gpu.ops import norm_chunk
    pb, streams = peers
    pb.warmup(dtype)
    T = np.float16 if dtype == "float16" else ml_dtypes.bfloat16
    rng = np.random.default_rng(len(dtype))
    for D in (4096, 5120, 8192, 4100):
        C = norm_chunk(D)
        x = rng.standard_normal(D).astype(np.float32)
        p = [0.1 * v for v in _inputs(rng, D)]
        bufs = residual_on_both(pb, streams, p, x, T, C)
        want = x + (p[0] + p[1])
        n = -(-D // C)
        ss64 = np.array([np.sum(want[i:i + C].astype(np.float64) ** 2) for i in range(0, D, C)])
        got = [_on(r, lambda: {k: bufs[r][k].get() for k in ("x", "xn", "ss")}) for r in (0, 1)]
        for k in ("x", "xn", "ss"):
            assert np.array_equal(got[0][k].view(np.uint8), got[1][k].view(np.uint8)), (D, k)
        np.testing.assert_array_equal(got[0]["x"][0], want, err_msg=f"D={D}")
        np.testing.assert_array_equal(got[0]["xn"][0].view(np.uint16), want.astype(T).view(np.uint16))
        np.testing.assert_allclose(got[0]["ss"][:n], ss64, rtol=2e-6)
        assert np.isnan(got[0]["ss"][n:]).all()  # nothing written past the partial sums
