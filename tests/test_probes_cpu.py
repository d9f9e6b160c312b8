"""The probes of the thirteenth, fourteenth and twenty-fourth sessions without a GPU (ring_probe, mma8_probe,
boundary_probe, chain_probe, persist_probe; the last one's tile layout in tests/test_persist_probe_cpu.py):
their NumPy sides (e4m3 decode and rounding, the packed layouts the kernels read, the integer e4m3 -> f16 rule of
fp8i, the float64 references), their one-line error without a GPU and, with nvcc, their kernel sources under every
define set they launch."""
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from scripts import boundary_probe as bp
from scripts import chain_probe as chp
from scripts import mma8_probe as m8
from scripts import persist_probe as pp
from scripts import ring_probe as rp

NVCC = shutil.which("nvcc") or shutil.which("nvcc", path="/usr/local/cuda/bin")


def test_e4m3_decode_known_codes():
    codes = np.array([0x00, 0x01, 0x08, 0x38, 0x3c, 0x40, 0x7e, 0xb8, 0xfe])
    want = [0.0, 2.0 ** -9, 2.0 ** -6, 1.0, 1.5, 2.0, 448.0, -1.0, -448.0]
    assert rp.e4m3_to_f64(codes).tolist() == want


def test_e4m3_round_is_nearest_and_fixes_e4m3_values():
    rng = np.random.default_rng(7)
    finite = m8.E4M3[[c for c in range(256) if (c & 0x7f) != 0x7f]]
    assert np.array_equal(m8.e4m3_round(finite), finite)
    v = rng.standard_normal(2000) * 30.0
    got = m8.e4m3_round(v)
    nearest = finite[np.argmin(np.abs(finite[None, :] - np.clip(v, -448, 448)[:, None]), axis=1)]
    assert np.array_equal(np.abs(got - v), np.abs(nearest - v))   # ties may pick either side's code
    assert np.abs(m8.e4m3_round(np.array([1000.0, -1000.0]))).tolist() == [448.0, 448.0]


def test_mma8_pack_is_the_m16n8k32_a_fragment():
    """Lane 4g + t holds a0 = (g, 4t..), a1 = (g + 8, 4t..), a2 = (g, 16 + 4t..), a3 = (g + 8, 16 + 4t..) of each
    16 x 32 block, blocks tile-major."""
    rng = np.random.default_rng(3)
    b = rng.integers(0, 256, (48, 96)).astype(np.uint8)
    p = m8.pack(b)
    assert p.shape == (3, 3, 32, 16)
    for tile, step, lane in ((0, 0, 0), (2, 1, 5), (1, 2, 31), (2, 2, 18)):
        g, t = lane >> 2, lane & 3
        r, c = 16 * tile + g, 32 * step + 4 * t
        want = np.concatenate([b[r, c:c + 4], b[r + 8, c:c + 4], b[r, c + 16:c + 20], b[r + 8, c + 16:c + 20]])
        assert np.array_equal(p[tile, step, lane], want)


def _f16(words: np.ndarray) -> np.ndarray:
    return np.stack([words & 0xffff, words >> 16], axis=-1).astype(np.uint16).view(np.float16).astype(np.float64)


def test_fp8i_integer_convert_reproduces_the_dense_reference():
    """ring_probe's fp8i: the words' (b0, b2) / (b1, b3) halves by the integer rule, times 2^8 (in rs), in the
    column order make() stores, equal the dense float64 weights exactly."""
    rng = np.random.default_rng(11)
    q, _, rs, dense = rp.make(None, "fp8i", 6, 64, rng, cvt=1)
    w = q.astype(np.uint64)
    lo = (((w << 7) & 0x3f803f80) | ((w << 8) & 0x80008000)).astype(np.uint32)   # columns 4j, 4j + 1
    hi = (((w >> 1) & 0x3f803f80) | (w & 0x80008000)).astype(np.uint32)          # columns 4j + 2, 4j + 3
    vals = np.concatenate([_f16(lo), _f16(hi)], axis=-1).reshape(6, 64)
    assert np.array_equal(vals * rs[:, None].astype(np.float64), dense)


