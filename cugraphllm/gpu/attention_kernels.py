"""Numba CUDA attention kernels, generated per specialization and compiled to a cubin (no GPU needed).

Imported only by the compile subprocess (`python -m cugraphllm.gpu.jit_cache`): the serving process never imports
Numba, it loads the cached cubin through CuPy. Every kernel argument is a raw pointer (`CPointer`), so the PTX entry
takes one .u64 per argument and a CuPy launch passes the arrays themselves.

Storage type T (float16 or bfloat16) travels as int16 bits; K/V rows are read as words of VEC elements (int64 = 4
halves, or int32 = 2 when head_dim % 4 != 0; decode also reads 16-byte words of 8, see decode_kernels.py) and
unpacked in registers, so a group of G lanes reads one key row coalesced. Math is fp32; scores are kept in log2
units (q is pre-scaled by log2(e)/sqrt(head_dim)) so the softmax uses exp2.

Work layout, shared by both kernels: a warp holds R = n_rep query heads (one KV head, so K/V loads are shared by the
group) and walks keys KPS = 32/G at a time, one key per lane group, with an online softmax per lane group; the
groups are then merged with shuffles (log-sum-exp). The decode kernel lives in decode_kernels.py (it imports the
conversions and the geometry defined here; this module never imports it). jit_cache.compile_ptx turns either
kernel into PTX.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, types

from .numba_ptx import _bf16_to_f32, _f16_to_f32, _f32_to_bf16, _f32_to_f16

F32 = np.float32
NEG_INF = np.float32(-np.inf)
FULL = 0xFFFFFFFF


def _geometry(spec):
    hd, r, vec, g = spec["head_dim"], spec["n_rep"], spec["vec"], spec["g"]
    w = hd // vec
    return hd, r, vec, g, w, -(-w // g), 32 // g, spec["n_kv_heads"]


def lane_merge(G: int, R: int, E: int):
    """Device function merge(m, l, acc): log-sum-exp merge of a warp's 32/G lane groups (lanes g, g+G, g+2G, ...)
    holding R heads' online-softmax state (max m[R], sum l[R], acc[R*E]); every lane gets the merged state.
    Shared by the prefill walk here and the decode kernel (decode_kernels.py)."""
    @cuda.jit(device=True, forceinline=True)
    def merge(m, l, acc):
        off = G
        while off < 32:
            for r in range(R):
                mo = cuda.shfl_xor_sync(FULL, m[r], off)
                lo = cuda.shfl_xor_sync(FULL, l[r], off)
                mm = max(m[r], mo)
                c1 = F32(0.0)
                c2 = F32(0.0)
                if mm != NEG_INF:
                    c1 = math.exp2(m[r] - mm)
                    c2 = math.exp2(mo - mm)
                m[r] = mm
                l[r] = l[r] * c1 + lo * c2
                for t in range(E):
                    ao = cuda.shfl_xor_sync(FULL, acc[r * E + t], off)
                    acc[r * E + t] = acc[r * E + t] * c1 + ao * c2
            off <<= 1
    return merge


def _make_warp_attend(spec):
    """Device functions shared by decode and prefill: load q, walk keys, merge lane groups within a warp."""
    HD, R, VEC, G, W, NV, KPS, KVH = _geometry(spec)
    E = NV * VEC  # elements per lane per head
    ROW = KVH * W  # words per sequence position
    SCALE = np.float32(math.log2(math.e) / math.sqrt(HD))
    to_f32 = _bf16_to_f32 if spec["dtype"] == "bfloat16" else _f16_to_f32

    @cuda.jit(device=True, forceinline=True)
    def load_q(q, qoff, kvh, g, qr):
        # qr[r*E + i*VEC + e] = q[head kvh*R+r, word g+G*i, elem e] * SCALE (0 for words past the row)
        for r in range(R):
            for i in range(NV):
                w = g + G * i
                for e in range(VEC):
                    x = F32(0.0)
                    if w < W:
                        x = to_f32(q[qoff + (kvh * R + r) * HD + w * VEC + e]) * SCALE
                    qr[r * E + i * VEC + e] = x

    @cuda.jit(device=True, forceinline=True)
    def step(k, v, j, valid, kvh, g, qr, m, l, acc, kw, vw, s):
        # one key j per lane group: score (group reduction), then online-softmax update of (m, l, acc)
        for i in range(NV):
            w = g + G * i
            kw[i] = 0
            vw[i] = 0
            if valid and w < W:
                kw[i] = k[j * ROW + kvh * W + w]
                vw[i] = v[j * ROW + kvh * W + w]
        for r in range(R):
            s[r] = F32(0.0)
        for i in range(NV):
            for e in range(VEC):
                kf = to_f32(kw[i] >> (16 * e))
                for r in range(R):
                    s[r] += qr[r * E + i * VEC + e] * kf
        off = G >> 1
        while off > 0:
            for r in range(R):
                s[r] += cuda.shfl_xor_sync(FULL, s[r], off)
            off >>= 1
        if valid:
            for r in range(R):
                m_new = max(m[r], s[r])
                c = math.exp2(m[r] - m_new)
                p = math.exp2(s[r] - m_new)
                m[r] = m_new
                l[r] = l[r] * c + p
                for i in range(NV):
                    for e in range(VEC):
                        idx = r * E + i * VEC + e
                        acc[idx] = acc[idx] * c + p * to_f32(vw[i] >> (16 * e))

    merge_groups = lane_merge(G, R, E)

    @cuda.jit(device=True, forceinline=True)
    def init_state(m, l, acc):
        for r in range(R):
            m[r] = NEG_INF
            l[r] = F32(0.0)
        for t in range(R * E):
            acc[t] = F32(0.0)

    return load_q, step, merge_groups, init_state


def _word_type(spec):
    return types.int32 if spec["vec"] == 2 else types.int64  # vec 8 (decode) reads int64 pairs


def _out_conv(spec):
    return _f32_to_bf16 if spec["dtype"] == "bfloat16" else _f32_to_f16


def make_prefill(spec):
    """Causal prefill kernel: grid (M / warps, n_kv_heads), block 32*warps (warps divides M); one warp per query row.

    args: att int16[M, H*HD] out, q int16[M, H*HD], k/v words[S*KVH*W], pos int32[1], n_tokens int32[1].
    M (the query bucket) is the grid, not a compile-time constant; rows m >= n_tokens[0] get zeros.
    """
    HD, R, VEC, G, W, NV, KPS, KVH = _geometry(spec)
    E = NV * VEC
    LMAX = spec["lmax"]
    H = KVH * R
    load_q, step, merge_groups, init_state = _make_warp_attend(spec)
    to_t = _out_conv(spec)
    ZERO_T = np.int16(0)
    RE = R * E
    WT = _word_type(spec)

    def prefill(att, q, k, v, pos, n_tokens):
        kvh = cuda.blockIdx.y
        lane = cuda.threadIdx.x & 31
        row = cuda.blockIdx.x * (cuda.blockDim.x >> 5) + (cuda.threadIdx.x >> 5)  # exact grid: M % warps == 0
        g = lane % G
        qoff = row * H * HD
        if row >= n_tokens[0]:
            for t in range(lane, R * HD, 32):
                att[qoff + kvh * R * HD + t] = ZERO_T
            return
        n = min(pos[0] + row + 1, LMAX)
        qr = cuda.local.array(RE, types.float32)
        m = cuda.local.array(R, types.float32)
        l = cuda.local.array(R, types.float32)
        acc = cuda.local.array(RE, types.float32)
        kw = cuda.local.array(NV, WT)
        vw = cuda.local.array(NV, WT)
        s = cuda.local.array(R, types.float32)
        load_q(q, qoff, kvh, g, qr)
        init_state(m, l, acc)
        for base in range(0, n, KPS):
            j = base + lane // G
            step(k, v, j, j < n, kvh, g, qr, m, l, acc, kw, vw, s)
        merge_groups(m, l, acc)
        if lane < G:
            for r in range(R):
                inv = F32(1.0) / l[r]
                for i in range(NV):
                    w = g + G * i
                    if w < W:
                        for e in range(VEC):
                            att[qoff + (kvh * R + r) * HD + w * VEC + e] = to_t(acc[r * E + i * VEC + e] * inv)

    wt = _word_type(spec)
    P = types.CPointer
    sig = (P(types.int16), P(types.int16), P(wt), P(wt), P(types.int32), P(types.int32))
    return prefill, sig
