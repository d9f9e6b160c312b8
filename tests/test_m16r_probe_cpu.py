"""scripts/m16r_probe.py without a GPU: its config parser, and its fragment plan emulated in NumPy. One tile's
supersteps go through the kernel's index expressions (the buffer slot of each loaded chunk, the chunks each lane
reads back, the words it hands to mma.m16n8k16, the partial tile's (row, token) of each accumulator) with
mma.m16n8k16's register layout (PTX ISA, "Matrix Fragments for mma.m16n8k16"), and must give W @ a.T."""
import numpy as np
import pytest

from scripts import m16r_probe as mp


@pytest.mark.parametrize("text,want", [("r:8", (0, 8, 1)), ("rk:16", (1, 16, 1)), ("r:8:2", (0, 8, 2))])
def test_parse_config(text, want):
    assert mp.parse_config(text) == want


@pytest.mark.parametrize("text", ["r", "r:0", "r:8:3", "q:8", "r:32:2", "r:x"])
def test_parse_config_rejects(text):
    with pytest.raises(ValueError):
        mp.parse_config(text)


def _words(chunk):  # a 16-byte chunk of 8 halves -> its 4 32-bit words, each 2 halves (low half first)
    return [chunk[2 * i:2 * i + 2] for i in range(4)]


def _mma(d, a_regs, b_regs):
    """d [32 lanes][4] += A @ B with A [16, 16] from a_regs [32][4 words], B [16, 8] from b_regs [32][2 words]."""
    A, B = np.zeros((16, 16)), np.zeros((16, 8))
    for lane in range(32):
        g, c = lane // 4, lane % 4
        a0, a1, a2, a3 = a_regs[lane]
        A[g, 2 * c:2 * c + 2], A[g + 8, 2 * c:2 * c + 2] = a0, a1
        A[g, 2 * c + 8:2 * c + 10], A[g + 8, 2 * c + 8:2 * c + 10] = a2, a3
        B[2 * c:2 * c + 2, g], B[2 * c + 8:2 * c + 10, g] = b_regs[lane]
    D = A @ B
    for lane in range(32):
        g, c = lane // 4, lane % 4
        d[lane] += [D[g, 2 * c], D[g, 2 * c + 1], D[g + 8, 2 * c], D[g + 8, 2 * c + 1]]


def test_fragment_plan_gives_the_product():
    rng = np.random.default_rng(3)
    nss = 3
    W, X = rng.standard_normal((16, 256 * nss)), rng.standard_normal((16, 256 * nss))  # tile rows, tokens
    acc = np.zeros((2, 32, 4))
    for ss in range(nss):
        ex = np.full((16, 32, 8), np.nan)  # poisoned: a slot the kernel reads but never wrote shows up as NaN
        for j in range(16):  # load j: row j, lane L holds columns [8L, 8L + 8) of this superstep
            for L in range(32):
                ex[j, L ^ ((j & 1) << 2)] = W[j, 256 * ss + 8 * L:256 * ss + 8 * L + 8]
        for s in range(8):
            a_lo, a_hi, b_lo, b_hi = [], [], [[], []], [[], []]
            for lane in range(32):
                g, c = lane // 4, lane % 4
                ch, sw = 4 * s + c, (g & 1) << 2
                wa, wb = _words(ex[g, ch ^ sw]), _words(ex[g + 8, ch ^ sw])
                b = [_words(X[t, 256 * ss + 8 * ch:256 * ss + 8 * ch + 8]) for t in (g, g + 8)]
                a_lo.append([wa[0], wb[0], wa[1], wb[1]])  # mma(acc, wa.x, wb.x, wa.y, wb.y, b.x, b.y)
                a_hi.append([wa[2], wb[2], wa[3], wb[3]])  # mma(acc, wa.z, wb.z, wa.w, wb.w, b.z, b.w)
                for nt in range(2):
                    b_lo[nt].append([b[nt][0], b[nt][1]])
                    b_hi[nt].append([b[nt][2], b[nt][3]])
            for nt in range(2):
                _mma(acc[nt], a_lo, b_lo[nt])
                _mma(acc[nt], a_hi, b_hi[nt])
    red = np.full((16, 16), np.nan)
    for lane in range(32):
        g, c = lane // 4, lane % 4
        for nt in range(2):
            for i in range(4):  # the kernel's red index: row g + 8 (i >> 1), token nt * 8 + 2c + (i & 1)
                red[g + 8 * (i >> 1), nt * 8 + 2 * c + (i & 1)] = acc[nt, lane, i]
    np.testing.assert_allclose(red, W @ X.T, rtol=1e-12, atol=1e-12)


def test_source_keeps_the_emulated_expressions():
    """The expressions the emulation mirrors, as the kernel source writes them."""
    for expr in ("ex[u * 512 + j * 32 + (lane ^ ((j & 1) << 2))] = v[u][j]",
                 "const int ch = 4 * s + c, sw = (g & 1) << 2;",
                 "ex[u * 512 + g * 32 + (ch ^ sw)], wb = ex[u * 512 + (g + 8) * 32 + (ch ^ sw)]",
                 "mma(acc[0], wa.x, wb.x, wa.y, wb.y, b0.x, b0.y);", "mma(acc[1], wa.z, wb.z, wa.w, wb.w, b1.z, b1.w);",
                 "red[(warp * 16 + g + 8 * (i >> 1)) * 16 + nt * 8 + 2 * c + (i & 1)] = acc[nt][i];"):
        assert expr in mp.SRC, expr
