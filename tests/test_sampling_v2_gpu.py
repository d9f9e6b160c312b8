"""The v2 and v3 sampler kernels (ops_select.SAMPLER "v2": sample_prep_v2 + sample_draw_v2, kernels/sampling_v2.cuh;
"new": sample_prep_v2 + sample_draw_v3, kernels/sampling_v3.cuh, the default) against the v1 kernels (sample_prep +
sample_draw, SAMPLER "old"), which choose by the same integers: the same token, hist entry and pos on every input,
with no ambiguous draw to skip; against the NumPy sampler at LLaMA-3's vocabulary and on peaked logits; and several
sampler calls replayed back to back in one graph (PDL launches, the ticket reset between calls). Each test runs for
both implementations (IMPLS)."""
import numpy as np
import pytest

from kernel_helpers import S
from test_sampling_gpu import compare_trials, few_values, gaussian, half_tied, selection_state, with_nan_inf

pytestmark = pytest.mark.gpu


@pytest.fixture
def use_sampler(ops):
    from cugraphllm.gpu import ops_select  # after ops, which imports it
    keep = ops_select.SAMPLER

    def use(kind):
        ops_select.SAMPLER = kind
    yield use
    ops_select.SAMPLER = keep


IMPLS = ["v2", "new"]


def peaked(rng, V):
    return rng.standard_normal(V) * 8.0


def clustered(rng, V):
    """300 near-equal top logits in consecutive ids (one or two blocks): one (region, block) slice of v3's gather
    holds hundreds of elements (its multi-round loop) while the draw falls among them."""
    x = rng.standard_normal(V)
    a = int(rng.integers(0, max(V - 300, 1)))
    x[a:a + 300] = 6.0 + rng.standard_normal(x[a:a + 300].size) * 1e-3
    return x


def run_sampler(cp, ops, logits, params, pos, hist0):
    """(token, hist, pos) after one ops.sample on fresh buffers (token poisoned with -1)."""
    token, hist, dpos, n, _ = selection_state(cp, pos, hist_len=hist0.size)
    hist.set(hist0)
    p = cp.asarray(ops.sampling_params_array(params))
    ops.sample(token, hist, dpos, n, cp.asarray(logits[None]), p, cp.asarray([params.seed], dtype=cp.uint64))
    return int(token.get()[0]), hist.get(), int(dpos.get()[0])


V1_GRID = [dict(temperature=0.8, top_p=0.9), dict(temperature=0.8, top_k=40), dict(temperature=1.0),
           dict(temperature=0.9, top_k=41, top_p=0.9, repetition_penalty=1.2), dict(temperature=1.0, top_p=0.01),
           dict(temperature=0.7, top_k=1000, top_p=0.95), dict(temperature=1.0, top_k=31999),
           dict(temperature=2.0, top_k=5, repetition_penalty=0.8), dict(temperature=0.0, repetition_penalty=1.3),
           dict(temperature=1e3, top_p=0.95), dict(temperature=1e-3, top_k=100)]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("V", [97, 1025, 4097, 32000, 128256])
@pytest.mark.parametrize("make", [gaussian, peaked, few_values, half_tied, with_nan_inf, clustered],
                         ids=lambda f: f.__name__)
def test_v2_chooses_the_v1_token(cp, ops, use_sampler, impl, V, make):
    from cugraphllm.sampling import SamplingParams
    rng = np.random.default_rng(V + len(make.__name__))
    for kw in V1_GRID:
        logits = make(rng, V).astype(np.float32)
        pos = int(rng.integers(0, S - 1))
        hist0 = rng.integers(0, V, S + 1).astype(np.int32)
        params = SamplingParams(seed=int(rng.integers(0, 2**63)), **kw)
        use_sampler("old")
        want = run_sampler(cp, ops, logits, params, pos, hist0)
        use_sampler(impl)
        got = run_sampler(cp, ops, logits, params, pos, hist0)
        assert 0 <= got[0] < V and got[2] == pos + 1 and got[1][pos + 1] == got[0]
        assert got[0] == want[0], f"{kw}: {impl} {got[0]} v1 {want[0]}"
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("make", [gaussian, peaked], ids=lambda f: f.__name__)
@pytest.mark.parametrize("kw", [dict(temperature=0.8, top_p=0.9), dict(temperature=0.8, top_k=40),
                                dict(temperature=1.1, top_p=0.95, repetition_penalty=1.2)],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
@pytest.mark.parametrize("impl", IMPLS)
def test_v2_llama3_vocab_matches_numpy(cp, ops, use_sampler, impl, make, kw):
    use_sampler(impl)
    assert compare_trials(cp, ops, make, kw, 128256, trials=6, seed=13) >= 4


@pytest.mark.parametrize("impl", IMPLS)
def test_v2_back_to_back_in_one_graph(cp, ops, use_sampler, impl):
    """Three sampler calls on one workspace in one captured graph (each call's kernels may start before the
    previous one ends: PDL): every replay gives the eager tokens, and the ticket counter ends at 0."""
    from cugraphllm.sampling import SamplingParams
    use_sampler(impl)
    V, pos = 32000, 100
    rng = np.random.default_rng(3)
    lg = cp.asarray((rng.standard_normal((1, V)) * 2.5).astype(np.float32))
    hist0 = rng.integers(0, V, S + 1).astype(np.int32)
    kws = [dict(temperature=0.8, top_p=0.9), dict(temperature=0.8, top_k=40, repetition_penalty=1.2),
           dict(temperature=1.0)]
    ps = [cp.asarray(ops.sampling_params_array(SamplingParams(**kw))) for kw in kws]
    seed = cp.asarray([5], dtype=cp.uint64)
    token, hist, dpos, n, _ = selection_state(cp, pos)
    outs = [cp.full(1, -1, cp.int32) for _ in kws]
    stream = cp.cuda.Stream(non_blocking=True)

    def calls():
        for p, out in zip(ps, outs):
            ops.sample(token, hist, dpos, n, lg, p, seed)
            out[...] = token

    hist.set(hist0)
    cp.cuda.Device().synchronize()
    with stream:
        calls()  # eager; allocates the workspace before capture
        stream.synchronize()
        eager = [int(o.get()[0]) for o in outs]
        stream.begin_capture()
        calls()
        graph = stream.end_capture()
        for _ in range(3):
            for o in outs:
                o.fill(-1)
            hist.set(hist0)
            dpos.fill(pos)
            stream.synchronize()
            graph.launch(stream)
            stream.synchronize()
            assert [int(o.get()[0]) for o in outs] == eager
            assert int(dpos.get()[0]) == pos + len(kws)
    assert int(ops.sample_workspace(lg).ctr.get()[0]) == 0
