"""The NumPy reference: each op against an independent float64 formulation, the cached forward against a full
recompute, NumpyEngine's protocol, and stories260K against golden_greedy.json."""
import json
import math

import numpy as np
import pytest
from conftest import stories_golden

from cugraphllm import reference as R
from cugraphllm.config import ModelConfig
from cugraphllm.errors import CugraphError, ContextLimitError
from cugraphllm.weights import LayerWeights, Weights

# awkward sizes, GQA with 3 query heads per KV head
GQA = ModelConfig(dim=60, n_layers=3, n_heads=6, n_kv_heads=2, vocab_size=97, hidden_dim=100, max_seq_len=40)


def random_weights(config: ModelConfig, seed: int, dtype=np.float32) -> Weights:
    rng = np.random.default_rng(seed)
    c = config

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols)) / math.sqrt(cols)).astype(dtype)

    def norm():
        return (1 + 0.1 * rng.standard_normal(c.dim)).astype(np.float32)

    layers = [LayerWeights(attention_norm=norm(), wqkv=mat(c.qkv_dim, c.dim), wo=mat(c.dim, c.dim),
                           ffn_norm=norm(), w13=mat(2 * c.hidden_dim, c.dim), w2=mat(c.dim, c.hidden_dim))
              for _ in range(c.n_layers)]
    emb = rng.standard_normal((c.vocab_size, c.dim)).astype(dtype)
    return Weights(tok_embeddings=emb, layers=layers, norm=norm(), output=mat(c.vocab_size, c.dim))


def greedy():
    from cugraphllm.sampling import SamplingParams
    return SamplingParams()


# ---- ops ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rmsnorm(dtype):
    rng = np.random.default_rng(1)
    x = (3 * rng.standard_normal((5, 37)) + 0.5).astype(dtype)
    w = rng.standard_normal(37).astype(np.float32)
    got = R.rmsnorm(x, w, 1e-5)
    x64 = x.astype(np.float64)
    want = np.array([row * w / math.sqrt(sum(v * v for v in row) / len(row) + 1e-5) for row in x64])
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


def test_rope_table_and_rotation():
    table = R.rope_table(23, 10, 500.0)
    assert table.shape == (23, 5, 2) and table.dtype == np.float64
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 10))
    positions = np.array([0, 7, 13, 22])
    got = R.apply_rope(x, positions, table)
    # independent: interleaved pairs as complex numbers times e^{i * pos * theta^(-2i/hd)}
    z = x[..., 0::2] + 1j * x[..., 1::2]
    angle = positions[:, None, None] * 500.0 ** (-np.arange(0, 10, 2) / 10)
    zr = z * np.exp(1j * angle)
    want = np.stack([zr.real, zr.imag], axis=-1).reshape(x.shape)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got[0], x[0])                       # position 0 is the identity
    got32 = R.apply_rope(x.astype(np.float32), positions, table)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, want, rtol=1e-5, atol=1e-6)


def test_silu():
    x = np.array([-1000.0, -30.0, -1.5, 0.0, 0.3, 7.0, 1000.0], dtype=np.float32)
    got = R.silu(x)
    want = [v / (1 + math.exp(-v)) if v > -700 else 0.0 for v in x.astype(np.float64)]
    assert got.dtype == np.float32 and np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-30)


