"""Launch plans of the attention kernels (gpu/attention.py runs them): decode per sequence-length bucket (block
shape, loads in flight, key / dim splits, the combine and early-load switches), prefill per shape, and the buckets.
Pure Python: no CuPy, no Numba (the CPU tests and the compile subprocess plan without a GPU).
"""
from __future__ import annotations

from ..config import PREFILL_ROWS_DEFAULT, PREFILL_ROWS_SIZES, ModelConfig, check_prefill_rows
from ..errors import ConfigError

N_WARPS = 4  # prefill (Numba kernel)
BLOCKS_PER_SM = 2  # decode split-K: about 2 blocks of 8 warps per SM (H100 sweep: 4 and 8 were slower at 1K-4K)


def _pow2ceil(x: int) -> int:
    return 1 << max(0, (x - 1).bit_length())


def lane_geometry(head_dim: int, n_rep: int) -> dict:
    """Word width (elements per load) and lanes per key row: about 8 elements per lane (4 when n_rep > 4, to
    bound registers: each lane keeps q and acc for all n_rep heads)."""
    vec = 4 if head_dim % 4 == 0 else 2
    per_lane = 8 if n_rep <= 4 else 4
    g = min(32, _pow2ceil(-(-head_dim // per_lane)))
    return {"vec": vec, "g": g}


# decode plan defaults (H100 sweeps, benchmarks/results/attention_2026-11-23_decode*.json): 8 warps, up to 8 key
# steps in flight per lane, no key split while a block needs <= short_iters loop trips or the bucket has fewer than
# split_keys keys; those short buckets use the dim split
# instead (2 blocks per KV head beat 4 and 8 at 64-256 keys; no split below 32 keys per block)
# early: a block loads its first trip's K/V rows below the current one before the PDL wait (they were written by
# earlier steps), so the K/V read overlaps the qkv GEMV's tail instead of following it. cluster: a key split of at
# most CLUSTER_MAX blocks a KV head is combined in a thread block cluster (decode_combine.py; sm_90). Each is 0
# (off), 1 (on), 2 (on for key-split plans of one wave: at most one block an SM), 3 (on for key-split plans) or 4
# (on for key-split plans and for buckets of at most EARLY_SHORT keys); see _switch
# short_iters 1 / split_keys 256: from 256 keys a bucket of two trips is key-split (two one-trip blocks a KV head,
# cluster combine, early loads), not dim-split over two trips: H200 s40b, 7B fp16 decode at prompt 130 / 200
# 3.354 / 3.387 -> 3.325 / 3.362 ms a token (median of the first runs, 3 processes each, alternating), 13B 6.64 ->
# 6.60; bench_attention at 256 keys 5.56 -> 3.84 us a launch. Below 256 keys (70B's 64-key bucket) not measured.
# one_trip 256: a bucket of at most 256 keys raises unroll (as far as UNROLLED_FMAS allows) so that a block walks
# it in one trip, unsplit, with early loads (7B / 13B: 16 key steps in flight a lane): thirty-third session,
# bench_attention at 129 / 256 keys 3.63 / 3.58 vs 3.67 / 3.78 us a launch for the 2-way key split; 7B fp16 decode
# at prompt 130 (every step in the 256-key bucket) 3.245-3.251 vs 3.283-3.288 ms a token (medians of each run,
# 2 processes each, alternating; 3.241-3.251 vs 3.279-3.289 in s41a), 13B 6.485 vs 6.567. The same unroll on split
# plans lost (513-3900 keys: 10.0-21.7 vs 5.0-18.5 us). Small heads (stories260K), whose 256-key bucket was one trip
# already, only gain the early loads there (not timed). 0 restores the two-trip plans.
DECODE_KNOBS = {"n_warps": 8, "unroll": 8, "wide": True, "short_iters": 1, "split_keys": 256, "max_dsplit": 2,
                "dsplit_keys": 32, "n_split": None, "n_dsplit": None, "early": 4, "cluster": 2, "one_trip": 256}
CLUSTER_MAX = 8  # the portable cluster size
EARLY_SHORT = 128  # knob value 4: bench_attention s33b, early loads on the unsplit 64 / 128-key buckets 2.39 / 2.72
#                    vs 2.89 / 3.72 us a launch, but 7.16 vs 5.56 at 256 keys
UNROLLED_FMAS = 128  # unroll * n_rep * elements per lane: above this NVVM leaves the register arrays in local memory


def decode_geometry(head_dim: int, n_rep: int, wide: bool = True) -> dict:
    """16-byte words (8 elements, one word per lane) when head_dim % 8 == 0 and n_rep <= 4; else lane_geometry's
    8/4-byte words (n_rep > 4: fewer elements per lane bound the registers for q and acc of all n_rep heads)."""
    if wide and head_dim % 8 == 0 and n_rep <= 4:
        return {"vec": 8, "g": min(32, _pow2ceil(head_dim // 8))}
    return lane_geometry(head_dim, n_rep)


def _dim_split(words: int, n_kv_heads: int, n_sm: int, limit: int) -> int:
    d = 1
    while 2 * d <= limit and words % (2 * d) == 0 and 2 * d * n_kv_heads <= n_sm:
        d *= 2
    return d


def plan_decode(config: ModelConfig, dtype: str, lmax: int, n_sm: int = 132, blocks_per_sm: int = BLOCKS_PER_SM,
                **knobs) -> dict:
    """Launch plan of the decode kernel for keys 0..lmax-1 (decode_kernels.py): block of n_warps warps that loads
    `unroll` key steps per lane before using them; short buckets: one block per (KV head, V slice), no combine;
    long buckets: split-K over about blocks_per_sm*n_sm blocks, combined in the same launch (decode_combine.py:
    a thread block cluster where `cluster` is on, else the last block by atomic ticket)."""
    kn = {**DECODE_KNOBS, **knobs}
    hd, r, kvh = config.head_dim, config.n_rep, config.n_kv_heads
    geo = decode_geometry(hd, r, kn["wide"])
    kps, nw, u = 32 // geo["g"], kn["n_warps"], kn["unroll"]
    words = hd // geo["vec"]
    while nw > 1 and nw * r * hd * 4 > 32768:  # per-warp partials in shared memory
        nw //= 2
    if lmax <= kn["one_trip"]:  # enough key steps in flight for one trip, if the registers allow (below)
        u = max(u, _pow2ceil(-(-lmax // (nw * kps))))
    while u > 1 and u * r * -(-words // geo["g"]) * geo["vec"] > UNROLLED_FMAS:
        u //= 2
    while u > 1 and nw * kps * u >= 2 * lmax:  # tiny buckets: do not load far past the end
        u //= 2
    while nw > 1 and nw * kps * u >= 2 * lmax:
        nw //= 2
    step = nw * kps * u  # keys a block consumes per loop trip
    n_split = kn["n_split"]
    if n_split is None:
        trips = -(-lmax // step)
        # about blocks_per_sm * n_sm blocks, rounded up: 13B (40 KV heads) at 4096 keys takes 7 splits, 280 blocks
        # on 264 slots; capping it at one wave (6 splits) was slower (H200, 13B fp16 at 3900 cached tokens, one
        # process each, alternating: 7.64 / 7.64 ms a token at 6 vs 7.58 / 7.57 at 7; twenty-sixth session s34b)
        short = trips <= kn["short_iters"] or lmax < kn["split_keys"]
        n_split = 1 if short else min(trips, -(-blocks_per_sm * n_sm // kvh))
    chunk = -(-(-(-lmax // n_split)) // step) * step
    n_split = -(-lmax // chunk)
    limit = min(kn["max_dsplit"], max(1, lmax // kn["dsplit_keys"])) if kn["dsplit_keys"] else kn["max_dsplit"]
    d = kn["n_dsplit"] or (_dim_split(words, kvh, n_sm, limit) if n_split == 1 else 1)
    if words % d:
        raise ConfigError(f"n_dsplit {d} must divide the {words} words of a head")
    one_trip = n_split == 1 and chunk == step and lmax <= kn["one_trip"]
    return {"kind": "decode", "head_dim": hd, "n_rep": r, "n_kv_heads": kvh, "dtype": dtype, "n_warps": nw,
            "unroll": u, "lmax": lmax, "chunk": chunk, "n_split": n_split, "n_dsplit": d,
            "early": _switch(kn["early"], n_split, d, kvh, n_sm, lmax, one_trip),
            "cluster": int(_switch(kn["cluster"], n_split, d, kvh, n_sm, lmax, False) and 1 < n_split <= CLUSTER_MAX
                           and d == 1),
            **geo, **({"ko": int(kn["ko"])} if kn.get("ko") else {})}  # knob ko: bench-only knockouts
    # (decode_kernels.py, decode_combine.py: 1 no ticket combine, 2 no key walk), in a plan only when set


def _switch(knob: int, n_split: int, n_dsplit: int, n_kv_heads: int, n_sm: int, lmax: int, one_trip: bool) -> int:
    """A 0 / 1 / 2 / 3 / 4 knob of the plan. 2: on for key-split plans of one wave (one block an SM at most), cluster's
    default: the H200 A/B of 2026-11-30 gained there (7B TP2 at 512-1024 keys) and lost at 256 blocks (7B at 2048
    keys; the cluster alone costs 2.4-5.6 us a launch there, bench_attention s33b). 3: on for every key-split plan,
    early's default since s33c (7B at 2000 / 3900 keys 3.69 / 3.85-3.87 -> 3.66 / 3.79-3.80 ms a token with the
    ticket combine's loads batched and its fences by thread 0). 4: 3, and buckets of at most EARLY_SHORT keys, early's
    default since s34b (7B at prompt 10 3.40 / 3.41 / 3.41 -> 3.39 / 3.40 / 3.39 ms a token, alternating; 100 and
    200 unchanged; 2 instead lost at 1000 / 3900 keys: 3.53 / 3.79-3.80 -> 3.55-3.56 / 3.83), and one_trip plans
    (an unsplit bucket of at most DECODE_KNOBS' one_trip keys walked in one trip)."""
    if knob == 2:
        return int(n_split > 1 and n_kv_heads * n_split * n_dsplit <= n_sm)
    if knob == 3:
        return int(n_split > 1)
    if knob == 4:
        return int(n_split > 1 or lmax <= EARLY_SHORT or one_trip)
    return int(bool(knob))


def plan_prefill(config: ModelConfig, dtype: str, max_seq_len: int) -> dict:
    return {"kind": "prefill", "head_dim": config.head_dim, "n_rep": config.n_rep,
            "n_kv_heads": config.n_kv_heads, "dtype": dtype, "n_warps": N_WARPS, "lmax": max_seq_len,
            **lane_geometry(config.head_dim, config.n_rep)}


def make_buckets(max_seq_len: int, prefill_rows: int = PREFILL_ROWS_DEFAULT) -> tuple[list[int], list[int]]:
    decode = [b for b in (64 << i for i in range(16)) if b < max_seq_len] + [max_seq_len]
    # 1.5x steps above 128 rows: a 300-token prompt pays for 384 rows, not 512 (prefill is GEMM-bound, ~linear
    # in rows there). Every prefill bucket shares one compiled kernel; each costs only a graph (~0.5 MiB).
    # The largest, min(prefill_rows, S), is the chunk longer prompts are prefilled in (CudaEngine._prefill).
    top = min(check_prefill_rows(prefill_rows), max_seq_len)
    return decode, [b for b in PREFILL_ROWS_SIZES if b < top] + [top]