def test_int4_make_matches_its_nibble_order():
    """Column 8c + j of a row is nibble ORDER[j] of word c, (q - z) * s per group of 128."""
    rng = np.random.default_rng(5)
    q, sz, _, dense = rp.make(None, "int4", 4, 256, rng)
    order = [0, 4, 1, 5, 2, 6, 3, 7]
    sc = (sz & 0xffff).astype(np.uint16).view(np.float16).astype(np.float64)
    z = (sz >> 16).astype(np.uint16).view(np.float16).astype(np.float64)
    for r, col in ((0, 0), (1, 129), (3, 255), (2, 77)):
        nib = (int(q[r, col // 8]) >> (4 * order[col % 8])) & 15
        assert dense[r, col] == (nib - z[r, col // 128]) * sc[r, col // 128]


def _compile(src: str, defines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        cu = Path(d) / "probe.cu"
        cu.write_text(src)
        out = subprocess.run([NVCC, "-arch=sm_90", "-std=c++17", "-cubin", "-o", str(Path(d) / "p.cubin"),
                              *defines, str(cu)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]


RING_DEFINES = [f"-DQFMT={f} -DQR={r} -DQKS=2 -DQU=2 -DQW=8 -DQPF={pf} -DQKO={ko} -DQCVT={cvt}"
                for f, r, pf, ko, cvt in ((3, 0, 0, 0, 0), (3, 4, 1, 1, 0), (3, 0, 0, 2, 0), (1, 3, 0, 0, 0),
                                          (1, 0, 0, 0, 1))]
MMA8_DEFINES = [f"-DQKS={ks} -DQU={u} -DQW={w} -DQKO={ko} -DQI8={i8} -DQLAYOUT={lay}"
                for ks, u, w, ko, i8, lay in ((8, 2, 8, 0, 1, 0), (16, 4, 16, 0, 0, 1), (8, 2, 8, 2, 1, 1))]


BOUNDARY_DEFINES = ["-DPDL=0", "-DPDL=1"]
PERSIST_DEFINES = [" ".join(pp.flags(pp.VARIANTS[v])) for v in ("base", "t1", "t3", "nt512", "stream", "noprod")]


@pytest.mark.parametrize("src,defines", [("ring", d) for d in RING_DEFINES] + [("mma8", d) for d in MMA8_DEFINES]
                         + [("boundary", d) for d in BOUNDARY_DEFINES] + [("chain", ""), ("chain", "-DSTAGE=0 -DINFL=16")]
                         + [("persist", d) for d in PERSIST_DEFINES] + [("regstream", f"-DRU={u}") for u in (8, 16)])
def test_probe_kernels_compile(src, defines):
    if NVCC is None:
        pytest.skip("nvcc not installed")
    sources = {"ring": lambda: rp.SRC, "mma8": lambda: m8.SRC, "boundary": lambda: bp.SRC, "chain": lambda: chp.SRC,
               "persist": pp.source, "regstream": pp.reg_source}
    _compile(sources[src](), defines.split())


@pytest.mark.parametrize("script,main", [("ring_probe", rp.main), ("mma8_probe", m8.main),
                                         ("boundary_probe", bp.main), ("chain_probe", chp.main),
                                         ("persist_probe", pp.main)])
def test_no_gpu_is_a_one_line_error(capsys, tmp_path, script, main):
    from conftest import GPU
    if GPU:
        pytest.skip("a GPU is present: the probe would run")
    out = tmp_path / "probe.json"
    assert main(["--out", str(out)]) == 2
    assert capsys.readouterr().err == f"{script}: error: needs CuPy and a CUDA GPU\n" and not out.exists()


def test_boundary_probe_layer_bytes():
    """fp8: a 7B layer's 202.4 MB (6.48 GB over 32 layers, as the fp8 floor counts); int4: half that plus the
    (scale, zero) pairs of 128-weight groups."""
    weights = sum(n * k for n, k in bp.SHAPES)
    assert bp.BYTES["fp8"] == [n * k for n, k in bp.SHAPES] and sum(bp.BYTES["fp8"]) == weights == 202375168
    assert sum(bp.BYTES["int4"]) == weights // 2 + weights // 128 * 4


def test_chain_probe_modes_fit_two_kernels_an_sm():
    """Every prefetch mode leaves room on an SM (227 KB of shared memory) for the next kernel's blocks beside
    this one's, the point of the probe; the register modes prefetch nothing."""
    for name, bps, pre_kb, _ in chp.MODES + chp.MORE:
        per_block = pre_kb * 1024 + chp.NX_BYTES
        assert 2 * bps * per_block <= 227 * 1024, name
        assert name.startswith("reg") == (pre_kb == 0)
