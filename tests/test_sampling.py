"""Sampling: parameter checks, the counter-based draw, greedy/temperature/top-k/top-p/penalty rules against a
slow brute-force reference, statistics on a known distribution, and stop strings."""
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from cugraphllm.errors import ConfigError
from cugraphllm.sampling import (SamplingParams, StopChecker, apply_repetition_penalty, mix64, sample,
                                 uniform)

M64 = 2 ** 64


# ---- SamplingParams --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    dict(temperature=-0.1), dict(temperature=float("nan")), dict(temperature=float("inf")), dict(temperature="1"),
    dict(top_k=-1), dict(top_k=2.0), dict(top_k=True),
    dict(top_p=0.0), dict(top_p=1.0001), dict(top_p=-0.5),
    dict(repetition_penalty=0.0), dict(repetition_penalty=-1.2),
    dict(seed=-1), dict(seed=M64), dict(seed=1.5), dict(seed=None),
])
def test_params_reject(kwargs):
    with pytest.raises(ConfigError) as err:
        SamplingParams(**kwargs)
    msg = str(err.value)
    assert "\n" not in msg and next(iter(kwargs)) in msg


def test_params_defaults_and_normalized_types():
    p = SamplingParams()
    assert (p.temperature, p.top_k, p.top_p, p.repetition_penalty, p.seed) == (0.0, 0, 1.0, 1.0, 0) and p.greedy
    q = SamplingParams(temperature=1, top_k=np.int64(5), top_p=1, seed=np.uint64(M64 - 1))
    assert type(q.temperature) is float and type(q.top_k) is int and type(q.seed) is int and not q.greedy
    with pytest.raises(Exception):
        q.temperature = 2.0  # frozen


# ---- uniform(seed, pos) ----------------------------------------------------------------------------------------

def test_uniform_by_hand():
    # seed 0, pos 0: z = 0 * golden + 0 + 1 = 1, then the splitmix64 finalizer, step by step
    z = 1
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % M64
    z ^= z >> 31
    assert uniform(0, 0) == (z >> 40) / 2 ** 24
    # seed 3, pos 10: the seed enters multiplied by the golden-ratio constant, wrapping mod 2**64
    z = (3 * 0x9E3779B97F4A7C15 + 11) % M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % M64
    z ^= z >> 31
    assert uniform(3, 10) == (z >> 40) / 2 ** 24


def test_uniform_matches_splitmix64_vectors():
    # splitmix64 seeded with 0 outputs mix64(k * golden): e220a8397b1dcdaf, 6e789e6aa1b965f4, 06c45d188009454f
    expected = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    assert [mix64(k * 0x9E3779B97F4A7C15) for k in (1, 2, 3)] == expected
    # uniform(k, 2**64 - 1) hashes exactly k * golden (pos + 1 wraps to 0)
    assert [uniform(k, M64 - 1) for k in (1, 2, 3)] == [(e >> 40) / 2 ** 24 for e in expected]


def test_uniform_pinned_values():
    # the GPU sampler must reproduce these bit for bit (24-bit values, exact in float32)
    assert [uniform(0, p) for p in range(4)] == [0.33816659450531006, 0.8586764335632324,
                                                 0.11845958232879639, 0.7173529267311096]
    for s, p in [(0, 0), (12345, 678), (M64 - 1, 4095)]:
        u = uniform(s, p)
        assert 0.0 <= u < 1.0 and float(np.float32(u)) == u and (u * 2 ** 24).is_integer()


def test_uniform_is_uniform():
    u = np.array([uniform(s, p) for s in range(4) for p in range(25000)])
    counts, _ = np.histogram(u, bins=20, range=(0, 1))
    chi2 = ((counts - len(u) / 20) ** 2 / (len(u) / 20)).sum()
    assert chi2 < 50  # 19 degrees of freedom: p < 1e-4 of failing by chance
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.02  # consecutive positions uncorrelated


# ---- a brute-force reference of the rule ------------------------------------------------------------------------