def naive_attention(q, k, v, positions):
    """float64 loops: one query, one head at a time."""
    M, H, hd = q.shape
    n_rep = H // k.shape[1]
    out = np.zeros((M, H, hd))
    for m in range(M):
        for h in range(H):
            keys = range(positions[m] + 1)
            s = [float(q[m, h] @ k[j, h // n_rep]) / math.sqrt(hd) for j in keys]
            mx = max(s)
            e = [math.exp(a - mx) for a in s]
            out[m, h] = sum(e[j] * v[j, h // n_rep] for j in keys) / sum(e)
    return out


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("H,KVH", [(6, 2), (4, 4), (5, 1)])
def test_attention_gqa(dtype, tol, H, KVH):
    rng = np.random.default_rng(3)
    L, hd = 19, 10
    q = rng.standard_normal((5, H, hd)).astype(dtype)
    k = rng.standard_normal((L, KVH, hd)).astype(dtype)
    v = rng.standard_normal((L, KVH, hd)).astype(dtype)
    k[15:] = np.nan                                 # rows past the last query position must never be read
    positions = np.array([8, 9, 10, 11, 14])
    got = R.attention(q, k, v, positions)
    assert got.dtype == dtype and got.shape == (5, H, hd)
    np.testing.assert_allclose(got, naive_attention(q.astype(np.float64), k.astype(np.float64),
                                                    v.astype(np.float64), positions), rtol=tol, atol=tol)


# ---- forward --------------------------------------------------------------------------------------------------
def test_cached_decode_equals_full_recompute():
    w = random_weights(GQA, seed=4)
    rng = np.random.default_rng(5)
    tokens = rng.integers(0, GQA.vocab_size, size=23).tolist()
    full = R.forward(GQA, w, tokens)                                 # one prefill of everything
    kv = R.new_kv_cache(GQA, 30)
    steps = [R.forward(GQA, w, tokens[:9], 0, kv)]                   # prefill 9, then decode one at a time
    steps += [R.forward(GQA, w, [t], 9 + i, kv) for i, t in enumerate(tokens[9:])]
    cached = np.concatenate(steps)
    assert cached.shape == (23, GQA.vocab_size) and cached.dtype == np.float32
    assert np.abs(full).max() > 1                                    # not a trivial output
    np.testing.assert_allclose(cached, full, rtol=1e-5, atol=1e-5 * np.abs(full).max())


def test_forward_float64_matches_float32():
    w = random_weights(GQA, seed=6)
    tokens = [3, 96, 0, 41, 41, 7, 12]
    lo = R.forward(GQA, w, tokens)
    hi = R.forward(GQA, w, tokens, 0, R.new_kv_cache(GQA, 7, dtype=np.float64))
    assert hi.dtype == np.float64
    np.testing.assert_allclose(lo, hi, rtol=1e-4, atol=1e-4)


def test_forward_rejects_overflow():
    w = random_weights(GQA, seed=7)
    with pytest.raises(ContextLimitError):
        R.forward(GQA, w, [1, 2, 3], 2, R.new_kv_cache(GQA, 4))


# ---- engine ---------------------------------------------------------------------------------------------------
def test_engine_greedy_matches_forward_loop():
    w = random_weights(GQA, seed=8)
    prompt = [5, 17, 80, 2, 33]
    eng = R.NumpyEngine(GQA, w)
    got = list(eng.generate(prompt, greedy(), 12))
    ids, want = list(prompt), []
    for _ in range(12):
        nxt = int(np.argmax(R.forward(GQA, w, ids)[-1]))
        want.append(nxt)
        ids.append(nxt)
    assert got == want
    assert eng.tokens == prompt + got[:-1]                            # the last yielded token is not cached


def test_engine_stop_keeps_protocol_and_continues():
    w = random_weights(GQA, seed=9)
    eng = R.NumpyEngine(GQA, w)
    gen = eng.generate([1, 2, 3], greedy(), 50)
    first = [next(gen) for _ in range(4)]
    gen.close()
    assert eng.tokens == [1, 2, 3] + first[:3]
    # continuing from the cache (feeding the last yielded token) equals one uninterrupted run
    rest = list(eng.generate([first[3]], greedy(), 5))
    fresh = R.NumpyEngine(GQA, w)
    assert first + rest == list(fresh.generate([1, 2, 3], greedy(), 9))
    eng.truncate(2)
    assert eng.tokens == [1, 2]
    with pytest.raises(CugraphError):
        eng.truncate(3)
    eng.reset()
    assert eng.tokens == []


def test_engine_context_limit():
    w = random_weights(GQA, seed=10)
    eng = R.NumpyEngine(GQA, w, max_seq_len=10)
    assert eng.max_seq_len == 10
    with pytest.raises(ContextLimitError):
        eng.generate(list(range(11)), greedy(), 1)                    # raised at the call, before any work
    assert eng.tokens == []
    out = list(eng.generate(list(range(7)), greedy(), 100))
    assert len(out) == 4                                              # positions 7, 8, 9 and 10 (not cached)
    assert len(eng.tokens) == 10


# ---- stories260K ----------------------------------------------------------------------------------------------
def test_stories260k_golden(stories_dir):
    from cugraphllm.loader import load_checkpoint
    from cugraphllm.tokenizer import Tokenizer
    golden = stories_golden()
    ckpt = load_checkpoint(stories_dir / "stories260K.bin", tokenizer=stories_dir / "tok512.model")
    tok = Tokenizer.load(ckpt.tokenizer_path)
    prompt = tok.encode(golden["prompt"], bos=True)
    assert prompt == golden["prompt_ids"]
    logits = R.forward(ckpt.config, ckpt.weights, prompt)[-1]
    top5 = np.argsort(-logits, kind="stable")[:5]
    assert top5.tolist() == [i for i, _ in golden["first_step_top5_logits"]]
    np.testing.assert_allclose(logits[top5], [v for _, v in golden["first_step_top5_logits"]], atol=1e-4)
    eng = R.NumpyEngine(ckpt.config, ckpt.weights)
    assert list(eng.generate(prompt, greedy(), 60)) == golden["generated_ids"]
