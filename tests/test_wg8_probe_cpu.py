"""scripts/wg8_probe (bench only) without a GPU: the kernels compile for sm_90a without spills; their weight-register
and B-staging layouts (fp8 / int8 bytes; int4 nibbles widened to bytes), emulated in NumPy through wgmma's m64nNk32
fragment (as mma.m16n8k32's A a warp) and the no-swizzle K-major descriptor, give exactly the dense product; the
three e4m3 planes rebuild the activation to ~2^-12 of each value, the three int8 planes to 2^-15 of the max.
(The layouts were confirmed on the H200 for fp8 in s35f.)"""
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

NVCC = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"


def test_probe_configs_fit_the_7b_shapes():
    from scripts.wg8_probe import CONFIGS, fits, smem_bytes
    for K in (4096, 11008):
        ok = [c for c in CONFIGS if fits(K, c)]
        assert ok and all(smem_bytes(K, c) <= 200 * 1024 and K % (128 * c[0] * c[1]) == 0 for c in ok)
    assert not fits(11008, (4, 1, 2))  # 11008 / 512 is not whole


def b_at(i, n):
    """byte offset in B of plane n, physical column i (the kernel's b_at)"""
    c, p = i >> 7, i & 127
    t, s, j = p >> 5, (p & 31) >> 3, p & 7
    kl = np.where(j < 4, 4 * t + j, 16 + 4 * t + (j - 4))
    return 256 * (4 * c + s) + 128 * (kl >> 4) + 16 * n + (kl & 15)


def b_tile(smem, c, s):
    """B [32, 8] of wgmma step s of chunk c as the no-swizzle K-major descriptor reads it: core matrices (kl < 16,
    kl >= 16) 128 bytes apart, row n at 16 n"""
    kl = np.arange(32)[:, None]
    return smem[256 * (4 * c + s) + 128 * (kl >> 4) + 16 * np.arange(8)[None, :] + (kl & 15)]


def warpgroup_d(K, P, place, regs_of, swap=False):
    """D [64, 8] of one warpgroup over K columns: the planes P [3, K] staged at byte place(i, n) of B, and the A
    registers a0..a3 (4 bytes each) regs_of(c, s, r0, r1, t) gives thread (g, t) of a warp for rows r0 / r1 = r0 + 8
    at step s of chunk c, set into A by mma.m16n8k32's 8-bit layout (a0 row g k 4t.., a1 row g + 8, a2 / a3 the
    same rows at k 16 + 4t..); swap exchanges a1 / a2 (a wrong layout the test must catch)."""
    smem = np.zeros(8 * K, np.int64)
    for n in range(3):
        smem[place(np.arange(K), n)] = P[n]
    D = np.zeros((64, 8), np.int64)
    for c in range(K // 128):
        for s in range(4):
            A = np.zeros((64, 32), np.int64)
            for w in range(4):
                for lane in range(32):
                    g, t = lane >> 2, lane & 3
                    r0, r1 = 16 * w + g, 16 * w + g + 8
                    a = regs_of(c, s, r0, r1, t)
                    if swap:
                        a[1], a[2] = a[2], a[1]
                    A[r0, 4 * t: 4 * t + 4], A[r1, 4 * t: 4 * t + 4] = a[0], a[1]
                    A[r0, 16 + 4 * t: 20 + 4 * t], A[r1, 16 + 4 * t: 20 + 4 * t] = a[2], a[3]
            D += A @ b_tile(smem, c, s)
    return D


def fp8_regs(W):
    """wg8_gemv: the thread's 32 bytes of each row a chunk; step s takes bytes [8s, 8s + 4) as a0 / a1, the next 4
    as a2 / a3"""
    def regs(c, s, r0, r1, t):
        at = 128 * c + 32 * t + 8 * s
        return [W[r0, at: at + 4], W[r1, at: at + 4], W[r0, at + 4: at + 8], W[r1, at + 4: at + 8]]
    return regs


def b4_at(i, n):
    """the int4 kernel's b4_at"""
    c, p = i >> 7, i & 127
    t, s, e = p >> 5, (p & 31) >> 3, p & 7
    kl = np.where(e & 1, 16 + 4 * t + (e >> 1), 4 * t + (e >> 1))
    return 256 * (4 * c + s) + 128 * (kl >> 4) + 16 * n + (kl & 15)


def int4_regs(q):
    """wg4_gemv: word s of the thread's 16 bytes of each row (packed as the engine packs int4), widened: a0 / a1 =
    w & 0x0F0F0F0F, a2 / a3 = (w >> 4) & 0x0F0F0F0F"""
    from cugraphllm.quant.formats import pack_int4
    words = pack_int4(q)

    def widen(w):
        return [(int(w) >> (8 * b)) & 0xFF for b in range(4)]

    def regs(c, s, r0, r1, t):
        w0, w1 = words[r0, 16 * c + 4 * t + s], words[r1, 16 * c + 4 * t + s]
        return [widen(w0 & 0x0F0F0F0F), widen(w1 & 0x0F0F0F0F), widen((w0 >> 4) & 0x0F0F0F0F),
                widen((w1 >> 4) & 0x0F0F0F0F)]
    return regs


def test_int8_planes_rebuild_the_activation():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(4096) * np.exp(rng.uniform(-8, 3, 4096))).astype(np.float16).astype(np.float32)
    v = (x * np.float32(127.0 / np.abs(x).max())).astype(np.float32)
    h = np.rint(v)
    r = np.float32(128) * (v - h)
    m = np.rint(r)
    l = np.rint(np.float32(128) * (r - m))
    assert np.abs(h).max() <= 127 and np.abs(m).max() <= 64 and np.abs(l).max() <= 64
    err = np.abs(h + m / 128 + l / 16384 - v.astype(np.float64))
    assert err.max() <= 2.0 ** -15 and np.abs(h - v).max() > 0.1