def slow_sample(logits, params, history, pos):
    """The DESIGN.md rule with Python floats and sorted tuples."""
    x = [float(v) for v in logits]
    for i in set(history):
        if 0 <= i < len(x):
            x[i] = x[i] / params.repetition_penalty if x[i] > 0 else x[i] * params.repetition_penalty
    if params.temperature == 0:
        return max(range(len(x)), key=lambda i: (x[i], -i))
    x = [v / params.temperature for v in x]
    order = sorted(range(len(x)), key=lambda i: (-x[i], i))
    if params.top_k:
        order = order[:params.top_k]
    p = [math.exp(x[i] - x[order[0]]) for i in order]
    if params.top_p < 1:
        total, acc = sum(p), 0.0
        for n, q in enumerate(p, 1):
            acc += q
            if acc >= params.top_p * total:
                break
        order, p = order[:n], p[:n]
    target, acc = uniform(params.seed, pos) * sum(p), 0.0
    for i, q in zip(order, p):
        acc += q
        if acc > target:
            return i
    return order[-1]


def test_matches_slow_reference():
    rng = np.random.default_rng(11)
    for trial in range(300):
        v = int(rng.integers(2, 300)) if trial % 4 else int(rng.integers(1000, 5000))
        logits = rng.normal(0, 3, v).astype(np.float32)
        if trial % 2 == 0:
            logits = np.round(logits)  # many ties: ranked by ascending id (a plain quicksort would not)
        top_k = int(rng.integers(0, v + 3)) if rng.random() < 0.5 else 0
        params = SamplingParams(temperature=float(rng.choice([0.0, 0.3, 1.0, 1.7])), top_k=top_k,
                                top_p=float(rng.choice([1.0, 0.9, 0.5, 0.05])),
                                repetition_penalty=float(rng.choice([1.0, 1.3, 0.8])),
                                seed=int(rng.integers(0, 2**63)))
        history = list(rng.integers(-2, v + 2, int(rng.integers(0, 20))))
        pos = int(rng.integers(0, 5000))
        assert sample(logits, params, history, pos) == slow_sample(logits, params, history, pos), trial


# ---- rules ------------------------------------------------------------------------------------------------------

def test_greedy_ties_lowest_id():
    logits = np.array([0.5, 3.0, -1.0, 3.0, 3.0], np.float32)
    for seed in range(5):
        assert sample(logits, SamplingParams(seed=seed, top_k=2, top_p=0.3), [], seed) == 1


def test_same_seed_same_draws_other_seed_differs():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 1, 517)
    draws = lambda seed: [sample(logits, SamplingParams(temperature=1.0, seed=seed), [], p) for p in range(200)]
    a = draws(42)
    assert a == draws(42)
    assert a != draws(43)
    assert len(set(a)) > 50  # a flat distribution really is sampled


def test_top_k_1_and_tiny_top_p_are_greedy():
    rng = np.random.default_rng(5)
    for _ in range(50):
        logits = rng.normal(0, 2, 1001).astype(np.float32)
        best = int(np.argmax(logits))
        for p in range(5):
            assert sample(logits, SamplingParams(temperature=1.5, top_k=1, seed=p), [], p) == best
            assert sample(logits, SamplingParams(temperature=1.5, top_p=1e-9, seed=p), [], p) == best


def _frequencies(logits, params, n=20000):
    ids = [sample(logits, params, [], p) for p in range(n)]
    return np.bincount(ids, minlength=len(logits)) / n


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_temperature_matches_softmax(temperature):
    logits = np.array([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])
    n = 20000
    freq = _frequencies(logits, SamplingParams(temperature=temperature, seed=9), n)
    want = _softmax(logits / temperature)
    sigma = np.sqrt(want * (1 - want) / n)
    assert np.all(np.abs(freq - want) < 5 * sigma + 1e-4), (freq, want)


def test_higher_temperature_flattens():
    logits = np.array([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])
    entropy = lambda f: -(f[f > 0] * np.log(f[f > 0])).sum()
    e = [entropy(_frequencies(logits, SamplingParams(temperature=t, seed=1), 5000)) for t in (0.3, 1.0, 3.0)]
    assert e[0] < e[1] < e[2]


def test_top_k_and_top_p_keep_the_right_set():
    probs = np.array([0.05, 0.5, 0.15, 0.3])         # ranked: id 1, 3, 2, 0
    logits = np.log(probs)
    f = _frequencies(logits, SamplingParams(temperature=1.0, top_k=2, seed=4), 8000)
    assert f[0] == f[2] == 0 and abs(f[1] - 0.5 / 0.8) < 0.03
    f = _frequencies(logits, SamplingParams(temperature=1.0, top_p=0.75, seed=4), 8000)
    assert f[0] == f[2] == 0 and abs(f[3] - 0.3 / 0.8) < 0.03   # 0.5 < 0.75 <= 0.8: two ids kept
    f = _frequencies(logits, SamplingParams(temperature=1.0, top_p=0.85, seed=4), 8000)
    assert f[0] == 0 and f[2] > 0.1                          # 0.8 < 0.85 <= 0.95: three ids kept


