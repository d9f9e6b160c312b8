"""Numba CUDA decode attention (one query row), generated per bucket plan (attention.plan_decode).

Grid (n_kv_heads, n_split, n_dsplit), block 32*n_warps; args att/q int16 bits, k/v words, pos int32[1],
part f32[H, n_split, HD+2], cnt int32[KVH] (ticket combine only; zero between launches, the combining block
resets it).

- A lane group of G lanes holds one key row: lane g has words g, g+G, ... of VEC elements (VEC 8: one 16-byte
  ld.global.nc.v2 per word). A warp covers KPS = 32/G keys per step and issues the loads of UNROLL steps (K and V)
  before it uses any, so 2*UNROLL loads per lane are in flight instead of 2. Keys past the end are clamped to the
  last valid row (always in bounds and finite) and masked out of the softmax.
- Key split (n_split > 1, long buckets, flash-decoding): each block walks `chunk` keys and leaves a partial
  (acc, max, sum); decode_combine.py merges them in the same launch (rank 0 of a thread block cluster through
  distributed shared memory, or the last block of the KV head to finish, by atomic ticket).
- Early (spec "early"): the first trip's K/V rows below the step's own row are loaded before the PDL wait.
- Dim split (n_dsplit = D > 1, short buckets): the D blocks of a (KV head, key split) all compute the scores (each
  reads all of K; the repeats hit L2) but accumulate only their 1/D slice of V and of the output. A short bucket
  then spreads over D times more SMs with no combine step, no atomic and no fence.
Scores are in log2 units (q pre-scaled by log2(e)/sqrt(head_dim)); all math fp32, fixed order (deterministic).
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, types

from . import attention_kernels as ak, decode_combine, numba_ptx as nx

F32, NEG_INF, FULL = ak.F32, ak.NEG_INF, ak.FULL


def default_ops(spec):
    """Device primitives, passed in so the CPU simulator can run the same kernel body with Python versions."""
    bf = spec["dtype"] == "bfloat16"
    return {"to_f32": nx._bf16_to_f32 if bf else nx._f16_to_f32, "to_t": nx._f32_to_bf16 if bf else nx._f32_to_f16,
            "ldg16": nx._ldg16, "ticket": nx._atomic_add_i32, "cluster_sync": nx._cluster_sync,
            "dsmem_f32": nx._dsmem_f32,
            "pdl_enter": ((nx._pdl_enter_late if spec.get("pdl_order") == "late" else nx._pdl_enter)
                          if spec.get("pdl") else nx._no_trigger),
            "pdl_trigger": nx._pdl_trigger if spec.get("pdl") else nx._no_trigger,
            "pdl_wait": nx._pdl_wait if spec.get("pdl") else nx._no_trigger}


def _make_loads(spec, ops):
    """load_rows: K and V words of UNROLL key steps into registers; elem: element e of a loaded word as f32."""
    HD, R, VEC, G, W, NV, KPS, KVH = ak._geometry(spec)
    U, D = spec["unroll"], spec["n_dsplit"]
    VW = W // D  # V words in this block's slice
    NVV = -(-VW // G)
    EPP = min(VEC, 4)  # elements per register part: int64 holds 4 halves, int32 holds 2
    NP = VEC // EPP
    ROW = KVH * W
    ldg16, to_f32 = ops["ldg16"], ops["to_f32"]

    if NP == 2:
        @cuda.jit(device=True, forceinline=True)
        def load(ptr, widx, buf, off):
            t = ldg16(ptr, widx)
            buf[off] = t[0]
            buf[off + 1] = t[1]
    else:
        @cuda.jit(device=True, forceinline=True)
        def load(ptr, widx, buf, off):
            buf[off] = ptr[widx]

    @cuda.jit(device=True, forceinline=True)
    def load_rows(k, v, j0, lo, hi, kvh, g, ds, kb, vb):
        # kb[(u*NV + i)*NP + p]: part p of K word g+G*i of key j = j0+u*KPS, row min(j, hi), loaded only when
        # j >= lo (other steps keep what they hold); vb likewise for V slice word g%VW+G*i
        for u in range(U):
            if j0 + u * KPS < lo:
                continue
            row = min(j0 + u * KPS, hi) * ROW + kvh * W
            for i in range(NV):
                w = g + G * i
                if w < W:
                    load(k, row + w, kb, (u * NV + i) * NP)
                else:
                    for p in range(NP):
                        kb[(u * NV + i) * NP + p] = 0
            for i in range(NVV):
                w = g % VW + G * i
                if w < VW:
                    load(v, row + ds * VW + w, vb, (u * NVV + i) * NP)
                else:
                    for p in range(NP):
                        vb[(u * NVV + i) * NP + p] = 0

    @cuda.jit(device=True, forceinline=True)
    def elem(buf, word, e):
        return to_f32(buf[word * NP + e // EPP] >> (16 * (e % EPP)))

    return load_rows, elem


def _make_softmax(spec, ops, elem):
    """scores (lane-group dot products), update (online softmax over UNROLL keys at once), merge (lane groups)."""
    HD, R, VEC, G, W, NV, KPS, KVH = ak._geometry(spec)
    U, D = spec["unroll"], spec["n_dsplit"]
    NVV = -(-(W // D) // G)
    E, EV = NV * VEC, NVV * VEC

    @cuda.jit(device=True, forceinline=True)
    def scores(qr, kb, s):
        for t in range(U * R):
            s[t] = F32(0.0)
        for u in range(U):
            for i in range(NV):
                for e in range(VEC):
                    kf = elem(kb, u * NV + i, e)
                    for r in range(R):
                        s[u * R + r] += qr[r * E + i * VEC + e] * kf
        off = G >> 1
        while off > 0:
            for t in range(U * R):
                s[t] += cuda.shfl_xor_sync(FULL, s[t], off)
            off >>= 1

    @cuda.jit(device=True, forceinline=True)
    def update(j0, end, s, vb, m, l, acc):
        for u in range(U):
            if j0 + u * KPS >= end:
                for r in range(R):
                    s[u * R + r] = NEG_INF
        for r in range(R):
            mx = m[r]
            for u in range(U):
                mx = max(mx, s[u * R + r])
            mb = mx if mx != NEG_INF else F32(0.0)  # nothing valid yet: c and p come out 0, state stays 0
            c = math.exp2(m[r] - mb)
            m[r] = mx
            lsum = l[r] * c
            for t in range(EV):
                acc[r * EV + t] *= c
            for u in range(U):
                p = math.exp2(s[u * R + r] - mb)
                lsum += p
                for i in range(NVV):
                    for e in range(VEC):
                        acc[r * EV + i * VEC + e] += p * elem(vb, u * NVV + i, e)
            l[r] = lsum

    merge = ak.lane_merge(G, R, EV)

    return scores, update, merge


def _buf_sizes(spec):
    """Register words a lane holds for one trip: K (UNROLL steps x NV words) and V (its slice), x parts a word."""
    HD, R, VEC, G, W, NV, KPS, KVH = ak._geometry(spec)
    U, NP = spec["unroll"], VEC // min(VEC, 4)
    return U * NV * NP, U * -(-(W // spec["n_dsplit"]) // G) * NP


def _make_walk(spec, ops):
    """walk: one block's keys [start, end) -> per-warp (m, l, acc slice) in shared memory."""
    HD, R, VEC, G, W, NV, KPS, KVH = ak._geometry(spec)
    U, NW, D = spec["unroll"], spec["n_warps"], spec["n_dsplit"]
    VW = W // D
    NVV = -(-VW // G)
    E, EV, VSL = NV * VEC, NVV * VEC, VW * VEC
    RE, REV, UR = R * E, R * EV, U * R  # array shapes must be constants
    SCALE = np.float32(math.log2(math.e) / math.sqrt(HD))
    to_f32 = ops["to_f32"]
    load_rows, elem = _make_loads(spec, ops)
    scores, update, merge = _make_softmax(spec, ops, elem)

    @cuda.jit(device=True, forceinline=True)
    def preload(k, v, kvh, ds, lane, warp, start, end, n, kb, vb):
        # before the PDL wait: the first trip's rows below n-1 (written by earlier steps; row n-1 is this step's,
        # written by the kernel still running before this one, and is never touched here, so no stale line of it
        # can sit in L1 for the read after the wait). Rows past n-2 are clamped to n-2.
        if n >= 2 and start + warp * (KPS * U) < end:
            load_rows(k, v, start + warp * (KPS * U) + lane // G, 0, n - 2, kvh, lane % G, ds, kb, vb)

    @cuda.jit(device=True, forceinline=True)
    def walk(q, k, v, kvh, ds, lane, warp, start, end, n, kb, vb, early, sm_m, sm_l, sm_acc):
        # early: preload() ran, so the first trip only loads its steps at keys >= n-1 (clamped to n-1)
        g = lane % G
        kl = lane // G
        qr = cuda.local.array(RE, types.float32)
        m = cuda.local.array(R, types.float32)
        l = cuda.local.array(R, types.float32)
        acc = cuda.local.array(REV, types.float32)
        s = cuda.local.array(UR, types.float32)
        for r in range(R):  # qr[r*E + i*VEC + e] = q[head kvh*R+r, word g+G*i, elem e] * SCALE (0 past the row)
            m[r] = NEG_INF
            l[r] = F32(0.0)
            for i in range(NV):
                w = g + G * i
                for e in range(VEC):
                    x = F32(0.0)
                    if w < W:
                        x = to_f32(q[(kvh * R + r) * HD + w * VEC + e]) * SCALE
                    qr[r * E + i * VEC + e] = x
        for t in range(REV):
            acc[t] = F32(0.0)
        lo = n - 1 if early else 0
        for base in range(start + warp * (KPS * U), end, NW * KPS * U):
            load_rows(k, v, base + kl, lo, n - 1, kvh, g, ds, kb, vb)
            lo = 0
            scores(qr, kb, s)
            update(base + kl, end, s, vb, m, l, acc)
        merge(m, l, acc)
        if lane < G and g < VW:  # key slot 0 holds the merged warp; duplicate V lanes (g >= VW) write nothing
            for r in range(R):
                if lane == 0:
                    sm_m[warp * R + r] = m[r]
                    sm_l[warp * R + r] = l[r]
                for i in range(NVV):
                    w = g + G * i
                    if w < VW:
                        for e in range(VEC):
                            sm_acc[(warp * R + r) * VSL + w * VEC + e] = acc[r * EV + i * VEC + e]

    return preload, walk


def make_decode(spec, ops=None):
    """(kernel function, signature) of one decode plan; `ops` overrides the device primitives (simulator)."""
    ops = ops or default_ops(spec)
    HD, R, VEC, G, W, NV, KPS, KVH = ak._geometry(spec)
    NW, C, LMAX = spec["n_warps"], spec["chunk"], spec["lmax"]
    NWR, NWRV = NW * R, NW * R * (HD // spec["n_dsplit"])
    preload, walk = _make_walk(spec, ops)
    finish = decode_combine.make_finish(spec, ops)
    EARLY = bool(spec.get("early"))
    NO_WALK = bool(spec.get("ko", 0) & 2)  # bench only (knob "ko"): 2 no key walk (no K/V read); 1 (decode_combine)
    UNV, UNVV = _buf_sizes(spec)
    WT = ak._word_type(spec)
    pdl_enter = ops.get("pdl_enter", lambda: None)  # sm_90: launched with PDL (gpu/pdl.py); wo may launch early
    pdl_trigger, pdl_wait = ops.get("pdl_trigger", lambda: None), ops.get("pdl_wait", pdl_enter)

    def decode(att, q, k, v, pos, part, cnt):
        kvh, split, ds = cuda.blockIdx.x, cuda.blockIdx.y, cuda.blockIdx.z
        tid = cuda.threadIdx.x
        kb = cuda.local.array(UNV, WT)
        vb = cuda.local.array(UNVV, WT)
        if EARLY:  # pos is written only by the previous step's last kernel, complete before this step's first
            pdl_trigger()  # first: wo's blocks launch (and stage wo) while this block reads pos and its rows
            n = min(pos[0] + 1, LMAX)
            preload(k, v, kvh, ds, tid & 31, tid >> 5, split * C, min(split * C + C, n), n, kb, vb)
            pdl_wait()
        else:
            pdl_enter()
            n = min(pos[0] + 1, LMAX)
        start = split * C
        sm_m = cuda.shared.array(NWR, types.float32)
        sm_l = cuda.shared.array(NWR, types.float32)
        sm_acc = cuda.shared.array(NWRV, types.float32)
        if start < n and not NO_WALK:  # block-uniform
            walk(q, k, v, kvh, ds, tid & 31, tid >> 5, start, min(start + C, n), n, kb, vb, EARLY, sm_m, sm_l,
                 sm_acc)
        finish(att, part, cnt, sm_m, sm_l, sm_acc, kvh, split, ds, tid, n, start < n)

    P = types.CPointer
    sig = (P(types.int16), P(types.int16), P(WT), P(WT), P(types.int32), P(types.float32), P(types.int32))
    return decode, sig
