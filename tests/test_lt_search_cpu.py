"""The host side of the cuBLASLt configuration search (gpu/cublaslt_search.py, scripts/lt_algo_search.py) without a
GPU: enum values against cublasLt.h where a header is installed, the enumeration / pruning / budget against an
independent brute force on random capability lists, the report arithmetic and table, the CLI's one-line errors, and
imports without CuPy."""
import itertools
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cublaslt_header import enum as header_enum, header_text
from cugraphllm.gpu import cublaslt_search as ls
from scripts import lt_algo_search as las

REPO = Path(__file__).resolve().parents[1]
SHAPES_7B = [(12288, 512, 4096), (4096, 128, 4096), (22016, 512, 4096), (4096, 128, 11008), (22016, 77, 4096)]


def test_enum_values_match_cublaslt_header():
    text = header_text()

    def enum(name):
        return header_enum(text, name)
    for attr in ("SPLITK_SUPPORT", "REDUCTION_SCHEME_MASK", "CTA_SWIZZLING_SUPPORT", "TILE_IDS", "STAGES_IDS"):
        assert enum(f"CUBLASLT_ALGO_CAP_{attr}") == getattr(ls, f"CAP_{attr}")
    for attr in ("ID", "TILE_ID", "SPLITK_NUM", "REDUCTION_SCHEME", "CTA_SWIZZLING", "CUSTOM_OPTION", "STAGES_ID",
                 "INNER_SHAPE_ID", "CLUSTER_SHAPE_ID"):
        assert enum(f"CUBLASLT_ALGO_CONFIG_{attr}") == getattr(ls, f"CFG_{attr}")
    for value, name in ls.REDUCTION_NAMES.items():
        assert enum(f"CUBLASLT_REDUCTION_SCHEME_{name.upper()}") == value
    for value, name in ls.CLUSTER_NAMES.items():
        assert enum(f"CUBLASLT_CLUSTER_SHAPE_{name if 'x' in name else name.upper()}") == value
    tiles = re.findall(r"CUBLASLT_MATMUL_TILE_(\w+)\s*=\s*(\d+)", text)
    assert [int(v) for _, v in tiles] == list(range(len(tiles)))  # sequential: value = position
    n = min(len(tiles), len(ls.TILE_NAMES))  # newer headers append tiles (unknown ids are kept, unnamed)
    assert n >= 635 and tuple(name.lower() for name, _ in tiles[:n]) == ls.TILE_NAMES[:n]
    for name, value in re.findall(r"CUBLASLT_MATMUL_STAGES_(\w+)\s*=\s*(\d+)", text):
        assert ls.stages_name(int(value)) == name.lower().replace("auto", "AUTO")


def test_tile_and_stage_names_from_the_docs():
    """Values printed on the nvmath-python MatmulTile / MatmulStages pages (cited in the module)."""
    assert [ls.tile_name(v) for v in (0, 1, 15, 20, 23, 24, 29)] == ["undefined", "8x8", "64x64", "128x128",
                                                                     "128x256", "256x128", "128x160"]
    assert ls.tile_dims(23) == (128, 256) and ls.tile_dims(0) is None and ls.tile_dims(10 ** 6) is None
    assert [ls.stages_name(v) for v in (0, 1, 6, 7, 16, 24, 25, 35)] == ["undefined", "16x1", "16x6", "32x1",
                                                                         "64x4", "128x6", "32x10", "64xAUTO"]


def test_score_is_the_wave_fill_of_the_issue():
    """wqkv at 512 rows in 128x256 tiles: 96 x 2 = 192 tiles = 1.45 waves of 132 SMs, the last 45% full."""
    cfg = ls.Config(1, ls.TILE_NAMES.index("128x256"))
    assert ls.score(cfg, 12288, 512, 132) == pytest.approx(192 / 264)
    split2 = ls.Config(1, cfg.tile, splitk=2)  # 384 tiles = 2.91 waves, less 5% for the split
    assert ls.score(split2, 12288, 512, 132) == pytest.approx(384 / 396 * 0.95)


def _random_caps(rng, n):
    tiles = rng.integers(0, len(ls.TILE_NAMES) + 20, size=(n, 9))  # some ids beyond the table
    ids = rng.choice(9000, size=n, replace=False)
    return [ls.Caps(int(ids[i]), tuple(int(t) for t in tiles[i, :rng.integers(0, 10)]),
                    tuple(int(s) for s in rng.choice([0, 7, 16, 21, 35, 36], size=rng.integers(0, 4))),
                    bool(rng.integers(0, 2)), int(rng.integers(0, 8)), bool(rng.integers(0, 2))) for i in range(n)]


