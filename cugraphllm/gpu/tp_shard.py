"""Tensor-parallel sharding of Weights (issue 11, groundwork for `--tp N`): the slice of every matrix that rank r of
N holds, Megatron-style in our [out, in] convention. Pure functions over NumPy or CuPy arrays (NumPy's functions
dispatch to CuPy through NEP 18) or loader_common.LazyMatrix, whose shard is again lazy: a rank then reads only its
own rows or columns from the checkpoint. Nothing here touches a GPU.

Per layer, rank r of N (H query heads, KVH KV heads of head_dim hd, F = hidden_dim, V = vocab_size):
- wqkv [D + 2*KV, D]: the rows of its query heads [r*H/N, (r+1)*H/N) and of its KV heads, as a local
  [Hl*hd q | KVl*hd k | KVl*hd v]. KV heads are split ([r*KVH/N, ...)) when N divides KVH, else (N a multiple of
  KVH) replicated: each rank keeps the one KV head its query heads read (h // n_rep).
- wo [D, D]: the input columns of its query heads; x += att_r @ wo_r.T is a partial sum: all-reduce.
- w13 [2F, D]: rows [r*F/N, (r+1)*F/N) of w1 and the same rows of w3, as [w1_r; w3_r] (silu pairs stay local).
- w2 [D, F]: input columns [r*F/N, (r+1)*F/N): a partial sum, all-reduce.
- output [V, D]: contiguous vocabulary rows [r*V//N, (r+1)*V//N); the per-rank argmax merge is `merge_argmax`.
- tok_embeddings and the norm gains: replicated (a gain folds into input columns, so folding commutes with
  every row split).
A packed quant.formats.QuantLinear (a GPTQ / AWQ / our quantized folder) splits the same way: rows are rows of
qweight, scales and zeros (perm and gain, per input column, stay whole); an input-column split cuts whole int4
groups only (columns per rank a multiple of the group size), and not a layer with a GPTQ act-order perm.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..config import ModelConfig
from ..errors import ConfigError
from ..loader_common import LazyMatrix
from ..quant.formats import QuantLinear
from ..weights import LayerWeights, Weights


@dataclass(frozen=True)
class ShardPlan:
    rank: int
    world: int
    head_dim: int
    q_heads: tuple    # [start, stop) of the global query heads
    kv_heads: tuple   # [start, stop) of the global KV heads (one head when replicated)
    kv_replicated: bool
    hidden: tuple     # [start, stop) of hidden_dim (rows of w1 and of w3, columns of w2)
    vocab: tuple      # [start, stop) of the vocabulary (rows of output)

    @property
    def n_heads(self) -> int:
        return self.q_heads[1] - self.q_heads[0]

    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads[1] - self.kv_heads[0]

    @property
    def q_cols(self) -> tuple:
        """Columns of wo (= elements of the attention output) that this rank's heads produce."""
        return self.q_heads[0] * self.head_dim, self.q_heads[1] * self.head_dim


def vocab_range(vocab_size: int, rank: int, world: int) -> tuple:
    return vocab_size * rank // world, vocab_size * (rank + 1) // world


