"""GPTQ checkpoints ("gptq" v1 and "gptq_v2"; AutoGPTQ / GPTQModel / vLLM layout, quant.md section Formats).

Per linear, W [N, K] = [out, in]:
- qweight int32 [K/8, N], packed along the input: word r holds input rows 8r..8r+7, row 8r+j in bits 4j..4j+3;
- qzeros int32 [G, N/8], packed along the output in the same sequential order; v1 stores zero - 1, v2 the zero;
- scales fp16 [G, N]; g_idx int32 [K] (optional): the group of each input row (k // g unless desc_act).
W[n, k] = scales[g_idx[k], n] * (q[k, n] - zero[g_idx[k], n]); G = K / group_size (1 for group_size -1).
"""
from __future__ import annotations

import numpy as np

from ..errors import CheckpointError
from .repack import Int4Parts, check_shape, read_packed, unpack_nibbles

FORMATS = ("gptq", "gptq_v2")


def parse_config(qc: dict, source: str) -> dict:
    """quantization_config / quantize_config.json -> {bits, group_size, desc_act, sym, version}."""
    fmt = qc.get("checkpoint_format") or ("gptq_v2" if qc.get("format") == "gptq_v2" else "gptq")
    if qc.get("is_marlin_format") or fmt not in FORMATS:
        raise CheckpointError(f"{source}: GPTQ checkpoint_format {fmt!r} (marlin: "
                              f"{bool(qc.get('is_marlin_format'))}) is not supported; supported: "
                              f"{', '.join(FORMATS)}")
    bits, g = qc.get("bits"), qc.get("group_size", -1)
    if bits != 4:
        raise CheckpointError(f"{source}: GPTQ bits {bits!r} is not supported; supported: 4")
    if isinstance(g, bool) or not isinstance(g, int) or not (g == -1 or (g > 0 and g % 8 == 0)):
        raise CheckpointError(f"{source}: GPTQ group_size {g!r} is not supported; supported: -1 or a positive "
                              "multiple of 8 (128, 64, 32)")
    return {"method": "gptq", "bits": 4, "group_size": g, "desc_act": bool(qc.get("desc_act", False)),
            "sym": bool(qc.get("sym", True)), "v1": fmt == "gptq", "lm_head": bool(qc.get("lm_head", False))}


def read_linear(get, prefix: str, N: int, K: int, qc: dict) -> Int4Parts:
    """Unpack the GPTQ tensors of one linear (get(name) -> (array, where); g_idx may be absent)."""
    g = K if qc["group_size"] == -1 else qc["group_size"]
    where = get.where(prefix)
    if K % 8 or N % 8 or K % g:
        raise CheckpointError(f"{where}: GPTQ group_size {qc['group_size']} with [{N} out, {K} in]: supported: "
                              "dimensions that are multiples of 8 and a group size that divides the input")
    G = K // g
    gs = qc["group_size"]
    qweight, qzeros, scales = read_packed(get, prefix, {
        "qweight": ((K // 8, N), "int32 [in/8, out], 4-bit"),
        "qzeros": ((G, N // 8), f"int32 [groups, out/8], group_size {gs}"),
        "scales": ((G, N), f"fp16 [groups, out], group_size {gs}")})
    q = unpack_nibbles(qweight).transpose(1, 0, 2).reshape(N, K)        # [K/8, N, 8] -> [N, K/8, 8]
    z = unpack_nibbles(qzeros).reshape(G, N).T.astype(np.float16)       # [G, N/8, 8] -> [G, N] -> [N, G]
    if qc["v1"]:
        z = z + np.float16(1)
    g_idx = None
    if get.has(prefix + ".g_idx"):
        g_idx, w_g = get(prefix + ".g_idx")
        check_shape(g_idx, (K,), w_g, "int32 [in]")
        g_idx = np.asarray(g_idx, np.int64)
    sc = np.ascontiguousarray(np.asarray(scales, np.float32).T).astype(np.float16)
    return Int4Parts(np.ascontiguousarray(q), sc, np.ascontiguousarray(z), g_idx, g, where)
