"""The end of a decode attention block (decode_kernels.py): its warps' online-softmax states merged (fixed order),
then either the output written (no key split) or the key splits of a KV head combined (log-sum-exp):
- ticket: every block writes its partial (acc, max, sum) to global scratch; the last block of the KV head to
  arrive (atomic ticket, after one fence a block) reads them back, every split's loads in flight at once, and
  writes the output;
- cluster (sm_90): the n_split blocks of a KV head form a thread block cluster; each leaves its partial in its own
  shared memory, and after a cluster barrier rank 0 reads the others' through distributed shared memory. No global
  round trip, no fence, no atomic on the step's critical path; a second barrier keeps every block's shared memory
  alive until rank 0 has read it.
finish(att, part, cnt, sm_m, sm_l, sm_acc, kvh, split, ds, tid, n, has_keys) is the same call for all three.
"""
from __future__ import annotations

import math

from numba import cuda, types

from . import attention_kernels as ak

F32, NEG_INF = ak.F32, ak.NEG_INF


def _make_warp_merge(spec):
    R = spec["n_rep"]
    NW, VSL = spec["n_warps"], spec["head_dim"] // spec["n_dsplit"]

    @cuda.jit(device=True, forceinline=True)
    def warp_merge(t, sm_m, sm_l, sm_acc):
        # (max, sum, acc) of output element t = r*VSL + (slice dim) over the block's warps
        r = t // VSL
        mm = NEG_INF
        for w2 in range(NW):
            mm = max(mm, sm_m[w2 * R + r])
        ll = F32(0.0)
        aa = F32(0.0)
        for w2 in range(NW):  # warp 0 always had a key, so mm is finite; empty warps weigh 0
            c = math.exp2(sm_m[w2 * R + r] - mm)
            ll += sm_l[w2 * R + r] * c
            aa += sm_acc[(w2 * R + r) * VSL + t - r * VSL] * c
        return mm, ll, aa

    return warp_merge


def _make_direct(spec, ops, warp_merge):
    HD, R, NT, VSL = spec["head_dim"], spec["n_rep"], 32 * spec["n_warps"], spec["head_dim"] // spec["n_dsplit"]
    to_t = ops["to_t"]

    @cuda.jit(device=True, forceinline=True)
    def finish(att, part, cnt, sm_m, sm_l, sm_acc, kvh, split, ds, tid, n, has_keys):
        cuda.syncthreads()
        for t in range(tid, R * VSL, NT):
            r = t // VSL
            mm, ll, aa = warp_merge(t, sm_m, sm_l, sm_acc)
            att[(kvh * R + r) * HD + ds * VSL + t - r * VSL] = to_t(aa / ll)

    return finish


