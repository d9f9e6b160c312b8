"""scripts/rowgeo_probe.py without a GPU: its config parser, and that the load index of every geometry (the CUDA
source's formula, mirrored by word_index) reads each 16-byte word of a tile exactly once."""
import numpy as np
import pytest

from scripts import rowgeo_probe as rp


@pytest.mark.parametrize("text,want", [("s8:4", (0, 8, 4, 1)), ("s1:8:2", (0, 1, 8, 2)), ("t1:4", (1, 1, 4, 1)),
                                       ("s16:2:4", (0, 16, 2, 4))])
def test_parse_config(text, want):
    assert rp.parse_config(text) == want


@pytest.mark.parametrize("text", ["s3:4", "t8:4", "x1:4", "s8", "s8:0", "s8:4:5", "s8:4:1:1", "s:4"])
def test_parse_config_rejects(text):
    with pytest.raises(ValueError):
        rp.parse_config(text)


@pytest.mark.parametrize("r,tiled", [(1, False), (2, False), (4, False), (8, False), (16, False), (1, True)])
def test_every_word_once(r, tiled):
    n_tiles, k8 = 3, 96  # K = 768: 3 supersteps of 512 bytes a row
    nss = k8 // 32
    seen = np.zeros(n_tiles * 16 * k8, np.int64)
    for tile in range(n_tiles):
        for ss in range(nss):
            for j in range(16):
                idx = [rp.word_index(tile, ss, j, lane, r, k8, nss, tiled) for lane in range(32)]
                if not tiled:  # one load: R rows, 512 / R contiguous bytes each, inside this tile and superstep
                    rows = {i // k8 for i in idx}
                    assert len(rows) == r and all(tile * 16 <= q < tile * 16 + 16 for q in rows)
                    assert all(ss * 32 <= i % k8 < ss * 32 + 32 for i in idx)
                np.add.at(seen, idx, 1)
    assert (seen == 1).all()


def test_source_formula_matches_mirror():
    """The kernel source indexes as word_index does (same expression text, so the CPU test checks the GPU's)."""
    assert "((tile * nss + ss) * 16 + j) * 32 + lane" in rp.SRC
    src = " ".join(rp.SRC.split())
    assert "(tile * 16 + (j % RG) * GR + lane / LPR) * (size_t)K8 + ss * 32 + (j / RG) * LPR + lane % LPR" in src
