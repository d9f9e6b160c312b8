"""gpu/gemm_w4.py's tile rule and shared-memory sizes, and scripts/w4_wgmma_probe.py's one-line errors (no GPU)."""
import subprocess
import sys

import numpy as np
import pytest

from cugraphllm.gpu import gemm_w4

SMEM_MAX = 227 * 1024  # H100 / H200 dynamic shared memory a block


@pytest.mark.parametrize("rule", ["1", "0"])
@pytest.mark.parametrize("mode", ["acc", "store"])
@pytest.mark.parametrize("M", [33, 64, 65, 128, 129, 256, 384, 512, 2048])
@pytest.mark.parametrize("N", [512, 4096, 5120, 8192, 12288, 13000, 22016, 28672])
def test_config_is_a_compiled_one(mode, M, N, rule, monkeypatch):
    monkeypatch.setenv(gemm_w4.TILES_ENV, rule)
    wg, bt, splits, pw = gemm_w4.config(mode, M, N)
    assert (wg, bt) in {(2, 64), (2, 128), (2, 256), (3, 64), (3, 128)}
    assert bt != 256 or wg == 2 and pw, "256-token tiles need the register-giving producer (128 accumulators)"
    assert pw == 0 or M > 128, "the producer warpgroup was timed above 128 rows only (and lost on wqkv at 256)"
    assert splits == 1 or mode == "acc", "a 16-bit store cannot add split-K partials"
    tiles = -(-N // (64 * wg)) * -(-M // bt)
    assert splits == 1 or splits * tiles * bt * 64 * wg * 4 <= gemm_w4.WS_BYTES and tiles <= gemm_w4.TICKETS, \
        "a split config whose partials do not fit the workspace would silently run unsplit"
    assert gemm_w4.smem_bytes(wg, bt) <= SMEM_MAX and gemm_w4.smem_bytes(wg, bt, bits=8) <= SMEM_MAX
    # warmup(M) compiles every kernel config(.., M, N) can take
    assert (mode, wg, bt, pw) in gemm_w4.kernels(M)


def test_tile_rule(monkeypatch):
    monkeypatch.setenv(gemm_w4.TILES_ENV, "1")
    assert gemm_w4.config("acc", 128, 4096) == (2, 64, 2, 0)    # 64 tiles: two K halves fill the 132 SMs
    assert gemm_w4.config("acc", 256, 4096) == (2, 128, 2, 1)
    assert gemm_w4.config("acc", 512, 4096) == (2, 256, 2, 1)
    assert gemm_w4.config("acc", 512, 5120) == (2, 128, 1, 1)  # 13B: 80 256-token tiles would not fit WS_BYTES split
    assert gemm_w4.config("acc", 256, 5120) == (2, 128, 2, 1)
    assert gemm_w4.config("acc", 512, 8192) == (2, 256, 1, 1)  # 70B: 128 tiles
    assert gemm_w4.config("store", 128, 22016) == (3, 128, 1, 0)
    assert gemm_w4.config("store", 256, 22016) == (3, 128, 1, 0)
    assert gemm_w4.config("store", 256, 12288) == (3, 128, 1, 0)
    assert gemm_w4.config("store", 512, 22016) == (2, 256, 1, 1)
    assert gemm_w4.config("store", 512, 12288) == (3, 128, 1, 1)
    assert gemm_w4.config("store", 768, 22016) == (2, 256, 1, 1)
    monkeypatch.setenv(gemm_w4.TILES_ENV, "0")  # the seventeenth session's rule
    assert gemm_w4.config("acc", 512, 4096) == (2, 128, 1, 0)
    assert gemm_w4.config("store", 512, 22016) == (3, 128, 1, 0)


@pytest.mark.parametrize("args,msg", [(["--configs", "wg4x"], "bad config field"),
                                      (["--configs", "auto"], "needs CuPy and a CUDA GPU")])
def test_probe_one_line_errors(args, msg):
    r = subprocess.run([sys.executable, "-m", "scripts.w4_wgmma_probe", *args], capture_output=True, text=True)
    if "CUDA GPU" in msg and r.returncode == 0:
        pytest.skip("a GPU is present")
    assert r.returncode == 2 or "bad config" in msg and r.returncode != 0
    assert msg in r.stderr + r.stdout and "Traceback" not in r.stderr


def _byte_perm(lo, hi, sel):
    """PTX prmt (default mode) on uint32 arrays: byte i of the result is byte (sel >> 4 i) & 7 of hi:lo."""
    src = (hi.astype(np.uint64) << 32) | lo.astype(np.uint64)
    out = np.zeros(lo.shape, np.uint64)
    for i in range(4):
        b = (sel >> (4 * i)) & 7
        out |= ((src >> np.uint64(8 * b)) & np.uint64(0xFF)) << np.uint64(8 * i)
    return out.astype(np.uint32)


@pytest.mark.parametrize("t", range(4))
def test_int8_fragment_conversion_is_exact(t):
    """kernels/gemm_w4_wgmma.cu's cvt8 (FMT 8), emulated bit for bit: byte_perm of the 8-byte pair with the lane's
    selector, lop3 0x6a ((v & 0x00FF00FF) ^ 0x64806480), hsub2 1152 gives the two int8 values 2t, 2t + 1 exactly."""
    rng = np.random.default_rng(t)
    q = rng.integers(-128, 128, (4096, 8)).astype(np.int8)
    q[:256, 2 * t] = np.arange(-128, 128)  # every value in both halves
    q[:256, 2 * t + 1] = np.arange(127, -129, -1)
    words = q.view(np.uint32)                       # [4096, 2]: lo, hi
    v = _byte_perm(words[:, 0], words[:, 1], 0x1100 + t * 0x2222)
    h = (v & np.uint32(0x00FF00FF)) ^ np.uint32(0x64806480)
    halves = h.view(np.float16).reshape(-1, 2).astype(np.float32) - np.float16(1152)
    assert np.array_equal(halves[:, 0], q[:, 2 * t].astype(np.float32))
    assert np.array_equal(halves[:, 1], q[:, 2 * t + 1].astype(np.float32))


def test_split_sum_setting(monkeypatch):
    from cugraphllm.errors import ConfigError
    monkeypatch.delenv(gemm_w4.SUM_ENV, raising=False)
    assert gemm_w4.split_sum() == "serial"
    for v in gemm_w4.SUMS:
        monkeypatch.setenv(gemm_w4.SUM_ENV, v)
        assert gemm_w4.split_sum() == v
    monkeypatch.setenv(gemm_w4.SUM_ENV, "fast")
    with pytest.raises(ConfigError, match="serial, park, atomic"):
        gemm_w4.split_sum()


class _WS:
    def __init__(self, size):
        self.size = size


def test_split_falls_back_where_the_sum_cannot_run(monkeypatch):
    """A launch keeps its K splits only where their partials can be summed as the setting says."""
    monkeypatch.setattr(gemm_w4.tc, "_sm_count", lambda: 132)
    tile = 256 * 128
    assert gemm_w4._split("store", 2, 64, tile, _WS(1 << 30), "park") == (1, "park")
    assert gemm_w4._split("acc", 2, 64, tile, _WS(2 * 64 * tile), "park") == (2, "park")
    assert gemm_w4._split("acc", 2, 64, tile, _WS(2 * 64 * tile - 1), "park") == (1, "park")
    assert gemm_w4._split("acc", 2, 64, tile, None, "park") == (1, "park")
    assert gemm_w4._split("acc", 2, gemm_w4.TICKETS + 1, 1, _WS(1 << 30), "park") == (1, "park")
    assert gemm_w4._split("acc", 2, 66, tile, None, "serial") == (2, "serial")  # 132 blocks: one resident wave
    # 134 blocks: a waiting split could starve, so the partials are parked where they fit, else K stays whole
    assert gemm_w4._split("acc", 2, 67, tile, _WS(2 * 67 * tile), "serial") == (2, "park")
    assert gemm_w4._split("acc", 2, 67, tile, None, "serial") == (1, "park")
    assert gemm_w4._split("acc", 1, 67, tile, None, "serial") == (1, "serial")
    assert gemm_w4._split("acc", 3, 500, tile, None, "atomic") == (3, "atomic")