def plan(config: ModelConfig, rank: int, world: int) -> ShardPlan:
    """The slices of rank `rank` of `world`; a ConfigError (one line) when the model cannot be split so."""
    c, n = config, world
    if not isinstance(n, int) or n < 1 or not 0 <= rank < n:
        raise ConfigError(f"tensor parallel: rank {rank} of {n} is not a valid rank")
    for what, v in (("n_heads", c.n_heads), ("hidden_dim", c.hidden_dim)):
        if v % n:
            raise ConfigError(f"tensor parallel over {n} GPUs: {what} {v} is not divisible by {n}")
    if c.n_kv_heads % n and n % c.n_kv_heads:
        raise ConfigError(f"tensor parallel over {n} GPUs: n_kv_heads {c.n_kv_heads} neither divides nor is "
                          f"divisible by {n}")
    hl, fl = c.n_heads // n, c.hidden_dim // n
    q = (rank * hl, (rank + 1) * hl)
    replicated = c.n_kv_heads < n
    kv = (q[0] // c.n_rep, q[0] // c.n_rep + 1) if replicated else (q[0] // c.n_rep, q[1] // c.n_rep)
    return ShardPlan(rank, n, c.head_dim, q, kv, replicated, (rank * fl, (rank + 1) * fl),
                     vocab_range(c.vocab_size, rank, n))


# ---- slicing arrays and lazy matrices ----------------------------------------------------------------------------
def _rows_of(x, ranges):
    if len(ranges) > 1:
        return np.concatenate([x[s:e] for s, e in ranges])
    return np.ascontiguousarray(x[ranges[0][0]:ranges[0][1]])


def _quant_rows(q: QuantLinear, ranges) -> QuantLinear:
    n = sum(e - s for s, e in ranges)
    return QuantLinear(q.fmt, _rows_of(q.qweight, ranges), _rows_of(q.scales, ranges), (n, q.shape[1]),
                       None if q.zeros is None else _rows_of(q.zeros, ranges), q.group_size, q.perm, q.gain)


def _quant_cols(q: QuantLinear, start: int, stop: int) -> QuantLinear:
    """Input columns [start, stop) of a packed layer: whole int4 groups (and 8-column words), no perm."""
    if q.perm is not None:
        raise ConfigError("tensor parallel: a quantized layer with a GPTQ act-order perm cannot be split by input "
                          "columns (not supported yet); use --tp 1")
    cols = lambda a: np.ascontiguousarray(a[:, start:stop])  # noqa: E731
    qw, sc, ze = q.qweight, q.scales, q.zeros
    if q.fmt == "int4":
        g = int(q.group_size)
        if start % g or stop % g or start % 8 or stop % 8:
            raise ConfigError(f"tensor parallel: int4 group size {g} does not divide the {stop - start} input "
                              f"columns per GPU; use another --tp or --group-size")
        qw = np.ascontiguousarray(qw[:, start // 8:stop // 8])
        sc, ze = (np.ascontiguousarray(a[:, start // g:stop // g]) for a in (sc, ze))
    else:
        qw = cols(qw)  # fp8 / int8: one scale per row, unchanged
    gain = None if q.gain is None else np.ascontiguousarray(q.gain[start:stop])
    return QuantLinear(q.fmt, qw, sc, (q.shape[0], stop - start), ze, q.group_size, None, gain)


def take_rows(a, ranges):
    """Rows [s, e) for each (s, e) of ranges, concatenated; a LazyMatrix gives a LazyMatrix (RoPE heads whole)."""
    if isinstance(a, QuantLinear):
        return _quant_rows(a, ranges)
    if not isinstance(a, LazyMatrix):
        return np.concatenate([a[s:e] for s, e in ranges]) if len(ranges) > 1 else np.ascontiguousarray(
            a[ranges[0][0]:ranges[0][1]])
    parts = []
    for s, e in ranges:
        r0 = 0
        for t, perm in a.parts:
            n = t.raw.shape[0]
            lo, hi = max(s, r0), min(e, r0 + n)
            if lo < hi:
                heads = perm * (hi - lo) // n if perm else 0
                if perm and (heads * n != perm * (hi - lo) or (lo - r0) % (n // perm)):
                    raise ValueError(f"rows [{s}, {e}) split a RoPE head of {t.where}")
                parts.append((replace(t, raw=t.raw[lo - r0:hi - r0]), heads))
            r0 += n
    return LazyMatrix(parts, a.dtype)


def take_cols(a, start: int, stop: int):
    """Columns [start, stop), contiguous; a LazyMatrix gives a LazyMatrix reading only those columns."""
    if isinstance(a, QuantLinear):
        return _quant_cols(a, start, stop)
    if isinstance(a, LazyMatrix):
        return LazyMatrix([(replace(t, raw=t.raw[:, start:stop]), perm) for t, perm in a.parts], a.dtype)
    return np.ascontiguousarray(a[:, start:stop])


# ---- weights -----------------------------------------------------------------------------------------------------
def shard_layer(lw: LayerWeights, config: ModelConfig, p: ShardPlan) -> LayerWeights:
    c, hd = config, config.head_dim
    q, kv, (f0, f1) = p.q_heads, p.kv_heads, p.hidden
    wqkv = take_rows(lw.wqkv, [(q[0] * hd, q[1] * hd), (c.dim + kv[0] * hd, c.dim + kv[1] * hd),
                               (c.dim + c.kv_dim + kv[0] * hd, c.dim + c.kv_dim + kv[1] * hd)])
    w13 = take_rows(lw.w13, [(f0, f1), (c.hidden_dim + f0, c.hidden_dim + f1)])
    return LayerWeights(attention_norm=lw.attention_norm, wqkv=wqkv, wo=take_cols(lw.wo, *p.q_cols),
                        ffn_norm=lw.ffn_norm, w13=w13, w2=take_cols(lw.w2, f0, f1))


def shard_weights(w: Weights, config: ModelConfig, rank: int, world: int) -> Weights:
    """Rank `rank`'s Weights: layers split as the module docstring says, output split by vocabulary (untied),
    embedding and gains shared with `w` (not copied)."""
    p = plan(config, rank, world)
    return Weights(tok_embeddings=w.tok_embeddings, layers=[shard_layer(lw, config, p) for lw in w.layers],
                   norm=w.norm, output=take_rows(w.output, [p.vocab]))


def merge_argmax(values, indices) -> int:
    """Greedy token across ranks: values[r], indices[r] = rank r's max logit and its GLOBAL token id (argmax of its
    vocabulary slice plus the slice's start). The largest value wins, ties go to the lowest id (np.argmax's rule
    on the whole vocabulary, since the slices are contiguous and in rank order)."""
    values = np.asarray(values)
    best = np.flatnonzero(values == values.max())
    return int(np.asarray(indices)[best].min())
