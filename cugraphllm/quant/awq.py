"""AWQ GEMM checkpoints (AutoAWQ `version: gemm`; quant.md section Formats).

Per linear, W [N, K] = [out, in]:
- qweight int32 [K, N/8], packed along the output: nibble i of word c holds output column 8c + ORDER[i];
- qzeros int32 [K/g, N/8], same interleave, stored as is; scales fp16 [K/g, N].
W[n, k] = scales[k // g, n] * (q[k, n] - zero[k // g, n]).
"""
from __future__ import annotations

import numpy as np

from ..errors import CheckpointError
from .repack import Int4Parts, read_packed, unpack_nibbles

ORDER = np.array([0, 2, 4, 6, 1, 3, 5, 7])  # nibble i of a word holds column ORDER[i] of its 8


def parse_config(qc: dict, source: str) -> dict:
    """quantization_config {bits, group_size, zero_point, version} or quant_config.json {w_bit, q_group_size, ...}."""
    bits = qc.get("bits", qc.get("w_bit"))
    g = qc.get("group_size", qc.get("q_group_size"))
    version = str(qc.get("version", "gemm")).lower()
    if version != "gemm":
        raise CheckpointError(f"{source}: AWQ version {version!r} is not supported; supported: gemm")
    if bits != 4:
        raise CheckpointError(f"{source}: AWQ bits {bits!r} is not supported; supported: 4")
    if isinstance(g, bool) or not isinstance(g, int) or g <= 0 or g % 8:
        raise CheckpointError(f"{source}: AWQ group_size {g!r} is not supported; supported: a positive multiple "
                              "of 8 (128)")
    if not qc.get("zero_point", True):
        raise CheckpointError(f"{source}: AWQ zero_point false is not supported; supported: zero_point true")
    return {"method": "awq", "bits": 4, "group_size": g, "lm_head": False}


def unpack_columns(words: np.ndarray) -> np.ndarray:
    """int32 [R, C/8] AWQ-interleaved -> uint8 [R, C] in natural column order."""
    nib = unpack_nibbles(words)                    # [R, C/8, 8]: nibble i
    out = np.empty_like(nib)
    out[..., ORDER] = nib                          # column ORDER[i] <- nibble i
    return out.reshape(words.shape[0], -1)


def read_linear(get, prefix: str, N: int, K: int, qc: dict) -> Int4Parts:
    g = qc["group_size"]
    where = get.where(prefix)
    if K % g or N % 8:
        raise CheckpointError(f"{where}: AWQ group_size {g} with [{N} out, {K} in]: supported: a group size "
                              "that divides the input and an output that is a multiple of 8")
    G = K // g
    qweight, qzeros, scales = read_packed(get, prefix, {"qweight": ((K, N // 8), "int32 [in, out/8], 4-bit"),
                                                        "qzeros": ((G, N // 8), f"int32 [in/{g}, out/8]"),
                                                        "scales": ((G, N), f"fp16 [in/{g}, out]")})
    q = np.ascontiguousarray(unpack_columns(qweight).T)                  # [N, K]
    z = np.ascontiguousarray(unpack_columns(qzeros).T).astype(np.float16)
    sc = np.ascontiguousarray(np.asarray(scales, np.float32).T).astype(np.float16)
    return Int4Parts(q, sc, z, None, g, where)
