"""Weights as plain data (llama2.c `TransformerWeights`).

Internal conventions, shared by every backend and kernel:
- Matrices are [out_features, in_features], row-major (y = W @ x), as checkpoints store them.
- wqkv = concat(wq, wk, wv) along rows: [dim + 2*kv_dim, dim].   w13 = concat(w1, w3): [2*hidden_dim, dim].
- RoPE is the interleaved-pair convention (Meta / llama2.c): inside each head, elements (2i, 2i+1) rotate by
  pos * theta^(-2i/head_dim). Hugging Face checkpoints (rotate-half) get their wq/wk rows un-permuted at load.
- Arrays are numpy (CPU, memory-mapped where possible) or cupy (GPU); the dataclasses do not care.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Array = Any  # numpy.ndarray or cupy.ndarray


@dataclass
class LayerWeights:
    attention_norm: Array  # [dim]
    wqkv: Array            # [dim + 2*kv_dim, dim]; this and the other matrices may be a quant.QuantLinear
    wo: Array              # [dim, dim]
    ffn_norm: Array        # [dim]
    w13: Array             # [2*hidden_dim, dim]  (gate rows then up rows)
    w2: Array              # [dim, hidden_dim]


@dataclass
class Weights:
    tok_embeddings: Array  # [vocab, dim]
    layers: list           # n_layers x LayerWeights
    norm: Array            # [dim]
    output: Array          # [vocab, dim]; the same object as tok_embeddings when tied

    def map(self, fn) -> "Weights":
        """Apply fn to every array (e.g. upload to the GPU, cast). Keeps tied weights tied."""
        tied = self.output is self.tok_embeddings
        f = lambda a: a.map(fn) if hasattr(a, "qweight") else fn(a)  # noqa: E731  (a QuantLinear: each array)
        emb = fn(self.tok_embeddings)
        layers = [LayerWeights(**{k: f(v) for k, v in vars(lw).items()}) for lw in self.layers]
        return Weights(tok_embeddings=emb, layers=layers, norm=fn(self.norm),
                       output=emb if tied else f(self.output))

    def nbytes(self) -> int:
        arrays = [self.tok_embeddings, self.norm] + [a for lw in self.layers for a in vars(lw).values()]
        if self.output is not self.tok_embeddings:
            arrays.append(self.output)
        return int(sum(a.nbytes for a in arrays))
