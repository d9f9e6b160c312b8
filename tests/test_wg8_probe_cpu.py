"""scripts/wg8_probe (bench only) without a GPU: the kernels compile for sm_90a without spills; their weight-register
and B-staging layouts (fp8 bytes; int4 nibbles widened to bytes), emulated in NumPy through wgmma's m64nNk32
fragment (as mma.m16n8k32's A a warp) and the no-swizzle K-major descriptor, give exactly the dense product; the
three e4m3 planes rebuild the activation to ~2^-12 of each value, the three int8 planes to 2^-15 of the max.
(The layouts were confirmed on the H200 for fp8 in s35f.)"""
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


def emulate(W, P, swap=False):
    """D [64, 8] of one warpgroup over all of K: W uint8-valued [64, K], P [3, K] planes (integers)."""
    K = W.shape[1]
    smem = np.zeros(8 * K, np.int64)
    i = np.arange(K)
    for n in range(3):
        smem[b_at(i, n)] = P[n]
    D = np.zeros((64, 8), np.int64)
    kl = np.arange(32)
    for c in range(K // 128):
        for s in range(4):
            base = 256 * (4 * c + s)
            B = smem[base + 128 * (kl[:, None] >> 4) + 16 * np.arange(8)[None, :] + (kl[:, None] & 15)]  # [32, 8]
            A = np.zeros((64, 32), np.int64)
            for w in range(4):
                for lane in range(32):
                    g, t = lane >> 2, lane & 3
                    r0, r1 = 16 * w + g, 16 * w + g + 8
                    ra = W[r0, 128 * c + 32 * t: 128 * c + 32 * t + 32]  # the thread's 32 bytes of each row
                    rb = W[r1, 128 * c + 32 * t: 128 * c + 32 * t + 32]
                    words = [ra[8 * s: 8 * s + 4], rb[8 * s: 8 * s + 4], ra[8 * s + 4: 8 * s + 8], rb[8 * s + 4: 8 * s + 8]]
                    if swap:
                        words[1], words[2] = words[2], words[1]
                    # mma.m16n8k32 8-bit A: a0 row g k 4t.., a1 row g + 8, a2 row g k 16 + 4t.., a3 row g + 8
                    A[r0, 4 * t: 4 * t + 4] = words[0]
                    A[r1, 4 * t: 4 * t + 4] = words[1]
                    A[r0, 16 + 4 * t: 20 + 4 * t] = words[2]
                    A[r1, 16 + 4 * t: 20 + 4 * t] = words[3]
            D += A @ B
    return D


def b4_at(i, n):
    """the int4 kernel's b4_at"""
    c, p = i >> 7, i & 127
    t, s, e = p >> 5, (p & 31) >> 3, p & 7
    kl = np.where(e & 1, 16 + 4 * t + (e >> 1), 4 * t + (e >> 1))
    return 256 * (4 * c + s) + 128 * (kl >> 4) + 16 * n + (kl & 15)


def emulate4(q, P, swap=False):
    """D [64, 8] of one warpgroup: q nibble values [64, K] packed as the engine packs int4, P [3, K] planes."""
    from cugraphllm.quant.formats import pack_int4
    K = q.shape[1]
    words = pack_int4(q)  # [64, K / 8]
    smem = np.zeros(8 * K, np.int64)
    for n in range(3):
        smem[b4_at(np.arange(K), n)] = P[n]
    D = np.zeros((64, 8), np.int64)
    kl = np.arange(32)
    widen = lambda w: np.array([(int(w) >> (8 * b)) & 0xFF for b in range(4)])  # noqa: E731 - 4 bytes of a word
    for c in range(K // 128):
        for s in range(4):
            base = 256 * (4 * c + s)
            B = smem[base + 128 * (kl[:, None] >> 4) + 16 * np.arange(8)[None, :] + (kl[:, None] & 15)]
            A = np.zeros((64, 32), np.int64)
            for w in range(4):
                for lane in range(32):
                    g, t = lane >> 2, lane & 3
                    r0, r1 = 16 * w + g, 16 * w + g + 8
                    w0, w1 = words[r0, 16 * c + 4 * t + s], words[r1, 16 * c + 4 * t + s]  # word s of 16 bytes
                    regs = [widen(w0 & 0x0F0F0F0F), widen(w1 & 0x0F0F0F0F), widen((w0 >> 4) & 0x0F0F0F0F),
                            widen((w1 >> 4) & 0x0F0F0F0F)]
                    if swap:
                        regs[1], regs[2] = regs[2], regs[1]
                    A[r0, 4 * t: 4 * t + 4], A[r1, 4 * t: 4 * t + 4] = regs[0], regs[1]
                    A[r0, 16 + 4 * t: 20 + 4 * t], A[r1, 16 + 4 * t: 20 + 4 * t] = regs[2], regs[3]
            D += A @ B
    return D


def test_int4_layouts_give_the_dense_product():
    rng = np.random.default_rng(2)
    K = 256
    q = rng.integers(0, 16, (64, K))
    P = rng.integers(-127, 128, (3, K))
    D = emulate4(q, P)
    assert np.array_equal(D[:, :3], q @ P.T) and not D[:, 3:].any()
    assert not np.array_equal(emulate4(q, P, swap=True)[:, :3], q @ P.T)


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


def test_layouts_give_the_dense_product():
    rng = np.random.default_rng(0)
    K = 384
    W = rng.integers(0, 256, (64, K))
    P = rng.integers(-200, 200, (3, K))
    D = emulate(W, P)
    assert np.array_equal(D[:, :3], W @ P.T) and not D[:, 3:].any()
    assert not np.array_equal(emulate(W, P, swap=True)[:, :3], W @ P.T)  # a moved word is caught


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


@pytest.mark.skipif(not shutil.which("nvcc") and not shutil.os.path.exists(NVCC), reason="needs nvcc")
@pytest.mark.parametrize("wg,depth", [(1, 1), (1, 2), (1, 3), (2, 2), (4, 2)])  # the probe's CONFIGS
def test_kernel_compiles_without_spills(tmp_path, wg, depth):
    from scripts.wg8_probe_src import SRC
    src = tmp_path / "k.cu"
    src.write_text(SRC)
    r = subprocess.run([NVCC, "-arch=sm_90a", "-std=c++17", f"-DWG={wg}", f"-DP={depth}", "-cubin", "-Xptxas", "-v", "-o",
                        str(tmp_path / "k.cubin"), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    spills = re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", r.stderr)
    assert len(spills) == 2 and all(a == b == "0" for a, b in spills), r.stderr  # wg8_gemv and wg4_gemv
    assert "m64n8k32.f32.e4m3.e4m3" in SRC and "m64n8k32.s32.u8.s8" in SRC
