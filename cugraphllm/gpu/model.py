"""The LLaMA-2 step on the GPU, tokens to sampled token, top to bottom. One op call per line; no stream or graph
code here: the runtime decides whether these launches run eagerly or are captured into a CUDA graph.

Shapes: M rows (1 in decode, the prompt bucket in prefill), D dim, F hidden_dim, V vocab, S context.
"""
from __future__ import annotations

from . import ops


def forward(cfg, w, kv, s, attn, M: int, bucket, greedy: bool) -> None:
    """One step over M rows. Reads s.token (M == 1) or s.prompt[:M], s.pos, s.n_tokens (M > 1; a decode step
    has exactly one token: s.one, so a count left over from a prefill step never leaks into decode); writes
    K/V at pos..pos+n-1, s.token, s.hist[pos+n], and advances s.pos by n.

    The RMSNorm gains are folded into wqkv, w13 and output (state.py). The residual stream r (state.Residual) is
    what the ops share: in decode every producer of x also writes xn = T(x) and ss (partial sums of squares), from
    which the next norm_* GEMV applies the norm; in prefill the norm_* ops run a unit-gain rmsnorm of x into xn
    first. Under tensor parallelism the same code runs on every GPU with its slices of the weights, and r carries
    the communicator through which the residual updates and the logits are combined (ops.py)."""
    eps = cfg.norm_eps
    r = s.residual(M)                                                    # x f32 [M, D], xn, ss (, comm)
    q, att, h = s.q[:M], s.att[:M], s.h[:M]                              # [M, Dq] x2, [M, F] (this GPU's heads / F)
    n = s.one if M == 1 else s.n_tokens                                  # int32 [1] on the device
    ops.embedding(r, w.tok_embeddings, s.token if M == 1 else s.prompt[:M])
    for i, lw in enumerate(w.layers):
        k, v = kv.layer(i)                                               # [S, KVH, Dh] each
        ops.norm_qkv_rope(q, r, eps, lw.wqkv, s.rope, k, v, s.pos, n)    # q roped; k, v cached
        if M == 1:
            attn.decode(att, q, k, v, s.pos, bucket)
        else:
            attn.prefill(att, q, k, v, s.pos, n, bucket)
        ops.matmul_residual(r, att, lw.wo)                               # x += att @ wo.T
        ops.norm_matmul_silu(h, r, eps, lw.w13)                          # h = silu(n(x) @ w1.T) * (n(x) @ w3.T)
        ops.matmul_residual(r, h, lw.w2)                                 # x += h @ w2.T
    ops.norm_matmul_logits(s.logits, r, eps, w.output, n)                # [1, V] f32, last real row
    if greedy:
        ops.argmax(s.token, s.hist, s.pos, n, s.logits)
    else:
        ops.sample(s.token, s.hist, s.pos, n, s.logits, s.params, s.seed)
