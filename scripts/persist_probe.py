"""Probe (bench only, no library code): the int4 decode GEMVs of 32 LLaMA-2-7B layers in ONE persistent kernel,
with grid-wide counters instead of kernel boundaries and the weight stream running ahead of the dependencies.

chain_probe measured the floor of today's design (one kernel a GEMV, PDL between them): 28-32 us a layer for int4
against 24 us of weight reads, and the engine's GEMVs take about 46.5 (twentieth session). A persistent kernel can do
what a chain of kernels cannot: a block's weights never depend on the activations, so its copies for the next
matrix (and the next layer) are in flight while it waits for the previous matrix's output. Here each of the
G = #SMs blocks owns a fixed slice of rows of every matrix, and a ring of S shared-memory slots (~175 KB an SM)
streams the concatenation of its slices, layer after layer: a producer warp issues one cp.async.bulk a chunk as
soon as the consumer warps release a slot (full / empty mbarriers), so the stream never waits for an activation,
only for room.

A layer is five phases, each after a grid-wide counter says the previous one is complete everywhere:
  qkv   xn = f16(x * inv_rms(x)), qkv = Wqkv xn                         (12288 x 4096)
  attn  a = qkv[:D] + 0.01 qkv[D:2D] qkv[2D:]   (a stand-in: elementwise, needs all of qkv)
  wo    x += Wo f16(a)                                                    (4096 x 4096)
  w13   xn = f16(x * inv_rms(x)), h = silu(W1 xn) * (W3 xn)               (2 x 11008 x 4096, rows interleaved)
  w2    x += W2 f16(h)                                                    (4096 x 11008)
Weights: int4, group 128, our packed nibbles (nibble k % 8 of word k / 8) in tiles of 16 rows x 256 k, each
followed by its (scale, zero) fp16 pairs (so they ride in the same stream); a block's tiles are contiguous. Products
on tensor cores (mma.sync m16n8k16, one warp a tile): 1024 + q from the 0x6400 trick, x in column 0, and each
group's (1024 + z) * sum(x) taken off with its scale.
The epilogues are the decode step's in kind (a row's sum to global, a residual add, silu * up), not RoPE / KV.

Variants (nvcc defines): S ring slots, NT consumer threads, TPW tiles a consumer warp a chunk, KO 1 no waits (no
dependency), 2 no products, 3 neither, 7 the bare stream (consumers only take and release chunks); MINB blocks an SM
(only without waits). (The twenty-fourth session's first versions, without the producer warp, are
at commits 07cfd84 .. 493b5ae.)
Checked against NumPy float64 (inputs rounded to fp16 where the kernel stages them) over 2 layers of random
weights before timing; us a layer = graph time of one 32-layer launch / 32.

Usage: python3 -m scripts.persist_probe [--out FILE] [--variants base,s3,...]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from scripts import bench_kernels as bk

from scripts.persist_probe_kernel import D, EPS, F, GS, RESMAX, SHAPES, TILEW, offsets, reg_source, source

LAYERS = 32
DEFAULTS = {"NT": 256, "S": 5, "TPW": 2, "MINB": 1}  # the kernel's build settings a variant leaves out
REG_VARIANTS = {"reg256": (256, 8, 1), "reg512": (512, 8, 1), "reg1024": (1024, 8, 1), "reg512x2": (512, 8, 2),
                "reg256u16": (256, 16, 1)}   # (threads, loads in flight a thread, blocks an SM)
VARIANTS = {"base": {}, "t1": {"TPW": 1, "S": 11}, "t3": {"TPW": 3, "S": 3}, "nt512": {"NT": 512, "TPW": 1},
            "nowait": {"KO": 1}, "noprod": {"KO": 2}, "stream": {"KO": 3}, "stream_t1": {"KO": 3, "TPW": 1, "S": 11},
            "stream_t3": {"KO": 3, "TPW": 3, "S": 3},
            # the producer's stream alone (KO 7: no staging, epilogue or counter), one and two blocks an SM
            "bare": {"KO": 7}, "bare_t4": {"KO": 7, "TPW": 4, "S": 2}, "bare_s8": {"KO": 7, "TPW": 1, "S": 8},
            "bare_x2": {"KO": 7, "NT": 128, "S": 5, "MINB": 2}, "bare_x3": {"KO": 7, "NT": 128, "S": 3, "MINB": 3},
            # the ring whose bare stream ran at the floor (s32g: 8 slots of one tile a warp), phase by phase
            "s8": {"TPW": 1, "S": 8}, "nowait_s8": {"KO": 1, "TPW": 1, "S": 8},
            "noprod_s8": {"KO": 2, "TPW": 1, "S": 8},
            "stream_s8": {"KO": 3, "TPW": 1, "S": 8}, "bare_s8_nt512": {"KO": 7, "NT": 512, "TPW": 1, "S": 4},
            "s4_nt512": {"NT": 512, "TPW": 1, "S": 4},
            # release / acquire counters without MEMBAR.GPU (does a fence wait for the ring's copies in flight?)
            "stream_s8_rel": {"KO": 3, "TPW": 1, "S": 8, "FENCE": 0},
            "noprod_s8_rel": {"KO": 2, "TPW": 1, "S": 8, "FENCE": 0}, "s8_rel": {"TPW": 1, "S": 8, "FENCE": 0},
            "s4_nt512_rel": {"NT": 512, "TPW": 1, "S": 4, "FENCE": 0},
            # fewer bytes in flight (do the stagings' loads queue behind the ring's copies on the SM's return path?)
            "bare_s3": {"KO": 7, "TPW": 1, "S": 3}, "stream_s3": {"KO": 3, "TPW": 1, "S": 3},
            "bare_s4": {"KO": 7, "TPW": 1, "S": 4}, "stream_s4": {"KO": 3, "TPW": 1, "S": 4},
            "s4": {"TPW": 1, "S": 4}, "s3": {"TPW": 1, "S": 3}}


def settings(variant: dict) -> dict:
    """A variant's full build settings (DEFAULTS for what it leaves out)."""
    return {**DEFAULTS, **variant}


