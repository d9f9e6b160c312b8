"""scripts/m16_probe.py without a GPU: its config parsing, the shared-memory layouts its ldmatrix reads (every
8-row matrix of a k16 step lands in 32 distinct banks, and the swizzled tensor-map layout is a bijection), its
one-line error without a GPU and, with nvcc, its kernel sources under the defines it launches."""
import pytest

from scripts import m16_probe as mp
from scripts.m16_probe_sk_src import SK_SRC
from scripts.m16_probe_src import SRC
from test_probes_cpu import NVCC, _compile


def test_parse_config():
    assert mp.parse_config("256:4:4") == (256, 4, 4, 1)
    assert mp.parse_config("512:3:8:0") == (512, 3, 8, 0)
    assert mp.parse_config("tma:6:4") == (-1, 6, 4, 1)
    assert mp.parse_config("tma2:4:8:0") == (-2, 4, 8, 0)
    assert mp.parse_config("tma1w:3:8") == (-5, 3, 8, 1)
    assert mp.parse_config("tma2wx:3:8:0") == (-14, 3, 8, 0)
    assert mp.parse_config("tmaxc:4:4") == (-25, 4, 4, 1)
    assert mp.parse_config("pst2xc:8:8:1") == (-58, 8, 8, 1) and mp.parse_config("pst:4:4") == (-33, 4, 4, 2)
    assert mp.parse_config("sk2:4:4:2") == (-66, 4, 4, 2) and mp.parse_config("skxc:4:4") == (-89, 4, 4, 2)
    for bad in ("100:4:4", "256:1:4", "256:4:0", "tma3:4:4", "tma:1:4"):
        with pytest.raises(ValueError):
            mp.parse_config(bad)


def swz(r: int, k: int, rows: int = 16) -> int:  # m16_tma's byte offset of (row r, column k), [4][rows][128 B]
    return (k >> 6) * rows * 128 + r * 128 + ((((k & 63) >> 3) ^ (r & 7)) << 4)


def banks(addrs):
    return sorted({(a // 4 + w) % 32 for a in addrs for w in range(4)})


@pytest.mark.parametrize("j", range(16))
@pytest.mark.parametrize("q", range(4))
def test_ldmatrix_rows_hit_distinct_banks(q, j):
    kc = 256
    pitch = 2 * kc + 16
    stream = [((q & 1) * 8 + r) * pitch + (q >> 1) * 16 + j * 32 for r in range(8)]
    tma = [swz((q & 1) * 8 + r, j * 16 + (q >> 1) * 8) for r in range(8)]
    assert banks(stream) == list(range(32)) and banks(tma) == list(range(32))


@pytest.mark.parametrize("rows", [16, 32])
def test_swizzled_block_is_a_bijection(rows):
    offs = {swz(r, k, rows) for r in range(rows) for k in range(0, 256, 8)}
    assert offs == set(range(0, 512 * rows, 16))


def test_no_gpu_is_a_one_line_error(capsys, tmp_path):
    from conftest import GPU
    if GPU:
        pytest.skip("a GPU is present: the probe would run")
    out = tmp_path / "probe.json"
    assert mp.main(["--out", str(out)]) == 2
    assert capsys.readouterr().err == "m16_probe: error: needs CuPy and a CUDA GPU\n" and not out.exists()


@pytest.mark.parametrize("defines", ["", "-DKC=512 -DS=3 -DCW=4", "-DS=6 -DCW=8 -DROT=0", "-DKC=128 -DS=8",
                                     "-DRT=2 -DS=6 -DCW=8", "-DRT=2 -DTKC=512 -DS=2 -DCW=8", "-DXKO=1 -DCKO=1"])
def test_kernel_compiles(defines):
    if NVCC is None:
        pytest.skip("nvcc not installed")
    _compile(SRC, defines.split())
    _compile(SK_SRC, defines.split())


def sk_ranges(ntiles: int, nst: int, grid: int) -> list[range]:  # m16_sk's stage range of each block
    total = ntiles * nst
    return [range(total * b // grid, total * (b + 1) // grid) for b in range(grid)]


@pytest.mark.parametrize("ntiles,nst,grid", [(256, 16, 132), (256, 43, 132), (768, 16, 264), (1376, 16, 396),
                                             (256, 16, 256), (7, 5, 7), (9, 3, 4)])
def test_stream_k_cuts_each_tile_at_most_once(ntiles, nst, grid):
    """With grid <= ntiles (the host's rule) every range holds >= nst stages, so a tile has at most one cut, the head
    block (first stage) is before the tail block, and every stage is in exactly one range."""
    ranges = sk_ranges(ntiles, nst, min(grid, ntiles))
    assert [g for r in ranges for g in r] == list(range(ntiles * nst))
    for t in range(ntiles):
        owners = [b for b, r in enumerate(ranges) if r.start < t * nst + nst and t * nst < r.stop]
        assert 1 <= len(owners) <= 2 and (len(owners) == 1 or owners[1] == owners[0] + 1)
