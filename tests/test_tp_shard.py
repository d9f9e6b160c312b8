"""Tensor-parallel sharding (gpu/tp_shard.py) simulated in NumPy: split matmuls plus sums equal the unsplit ones
(float64, random weights, the 70B head structure and 7B widths), a sharded forward gives TP=1's greedy tokens on
stories260K (8 heads, 4 KV heads) and on a GQA model whose KV heads are replicated, and a lazy shard reads only its
own slice of the checkpoint."""
import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.config import ModelConfig
from cugraphllm.errors import ConfigError
from cugraphllm.gpu import tp_shard as tp
from cugraphllm.loader import dummy_weights, load_checkpoint
from cugraphllm.weights import LayerWeights

L70 = ModelConfig.from_preset("llama-2-70b")


def test_plan_70b():
    assert [tp.plan(L70, r, 2).q_heads for r in range(2)] == [(0, 32), (32, 64)]
    assert [tp.plan(L70, r, 2).kv_heads for r in range(2)] == [(0, 4), (4, 8)]
    assert tp.plan(L70, 1, 2).hidden == (14336, 28672) and tp.plan(L70, 1, 2).vocab == (16000, 32000)
    assert tp.plan(L70, 1, 2).q_cols == (4096, 8192)
    for n in (1, 2, 4, 8, 16, 32, 64):
        for r in range(n):
            p = tp.plan(L70, r, n)
            assert p.n_heads == 64 // n and p.kv_replicated == (n > 8)
            assert p.n_kv_heads == (1 if n > 8 else 8 // n)
            # every local query head reads a local KV head (GQA: h // n_rep)
            assert {h // L70.n_rep for h in range(*p.q_heads)} == set(range(*p.kv_heads))
            assert p.n_heads % p.n_kv_heads == 0


@pytest.mark.parametrize("cfg, n, what", [(L70, 3, "n_heads 64"), (L70, 128, "n_heads 64"),
                                          (L70.with_(hidden_dim=28670), 4, "hidden_dim 28670"),
                                          (ModelConfig(dim=96, n_layers=1, n_heads=12, n_kv_heads=6, vocab_size=50,
                                                       hidden_dim=64), 4, "n_kv_heads 6")])
def test_plan_refuses_what_cannot_split(cfg, n, what):
    with pytest.raises(ConfigError, match=what) as e:
        tp.plan(cfg, 0, n)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="not a valid rank"):
        tp.plan(L70, 2, 2)


def _random_layer(c: ModelConfig, rng, dtype=np.float64):
    def m(r, k):
        return rng.standard_normal((r, k), dtype=np.float32).astype(dtype) / np.sqrt(k)
    return LayerWeights(attention_norm=1 + 0.2 * rng.standard_normal(c.dim), wqkv=m(c.qkv_dim, c.dim),
                        wo=m(c.dim, c.dim), ffn_norm=1 + 0.2 * rng.standard_normal(c.dim),
                        w13=m(2 * c.hidden_dim, c.dim), w2=m(c.dim, c.hidden_dim))


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# the 70B head structure (64 heads, 8 KV heads) at head_dim 8, awkward hidden and vocabulary sizes
G70 = ModelConfig(dim=512, n_layers=1, n_heads=64, n_kv_heads=8, vocab_size=1003, hidden_dim=688)


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16])
def test_split_matmuls_sum_to_unsplit(n):
    c, rng = G70, np.random.default_rng(n)
    lw = _random_layer(c, rng)
    out = rng.standard_normal((c.vocab_size, c.dim)) / np.sqrt(c.dim)
    x = rng.standard_normal((3, c.dim))
    qkv = x @ lw.wqkv.T
    att = rng.standard_normal((3, c.dim))  # stands in for the attention output (heads concatenated)
    h13 = x @ lw.w13.T
    h = ref.silu(h13[:, :c.hidden_dim]) * h13[:, c.hidden_dim:]
    parts_o, parts_2, logits = [], [], []
    for r in range(n):
        p = tp.plan(c, r, n)
        s = tp.shard_layer(lw, c, p)
        hd, (q0, q1), (k0, k1) = c.head_dim, p.q_heads, p.kv_heads
        loc = x @ s.wqkv.T  # [q heads | k heads | v heads] of this rank
        want = np.concatenate([qkv[:, q0 * hd:q1 * hd], qkv[:, c.dim + k0 * hd:c.dim + k1 * hd],
                               qkv[:, c.dim + c.kv_dim + k0 * hd:c.dim + c.kv_dim + k1 * hd]], axis=1)
        assert loc.shape == (3, (p.n_heads + 2 * p.n_kv_heads) * hd) and _rel(loc, want) < 1e-13
        parts_o.append(att[:, slice(*p.q_cols)] @ s.wo.T)
        l13 = x @ s.w13.T
        fl = l13.shape[1] // 2
        assert _rel(l13, np.concatenate([h13[:, slice(*p.hidden)], h13[:, c.hidden_dim + p.hidden[0]:
                                                                          c.hidden_dim + p.hidden[1]]], 1)) < 1e-13
        parts_2.append((ref.silu(l13[:, :fl]) * l13[:, fl:]) @ s.w2.T)
        logits.append(x @ tp.take_rows(out, [p.vocab]).T)
    assert _rel(sum(parts_o), att @ lw.wo.T) < 1e-13    # wo: partial sums, all-reduced
    assert _rel(sum(parts_2), h @ lw.w2.T) < 1e-13      # w2: partial sums, all-reduced
    np.testing.assert_allclose(np.concatenate(logits, axis=1), x @ out.T, rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def attn_7b():
    """wqkv and wo of a LLaMA-2-7B layer (float32, random); x [2, D]."""
    c = ModelConfig.from_preset("llama-2-7b")
    rng = np.random.default_rng(7)
    return (c, rng.standard_normal((c.qkv_dim, c.dim), dtype=np.float32),
            rng.standard_normal((c.dim, c.dim), dtype=np.float32), rng.standard_normal((2, c.dim), dtype=np.float32))


@pytest.mark.parametrize("n", [2, 4])
def test_split_attention_matmuls_at_7b_width(attn_7b, n):
    c, wqkv, wo, x = attn_7b
    cfg = c.with_(hidden_dim=n)  # the FFN is not under test here (7B's w13 would cost 360 MB)
    lw = LayerWeights(np.ones(c.dim), wqkv, wo, np.ones(c.dim), np.zeros((2 * n, c.dim), np.float32),
                      np.zeros((c.dim, n), np.float32))
    full = x @ wqkv.T
    parts = []
    for r in range(n):
        p = tp.plan(cfg, r, n)
        s = tp.shard_layer(lw, cfg, p)
        loc = x @ s.wqkv.T
        assert loc.shape == (2, 3 * c.dim // n) and _rel(loc[:, :c.dim // n], full[:, slice(*p.q_cols)]) < 1e-6
        parts.append(full[:, slice(*p.q_cols)] @ s.wo.T)
    assert _rel(sum(parts), full[:, :c.dim] @ wo.T) < 1e-6


def test_merge_argmax_ties_and_ranks():
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 5):
        for trial in range(20):
            logits = rng.integers(-3, 4, 37).astype(np.float32)  # many ties
            vals, idx = [], []
            for r in range(n):
                a, b = tp.vocab_range(37, r, n)
                vals.append(logits[a:b].max())
                idx.append(a + int(np.argmax(logits[a:b])))
            assert tp.merge_argmax(vals, idx) == int(np.argmax(logits))


# ---- the sharded forward, simulated ------------------------------------------------------------------------------
def tp_forward(c, shards, plans, tokens, start, caches):
    """One step of N ranks: each computes its heads and hidden slice; the two partial sums per layer are the
    all-reduces; the logits stay split and the greedy token is merged. Returns (full logits of the last row, token)."""
    M, pos = len(tokens), np.arange(start, start + len(tokens))
    table = ref.rope_table(caches[0].shape[2], c.head_dim, c.rope_theta)
    x = shards[0].tok_embeddings[np.asarray(tokens)].astype(np.float32)
    end = start + M
    for li in range(c.n_layers):
        att_parts = []
        for w, p, kv in zip(shards, plans, caches):
            lw, hl, kl, hd = w.layers[li], p.n_heads, p.n_kv_heads, p.head_dim
            qkv = ref._linear(ref.rmsnorm(x, lw.attention_norm, c.norm_eps), lw.wqkv)
            q = ref.apply_rope(qkv[:, :hl * hd].reshape(M, hl, hd), pos, table)
            kv[li, 0, start:end] = ref.apply_rope(qkv[:, hl * hd:(hl + kl) * hd].reshape(M, kl, hd), pos, table)
            kv[li, 1, start:end] = qkv[:, (hl + kl) * hd:].reshape(M, kl, hd)
            att = ref.attention(q, kv[li, 0, :end], kv[li, 1, :end], pos)
            att_parts.append(ref._linear(att.reshape(M, hl * hd), lw.wo))
        x = x + sum(att_parts)  # all-reduce
        ffn_parts = []
        for w in shards:
            lw = w.layers[li]
            h13 = ref._linear(ref.rmsnorm(x, lw.ffn_norm, c.norm_eps), lw.w13)
            f = h13.shape[1] // 2
            ffn_parts.append(ref._linear(ref.silu(h13[:, :f]) * h13[:, f:], lw.w2))
        x = x + sum(ffn_parts)  # all-reduce
    xn = ref.rmsnorm(x[-1:], shards[0].norm, c.norm_eps)
    local = [ref._linear(xn, w.output)[0] for w in shards]
    token = tp.merge_argmax([v.max() for v in local], [p.vocab[0] + int(np.argmax(v)) for p, v in zip(plans, local)])
    return np.concatenate(local), token


def tp_greedy(c, w, n, prompt, steps, S=128):
    plans = [tp.plan(c, r, n) for r in range(n)]
    shards = [tp.shard_weights(w, c, r, n) for r in range(n)]
    caches = [np.zeros((c.n_layers, 2, S, p.n_kv_heads, c.head_dim), np.float32) for p in plans]
    logits, tok = tp_forward(c, shards, plans, prompt, 0, caches)
    toks, all_logits = [tok], [logits]
    for i in range(steps - 1):
        logits, tok = tp_forward(c, shards, plans, [toks[-1]], len(prompt) + i, caches)
        toks.append(tok)
        all_logits.append(logits)
    return toks, np.array(all_logits)


@pytest.fixture(scope="module")
def stories(stories_dir):
    return load_checkpoint(stories_dir / "stories260K.bin")


def test_tp_greedy_tokens_equal_tp1_on_stories(stories):
    from cugraphllm.sampling import SamplingParams
    c, w = stories.config, stories.weights
    prompt = [1, 403, 407, 261, 378]  # "Once upon a time"
    want = list(ref.NumpyEngine(c, w, 128).generate(prompt, SamplingParams(), 40))
    t1, l1 = tp_greedy(c, w, 1, prompt, 40)
    assert t1 == want  # the simulation is the reference forward when N = 1
    for n in (2, 4):  # 4 splits the KV heads one per rank
        tn, ln = tp_greedy(c, w, n, prompt, 40)
        assert tn == want, n
        assert max(_rel(a, b) for a, b in zip(ln, l1)) < 1e-5


def test_tp_greedy_with_replicated_kv_heads():
    c = ModelConfig(dim=96, n_layers=2, n_heads=8, n_kv_heads=2, vocab_size=301, hidden_dim=200, max_seq_len=128)
    w = dummy_weights(c, seed=11, dtype="float32")
    rng = np.random.default_rng(11)
    for lw in w.layers:  # scale up so that the logits are far from flat
        lw.wqkv *= 8
        lw.w13 *= 8
    prompt = rng.integers(0, c.vocab_size, 9).tolist()
    t1, l1 = tp_greedy(c, w, 1, prompt, 24)
    for n in (2, 4, 8):  # 4 and 8 replicate the 2 KV heads
        assert tp.plan(c, 0, n).kv_replicated == (n > 2)
        tn, ln = tp_greedy(c, w, n, prompt, 24)
        assert tn == t1, n
        assert max(_rel(a, b) for a, b in zip(ln, l1)) < 1e-5


# ---- lazy shards: each rank reads only its slice ---------------------------------------------------------------
def test_lazy_shard_reads_only_its_slice(tmp_path, monkeypatch):
    from cugraphllm.convert import write_hf
    from cugraphllm.safetensors_io import SafetensorsFile
    c = ModelConfig(dim=128, n_layers=2, n_heads=8, n_kv_heads=4, vocab_size=257, hidden_dim=344, max_seq_len=64)
    w = dummy_weights(c, seed=4, dtype="float32")
    w.output = np.array(w.tok_embeddings[::-1])
    folder = write_hf(tmp_path / "hf", c, w, dtype="float16", shards=2)  # q/k rows permuted (rotate-half)
    eager = load_checkpoint(folder, dtype="float16").weights
    read = []
    real = SafetensorsFile.release
    monkeypatch.setattr(SafetensorsFile, "release", lambda self, view: (read.append(view.nbytes), real(self, view)))
    for n in (2, 4):
        for r in range(n):
            lazy = load_checkpoint(folder, dtype="float16", lazy=True).weights
            got, want = tp.shard_weights(lazy, c, r, n), tp.shard_weights(eager, c, r, n)
            read.clear()
            for lg, lw in zip(got.layers, want.layers):
                for k in ("wqkv", "wo", "w13", "w2"):
                    np.testing.assert_array_equal(np.asarray(getattr(lg, k)), getattr(lw, k), err_msg=f"{k} {r}/{n}")
            np.testing.assert_array_equal(np.asarray(got.output), want.output)
            shard_bytes = sum(getattr(lw, k).nbytes for lw in want.layers for k in ("wqkv", "wo", "w13", "w2"))
            assert sum(read) == shard_bytes + want.output.nbytes  # its slices, nothing of the other ranks'
