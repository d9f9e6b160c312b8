"""scripts/wgh_probe (bench only) without a GPU: its weight-register and token-staging layouts, emulated through
wgmma m64n16k16's A fragment (mma.m16n8k16's a warp) and the no-swizzle K-major descriptor (LBO 128 along K, SBO
256 between the token groups), give exactly the dense product and catch a moved register; the kernel compiles for
sm_90a without spills; the probe's configs fit the 7B shapes."""
import os

import numpy as np
import pytest
from test_wg8_probe_cpu import NVCC, spills


def bh_at(i, n):
    """the kernel's bh_at (bytes)"""
    c, p = i >> 6, i & 63
    t, s, j = p >> 4, (p & 15) >> 2, p & 3
    kl = np.where(j < 2, 2 * t + j, 8 + 2 * t + (j - 2))
    return 512 * (4 * c + s) + 256 * (n >> 3) + 128 * (kl >> 3) + 16 * (n & 7) + 2 * (kl & 7)


def emulate(W, X, swap=False):
    """D [64, 16] of one warpgroup: W [64, K], X [16, K] (integers as the 16-bit values)."""
    K = W.shape[1]
    smem = np.zeros(16 * K, np.int64)  # halves
    for n in range(16):
        smem[bh_at(np.arange(K), n) // 2] = X[n]
    D = np.zeros((64, 16), np.int64)
    kl, nn = np.arange(16)[:, None], np.arange(16)[None, :]
    for c in range(K // 64):
        for s in range(4):
            B = smem[(512 * (4 * c + s) + 256 * (nn >> 3) + 128 * (kl >> 3) + 16 * (nn & 7) + 2 * (kl & 7)) // 2]
            A = np.zeros((64, 16), np.int64)
            for w in range(4):
                for lane in range(32):
                    g, t = lane >> 2, lane & 3
                    r0, r1 = 16 * w + g, 16 * w + g + 8
                    at = 64 * c + 16 * t + 4 * s  # the thread's halves of the chunk, step s
                    a = [W[r0, at: at + 2], W[r1, at: at + 2], W[r0, at + 2: at + 4], W[r1, at + 2: at + 4]]
                    if swap:
                        a[1], a[2] = a[2], a[1]
                    # mma.m16n8k16 A: a0 row g k 2t, 2t + 1; a1 row g + 8; a2 / a3 the same rows at k 8 + 2t
                    A[r0, 2 * t: 2 * t + 2], A[r1, 2 * t: 2 * t + 2] = a[0], a[1]
                    A[r0, 8 + 2 * t: 10 + 2 * t], A[r1, 8 + 2 * t: 10 + 2 * t] = a[2], a[3]
            D += A @ B
    return D


def test_layout_gives_the_dense_product():
    rng = np.random.default_rng(0)
    K = 192
    W = rng.integers(-100, 100, (64, K))
    X = rng.integers(-100, 100, (16, K))
    assert np.array_equal(emulate(W, X), W @ X.T)
    assert not np.array_equal(emulate(W, X, swap=True), W @ X.T)


def test_configs_fit_the_7b_shapes():
    from scripts.wgh_probe import CONFIGS, MATS, fits
    for name, (N, K) in MATS.items():
        assert any(fits(K, c) for c in CONFIGS), name
    assert fits(11008, (1, 43, 2)) and not fits(11008, (1, 8, 2))  # 11008 / 512 is not whole


@pytest.mark.skipif(not os.path.exists(NVCC), reason="needs nvcc")
@pytest.mark.parametrize("wg,depth", [(1, 2), (1, 3)])
def test_kernel_compiles_without_spills(tmp_path, wg, depth):
    from scripts.wgh_probe_src import SRC
    assert spills(SRC, wg, depth, tmp_path) == [("0", "0")]