def smem_bytes(variant: dict) -> int:
    """ring (S slots of CT tiles) + staged activation + row sums + group sums + reductions"""
    d = settings(variant)
    return d["S"] * d["NT"] // 32 * d["TPW"] * TILEW * 4 + F // 8 * 16 + RESMAX * 4 + 128 * 4 + 64 * 4


def flags(variant: dict) -> list[str]:
    """nvcc / NVRTC defines of a variant's build settings (persist_probe_kernel.SRC)."""
    return [f"-DPP_{k}={v}" for k, v in settings(variant).items()]


def build(cp, variant: dict):
    opts = tuple(flags(variant))
    fn = cp.RawKernel(source(), "layers", options=("-std=c++17",) + opts)
    fn.max_dynamic_shared_size_bytes = smem_bytes(variant)
    return fn


# ---- host data and the NumPy reference --------------------------------------------------------------------------
def pack_layer(rng, shapes=SHAPES) -> tuple[np.ndarray, list]:
    """One layer's tile words (uint32, the kernel's layout) and its dequantized matrices (float64)."""
    recs, mats = [], []
    for N, K in shapes:
        q = rng.integers(0, 2**32, size=(N, K // 8), dtype=np.uint64).astype(np.uint32)
        s = (rng.uniform(0.7, 1.3, size=(N, K // GS)) / np.sqrt(K * 21.0)).astype(np.float16)
        z = rng.integers(0, 16, size=(N, K // GS)).astype(np.float16)
        sz = np.stack([s, z], axis=-1).view(np.uint32)[..., 0]                       # [N, K / GS]
        KT = K // 256
        qt = q.reshape(N // 16, 16, KT, 4, 8).transpose(0, 2, 3, 1, 4).reshape(N // 16, KT, 512)
        st = sz.reshape(N // 16, 16, KT, 2).transpose(0, 2, 3, 1).reshape(N // 16, KT, 32)
        rec = np.concatenate([qt, st], axis=-1)
        nib = (q[:, :, None] >> (4 * np.arange(8, dtype=np.uint32))) & 15
        wq = nib.reshape(N, K).astype(np.float64)
        g = np.repeat(np.arange(K // GS), GS)
        mats.append(s.astype(np.float64)[:, g] * (wq - z.astype(np.float64)[:, g]))
        recs.append(rec.ravel())
    return np.concatenate(recs), mats


def f16(v):
    return v.astype(np.float16).astype(np.float64)


def ref_layers(x, layers):
    x = x.astype(np.float64)
    for wq, wo, w13, w2 in layers:
        xn = f16(x / np.sqrt(np.mean(x * x) + EPS))
        qkv = wq @ xn
        a = qkv[:D] + 0.01 * qkv[D:2 * D] * qkv[2 * D:]
        x = x + wo @ f16(a)
        xn = f16(x / np.sqrt(np.mean(x * x) + EPS))
        g = w13 @ xn
        h = g[0::2] / (1 + np.exp(-g[0::2])) * g[1::2]
        x = x + w2 @ f16(h)
    return x


def buffers(cp):
    """x, and the phase outputs poisoned with NaN (a phase that skips its rows shows), the counters"""
    return {"x": cp.empty(D, cp.float32), "qkv": cp.full(3 * D, np.nan, cp.float32),
            "a": cp.full(D, np.nan, cp.float32), "h": cp.full(F, np.nan, cp.float32),
            "cnt": cp.zeros(5 * LAYERS, cp.uint32)}


def launch(cp, fn, W, L, bufs, G, variant):
    d = settings(variant)
    bufs["cnt"].fill(0)
    args = (W, np.int32(L), bufs["x"], bufs["qkv"], bufs["a"], bufs["h"], bufs["cnt"])
    fn((G * d["MINB"],), (d["NT"] + 32,), args, shared_mem=smem_bytes(variant))


def check(cp, fn, G, defines, rng) -> float:
    """max |x - reference| / sd(reference) after 2 layers of random weights (fresh inputs, poisoned buffers)."""
    words, layers = zip(*(pack_layer(rng) for _ in range(2)))
    W = cp.asarray(np.concatenate(words))
    x0 = rng.standard_normal(D).astype(np.float32)
    bufs = buffers(cp)
    bufs["x"][:] = cp.asarray(x0)
    launch(cp, fn, W, 2, bufs, G, defines)
    got = cp.asnumpy(bufs["x"]).astype(np.float64)
    want = ref_layers(x0, layers)
    return float(np.max(np.abs(got - want)) / np.std(want))


def timing_weights(cp):
    """LAYERS layers of random words with sane (scale, zero) pairs, 3.4 GB (past L2)."""
    _, layer_words = offsets()
    W = cp.random.randint(0, 2**31, size=LAYERS * layer_words, dtype=cp.int64).astype(cp.uint32)
    W.reshape(-1, TILEW)[:, 512:] = int(np.array([0.0034, 8.0], np.float16).view(np.uint32)[0])
    return W


def reg_us(cp, stream, W, G, threads, ru, per_sm) -> float:
    fn = cp.RawKernel(reg_source(), "regstream", options=(f"-DRU={ru}",))
    sink = cp.zeros(G * per_sm, cp.uint32)
    return bk.graph_us(stream, lambda i: fn((G * per_sm,), (threads,), (W, np.int32(LAYERS), sink)), 1, calls=2,
                       reps=10) / LAYERS


def record(rows: list, name: str, us: float, floor: float, **extra) -> None:
    """Appends one row (us a layer against the copy floor, the variant's extra fields) and prints it."""
    rows.append({"variant": name, **extra, "us_per_layer": us, "copy_floor_us": floor, "pct_copy": 100 * floor / us})
    err = extra.get("max_err_over_sd")
    print(f"{name:8s} {us:7.2f} us a layer (floor {floor:.2f}, {100 * floor / us:5.1f}%)"
          + (f", err/sd {err:.2e}" if err is not None else ""), file=sys.stderr, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default=",".join(list(VARIANTS) + list(REG_VARIANTS)))
    ap.add_argument("--out", help="JSON file for the rows")
    args = ap.parse_args(argv)
    if bk.gpu_missing("persist_probe"):
        return 2
    import cupy as cp
    stream = cp.cuda.Stream(non_blocking=True)
    G = cp.cuda.Device().attributes["MultiProcessorCount"]
    copy = bk.copy_gbps(stream)
    _, layer_words = offsets()
    floor = layer_words * 4 / (copy * 1e3)
    rng = np.random.default_rng(20261202)
    rows = []
    W = None
    for name in args.variants.split(","):
        if name in REG_VARIANTS:
            if W is None:
                W = timing_weights(cp)
            record(rows, name, reg_us(cp, stream, W, G, *REG_VARIANTS[name]), floor, regstream=REG_VARIANTS[name])
            continue
        d = VARIANTS[name]
        fn = build(cp, d)
        err = check(cp, fn, G, d, rng) if not d.get("KO") else None
        if W is None:
            W = timing_weights(cp)
        bufs = buffers(cp)
        bufs["x"][:] = cp.asarray(rng.standard_normal(D).astype(np.float32))
        us = bk.graph_us(stream, lambda i: launch(cp, fn, W, LAYERS, bufs, G, d), 1, calls=2, reps=10) / LAYERS
        record(rows, name, us, floor, defines=d, max_err_over_sd=err, blocks=G * settings(d)["MINB"])
    if args.out:
        with open(args.out, "w") as f:
            json.dump({**bk.environment(), "copy_gbps": copy, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
