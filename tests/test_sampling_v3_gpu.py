"""What the v3 draw kernel (kernels/sampling_v3.cuh, SAMPLER "new") leaves in its workspace, against NumPy on the
device's own processed logits: each block's keys sorted by bin (skey) and its inclusive bin counts (bend), the
global counts, and the finishing block's path (ctr[1]: 1 fast, 2 the v1 fallback). The token tests
(test_sampling_v2_gpu.py, for v2 and v3 against v1) cannot see a broken fast path: the exact fallback would still
choose the right token; these can."""
import numpy as np
import pytest

from sampler_model import CHUNK, NB, comp_keys, prepared
from test_sampling_gpu import few_values, gaussian, selection_state
from test_sampling_v2_gpu import peaked, use_sampler  # noqa: F401  (use_sampler: a fixture)

pytestmark = pytest.mark.gpu


def sample_v3(cp, ops, logits, kw, seed=7):
    """One v3 call on poisoned skey / bend / path; returns (token, workspace)."""
    from cugraphllm.sampling import SamplingParams
    lg = cp.asarray(logits[None])
    w = ops.sample_workspace(lg)
    w.skey.fill(np.uint64(0xFFFFFFFFFFFFFFFF))
    w.bend.fill(0xFFFF)
    w.ctr[1:] = 0
    token, hist, dpos, n, _ = selection_state(cp, 5)
    p = cp.asarray(ops.sampling_params_array(SamplingParams(seed=seed, **kw)))
    ops.sample(token, hist, dpos, n, lg, p, cp.asarray([seed], dtype=cp.uint64))
    return int(token.get()[0]), w


def check_layout(w, V):
    s = w.s.get()
    _, _, bins, _, _ = prepared(s)
    comp = comp_keys(s)
    skey, bend = w.skey.get(), w.bend.get().astype(np.int64).reshape(-1, NB)
    np.testing.assert_array_equal(w.bcnt.get(), np.bincount(bins, minlength=NB))
    for g in range(-(-V // CHUNK)):
        lo, hi = g * CHUNK, min(V, (g + 1) * CHUNK)
        np.testing.assert_array_equal(bend[g], np.cumsum(np.bincount(bins[lo:hi], minlength=NB)), err_msg=f"block {g}")
        keys = skey[lo:hi]
        idx = (np.uint64(0xFFFFFFFF) - (keys & np.uint64(0xFFFFFFFF))).astype(np.int64)
        assert np.all((idx >= lo) & (idx < hi)), f"block {g}: a key from another block or a poisoned slot"
        np.testing.assert_array_equal(np.sort(keys), np.sort(comp[lo:hi]), err_msg=f"block {g}")
        assert np.all(np.diff(bins[idx]) >= 0), f"block {g}: keys not in bin order"


@pytest.mark.parametrize("V", [4097, 32000, 128256])
@pytest.mark.parametrize("make", [gaussian, peaked], ids=lambda f: f.__name__)
@pytest.mark.parametrize("kw", [dict(temperature=0.8, top_p=0.9), dict(temperature=0.8, top_k=40),
                                dict(temperature=1.0, top_k=50, top_p=0.95)], ids=["topp", "topk", "both"])
def test_v3_layout_and_fast_path(cp, ops, use_sampler, V, make, kw):  # noqa: F811
    """Ordinary logits: the layout is exact and the finishing block takes the fast path, with v1's token."""
    use_sampler("new")
    logits = make(np.random.default_rng(V + len(kw)), V).astype(np.float32)
    tok, w = sample_v3(cp, ops, logits, kw)
    check_layout(w, V)
    assert int(w.ctr.get()[1]) == 1, "v3 fell back to the v1 finishing code on ordinary logits"
    assert int(w.ctr.get()[0]) == 0
    use_sampler("old")
    assert sample_v3(cp, ops, logits, kw)[0] == tok


def test_v3_ties_take_the_fallback(cp, ops, use_sampler):  # noqa: F811
    """Thousands of exact ties (a region over S2_REGION_CAP): the fallback, flagged, with v1's token."""
    use_sampler("new")
    logits = few_values(np.random.default_rng(2), 32000).astype(np.float32)
    kw = dict(temperature=1.0, top_p=0.9)
    tok, w = sample_v3(cp, ops, logits, kw)
    check_layout(w, 32000)
    assert int(w.ctr.get()[1]) == 2
    use_sampler("old")
    assert sample_v3(cp, ops, logits, kw)[0] == tok
