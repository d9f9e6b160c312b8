"""The prefill attention's key split, host side (gpu/attention_prefill.py): how many splits a launch gets, the
scratch it needs, and the kernel's own split rule (kernels/attention_prefill_split.cuh, mirrored here) covering
every key tile exactly once. No GPU."""
import re

import pytest

from cugraphllm.gpu import attention_prefill as ap
from cugraphllm.gpu.cuda_kernels import kernel_int

SPLIT_MIN_TILES = kernel_int("attention_prefill.cu", "SPLIT_MIN_TILES")  # kernels/attention_prefill_split.cuh
SPLIT_MIN_TILES_16 = kernel_int("attention_prefill.cu", "SPLIT_MIN_TILES_16")  # buckets of <= 16 rows


def kernel_ranges(ntiles: int, grid_z: int, rows: int = 64) -> list[range]:
    """The key-tile ranges of blocks z = 0 .. grid_z - 1 in a bucket of `rows` query rows, as the kernel computes
    them (empty ones dropped)."""
    per = max(SPLIT_MIN_TILES_16 if rows <= 16 else SPLIT_MIN_TILES, -(-ntiles // grid_z))
    ns = max(1, -(-ntiles // per))
    return [range(z * per, min(ntiles, z * per + per)) for z in range(min(ns, grid_z))]


@pytest.mark.parametrize("heads,tiles,want", [(32, 1, 8), (32, 2, 4), (32, 3, 1), (64, 1, 4), (64, 2, 2),
                                              (8, 1, 8), (40, 1, 7), (128, 2, 1)])
def test_n_split(heads, tiles, want, monkeypatch):
    monkeypatch.delenv(ap.SPLIT_ENV, raising=False)
    assert ap.n_split(heads, tiles) == want


def test_env_caps_the_splits(monkeypatch):
    from cugraphllm.errors import ConfigError
    for off in ("0", "1"):
        monkeypatch.setenv(ap.SPLIT_ENV, off)
        assert ap.n_split(32, 1) == 1 and ap.n_split(8, 2) == 1
    monkeypatch.setenv(ap.SPLIT_ENV, "4")
    assert ap.n_split(32, 1) == 4 and ap.n_split(32, 2) == 4 and ap.n_split(64, 2) == 2
    monkeypatch.setenv(ap.SPLIT_ENV, "8")
    assert ap.n_split(32, 1) == 8
    for bad in ("9", "x", "-1"):
        monkeypatch.setenv(ap.SPLIT_ENV, bad)
        with pytest.raises(ConfigError, match=ap.SPLIT_ENV):
            ap.n_split(32, 1)


@pytest.mark.parametrize("heads,hd", [(32, 128), (64, 128), (8, 64), (40, 128), (16, 64)])
def test_scratch_holds_every_launch(heads, hd, monkeypatch):
    monkeypatch.setenv(ap.SPLIT_ENV, "2")  # the scratch is sized for SPLIT_MAX whatever the env says
    n_part, n_cnt = ap.split_scratch(heads, hd)
    monkeypatch.delenv(ap.SPLIT_ENV)
    assert n_cnt == ap.SPLIT_TILES * heads
    for tiles in range(1, ap.SPLIT_TILES + 1):  # the kernel's largest row index: (tiles * H * n_split) * BM rows
        assert tiles * heads * ap.n_split(heads, tiles) * ap.BM * (hd + 4) <= n_part
    assert ap.n_split(heads, 1) <= ap.SPLIT_MAX


@pytest.mark.parametrize("rows", [16, 64])
@pytest.mark.parametrize("grid_z", [1, 2, 4, 7, 8])
@pytest.mark.parametrize("ntiles", [0, 1, 3, 4, 5, 9, 17, 30, 31, 64])
def test_kernel_ranges_cover_each_tile_once(ntiles, grid_z, rows):
    ranges = kernel_ranges(ntiles, grid_z, rows)
    covered = [t for r in ranges for t in r]
    assert covered == list(range(ntiles))
    assert all(len(r) > 0 for r in ranges) or ntiles == 0
    if len(ranges) > 1:
        assert all(len(r) >= (SPLIT_MIN_TILES_16 if rows <= 16 else SPLIT_MIN_TILES) for r in ranges[:-1])
    assert len(ranges) <= grid_z


def test_short_buckets_split_finer():
    """7B, 16 rows over 1900 cached keys (30 key tiles, 8 splits): 8 ranges of 4 tiles; 64 rows: 4 of 8."""
    assert [len(r) for r in kernel_ranges(30, 8, 16)] == [4, 4, 4, 4, 4, 4, 4, 2]
    assert [len(r) for r in kernel_ranges(30, 8, 64)] == [8, 8, 8, 6]


def test_memory_estimate_counts_the_split_scratch():
    from cugraphllm.config import ModelConfig
    from cugraphllm.gpu import memory
    c = ModelConfig.from_preset("llama-2-7b")
    n_part, _ = ap.split_scratch(c.n_heads, c.head_dim)
    assert memory.attention_bytes(c, 4096, 132) >= n_part * 4


def test_launcher_constants_come_from_the_kernel_source(tmp_path, monkeypatch):
    """The launcher's tile constants are the kernel's #defines (kernel_int), and kernel_int refuses a macro that is
    missing, not an integer, or defined twice with different values."""
    from cugraphllm.errors import ConfigError
    from cugraphllm.gpu import cuda_kernels as ck
    src = ck.read_source("attention_prefill.cu")
    for name in ("BM", "BN", "NTHREADS", "SPLIT_MAX", "PSTRIDE_EXTRA"):
        assert re.search(rf"^#define {name} {getattr(ap, name)}\b", src, re.M), name
    (tmp_path / "k.cu").write_text('#define A 7\n#define B (A + 1)\n#include "h.cuh"\n')
    (tmp_path / "h.cuh").write_text("#define C 3\n#define C 4\n#define D 5\n#define D 5\n")
    monkeypatch.setattr(ck, "kernel_dir", lambda: tmp_path)
    assert ck.kernel_int("k.cu", "A") == 7 and ck.kernel_int("k.cu", "D") == 5
    for bad in ("B", "C", "E"):
        with pytest.raises(ConfigError, match=f"#define {bad}"):
            ck.kernel_int("k.cu", bad)
