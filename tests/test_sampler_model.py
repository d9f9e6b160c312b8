"""The finishing logic of sample_draw_v2 (kernels/sampling_v2.cuh; model: tests/sampler_model.py): bracketing top-k,
top-p and the draw from the bin histogram alone, then ranking only the gathered regions, must choose the token the plain
rule chooses on the same integers, and must take that fast path (not the fallback) on ordinary logits, flat and
peaked, at LLaMA-2 and LLaMA-3 vocabulary sizes. The rule itself (`direct`) is checked against the NumPy sampler.
sample_draw_v3 (kernels/sampling_v3.cuh) keeps that logic and finds the regions' elements through per-block
bin-sorted keys: its layout and slice reads are checked here too."""
import numpy as np
import pytest

from cugraphllm.sampling import SamplingParams, sample, uniform
from sampler_model import NB, block_layout, bracketed, comp_keys, direct, gather_slices, key_logit, prepared


def flat(rng, V):
    return rng.standard_normal(V) * 2.5


def peaked(rng, V):
    return rng.standard_normal(V) * 8.0


def few_values(rng, V):
    return rng.integers(0, 4, V) * 0.75


def with_inf(rng, V):
    x = rng.standard_normal(V) * 3.0
    x[rng.integers(0, V, V // 50)] = -np.inf
    return x


def processed(x, temperature):
    """The device's s: float32 logits / float32 temperature."""
    return (np.asarray(x, np.float32) / np.float32(temperature)).astype(np.float32)


PARAMS = [(0, 1.0), (40, 1.0), (0, 0.9), (41, 0.9), (2, 1.0), (0, 0.01), (1000, 0.95), (31999, 1.0)]


@pytest.mark.parametrize("make", [flat, peaked, few_values, with_inf], ids=lambda f: f.__name__)
@pytest.mark.parametrize("V", [97, 4097, 32000])
def test_bracketed_matches_the_rule(make, V):
    rng = np.random.default_rng(V + len(make.__name__))
    for top_k, top_p in PARAMS:
        for _ in range(2):
            s = processed(make(rng, V), rng.uniform(0.5, 1.5))
            u24 = int(rng.integers(0, 1 << 24))
            got = bracketed(s, top_k, np.float32(top_p), u24)
            # fallback expected: thousands of exact ties; a top-k cut among the -inf logits, whose bin (the
            # last) also holds finite logits with a little mass and is larger than a region may be
            fallback_ok = make is few_values or (make is with_inf and top_k >= V - V // 25)
            assert got is not None or fallback_ok, (top_k, top_p, "ordinary logits must take the fast path")
            if got is not None:
                assert got == direct(s, top_k, np.float32(top_p), u24), (top_k, top_p, u24)


@pytest.mark.parametrize("V", [32000, 128256])
@pytest.mark.parametrize("make", [flat, peaked], ids=lambda f: f.__name__)
@pytest.mark.parametrize("top_k,top_p", [(0, 0.9), (40, 1.0)], ids=["top_p0.9", "top_k40"])
def test_common_cases_take_the_fast_path(V, make, top_k, top_p):
    """T 0.8 with top-p 0.9 or top-k 40 (the decode bench's cases): never the fallback."""
    rng = np.random.default_rng(V + top_k)
    for _ in range(3):
        s = processed(make(rng, V) / 2.5, 0.8)
        u24 = int(rng.integers(0, 1 << 24))
        got = bracketed(s, top_k, np.float32(top_p), u24)
        assert got is not None and got == direct(s, top_k, np.float32(top_p), u24)


def test_the_rule_is_the_numpy_sampler():
    """direct (fixed-point masses, comp order) = sampling.sample, except where a cumulative sum lies within 1e-6
    (relative) of a target (float64 vs the device's float32 / fixed point)."""
    rng = np.random.default_rng(7)
    V, compared = 3001, 0
    for top_k, top_p in PARAMS[:7]:
        for _ in range(3):
            x = (rng.standard_normal(V) * 2.0).astype(np.float32)
            p = SamplingParams(temperature=0.9, top_k=top_k, top_p=top_p, seed=int(rng.integers(0, 2**32)))
            pos = int(rng.integers(0, 1000))
            s = processed(x, p.temperature)
            xs = s.astype(np.float64)
            order = np.lexsort((np.arange(V), -xs))
            cum = np.cumsum(np.exp(xs[order] - xs[order[0]]))
            if top_k and top_k < V:
                cum = cum[:top_k]
            near = []
            if top_p < 1.0:
                near.append(np.min(np.abs(cum - top_p * cum[-1])) / cum[-1])
                cum = cum[:int(np.searchsorted(cum, top_p * cum[-1])) + 1]
            near.append(np.min(np.abs(cum - uniform(p.seed, pos) * cum[-1])) / cum[-1])
            if min(near) <= 1e-6:
                continue
            want = sample(x, p, [], pos)
            assert direct(s, top_k, np.float32(top_p), int(uniform(p.seed, pos) * (1 << 24))) == want
            compared += 1
    assert compared >= 15


def test_model_constants_are_the_kernels():
    """The model's bins, mass range and capacities are the kernels' (sampling.cu, sampling_v2.cuh)."""
    import re

    import sampler_model as sm
    from cugraphllm.gpu.cuda_kernels import kernel_dir
    src = (kernel_dir() / "sampling.cu").read_text() + (kernel_dir() / "sampling_v2.cuh").read_text()

    def define(name):
        return float(re.search(rf"#define {name} ([0-9.]+)", src).group(1))
    assert (define("SAMPLE_NB"), define("SAMPLE_DMAX")) == (sm.NB, float(sm.DMAX))
    assert (define("S2_REGION_CAP"), define("S2_LIST_CAP")) == (sm.REGION_CAP, sm.LIST_CAP)


# ---- v3 (sampling_v3.cuh): per-block bin-sorted keys, read per (region, block) ------------------------------
@pytest.mark.parametrize("V", [97, 1025, 4097, 32000])
def test_v3_slices_gather_exactly_the_bins(V):
    """Every bin range [lo, hi] read through block_layout / gather_slices gives exactly the keys whose bin lies in
    it, whatever the order within a bin (shuffled), at vocabularies that end inside a block."""
    rng = np.random.default_rng(V)
    x = (rng.standard_normal(V) * rng.choice([1.0, 8.0])).astype(np.float32)
    x[rng.integers(0, V, V // 40)] = -np.inf
    _, _, bins, _, comp = prepared(x)
    skey, bend = block_layout(bins, comp, rng)
    assert bend[-1, -1] == V - (bend.shape[0] - 1) * 1024
    ranges = [(0, 0), (0, NB - 1), (NB - 1, NB - 1)] + [tuple(sorted(rng.integers(0, NB, 2))) for _ in range(40)]
    ranges += [(int(b), int(b)) for b in rng.choice(bins, 10)]
    for lo, hi in ranges:
        got = np.sort(gather_slices(skey, bend, lo, hi))
        want = np.sort(comp[(bins >= lo) & (bins <= hi)])
        np.testing.assert_array_equal(got, want, err_msg=f"bins {lo}..{hi}")


def test_v3_key_gives_the_logit_bit_for_bit():
    """The finishing block recomputes each gathered mass from the key's logit: it must be the same float32 bits
    (signed zeros, infinities, subnormals, extremes)."""
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.standard_normal(500) * 30.0, [0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 3.4e38,
                                                           -3.4e38, 1.17e-38]]).astype(np.float32)
    rng.shuffle(x)
    np.testing.assert_array_equal(key_logit(comp_keys(x)).view(np.uint32), x.view(np.uint32))


@pytest.mark.parametrize("make", [flat, peaked, with_inf], ids=lambda f: f.__name__)
@pytest.mark.parametrize("V", [97, 4097, 32000])
def test_v3_bracketed_matches_the_rule(make, V):
    """The v3 gather feeds the same ranking: the same token as the rule and as v2's gather, same fallbacks."""
    rng = np.random.default_rng(V * 3 + len(make.__name__))
    for top_k, top_p in PARAMS:
        s = processed(make(rng, V), rng.uniform(0.5, 1.5))
        u24 = int(rng.integers(0, 1 << 24))
        got = bracketed(s, top_k, np.float32(top_p), u24, v3=True)
        assert got == bracketed(s, top_k, np.float32(top_p), u24), (top_k, top_p, u24)
        if got is not None:
            assert got == direct(s, top_k, np.float32(top_p), u24), (top_k, top_p, u24)