@pytest.mark.parametrize("fmt", ["fp8", "int4"])
def test_layouts_give_the_dense_product(fmt):
    qmax, pmax, K, place, regs = (256, 200, 384, b_at, fp8_regs) if fmt == "fp8" else (16, 127, 256, b4_at, int4_regs)
    rng = np.random.default_rng(0)
    W = rng.integers(0, qmax, (64, K))
    P = rng.integers(-pmax, pmax, (3, K))
    D = warpgroup_d(K, P, place, regs(W))
    assert np.array_equal(D[:, :3], W @ P.T) and not D[:, 3:].any()
    assert not np.array_equal(warpgroup_d(K, P, place, regs(W), swap=True)[:, :3], W @ P.T)  # a moved register


def test_planes_rebuild_the_activation():
    ml = pytest.importorskip("ml_dtypes")
    e4m3 = lambda v: v.astype(ml.float8_e4m3fn).astype(np.float64)  # noqa: E731 - round to nearest, as cvt.rn
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(4096) * np.exp(rng.uniform(-8, 3, 4096))).astype(np.float16).astype(np.float64)
    v = x * 448.0 / np.abs(x).max()
    h = e4m3(v)
    r1 = 16.0 * (v - h)
    m = e4m3(r1)
    l = e4m3(16.0 * (r1 - m))
    err = np.abs(h + m / 16 + l / 256 - v)
    assert np.all(err <= np.abs(v) * 2.0 ** -12 + 2.0 ** -17)
    assert np.abs(h - v).max() > 1e-3  # one plane alone would not do


def spills(src, wg, depth, tmp_path):
    """[(spill store, spill load bytes)] of each kernel of src built for sm_90a with WG / P (nvcc -Xptxas -v)"""
    (tmp_path / "k.cu").write_text(src)
    r = subprocess.run([NVCC, "-arch=sm_90a", "-std=c++17", f"-DWG={wg}", f"-DP={depth}", "-cubin", "-Xptxas", "-v",
                        "-o", str(tmp_path / "k.cubin"), str(tmp_path / "k.cu")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", r.stderr)


@pytest.mark.skipif(not os.path.exists(NVCC), reason="needs nvcc")
@pytest.mark.parametrize("wg,depth", [(1, 1), (1, 2), (1, 3), (2, 2), (4, 2)])  # the probe's CONFIGS
def test_kernel_compiles_without_spills(tmp_path, wg, depth):
    from scripts.wg8_probe_src import SRC
    s = spills(SRC, wg, depth, tmp_path)
    assert len(s) == 3 and all(a == b == "0" for a, b in s), s  # wg8, wgi8, wg4_gemv
    assert all(f"m64n8k32.{t}" in SRC for t in ("f32.e4m3.e4m3", "s32.s8.s8", "s32.u8.s8"))


def test_int4_arithmetic_matches_float64():
    """wg4_gemv's sums in NumPy: each group's exact integer products with the three int8 planes, weighted 1, 1/128,
    1/16384, times its scale, less zero x the group's rebuilt activation sum; times max / 127 and inv_rms."""
    from cugraphllm.quant.formats import dequantize, quantize
    rng = np.random.default_rng(4)
    N, K = 64, 512
    ql = quantize(rng.standard_normal((N, K)).astype(np.float32), "int4", 128)
    x = (rng.standard_normal(K) * np.exp(rng.uniform(-3, 2, K))).astype(np.float16).astype(np.float32)
    mx = np.abs(x).max()
    v = (x * np.float32(127.0 / mx)).astype(np.float32)
    h = np.rint(v)
    r = np.float32(128) * (v - h)
    m = np.rint(r)
    lo = np.rint(np.float32(128) * (r - m))
    rebuilt = h + m / 128 + lo / 16384
    from cugraphllm.quant.formats import unpack_int4
    q = unpack_int4(ql.qweight).astype(np.int64)
    y = np.zeros(N)
    for gi in range(K // 128):
        sl = slice(128 * gi, 128 * gi + 128)
        D = q[:, sl] @ np.stack([h, m, lo])[:, sl].astype(np.int64).T  # [N, 3], exact
        part = D[:, 0] + D[:, 1] / 128 + D[:, 2] / 16384 - ql.zeros[:, gi].astype(np.float64) * rebuilt[sl].sum()
        y += ql.scales[:, gi].astype(np.float64) * part
    y *= mx / 127
    ref = dequantize(ql) @ x.astype(np.float64)
    assert np.max(np.abs(y - ref)) / np.max(np.abs(ref)) < 1e-5
