"""Token selection (kernels/sampling.cu): argmax and the multi-block sampler against the NumPy sampler
(cugraphllm/sampling.py), which must give the same token for every draw.

The sampler has two exact paths (a bin ranked in shared memory, and the radix descent for bins of more than
SAMPLE_CAP near-equal logits); inputs with a few distinct values (thousands of exact ties) force the second.
The NumPy sampler computes in float64 and the device in float32 with fixed-point masses, so a draw whose target
lies within 1e-7 (relative) of a cumulative-mass boundary is ambiguous: such trials are skipped and counted."""
import numpy as np
import pytest

from kernel_helpers import S

pytestmark = pytest.mark.gpu


# ---- token selection ---------------------------------------------------------------------------------------
def selection_state(cp, pos, n=1, hist_len=S + 1, seed=0):
    rng = np.random.default_rng(seed)
    hist0 = rng.integers(0, 32000, hist_len).astype(np.int32)
    return (cp.asarray([-1], dtype=cp.int32), cp.asarray(hist0), cp.asarray([pos], dtype=cp.int32),
            cp.asarray([n], dtype=cp.int32), hist0)


@pytest.mark.parametrize("V", [769, 32000])
@pytest.mark.parametrize("pos", [0, 511, 4095])
def test_argmax(cp, ops, V, pos):
    logits = np.random.default_rng(V + pos).standard_normal(V).astype(np.float32)
    logits[V // 3] = logits[V // 2] = logits.max() + 1.0  # a tie: the lower id wins
    token, hist, dpos, n, hist0 = selection_state(cp, pos, seed=pos)
    ops.argmax(token, hist, dpos, n, cp.asarray(logits[None]))
    assert int(token.get()[0]) == V // 3 == int(np.argmax(logits))
    want = hist0.copy()
    want[pos + 1] = V // 3
    np.testing.assert_array_equal(hist.get(), want)
    assert int(dpos.get()[0]) == pos + 1


def gpu_sample(cp, ops, logits, params, seed, pos, hist0):
    token, hist, dpos, n, _ = selection_state(cp, pos)
    hist.set(hist0)
    p = cp.asarray(ops.sampling_params_array(params))
    ops.sample(token, hist, dpos, n, cp.asarray(logits[None]), p, cp.asarray([seed], dtype=cp.uint64))
    t = int(token.get()[0])
    assert int(hist.get()[pos + 1]) == t and int(dpos.get()[0]) == pos + 1
    return t


PARAM_GRID = [dict(temperature=0.0), dict(temperature=0.0, repetition_penalty=1.3),
              dict(temperature=1.0), dict(temperature=0.7, top_k=40), dict(temperature=1.3, top_k=1000),
              dict(temperature=1.0, top_p=0.9), dict(temperature=0.8, top_k=50, top_p=0.5),
              dict(temperature=1.0, top_k=1), dict(temperature=1.1, top_p=0.95, repetition_penalty=1.2),
              dict(temperature=2.0, top_k=5, repetition_penalty=0.8)]


@pytest.mark.parametrize("kw", PARAM_GRID, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_sample_matches_numpy_sampler(cp, ops, kw):
    from cugraphllm.sampling import SamplingParams, sample
    V = 32000
    rng = np.random.default_rng(len(str(kw)))
    for trial in range(8):
        logits = (rng.standard_normal(V) * 2.5).astype(np.float32)
        pos = int(rng.integers(0, S - 1))
        hist0 = rng.integers(0, V, S + 1).astype(np.int32)
        params = SamplingParams(seed=int(rng.integers(0, 2**63)), **kw)
        want = sample(logits, params, hist0[:pos + 1].tolist(), pos + 1)
        got = gpu_sample(cp, ops, logits, params, params.seed, pos, hist0)
        assert got == want, f"trial {trial}: gpu {got} numpy {want}"
        if params.repetition_penalty == 1.0 and (params.temperature == 0.0 or params.top_k == 1):
            assert got == int(np.argmax(logits)), "greedy / top_k=1 must be the argmax"


def test_sample_deterministic_and_varied(cp, ops):
    from cugraphllm.sampling import SamplingParams
    V = 32000
    logits = np.random.default_rng(5).standard_normal(V).astype(np.float32)
    hist0 = np.zeros(S + 1, np.int32)
    params = SamplingParams(temperature=1.0, top_p=0.9, seed=1234)
    draws = [gpu_sample(cp, ops, logits, params, 1234, pos, hist0) for pos in range(24)]
    again = [gpu_sample(cp, ops, logits, params, 1234, pos, hist0) for pos in range(24)]
    assert draws == again
    assert len(set(draws)) > 12, "draws at different positions should differ"


def gpu_sample_v(cp, ops, logits, params, pos, hist0):
    """gpu_sample for any V; also checks that the workspace's ticket counter is back at 0."""
    V = logits.shape[0]
    t = gpu_sample(cp, ops, logits, params, params.seed, pos, hist0)
    assert 0 <= t < V
    return t


def ambiguous(logits, params, history, pos, eps=1e-7):
    """True when the NumPy draw (or its top-p cut) sits within eps of a cumulative boundary (module docstring)."""
    from cugraphllm.sampling import apply_repetition_penalty, ranked, uniform
    x = np.asarray(logits, np.float64)
    if params.repetition_penalty != 1.0 and len(history):
        x = apply_repetition_penalty(x, history, params.repetition_penalty)
    if params.temperature == 0.0:
        return False
    x = x / params.temperature
    ids = ranked(x, params.top_k)
    cum = np.cumsum(np.exp(x[ids] - x[ids[0]]))
    near = []
    if params.top_p < 1.0:
        near.append(params.top_p * cum[-1])
        cum = cum[:int(np.searchsorted(cum, params.top_p * cum[-1], side="left")) + 1]
    near.append(uniform(params.seed, pos) * cum[-1])
    return any(np.min(np.abs(cum - v)) <= eps * cum[-1] for v in near)


def compare_trials(cp, ops, make_logits, kw, V, trials, seed):
    """Fresh logits per trial; every unambiguous draw must match NumPy; returns how many were compared."""
    from cugraphllm.sampling import SamplingParams, sample
    rng = np.random.default_rng(seed)
    compared = 0
    for trial in range(trials):
        logits = make_logits(rng, V).astype(np.float32)
        pos = int(rng.integers(0, S - 1))
        hist0 = rng.integers(0, V, S + 1).astype(np.int32)
        params = SamplingParams(seed=int(rng.integers(0, 2**63)), **kw)
        history = hist0[:pos + 1].tolist()
        got = gpu_sample_v(cp, ops, logits, params, pos, hist0)
        clean = np.where(np.isnan(logits), -np.inf, logits)  # the device reads NaN as -inf (sampling.cu)
        if ambiguous(clean, params, history, pos + 1):
            continue
        want = sample(clean, params, history, pos + 1)
        assert got == want, f"trial {trial}: gpu {got} numpy {want} ({kw}, V={V})"
        compared += 1
    return compared


def gaussian(rng, V):
    return rng.standard_normal(V) * 2.5


def few_values(rng, V):
    """Four distinct values: bins of V/4 exact ties, far above SAMPLE_CAP (the radix fallback)."""
    return rng.integers(0, 4, V) * 0.75


def half_tied(rng, V):
    """Half the vocabulary at one value near the top, the rest spread: one huge bin, many small ones."""
    x = rng.standard_normal(V) * 2.0
    x[rng.random(V) < 0.5] = 1.5
    return x


def with_nan_inf(rng, V):
    x = rng.standard_normal(V) * 3.0
    x[rng.integers(0, V, V // 50)] = np.nan
    x[rng.integers(0, V, V // 50)] = -np.inf
    return x


EDGE_GRID = [dict(temperature=1.0), dict(temperature=0.9, top_k=41, top_p=0.9, repetition_penalty=1.2),
             dict(temperature=1.0, top_p=0.6), dict(temperature=0.5, top_k=2), dict(temperature=1.0, top_p=0.01)]


@pytest.mark.parametrize("V", [97, 769, 4096, 4097, 32000, 50257])
@pytest.mark.parametrize("kw", EDGE_GRID, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_sample_vocab_sizes(cp, ops, V, kw):
    """One block (V <= 4096), a last block of one logit (4097), LLaMA-2 and GPT-2 vocabularies."""
    assert compare_trials(cp, ops, gaussian, kw, V, trials=6, seed=V) >= 4


@pytest.mark.parametrize("make", [few_values, half_tied, with_nan_inf], ids=lambda f: f.__name__)
@pytest.mark.parametrize("kw", EDGE_GRID + [dict(temperature=1.2, top_k=20000), dict(temperature=1.0, top_k=31999),
                                            dict(temperature=1.0, top_k=40000)],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_sample_ties_and_non_finite(cp, ops, make, kw):
    assert compare_trials(cp, ops, make, kw, 32000, trials=6, seed=len(str(kw))) >= 4


@pytest.mark.parametrize("temperature", [1e3, 1e-3])
def test_sample_extreme_temperatures(cp, ops, temperature):
    """1e3 squeezes every logit into a few bins (fallback); 1e-3 leaves one element with mass."""
    kw = dict(temperature=temperature, top_p=0.95)
    assert compare_trials(cp, ops, gaussian, kw, 32000, trials=6, seed=3) >= 4


def test_sample_all_masked(cp, ops):
    """Every logit NaN or -inf: token 0, like argmax; hist and pos written."""
    from cugraphllm.sampling import SamplingParams
    logits = np.full(32000, -np.inf, np.float32)
    logits[::3] = np.nan
    t = gpu_sample_v(cp, ops, logits, SamplingParams(temperature=1.0, top_p=0.9, seed=5), 7, np.zeros(S + 1, np.int32))
    assert t == 0


def test_sample_workspace_reused_and_counter_reset(cp, ops):
    """One workspace per logits buffer; the last-block ticket counter is 0 after every launch."""
    from cugraphllm.sampling import SamplingParams
    V = 32000
    logits = cp.asarray(np.random.default_rng(1).standard_normal((1, V)).astype(np.float32))
    w = ops.sample_workspace(logits)
    assert ops.sample_workspace(logits) is w and w.blocks == -(-V // ops.SAMPLE_CHUNK)
    token, hist, dpos, n, _ = selection_state(cp, 10)
    p = cp.asarray(ops.sampling_params_array(SamplingParams(temperature=1.0, top_k=50, seed=9)))
    tokens = []
    for _ in range(3):
        dpos.fill(10)
        ops.sample(token, hist, dpos, n, logits, p, cp.asarray([9], dtype=cp.uint64))
        tokens.append(int(token.get()[0]))
        assert int(w.ctr.get()[0]) == 0
    assert len(set(tokens)) == 1, "same inputs, same position: same token"


@pytest.mark.parametrize("make,kw", [(gaussian, dict(temperature=1.0, top_p=0.95)),         # per-step bin gathers
                                     (few_values, dict(temperature=1.0, top_k=100)),         # radix fallback
                                     (gaussian, dict(temperature=0.7, top_k=40, top_p=0.9))],  # head path
                         ids=["bins", "fallback", "head"])
def test_sample_graph_replay_matches_eager(cp, ops, make, kw):
    """Both sampler kernels captured in a graph: every replay (ticket counter reset by the last block) gives the
    eager token, which is the NumPy sampler's."""
    from cugraphllm.sampling import SamplingParams, sample
    V, pos = 32000, 300
    rng = np.random.default_rng(11)
    logits = make(rng, V).astype(np.float32)
    hist0 = rng.integers(0, V, S + 1).astype(np.int32)
    params = SamplingParams(seed=77, **kw)
    token, hist, dpos, n, _ = selection_state(cp, pos)
    hist.set(hist0)
    lg, p = cp.asarray(logits[None]), cp.asarray(ops.sampling_params_array(params))
    seed = cp.asarray([77], dtype=cp.uint64)
    stream = cp.cuda.Stream(non_blocking=True)
    cp.cuda.Device().synchronize()
    with stream:
        ops.sample(token, hist, dpos, n, lg, p, seed)  # eager (allocates the workspace before capture)
        stream.synchronize()
        eager = int(token.get()[0])
        stream.begin_capture()
        ops.sample(token, hist, dpos, n, lg, p, seed)
        graph = stream.end_capture()
        for _ in range(3):
            token.fill(-1)
            dpos.fill(pos)
            graph.launch(stream)
            stream.synchronize()
            assert int(token.get()[0]) == eager and int(dpos.get()[0]) == pos + 1
    assert int(ops.sample_workspace(lg).ctr.get()[0]) == 0
    if not ambiguous(logits, params, hist0[:pos + 1].tolist(), pos + 1):
        assert eager == sample(logits, params, hist0[:pos + 1].tolist(), pos + 1)
