"""kernels/gemm_rowload.cuh (gemm.cu's WS 2 / 3 / 4, "row loads") without a GPU: its loads, buffer slots and
fragment reads, mirrored in NumPy, must hand mma_regs exactly the fragments of the register path (WS 0: lane (g, t)
holds W rows g and g + 8 at columns [64q + 32h + 8t, + 8) of each 64-column chunk q), every unit read from a slot
that this superstep wrote, and no two lanes' stores may share a slot."""
from pathlib import Path

import numpy as np
import pytest

SRC = (Path(__file__).resolve().parents[1] / "kernels" / "gemm_rowload.cuh").read_text()


def _geometry(ws):
    rlr = {2: 1, 3: 2, 4: 4}[ws]
    return rlr, 256 // rlr, 32 // rlr, 16 // rlr  # RLR, SCOL, CPR, NLD


def _slot(row, unit, cpr):
    return row * cpr + (unit ^ ((row & 1) << 2))


@pytest.mark.parametrize("ws", [2, 3, 4])
def test_row_loads_hand_mma_the_register_path_fragments(ws):
    rlr, scol, cpr, nld = _geometry(ws)
    rng = np.random.default_rng(ws)
    K, col = 3 * scol, scol  # the tile's second superstep
    W = rng.integers(0, 1 << 16, size=(16, K))
    buf = np.full((16 * cpr, 8), -1)
    writers = {}
    for lane in range(32):  # rl_load, then the stores: load j of lane -> row j * RLR + lane / CPR, unit lane % CPR
        lr, unit = lane // cpr, lane % cpr
        for j in range(nld):
            row, cc = j * rlr + lr, col + unit * 8
            s = _slot(row, unit, cpr)
            assert s not in writers, (s, writers.get(s), (lane, j))
            writers[s] = (lane, j)
            buf[s] = W[row, cc:cc + 8]
    assert len(writers) == 16 * cpr  # every slot of the superstep written once
    for lane in range(32):
        g, t = lane // 4, lane % 4
        for q in range(scol // 64):
            for h in range(2):
                for rr, row in enumerate((g, g + 8)):
                    got = buf[_slot(row, 8 * q + 4 * h + t, cpr)]
                    c0 = col + 64 * q + 32 * h + 8 * t
                    np.testing.assert_array_equal(got, W[row, c0:c0 + 8], err_msg=f"ws={ws} lane={lane} q={q} h={h}")


@pytest.mark.parametrize("ws", [2, 3, 4])
def test_buffer_reads_and_stores_are_bank_conflict_free(ws):
    """16-byte accesses go out in quarter warps (8 lanes, 128 bytes): each quarter's slots must cover the 8 distinct
    16-byte bank groups."""
    rlr, scol, cpr, nld = _geometry(ws)
    for quarter in range(4):
        lanes = range(8 * quarter, 8 * quarter + 8)
        for j in range(nld):
            assert len({_slot(j * rlr + ln // cpr, ln % cpr, cpr) % 8 for ln in lanes}) == 8
        for q in range(scol // 64):
            for h in range(2):
                for off in (0, 8):
                    assert len({_slot(ln // 4 + off, 8 * q + 4 * h + ln % 4, cpr) % 8 for ln in lanes}) == 8


def test_source_keeps_the_mirrored_expressions():
    for expr in ("#define RLR (WS == 2 ? 1 : WS == 3 ? 2 : 4)", "#define SCOL (256 / RLR)", "#define CPR (32 / RLR)",
                 "#define NLD (16 / RLR)", "const int lr = lane / CPR, cc = col + (lane % CPR) * 8;",
                 "const int row = tr.row0[i] + j * RLR + lr;",
                 "return row * CPR + (unit ^ ((row & 1) << 2));",
                 "buf[i][rl_slot(j * RLR + lane / CPR, lane % CPR)] = cur.v[i][j];",
                 "wf.w[i][0][h] = buf[i][rl_slot(g, 8 * q + 4 * h + t)];",
                 "wf.w[i][1][h] = buf[i][rl_slot(g + 8, 8 * q + 4 * h + t)];",
                 "const int cc = col + 64 * q + 32 * h;"):
        assert expr in SRC, expr