def _make_ticket(spec, ops, warp_merge):
    HD, R, NT, VSL = spec["head_dim"], spec["n_rep"], 32 * spec["n_warps"], spec["head_dim"] // spec["n_dsplit"]
    NS, C, PW, ARRIVALS = spec["n_split"], spec["chunk"], HD + 2, spec["n_split"] * spec["n_dsplit"]
    to_t, ticket = ops["to_t"], ops["ticket"]
    NO_COMBINE = bool(spec.get("ko", 0) & 1)  # bench only (plan knob "ko" 1): partials written, no ticket / combine

    @cuda.jit(device=True, forceinline=True)
    def combine(att, part, h, d, n_valid):
        # output element d of head h from the n_valid partials: every load issued before any is used (one L2 round
        # trip, not one a split); splits past n_valid add exact zeros, so the sums are the split-order sums
        ms = cuda.local.array(NS, types.float32)
        ls = cuda.local.array(NS, types.float32)
        vs = cuda.local.array(NS, types.float32)
        for sp in range(NS):
            ms[sp] = NEG_INF
            ls[sp] = F32(0.0)
            vs[sp] = F32(0.0)
            if sp < n_valid:
                rec = (h * NS + sp) * PW
                ms[sp] = part[rec + HD]
                ls[sp] = part[rec + HD + 1]
                vs[sp] = part[rec + d]
        mm = NEG_INF
        for sp in range(NS):
            mm = max(mm, ms[sp])
        ll = F32(0.0)
        aa = F32(0.0)
        for sp in range(NS):
            c = math.exp2(ms[sp] - mm)
            ll += ls[sp] * c
            aa += vs[sp] * c
        att[h * HD + d] = to_t(aa / ll)

    @cuda.jit(device=True, forceinline=True)
    def finish(att, part, cnt, sm_m, sm_l, sm_acc, kvh, split, ds, tid, n, has_keys):
        flag = cuda.shared.array(1, types.int32)
        if has_keys:
            cuda.syncthreads()
            for t in range(tid, R * VSL, NT):
                r = t // VSL
                d = ds * VSL + t - r * VSL
                mm, ll, aa = warp_merge(t, sm_m, sm_l, sm_acc)
                rec = ((kvh * R + r) * NS + split) * PW
                part[rec + d] = aa
                if d == 0:  # m and l are the same in every dim slice: slice 0 writes them
                    part[rec + HD] = mm
                    part[rec + HD + 1] = ll
        if NO_COMBINE:
            return
        # thread 0 fences for the whole block after the barrier (cumulative, as in cooperative groups' grid sync):
        # release before the ticket, acquire after the last one (a fence in every thread, as before, cost more)
        cuda.syncthreads()
        if tid == 0:
            cuda.threadfence()
            flag[0] = 1 if ticket(cnt, kvh, 1) == ARRIVALS - 1 else 0
            if flag[0] == 1:
                cuda.threadfence()
                cnt[kvh] = 0
        cuda.syncthreads()
        if flag[0] == 0:
            return
        n_valid = (n + C - 1) // C
        for t in range(tid, R * HD, NT):
            combine(att, part, kvh * R + t // HD, t % HD, n_valid)

    return finish


def _make_cluster(spec, ops, warp_merge):
    HD, NT = spec["head_dim"], 32 * spec["n_warps"]
    NS, C, RHD, R2 = spec["n_split"], spec["chunk"], spec["n_rep"] * spec["head_dim"], 2 * spec["n_rep"]
    to_t, sync, remote = ops["to_t"], ops["cluster_sync"], ops["dsmem_f32"]

    @cuda.jit(device=True, forceinline=True)
    def finish(att, part, cnt, sm_m, sm_l, sm_acc, kvh, split, ds, tid, n, has_keys):
        # cluster (1, NS, 1) over grid (KVH, NS, 1): this block's cluster rank is its split
        sm_acc_out = cuda.shared.array(RHD, types.float32)
        sm_ml = cuda.shared.array(R2, types.float32)  # (max, sum) per head
        if has_keys:
            cuda.syncthreads()
            for t in range(tid, RHD, NT):
                mm, ll, aa = warp_merge(t, sm_m, sm_l, sm_acc)
                sm_acc_out[t] = aa
                if t % HD == 0:
                    sm_ml[2 * (t // HD)] = mm
                    sm_ml[2 * (t // HD) + 1] = ll
        sync()
        if split == 0:
            n_valid = (n + C - 1) // C
            for t in range(tid, RHD, NT):
                r = t // HD
                mm = NEG_INF
                for sp in range(NS):
                    if sp < n_valid:
                        mm = max(mm, remote(sm_ml, 2 * r, sp))
                ll = F32(0.0)
                aa = F32(0.0)
                for sp in range(NS):
                    if sp < n_valid:
                        c = math.exp2(remote(sm_ml, 2 * r, sp) - mm)
                        ll += remote(sm_ml, 2 * r + 1, sp) * c
                        aa += remote(sm_acc_out, t, sp) * c
                att[kvh * RHD + t] = to_t(aa / ll)
        sync()

    return finish


def make_finish(spec, ops):
    warp_merge = _make_warp_merge(spec)
    if spec["n_split"] == 1:
        return _make_direct(spec, ops, warp_merge)
    if spec.get("cluster"):
        return _make_cluster(spec, ops, warp_merge)
    return _make_ticket(spec, ops, warp_merge)
