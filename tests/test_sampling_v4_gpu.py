"""What the one-block sampler (kernels/sampling_v4.cuh, SAMPLER "one") leaves in its workspace and which path it
takes: the processed logits it writes to s equal, bit for bit, those v3's prep kernel writes (same penalty,
temperature and NaN rule), ordinary logits take the fast path (ctr[1] = 1) and thousands of exact ties the exact v1
fallback (ctr[1] = 2), each with v1's token; the token tests against v1 and NumPy are test_sampling_v2_gpu.py's
(IMPLS). A broken fast path would hide behind the fallback there; the path flag here cannot."""
import numpy as np
import pytest

from test_sampling_gpu import few_values, gaussian, selection_state
from test_sampling_v2_gpu import peaked, use_sampler  # noqa: F401  (use_sampler: a fixture)

pytestmark = pytest.mark.gpu


def sample_once(cp, ops, logits, kw, pos=5, seed=7):
    """One call on a poisoned s and path flag; returns (token, s, path)."""
    from cugraphllm.sampling import SamplingParams
    lg = cp.asarray(logits[None])
    w = ops.sample_workspace(lg)
    w.s.fill(np.nan)
    w.ctr[1:] = 0
    token, hist, dpos, n, _ = selection_state(cp, pos)
    hist.set(np.arange(hist.size, dtype=np.int32) * 7 % logits.size)
    p = cp.asarray(ops.sampling_params_array(SamplingParams(seed=seed, **kw)))
    ops.sample(token, hist, dpos, n, lg, p, cp.asarray([seed], dtype=cp.uint64))
    return int(token.get()[0]), w.s.get()[:logits.size].copy(), int(w.ctr.get()[1])


KWS = [dict(temperature=0.8, top_p=0.9), dict(temperature=0.8, top_k=40),
       dict(temperature=1.1, top_k=50, top_p=0.95, repetition_penalty=1.2)]


@pytest.mark.parametrize("V", [97, 4097, 32000, 32768])
@pytest.mark.parametrize("make", [gaussian, peaked], ids=lambda f: f.__name__)
@pytest.mark.parametrize("kw", KWS, ids=["topp", "topk", "both_pen"])
def test_one_writes_v3s_logits_and_takes_the_fast_path(cp, ops, use_sampler, V, make, kw):  # noqa: F811
    logits = make(np.random.default_rng(V + len(kw)), V).astype(np.float32)
    logits[::97] = np.nan  # NaN -> -inf, the same in every implementation
    use_sampler("new")
    _, s_new, _ = sample_once(cp, ops, logits, kw)
    use_sampler("one")
    tok, s_one, path = sample_once(cp, ops, logits, kw)
    assert np.array_equal(s_one.view(np.uint32), s_new.view(np.uint32)), "processed logits differ from v3's"
    assert path == 1, "the one-block sampler fell back to the v1 finishing code on ordinary logits"
    use_sampler("old")
    assert sample_once(cp, ops, logits, kw)[0] == tok


def test_one_ties_take_the_fallback(cp, ops, use_sampler):  # noqa: F811
    """Thousands of exact ties (a region over S2_REGION_CAP): the fallback, flagged, with v1's token."""
    logits = few_values(np.random.default_rng(2), 32000).astype(np.float32)
    kw = dict(temperature=1.0, top_p=0.9)
    use_sampler("one")
    tok, _, path = sample_once(cp, ops, logits, kw)
    assert path == 2
    use_sampler("old")
    assert sample_once(cp, ops, logits, kw)[0] == tok


def test_auto_takes_one_up_to_its_limit(cp, ops, use_sampler):  # noqa: F811
    """SAMPLER "auto" (the default): the one-block kernel at 32768 logits (it writes the path flag, v3 writes its
    own), v3 above (its bins are in the workspace: bcnt sums to V)."""
    from cugraphllm.gpu import ops_select
    use_sampler("auto")
    for V, one in ((ops_select.ONE_MAX_V, True), (ops_select.ONE_MAX_V + 1, False)):
        logits = gaussian(np.random.default_rng(V), V).astype(np.float32)
        lg = cp.asarray(logits[None])
        w = ops.sample_workspace(lg)
        w.bcnt.fill(0)
        sample_once(cp, ops, logits, dict(temperature=0.8, top_p=0.9))
        assert (int(w.bcnt.get().sum()) == V) == (not one), f"V={V}"
