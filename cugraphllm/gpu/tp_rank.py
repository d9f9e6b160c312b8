"""One GPU's share of a TPEngine (gpu/tp_engine.py): its shapes (local_config), its seeded dummy slices
(dummy_shard), and Rank, which uploads its slices and allocates its KV cache, Scratch, Comm and prefill buffers with
that GPU current.
"""
from __future__ import annotations

from ..config import ModelConfig
from ..weights import LayerWeights, Weights
from . import tp_shard
from .engine_load import quant_settings, upload
from .state import KVCache, Scratch, dummy_key, fill_normal, trim_pool


def local_config(config: ModelConfig, p: tp_shard.ShardPlan) -> ModelConfig:
    """The shapes one GPU computes: its query and KV heads, its part of hidden_dim and of the vocabulary."""
    return config.with_(dim=p.n_heads * config.head_dim, n_heads=p.n_heads, n_kv_heads=p.n_kv_heads,
                        hidden_dim=p.hidden[1] - p.hidden[0], vocab_size=p.vocab[1] - p.vocab[0])


def dummy_shard(config: ModelConfig, lc: ModelConfig, rank: int, dtype, seed: int = 0, scale: float = 0.02,
                fmt=None, group_size=128, quant_head=False):
    """Seeded random weights of one GPU's shapes, filled in place (state.fill_normal): the embedding has the same
    key on every GPU (it is replicated), every other matrix its own key per rank. fmt: each linear layer (the LM
    head too with quant_head) is quantized on the GPU right after it is drawn, so one 16-bit matrix is the peak."""
    import itertools

    import cupy as cp
    keys = itertools.count(1 + rank * (4 * config.n_layers + 2))

    def mat(rows, cols, key=None, quant=fmt):
        m = fill_normal(cp.empty((rows, cols), dtype=dtype), dummy_key(seed, next(keys) if key is None else key),
                        scale)
        if quant is None:
            return m
        from .quant_upload import quantize_matrix
        return quantize_matrix(lambda i, j: m[i:j].astype(cp.float32), rows, cols, quant, group_size)

    d, unit = config.dim, cp.ones(config.dim, dtype=cp.float32)
    emb = mat(config.vocab_size, d, key=0, quant=None)
    layers = [LayerWeights(attention_norm=unit, wqkv=mat(lc.qkv_dim, d), wo=mat(d, lc.dim), ffn_norm=unit,
                           w13=mat(2 * lc.hidden_dim, d), w2=mat(d, lc.hidden_dim)) for _ in range(config.n_layers)]
    out = mat(lc.vocab_size, d, quant=fmt if quant_head else None)
    return Weights(tok_embeddings=emb, layers=layers, norm=unit, output=out)


class Rank:
    """One GPU's share of the engine; every array is allocated with `device` current."""

    def __init__(self, engine, r: int, plan, weights, dtype, progress=None):
        import cupy as cp
        from . import gemm
        from .attention import Attention
        c, self.rank, self.device = engine.config, r, engine.devices[r]
        self.local = lc = local_config(c, plan)
        S = engine.max_seq_len
        with cp.cuda.Device(self.device):
            self.stream = cp.cuda.Stream(non_blocking=True)
            with self.stream:
                fmt, group, head = quant_settings(engine.runtime)
                if weights is None:
                    self.w = dummy_shard(c, lc, r, dtype, engine.runtime.seed, fmt=fmt, group_size=group,
                                         quant_head=head)
                else:
                    self.w = upload(tp_shard.shard_weights(weights, c, r, engine.world), dtype, engine.runtime,
                                    progress)
                trim_pool()
                self.kv = KVCache(lc, S, dtype)
                self.attn = Attention(lc, S, engine.runtime.dtype, prefill_rows=engine.runtime.prefill_rows)
                rows = max(self.attn.prefill_buckets)
                self.s = _scratch(c, lc, S, rows, dtype)
                self.s.comm = self.comm = engine.make_comm(r, rows, c.dim, lc.vocab_size)
                gemm.prepare(rows, max(lc.qkv_dim, 2 * lc.hidden_dim, c.dim), dtype)
                from . import gemm_quant
                gemm_quant.allocate_layers(gemm_config(c, lc), self.w, rows, engine.runtime.dtype)
            self.stream.synchronize()


def gemm_config(c, lc):
    """One GPU's slices (hidden_dim) at the model's width (dim, heads, vocab): what sizes its Scratch and, as an
    upper bound of its prefill GEMMs' shapes (wqkv counted whole), gemm_quant's buffers."""
    return lc.with_(dim=c.dim, n_heads=c.n_heads, n_kv_heads=c.n_kv_heads, vocab_size=c.vocab_size)


def _scratch(c, lc, S, rows, dtype):
    """Scratch with the residual stream (x, xn, ss), the prompt and the full logits at the model's width, and the
    per-head buffers (q, att) and h at this GPU's width."""
    import cupy as cp
    s = Scratch(gemm_config(c, lc), S, rows, dtype)
    s.q, s.att = (cp.zeros((rows, lc.dim), dtype) for _ in range(2))
    return s