def test_repetition_penalty_rule():
    logits = np.array([2.0, -2.0, 1.0, 0.0, 3.0], np.float32)
    out = apply_repetition_penalty(logits, [0, 1, 1, 1, 3, 99, -1], 2.0)
    np.testing.assert_array_equal(out, [1.0, -4.0, 1.0, 0.0, 3.0])  # once per distinct id; bad ids ignored
    assert logits[0] == 2.0  # the caller's array is untouched
    # greedy after the penalty: the repeated best token gives way
    logits = np.array([0.0, 5.0, 4.0])
    assert sample(logits, SamplingParams(), [1], 3) == 1
    assert sample(logits, SamplingParams(repetition_penalty=1.5), [1], 3) == 2
    assert sample(logits, SamplingParams(repetition_penalty=1.5), [], 3) == 1


# ---- stop strings -----------------------------------------------------------------------------------------------

def _run_stop(stops, chunks):
    sc, out, stopped = StopChecker(stops), [], False
    for c in chunks:
        text, stopped = sc.push(c)
        out.append(text)
        if stopped:
            break
    if not stopped:
        out.append(sc.flush())
    return out, stopped, sc


def test_stop_split_across_chunks():
    out, stopped, sc = _run_stop(["\nUser:"], ["Hello", " there\n", "Us", "er: hi"])
    assert out == ["Hello", " there", "", ""] and stopped and sc.match == "\nUser:"
    assert sc.push("more") == ("", True)


def test_stop_false_alarm_is_released():
    out, stopped, _ = _run_stop(["</end>"], ["a</e", "nd", "ing>", " z"])
    assert "".join(out) == "a</ending> z" and not stopped
    assert out[0] == "a"  # "</e" was held until it could no longer be a stop string


def test_stop_earliest_of_several_and_overlaps():
    out, stopped, sc = _run_stop(["bc", "aab"], ["xaaa", "bc"])
    assert "".join(out) == "xa" and stopped and sc.match == "aab"
    for chunks in (["\naa"], ["\na", "a"]):  # the first stop string to complete wins, however text is chunked
        out, stopped, sc = _run_stop(["a", "\naa"], chunks)
        assert "".join(out) == "\n" and sc.match == "a"
    out, stopped, sc = _run_stop(["b", "ab"], ["xab"])  # both complete at once: the longer one wins
    assert "".join(out) == "x" and sc.match == "ab"
    out, stopped, _ = _run_stop(["###"], ["##", "#"])
    assert out == ["", ""] and stopped
    out, stopped, _ = _run_stop([], ["any", "thing"])
    assert out == ["any", "thing", ""] and not stopped
    out, stopped, _ = _run_stop("Q:", ["A Q", ":"])  # one string is one stop string
    assert "".join(out) == "A " and stopped


def test_stop_rejects_empty():
    for bad in ([""], ["ok", ""], [None]):
        with pytest.raises(ConfigError):
            StopChecker(bad)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="ab\nc", max_size=40), stops=st.lists(st.text(alphabet="ab\nc", min_size=1, max_size=4),
       max_size=3), cuts=st.lists(st.integers(0, 40), max_size=8))
def test_stop_property(text, stops, cuts):
    # streamed output == text before the first stop string to complete (character by character), and nothing
    # shown is ever taken back
    want, found = text, False
    for k in range(1, len(text) + 1):
        ending = [len(s) for s in stops if text[:k].endswith(s)]
        if ending:
            want, found = text[:k - max(ending)], True
            break
    bounds = sorted(set([0, len(text)] + [c for c in cuts if c <= len(text)]))
    sc, shown, stopped = StopChecker(stops), "", False
    for a, b in zip(bounds, bounds[1:]):
        emitted, stopped = sc.push(text[a:b])
        shown += emitted
        assert want.startswith(shown)
        if stopped:
            break
    if not stopped:
        shown += sc.flush()
    assert shown == want and stopped == bool(found)


def test_stop_holdback_is_short():
    # only a possible stop-string start is held, never more than len(longest) - 1 characters
    sc = StopChecker(["<|endoftext|>"])
    rnd = random.Random(2)
    for _ in range(200):
        text, stopped = sc.push(rnd.choice(["<", "|", "end", "x", " ", "<|end"]))
        assert not stopped and len(sc._held) <= 12
