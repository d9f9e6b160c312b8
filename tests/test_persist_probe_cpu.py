"""CPU tests of scripts/persist_probe.py: its tile layout fed through the kernel's mma fragment mapping (emulated in
float64) gives the dequantized matrix times x, and every variant fits one SM's shared memory. Its sources' nvcc
builds and its one-line error without a GPU are in tests/test_probes_cpu.py with the other probes'."""
import numpy as np
import pytest

from scripts import persist_probe as pp

def _staged(x16):
    """The kernel's xs (per word: the pairs (j, j + 4)) and gsum (per group of 128) of fp16 inputs."""
    xs = np.stack([x16.reshape(-1, 8)[:, :4], x16.reshape(-1, 8)[:, 4:]], axis=-1).astype(np.float64)
    return xs, x16.astype(np.float64).reshape(-1, 128).sum(axis=1)


def _tile_sums(tw, kt, xs, gsum):
    """The 16 row sums products() and tile() make of one tile, with m16n8k16's A / B fragment placement."""
    nib = lambda q, sh: np.array([1024 + ((q >> sh) & 15), 1024 + ((q >> (sh + 16)) & 15)], float)  # noqa: E731
    out = np.zeros(16)
    sz = tw[512:544].view(np.float16).reshape(2, 16, 2).astype(np.float64)
    for grp in range(2):
        d = np.zeros((16, 8))
        for b in (2 * grp, 2 * grp + 1):
            for j in range(4):
                A, B = np.zeros((16, 16)), np.zeros((16, 8))
                for lane in range(32):
                    g, t = lane >> 2, lane & 3
                    r0, r8 = (tw[b * 128 + r * 8 + 2 * t: b * 128 + r * 8 + 2 * t + 2].astype(np.int64)
                              for r in (g, g + 8))
                    A[g, 2 * t:2 * t + 2], A[g + 8, 2 * t:2 * t + 2] = nib(r0[0], 4 * j), nib(r8[0], 4 * j)
                    A[g, 2 * t + 8:2 * t + 10], A[g + 8, 2 * t + 8:2 * t + 10] = nib(r0[1], 4 * j), nib(r8[1], 4 * j)
                    if g == 0:
                        wb = kt * 32 + 8 * b + 2 * t
                        B[2 * t:2 * t + 2, 0], B[2 * t + 8:2 * t + 10, 0] = xs[wb, j], xs[wb + 1, j]
                d += A @ B
        out += sz[grp, :, 0] * (d[:, 0] - (1024 + sz[grp, :, 1]) * gsum[kt * 2 + grp])
    return out


@pytest.mark.parametrize("shape", [(32, 512), (16, 768)])
def test_tiles_through_the_fragments_equal_the_dequantized_product(shape):
    rng = np.random.default_rng(sum(shape))
    words, (w,) = pp.pack_layer(rng, [shape])
    N, K = shape
    x16 = rng.standard_normal(K).astype(np.float16)
    xs, gsum = _staged(x16)
    tiles = words.reshape(N // 16, K // 256, pp.TILEW)
    got = np.concatenate([sum(_tile_sums(tiles[rt, kt], kt, xs, gsum) for kt in range(K // 256))
                          for rt in range(N // 16)])
    want = w @ x16.astype(np.float64)
    assert np.max(np.abs(got - want)) <= 1e-9 * np.max(np.abs(want))
    bad = tiles.copy()
    bad[0, 0, :512] = np.roll(bad[0, 0, :512], 1)  # one tile's words out of place: must show
    assert abs(_tile_sums(bad[0, 0], 0, xs, gsum) - _tile_sums(tiles[0, 0], 0, xs, gsum)).max() > 1e-3


def test_layer_offsets_count_every_tile():
    offs, words = pp.offsets()
    assert offs[0] == 0 and words == sum(n // 16 * (k // 256) for n, k in pp.SHAPES) * pp.TILEW
    assert words * 4 == sum(n * k // 2 + n * k // 128 * 4 for n, k in pp.SHAPES)  # int4 + (scale, zero)


@pytest.mark.parametrize("name", sorted(pp.VARIANTS))
def test_variant_fits_an_sm(name):
    d = pp.VARIANTS[name]
    assert d.get("MINB", 1) * (pp.smem_bytes(d) + 1024) <= 228 * 1024 and pp.smem_bytes(d) <= 227 * 1024
    assert d.get("MINB", 1) == 1 or d.get("KO", 0) & 1, "several blocks an SM only without waits"
