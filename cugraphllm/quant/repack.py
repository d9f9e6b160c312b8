"""Unpacked int4 parts of one checkpoint linear, and their repack into our int4 layout (formats.py).

GPTQ and AWQ readers (gptq.py, awq.py) each produce `Int4Parts` in our orientation ([N, K] = [out, in]);
everything after that is shared: the HF rotate-half row un-permutation of q/k (rows of q, scales and zeros
together), the row fusion of q|k|v and w1|w3, the desc_act column order and the norm gain.

desc_act: GPTQ's g_idx[k] is the group of input k, in any order. perm = a stable argsort of g_idx makes the groups
contiguous in packed order (packed column j multiplies x[perm[j]]); every group must then hold exactly group_size
columns. Linears fused along rows share their input, so they must share that order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import CheckpointError
from .formats import QuantLinear, pack_int4
from .layers import check_quant


@dataclass
class Int4Parts:
    q: np.ndarray             # uint8 [N, K], 0..15, original column order
    scales: np.ndarray        # float16 [N, G]
    zeros: np.ndarray         # float16 [N, G], integers 0..16 (GPTQ v1 stores zero - 1, so 16 can occur)
    g_idx: np.ndarray | None  # int [K]: group of each input column; None = k // group_size
    group_size: int           # columns per group (K: one group per row)
    where: str                # "<file>: tensor '<prefix>'" for messages

    def unpermute_rows(self, n_heads: int) -> "Int4Parts":
        """HF rotate-half row order -> interleaved pairs (loader_hf.unpermute_rows), for q, scales and zeros."""
        def un(a):
            rows, cols = a.shape
            hd = rows // n_heads
            return a.reshape(n_heads, 2, hd // 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)
        return Int4Parts(un(self.q), un(self.scales), un(self.zeros), self.g_idx, self.group_size, self.where)


def group_perm(p: Int4Parts) -> np.ndarray | None:
    """int32 [K] packed->original column order making groups contiguous; None when already in order."""
    K, g = p.q.shape[1], p.group_size
    if p.g_idx is None:
        return None
    gi = np.asarray(p.g_idx, np.int64)
    G = K // g
    if gi.shape != (K,) or gi.min(initial=0) < 0 or gi.max(initial=0) >= G:
        raise CheckpointError(f"{p.where}.g_idx: shape {list(gi.shape)} / values outside 0..{G - 1}; expected "
                              f"[{K}] group indices")
    if np.array_equal(gi, np.arange(K) // g):
        return None
    counts = np.bincount(gi, minlength=G)
    if not np.all(counts == g):
        raise CheckpointError(f"{p.where}.g_idx: groups hold {counts.min()}..{counts.max()} columns; supported: "
                              f"exactly group_size {g} columns per group")
    return np.argsort(gi, kind="stable").astype(np.int32)


def fuse_int4(parts: list[Int4Parts], names: str, gain=None) -> QuantLinear:
    """Rows of parts concatenated into one int4 QuantLinear; gain (the RMSNorm gain of the shared input, float32
    [K] in original order, or None) is stored in packed order."""
    perms = [group_perm(p) for p in parts]
    for p, pm in zip(parts[1:], perms[1:]):
        same = (pm is None and perms[0] is None) or (pm is not None and perms[0] is not None
                                                     and np.array_equal(pm, perms[0]))
        if not same or p.group_size != parts[0].group_size:
            raise CheckpointError(f"{p.where}: g_idx / group size differs from {parts[0].where}; {names} share "
                                  "their input, so they must share one desc_act order and group size")
    perm, g = perms[0], parts[0].group_size
    q = np.concatenate([p.q for p in parts], axis=0)
    if perm is not None:
        q = q[:, perm]
    N, K = q.shape
    if gain is not None:
        gain = np.asarray(gain, np.float32)
        gain = None if np.all(gain == 1) else np.ascontiguousarray(gain if perm is None else gain[perm])
    ql = QuantLinear("int4", pack_int4(q), np.concatenate([p.scales for p in parts]).astype(np.float16),
                     (N, K), zeros=np.concatenate([p.zeros for p in parts]).astype(np.float16), group_size=g,
                     perm=perm, gain=gain)
    return check_quant(ql, parts[0].where if len(parts) == 1 else f"{parts[0].where} (fused {names})")


def unpack_nibbles(words: np.ndarray) -> np.ndarray:
    """int32/uint32 [..., W] -> uint8 [..., W, 8]: nibble i (bits 4i..4i+3) of each word, in sequence."""
    w = np.asarray(words).view(np.uint32) if np.asarray(words).dtype.itemsize == 4 else np.asarray(words)
    shifts = 4 * np.arange(8, dtype=np.uint32)
    return ((w[..., None] >> shifts) & 0xF).astype(np.uint8)


def check_shape(a: np.ndarray, want: tuple, where: str, what: str) -> None:
    if tuple(a.shape) != want:
        raise CheckpointError(f"{where}: shape {list(a.shape)}, expected {list(want)} ({what})")


def read_packed(get, prefix: str, shapes: dict) -> tuple:
    """(qweight, qzeros, scales) of one linear (get(name) -> (array, where)), each checked against
    shapes[part] = (shape, description); the two packed ones must be integers (int32 words)."""
    got = {part: get(f"{prefix}.{part}") for part in ("qweight", "qzeros", "scales")}
    for part, (a, where) in got.items():
        want, what = shapes[part]
        check_shape(a, want, where, what)
    (qweight, w_q), (qzeros, _), (scales, _) = got.values()
    if qweight.dtype.kind not in "iu" or qzeros.dtype.kind not in "iu":
        raise CheckpointError(f"{w_q}: dtype {qweight.dtype} / qzeros {qzeros.dtype}; supported: int32")
    return qweight, qzeros, scales
