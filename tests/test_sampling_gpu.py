"""Token selection (kernels/sampling.cu): argmax and the multi-block sampler against the NumPy sampler
(cugraphllm/sampling.py), which must give the same token for every draw."""
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