def _brute(caps, N, M, K, splitks, clusters):
    """Every allowed configuration, by the rules written out independently."""
    out = set()
    for cap in caps:
        for tile in cap.tiles or (0,):
            name = ls.TILE_NAMES[tile] if tile < len(ls.TILE_NAMES) else "unknown"
            if "x" not in name:
                ok = True
            else:
                tm, tn = map(int, name.split("x"))
                ok = tm * tn >= 4096 and N * M / (-(-N // tm) * tm * -(-M // tn) * tn) >= 0.5
            for st, k, sw, cl in itertools.product(cap.stages or (0,), splitks, (0, 1), clusters):
                if not ok or (sw and not cap.swizzle) or (k > 1 and (not cap.splitk or K // k < 1024)):
                    continue
                red = 0 if k == 1 else next((r for r in (2, 4, 1) if cap.reduction_mask & r), None)
                if red is not None:
                    out.add(ls.Config(cap.algo_id, tile, st, k, red, sw, cl))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_enumeration_matches_brute_force_and_budget(seed):
    rng = np.random.default_rng(seed)
    caps = _random_caps(rng, int(rng.integers(3, 14)))
    N, M, K = SHAPES_7B[seed % len(SHAPES_7B)]
    splitks, clusters = (1, 2, 3, 4), (0, 2, 3, 5)
    full = ls.enumerate_configs(caps, N, M, K, splitks=splitks, clusters=clusters, max_configs=10 ** 7)
    assert len(full) == len(set(full)) and set(full) == _brute(caps, N, M, K, splitks, clusters)
    groups = {(c.algo_id, c.tile, c.splitk) for c in full}
    first = full[:len(groups)]  # breadth first: one variant per group, best score first
    assert {(c.algo_id, c.tile, c.splitk) for c in first} == groups
    scores = [ls.score(c, N, M, 132) for c in first]
    assert all(a >= b - 1e-12 for a, b in zip(scores, scores[1:]))
    for cap_n in (1, 7, max(1, len(full) // 2)):
        assert ls.enumerate_configs(caps, N, M, K, splitks=splitks, clusters=clusters, max_configs=cap_n) == \
            full[:cap_n]


def test_boost_and_reductions():
    caps = [ls.Caps(3, (20, 23), (35,), True, 0b110, True), ls.Caps(8, (15,), (16, 35), False, 0, False)]
    boosted = ls.enumerate_configs(caps, 4096, 128, 4096, boost=frozenset({(8, 15)}))
    assert (boosted[0].algo_id, boosted[0].tile) == (8, 15)
    assert {c.reduction for c in boosted if c.splitk > 1} == {ls.REDUCTION_COMPUTE_TYPE}
    every = ls.enumerate_configs(caps, 4096, 128, 4096, all_reductions=True)
    assert {c.reduction for c in every if c.splitk > 1} == {ls.REDUCTION_COMPUTE_TYPE, ls.REDUCTION_OUTPUT_TYPE}
    assert ls.reductions(0b001, 3) == [ls.REDUCTION_INPLACE] and ls.reductions(0, 2) == []
    assert not [c for c in every if c.algo_id == 8 and (c.splitk > 1 or c.swizzle)]


def _final(rng, n_heur, n_search):
    final = {"gemmex": float(rng.uniform(0.05, 0.5))}
    final.update({("heur", i): float(rng.uniform(0.05, 0.5)) for i in range(n_heur)})
    final.update({("search", j): float(rng.uniform(0.05, 0.5)) for j in range(n_search)})
    return final


def test_report_arithmetic_and_table():
    rng = np.random.default_rng(5)
    M, N, K = 512, 22016, 4096
    heur = [ls.Config(i + 1, 23, 35) for i in range(8)]
    searched = [ls.Config(40, 24, 35, 2, 2, 1, 3), heur[5], ls.Config(41, 20, 16)]
    final = _final(rng, 8, 3)
    row = las.shape_report("w13", M, N, K, False, final, heur, searched, {"timed": 9}, 790.0)
    json.dumps(row)
    best_h = min(range(8), key=lambda i: final[("heur", i)])
    assert row["best_heuristic"]["index"] == best_h and row["heuristic0"]["ms"] == pytest.approx(final[("heur", 0)],
                                                                                                abs=1e-5)
    ms = final[("heur", best_h)]
    assert row["best_heuristic"]["tflops"] == pytest.approx(2 * M * N * K / (ms / 1e3) / 1e12, abs=0.05)
    assert row["best_heuristic"]["pct_peak"] == pytest.approx(100 * 2 * M * N * K / (ms / 1e3) / 1e12 / 790, abs=0.05)
    j = min(range(3), key=lambda j: final[("search", j)])
    assert row["best_search"]["config"]["algo_id"] == searched[j].algo_id
    assert [f["same_as_heuristic"] for f in row["finalists"] if f["config"]["algo_id"] == 6] == [5]
    assert row["search_speedup_vs_best_heuristic"] == pytest.approx(ms / final[("search", j)], abs=1e-4)
    table = las.format_table([row, las.shape_report("wo", 128, 4096, 4096, True, {}, heur, [], {}, 790.0)])
    lines = table.splitlines()
    assert len(lines) == 4 and "w13" in lines[2] and f"{row['best_search']['tflops']:6.1f}" in lines[2]
    assert math.isclose(las.tflops(512, 12288, 4096, 0.1), 2 * 512 * 12288 * 4096 / 1e-4 / 1e12)


@pytest.mark.parametrize("args", [["--shapes", "wqkv,w99"], ["--ms", "12x"], ["--seconds", "0"],
                                  ["--clusters", "1"], ["--splitk", "0,2"], ["--max-configs", "-3"]])
def test_cli_errors_are_one_line(args):
    r = subprocess.run([sys.executable, "-m", "scripts.lt_algo_search", *args], cwd=REPO, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("lt_algo_search: error:")


def test_no_gpu_is_a_one_line_error():
    from conftest import GPU
    if GPU:
        pytest.skip("a GPU is present: the script would run the search")
    r = subprocess.run([sys.executable, "-m", "scripts.lt_algo_search", "--seconds", "1"], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == "lt_algo_search: error: needs CuPy and a CUDA GPU"
    assert "wrote" not in r.stdout


def test_imports_without_cupy():
    code = ("import sys; sys.modules['cupy'] = None\n"
            "from cugraphllm.gpu import cublaslt_search as ls\n"
            "import scripts.lt_algo_search, scripts.lt_algo_search_gpu\n"
            "caps = [ls.Caps(1, (20, 23), (35,), True, 2, True)]\n"
            "print(len(ls.enumerate_configs(caps, 12288, 512, 4096, clusters=(0, 3))))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == 2 * (1 + 3) * 2 * 2  # tiles x (split 1 + 3 splits) x swizzle x clusters


class _FakeShape:
    """Stands in for lt_algo_search_gpu._Shape: algorithm i's outcome is decided by i % 10 (see the test)."""
    lt = ab = cb = scratch = None
    plans = [(None,) * 6]

    def __init__(self):
        self.last = None

    def error(self, algo):
        from cugraphllm.gpu.cublas import CublasError
        kind = algo[1] % 10
        if kind == 3:
            raise CublasError("refused at run time")
        return {4: float("nan"), 5: 0.5}.get(kind, 1e-4)

    def run(self, algo, out):
        self.last = algo[1]


def _fake_screen(monkeypatch, seconds, n=100):
    from scripts import lt_algo_search_gpu as gpu
    sh, clock = _FakeShape(), iter(range(10 ** 6))
    monkeypatch.setattr(ls, "make_algo", lambda lt, cfg, ab, cb: None if cfg.algo_id % 10 == 1 else ("a", cfg.algo_id))
    monkeypatch.setattr(ls, "check", lambda lt, plan, algo: None if algo[1] % 10 == 2 else (4096, 1.45))
    monkeypatch.setattr(gpu.time, "monotonic", lambda: float(next(clock)))  # one second per look at the clock

    def timer(stream, flush, runs, reps):
        out = {}
        for key, run in runs.items():
            run()
            out[key] = (sh.last * 37 % 101) / 1000.0
        return out
    monkeypatch.setattr(gpu, "_timer", timer)
    counts = {"refused": 0, "run_failed": 0, "mismatch": 0, "timed": 0}
    args = type("A", (), {"seconds": seconds, "reps": 3})()
    cands = [ls.Config(i, 20) for i in range(n)]
    return gpu._screen(sh, cands, args, None, None, counts), counts


def test_screen_counts_and_order(monkeypatch):
    res, counts = _fake_screen(monkeypatch, seconds=10 ** 5)
    ids = [cfg.algo_id for _, cfg, _ in res]
    assert sorted(ids) == [i for i in range(100) if i % 10 in (0, 6, 7, 8, 9)]
    assert [ms for ms, _, _ in res] == sorted((i * 37 % 101) / 1000.0 for i in ids)
    assert counts == {"refused": 20, "run_failed": 10, "mismatch": 20, "timed": 50, "enumerated_not_reached": 0}
    assert all(cfg.extra["workspace"] == 4096 and cfg.extra["max_rel_err"] == 1e-4 for _, cfg, _ in res)


def test_screen_stops_at_the_time_budget(monkeypatch):
    res, counts = _fake_screen(monkeypatch, seconds=40)
    reached = counts["refused"] + counts["run_failed"] + counts["mismatch"] + counts["timed"]
    assert 0 < counts["timed"] == len(res) < 50 and reached + counts["enumerated_not_reached"] == 100
