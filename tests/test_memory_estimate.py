"""gpu/memory.py, the pre-flight estimate (pure Python): the parts the issue quotes, the boundary that the error's
--max-seq-len hint names, and the peak rule (staging exists only while the weights upload)."""
import numpy as np
import pytest

from cugraphllm.config import ModelConfig
from cugraphllm.gpu import memory

GIB = 2 ** 30


def test_70b_fp16_fits_one_h200_at_4096():
    c = ModelConfig.from_preset("llama-2-70b")
    e = memory.estimate(c, 4096, "hybrid", staging=64 << 20)
    assert e["weights"] == 2 * c.n_params() and abs(e["weights"] / 1e9 - 137.96) < 0.01  # issue 11's figure
    assert e["kv_cache"] == 2 * 80 * 4096 * 8 * 128 * 2  # [L, 2, S, KVH, Dh] fp16: 1.34 GB
    assert e["total"] < 139 * GIB  # an H200 has about 139.8 GiB, 139.2 free
    assert memory.largest_context(c, int(139 * GIB), 4096) == 4096
    fit = memory.largest_context(c, int(129.5 * GIB), 4096)  # weights 128.5 GiB: under a GiB for the rest
    assert 0 < fit < 4096


@pytest.mark.parametrize("preset", ["tiny", "llama-2-7b", "llama-2-70b"])
@pytest.mark.parametrize("mode", ["eager", "graph", "hybrid"])
def test_largest_context_is_the_boundary(preset, mode):
    c = ModelConfig.from_preset(preset)
    rng = np.random.default_rng(len(preset) + len(mode))
    base = memory.estimate(c, 1, mode)["total"]
    top = memory.estimate(c, c.max_seq_len, mode)["total"]
    for free in [base - 1, base, top, top + 1] + [int(x) for x in rng.uniform(base, top, 5)]:
        fit = memory.largest_context(c, free, c.max_seq_len, mode=mode)
        if fit:
            assert memory.estimate(c, fit, mode)["total"] <= free
        if fit < c.max_seq_len:
            assert memory.estimate(c, fit + 1, mode)["total"] > free
    assert memory.largest_context(c, base - 1, c.max_seq_len, mode=mode) == 0


def test_parts_grow_with_context_and_mode():
    c = ModelConfig.from_preset("llama-2-7b")
    totals = [memory.estimate(c, s)["total"] for s in (1, 63, 64, 65, 511, 512, 513, 2000, 4096)]
    assert totals == sorted(totals) and len(set(totals)) == len(totals)
    e, g, h = (memory.estimate(c, 4096, m) for m in ("eager", "graph", "hybrid"))
    assert e["graphs"] == 0 < g["graphs"] < h["graphs"]
    assert e["total"] - e["weights"] == sum(v for k, v in e.items() if k not in ("weights", "total",
                                                                                  "upload_staging"))


def test_staging_counts_only_while_it_exceeds_the_rest():
    c = ModelConfig.from_preset("tiny")
    small = memory.estimate(c, 64, staging=0)
    rest = small["total"] - small["weights"]
    assert memory.estimate(c, 64, staging=rest - 1)["total"] == small["total"]
    assert memory.estimate(c, 64, staging=rest + 5)["total"] == small["weights"] + rest + 5


def test_describe_names_every_part():
    e = memory.estimate(ModelConfig.from_preset("llama-2-13b"), 4096, staging=1 << 26)
    text = memory.describe(e)
    for word in ("weights 24.24", "kv cache 3.12", "graphs", "gemm workspace", "reserve", "upload staging"):
        assert word in text


def test_mem_13b_child_process_finds_the_package(tmp_path):
    """scripts/mem_13b.py loads the folder in a fresh process: that command, run from the repository root as the
    script runs it, starts (--help) without the package installed on the path."""
    import os
    import subprocess

    from scripts.mem_13b import REPO, child_argv
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    argv = child_argv(tmp_path / "x", 64)
    done = subprocess.run(argv[:3] + ["--help"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--max-rss-gb" in done.stdout
