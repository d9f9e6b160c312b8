"""Test helpers for quantized checkpoints: GPTQ / AWQ packers written from the format description (quant.md
section Formats, element by element; independent of the loader's vectorized unpacking), the float64 dense matrix
each format means, tiny Hugging Face folders built from known integer matrices, and the small random model they
are made from."""
import json

import numpy as np

from cugraphllm.config import ModelConfig
from cugraphllm.convert import hf_config, permute_rows
from cugraphllm.loader import dummy_weights
from cugraphllm.quant.formats import quantize, unpack_int4
from cugraphllm.safetensors_io import write_safetensors_typed

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]  # nibble i of a word holds output column 8c + AWQ_ORDER[i]
# awkward but packable: head_dim 16, GQA 8/4, hidden 384 (divisible by 128, 64 and 32)
SMALL = ModelConfig(dim=128, n_layers=2, n_heads=8, n_kv_heads=4, vocab_size=96, hidden_dim=384, max_seq_len=64)


def small_weights(seed, final_norm=True):
    """float32 random SMALL weights with non-trivial norm gains (a dropped or misplaced gain is seen): per layer
    attention_norm then ffn_norm, then the final norm when asked, all 1 + 0.3 N(0, 1) from default_rng(seed)."""
    w = dummy_weights(SMALL, seed=seed, dtype="float32")
    rng = np.random.default_rng(seed)
    for lw in w.layers:
        lw.attention_norm = (1 + 0.3 * rng.standard_normal(SMALL.dim)).astype(np.float32)
        lw.ffn_norm = (1 + 0.3 * rng.standard_normal(SMALL.dim)).astype(np.float32)
    if final_norm:
        w.norm = (1 + 0.3 * rng.standard_normal(SMALL.dim)).astype(np.float32)
    return w


def _to_i32(words):
    return np.asarray(words, np.int64).astype(np.uint32).view(np.int32)


def pack_gptq(q, z, s, g_idx, v1):
    """q [N, K] ints 0..15 (original columns), z / s [N, G], g_idx [K] -> GPTQ qweight [K/8, N], qzeros
    [G, N/8], scales [G, N] fp16, g_idx int32. Word r of qweight column n: input row 8r+j in bits 4j..4j+3."""
    N, K = q.shape
    G = z.shape[1]
    qweight = np.zeros((K // 8, N), np.int64)
    for r in range(K // 8):
        for j in range(8):
            qweight[r] |= q[:, 8 * r + j].astype(np.int64) << (4 * j)
    stored = (z.astype(np.int64) - (1 if v1 else 0)) & 0xF     # v1 stores zero - 1
    qzeros = np.zeros((G, N // 8), np.int64)
    for c in range(N // 8):
        for j in range(8):
            qzeros[:, c] |= stored[8 * c + j, :] << (4 * j)
    return {"qweight": _to_i32(qweight), "qzeros": _to_i32(qzeros), "scales": s.T.astype(np.float16).copy(),
            "g_idx": np.asarray(g_idx, np.int32)}


def pack_awq(q, z, s):
    """q [N, K], z / s [N, K/g] -> AWQ qweight [K, N/8], qzeros [K/g, N/8], scales [K/g, N]."""
    N, K = q.shape
    G = z.shape[1]
    qweight = np.zeros((K, N // 8), np.int64)
    qzeros = np.zeros((G, N // 8), np.int64)
    for c in range(N // 8):
        for i in range(8):
            qweight[:, c] |= q[8 * c + AWQ_ORDER[i], :].astype(np.int64) << (4 * i)
            qzeros[:, c] |= z[8 * c + AWQ_ORDER[i], :].astype(np.int64) << (4 * i)
    return {"qweight": _to_i32(qweight), "qzeros": _to_i32(qzeros), "scales": s.T.astype(np.float16).copy()}


def dense(q, z, s, g_idx):
    """float64 W[n, k] = s[n, g_idx[k]] * (q[n, k] - z[n, g_idx[k]])."""
    return s.astype(np.float64)[:, g_idx] * (q.astype(np.float64) - z.astype(np.float64)[:, g_idx])


def int4_ints(w, g, sym, desc_act, rng):
    """Integers of W [N, K] (round to nearest): q [N, K] (original columns), z, s [N, G], g_idx [K].
    desc_act: the columns are quantized in a random order P (groups contiguous in P), as GPTQ's act-order does."""
    N, K = w.shape
    g = K if g == -1 else g
    P = rng.permutation(K) if desc_act else np.arange(K)
    wp = w[:, P]
    if sym:
        amax = np.abs(wp.reshape(N, K // g, g)).max(axis=2)
        s = np.where(amax > 0, amax / 7, 1).astype(np.float16)
        z = np.full(s.shape, 8, np.float16)
        q_p = np.clip(np.rint(wp.reshape(N, K // g, g) / s[..., None].astype(np.float32)) + 8, 0, 15)
        q_p = q_p.reshape(N, K).astype(np.uint8)
    else:
        ql = quantize(wp, "int4", g)
        q_p, s, z = unpack_int4(ql.qweight), ql.scales, ql.zeros
    q = np.empty_like(q_p)
    q[:, P] = q_p
    g_idx = np.empty(K, np.int64)
    g_idx[P] = np.arange(K) // g
    return q, z, s, g_idx


def write_int4_folder(out, cfg, w, method, g, sym=False, desc_act=False, v1=True, seed=0, skip=(), head=False):
    """A GPTQ / AWQ folder of the fp32 Weights `w` (ours: interleaved RoPE, fused): each linear of HF order is
    quantized to known integers and packed; `skip` names HF module suffixes (e.g. "mlp.down_proj") stored 16-bit;
    head: lm_head quantized too (GPTQ's lm_head option).
    Returns {hf module name: float64 dense matrix in HF row order} (None for 16-bit modules)."""
    rng = np.random.default_rng(seed)
    D, KV, F = cfg.dim, cfg.kv_dim, cfg.hidden_dim
    tensors = {"model.embed_tokens.weight": np.asarray(w.tok_embeddings, np.float32)}
    want = {}
    for i, lw in enumerate(w.layers):
        pre = f"model.layers.{i}."
        mods = {"self_attn.q_proj": permute_rows(lw.wqkv[:D], cfg.n_heads),
                "self_attn.k_proj": permute_rows(lw.wqkv[D:D + KV], cfg.n_kv_heads),
                "self_attn.v_proj": lw.wqkv[D + KV:], "self_attn.o_proj": lw.wo,
                "mlp.gate_proj": lw.w13[:F], "mlp.up_proj": lw.w13[F:], "mlp.down_proj": lw.w2}
        # linears that share an input share one act-order permutation (as GPTQ quantizes them)
        shared = {"self_attn": rng.integers(1 << 30), "mlp": rng.integers(1 << 30)}
        for name, m in mods.items():
            m = np.asarray(m, np.float32)
            if name in skip:
                tensors[pre + name + ".weight"] = m
                want[pre + name] = None
                continue
            key = name.split(".")[0] if name not in ("self_attn.o_proj", "mlp.down_proj") else name
            sub = np.random.default_rng(shared.get(key, rng.integers(1 << 30)))
            q, z, s, g_idx = int4_ints(m, g, sym, desc_act and method == "gptq", sub)
            packed = pack_gptq(q, z, s, g_idx, v1) if method == "gptq" else pack_awq(q, z, s)
            tensors.update({f"{pre}{name}.{k}": v for k, v in packed.items()})
            want[pre + name] = dense(q, z, s, g_idx)
        tensors[pre + "input_layernorm.weight"] = np.asarray(lw.attention_norm, np.float32)
        tensors[pre + "post_attention_layernorm.weight"] = np.asarray(lw.ffn_norm, np.float32)
    tensors["model.norm.weight"] = np.asarray(w.norm, np.float32)
    if head:
        q, z, s, g_idx = int4_ints(np.asarray(w.output, np.float32), g, sym, False, rng)
        tensors.update({f"lm_head.{k}": v for k, v in pack_gptq(q, z, s, g_idx, v1).items()})
        want["lm_head"] = dense(q, z, s, g_idx)
    elif not cfg.tie_embeddings:
        tensors["lm_head.weight"] = np.asarray(w.output, np.float32)
    out.mkdir(parents=True, exist_ok=True)
    write_safetensors_typed(out / "model.safetensors", tensors)
    conf = hf_config(cfg, "float16")
    if method == "gptq":
        conf["quantization_config"] = {"quant_method": "gptq", "bits": 4, "group_size": g, "desc_act": desc_act,
                                       "sym": sym, "checkpoint_format": "gptq" if v1 else "gptq_v2"}
    else:
        conf["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": g, "zero_point": True,
                                       "version": "gemm"}
    (out / "config.json").write_text(json.dumps(conf))
    return want


def unpermute(m, n_heads):
    rows, cols = m.shape
    hd = rows // n_heads
    return m.reshape(n_heads, 2, hd // 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)
