"""The bench: percentile math, the timing driver, the report schema, and end-to-end runs on the numpy backend.
No timing value is asserted (timings are never pass/fail); structure, counts and arithmetic are."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from cugraphllm import bench, bench_report as br
from cugraphllm.config import ModelConfig
from cugraphllm.errors import ContextLimitError


def _rank_percentile(values, q):
    """Independent percentile: linear interpolation at rank (n-1)*q/100 of the sorted sample."""
    xs = sorted(float(v) for v in values)
    rank = (len(xs) - 1) * q / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


# ---- statistics -------------------------------------------------------------------------------------
def test_percentile_known_arrays():
    assert br.percentile(range(1, 101), 99) == pytest.approx(99.01)
    assert br.percentile(range(1, 101), 50) == pytest.approx(50.5)
    assert br.percentile([7.0], 99) == 7.0
    assert br.itl_stats(np.arange(11.0)) == pytest.approx({"p50": 5.0, "p90": 9.0, "p99": 9.9})
    assert br.ttft_stats([3.0, 1.0, 2.0]) == pytest.approx({"median": 2.0, "p99": 2.98, "mean": 2.0, "min": 1.0})
    with pytest.raises(ValueError):
        br.percentile([], 50)


@pytest.mark.parametrize("n", [2, 7, 101, 333])
def test_percentile_matches_rank_formula(n):
    x = np.random.default_rng(n).lognormal(1.0, 0.7, size=n)  # skewed, like latencies
    for q in (1, 50, 90, 99, 99.9):
        assert br.percentile(x, q) == pytest.approx(_rank_percentile(x, q), rel=1e-12)


def test_result_entry_arithmetic():
    cfg = ModelConfig.from_preset("tiny")
    ttft = [0.010, 0.012, 0.011]
    itl_runs = [[0.002, 0.004], [0.003, 0.003]]  # two full runs of 3 tokens
    row = br.result_entry(40, 3, ttft, itl_runs, cfg, itemsize=2)
    assert row["reps"] == 3 and row["decode_reps"] == 2
    assert row["ttft_ms"]["median"] == pytest.approx(11.0)
    assert row["tpot_ms"] == pytest.approx(3.0)
    assert row["tokens_per_s"] == pytest.approx(1000 / 3.0)
    # bytes: all matrices but the embedding table, plus K and V of the mean decode context (40 + 3/2)
    weights = cfg.n_params() - cfg.vocab_size * cfg.dim
    kv = 2 * cfg.n_layers * 41.5 * cfg.kv_dim
    assert row["gbps"] == pytest.approx((weights + kv) * 2 / 3e-3 / 1e9)
    assert len(row["itl_samples_ms"]) == 4


def test_result_entry_ttft_only():
    row = br.result_entry(10, 1, [0.005], [], None)
    assert row["tpot_ms"] is None and row["itl_ms"] is None and row["gbps"] is None


# ---- the timing driver ------------------------------------------------------------------------------
class FakeEngine:
    """Engine protocol stand-in: yields token ids 100, 101, ... up to `limit` tokens."""

    def __init__(self, limit=10_000):
        self.limit, self.resets, self.closed, self.max_seq_len = limit, 0, 0, 64
        self.prompts = []

    def reset(self):
        self.resets += 1

    def generate(self, new_tokens, params, max_new_tokens):
        self.prompts.append(list(new_tokens))
        try:
            for i in range(min(max_new_tokens, self.limit)):
                yield 100 + i
        finally:
            self.closed += 1


def test_time_generation_counts_and_closes():
    eng = FakeEngine()
    ttft, itl = bench.time_generation(eng, [5, 6, 7], 6, None)
    assert ttft >= 0 and len(itl) == 5 and all(t >= 0 for t in itl)
    assert eng.resets == 1 and eng.closed == 1 and eng.prompts == [[5, 6, 7]]


def test_time_generation_engine_stopping_early_is_an_error():
    eng = FakeEngine(limit=3)
    with pytest.raises(ContextLimitError, match="3 of 5"):
        bench.time_generation(eng, [1], 5, None)
    assert eng.closed == 1


def test_prompts_are_seeded_and_in_range():
    a = bench.prompts_for(37, 4, 512, seed=3)
    assert a == bench.prompts_for(37, 4, 512, seed=3)
    assert a != bench.prompts_for(37, 4, 512, seed=4)
    assert all(len(p) == 37 and min(p) >= 3 and max(p) < 512 for p in a)
    assert len({tuple(p) for p in a}) == 4


def test_parse_args_protocols():
    a = bench.parse_args(["--paper", "--prompt-lens", "50,10,10"])
    assert a.ttft_reps == 100 and a.prompt_lens == [10, 50] and a.modes == ["eager", "graph", "hybrid"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--modes", "eager,turbo"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--prompt-lens", "0,5"])


def test_idle_ms_sleeps_before_each_timed_run(monkeypatch):
    slept = []
    monkeypatch.setattr(bench.time, "sleep", slept.append)
    eng = FakeEngine()
    args = bench.parse_args(["--reps", "2", "--ttft-reps", "5", "--new-tokens", "3", "--idle-ms", "250"])
    from cugraphllm.config import ModelConfig
    row = bench.bench_length(eng, 4, args, ModelConfig.from_preset("tiny"), 4, None)
    assert slept == [0.25] * 5 and len(eng.prompts) == 5 and row["prompt_len"] == 4
    assert bench.parse_args([]).idle_ms == 0
    with pytest.raises(SystemExit):
        bench.parse_args(["--idle-ms", "-1"])


def test_importing_bench_touches_no_gpu_library():
    code = ("import sys, cugraphllm.bench, cugraphllm.bench_report; "
            "print(sorted(m for m in ('cupy', 'numba', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- end to end on the numpy backend ----------------------------------------------------------------
def _run(tmp_path, *extra):
    argv = ["--backend", "numpy", "--prompt-lens", "5,12", "--new-tokens", "4", "--reps", "1",
            "--warmup", "1", "--out", str(tmp_path), "--stem", "t", "--no-plot", *extra]
    assert bench.main(argv) == 0
    doc = json.loads((tmp_path / "t.json").read_text())
    assert br.validate(doc) == []
    return doc


def _check_numpy_doc(doc, lens, new_tokens):
    assert [s["system"] for s in doc["systems"]] == ["cugraphllm-numpy"]
    rows = doc["systems"][0]["results"]
    assert [r["prompt_len"] for r in rows] == lens
    for r in rows:
        assert r["new_tokens"] == new_tokens and r["reps"] >= 1
        assert len(r["itl_samples_ms"]) == r["decode_reps"] * (new_tokens - 1)
        assert r["ttft_ms"]["min"] <= r["ttft_ms"]["median"] <= r["ttft_ms"]["p99"]


def test_end_to_end_tiny_dummy(tmp_path):
    doc = _run(tmp_path, "--preset", "tiny", "--ttft-reps", "3")
    _check_numpy_doc(doc, [5, 12], 4)
    assert doc["systems"][0]["results"][0]["reps"] == 3
    assert doc["model"]["weight_bytes"] == ModelConfig.from_preset("tiny").n_params() * 4
    md = (tmp_path / "t.md").read_text()
    assert "| cugraphllm-numpy | 12 | 4 |" in md and "TTFT median ms" in md


def test_end_to_end_stories(tmp_path, stories_dir):
    doc = _run(tmp_path, "--model", str(stories_dir / "stories260K.bin"))
    _check_numpy_doc(doc, [5, 12], 4)
    assert doc["model"]["name"] == "stories260K.bin"


def test_prompt_longer_than_context_is_refused(tmp_path):
    from cugraphllm.errors import ConfigError
    with pytest.raises(ConfigError, match="context"):
        bench.main(["--backend", "numpy", "--preset", "tiny", "--prompt-lens", "1020", "--new-tokens", "8",
                    "--out", str(tmp_path), "--no-plot"])


# ---- schema, merge, rendering -------------------------------------------------------------------------
def _doc(system, device="GPU A", model="m"):
    row = br.result_entry(10, 3, [0.01, 0.02], [[0.005, 0.006]], ModelConfig.from_preset("tiny"))
    return br.make_doc({"name": device, "driver": "1", "copy_gbps": 100.0}, {"x": "1"},
                       {"name": model, "dtype": "float16", "weight_bytes": 10}, [br.system_entry(system, 1.0, 2**30, [row])])


def test_validate_reports_missing_fields():
    doc = _doc("a")
    assert br.validate(doc) == []
    del doc["device"]["copy_gbps"]
    del doc["systems"][0]["results"][0]["ttft_ms"]["p99"]
    doc["systems"][0]["results"][0]["ttft_ms"]["median"] = float("nan")
    errs = br.validate(doc)
    assert any("copy_gbps" in e for e in errs) and any("p99" in e for e in errs) and any("finite" in e for e in errs)


def test_merge_and_markdown(tmp_path):
    merged = br.merge([_doc("ours"), _doc("peer", device="GPU B"), _doc("ours")])
    assert [s["system"] for s in merged["systems"]] == ["ours", "peer"]
    assert any("GPU B" in n for n in merged["notes"]) and br.validate(merged) == []
    for i, d in enumerate((_doc("ours"), _doc("peer"))):
        (tmp_path / f"{i}.json").write_text(json.dumps(d))
    assert bench.main(["--merge", str(tmp_path / "0.json"), str(tmp_path / "1.json"), "--out", str(tmp_path),
                       "--stem", "m", "--no-plot"]) == 0
    md = (tmp_path / "m.md").read_text()
    assert "| ours | 10 | 3 |" in md and "| peer | 10 | 3 |" in md and "(1%)" in md  # ~0.6 GB/s of 100


def test_load_rejects_other_documents(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"schema": "other"}))
    with pytest.raises(ValueError, match="not a cugraphllm-bench/1"):
        br.load(p)


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    assert br.plot(br.merge([_doc("a"), _doc("b")]), tmp_path / "p.png") is None
    assert (tmp_path / "p.png").stat().st_size > 1000


class _TimedEngine:
    """A stand-in for the cuda engine's CUDA-event hook: fixed device times per generation."""
    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, new, params, n):
        self._n = n
        return self.inner.generate(new, params, n)

    def last_gpu_times(self):
        return (4.0, 0.5 * (self._n - 1), self._n - 1)


def test_gpu_event_times_reported(tmp_path):
    """Engines with last_gpu_times() get gpu_prefill_ms / gpu_tpot_ms rows, in the JSON and the Markdown."""
    import argparse
    from cugraphllm import bench, bench_report as br
    from cugraphllm.config import ModelConfig
    from cugraphllm.loader import dummy_checkpoint
    from cugraphllm.reference import NumpyEngine
    from cugraphllm.sampling import SamplingParams
    cfg = ModelConfig.from_preset("tiny").with_(n_layers=1, max_seq_len=64)
    eng = _TimedEngine(NumpyEngine(cfg, dummy_checkpoint(cfg, seed=1, dtype="float32").weights))
    args = argparse.Namespace(reps=2, ttft_reps=3, new_tokens=5, seed=0, idle_ms=0.0)
    row = bench.bench_length(eng, 7, args, cfg, 4, SamplingParams())
    assert row["gpu_prefill_ms"]["median"] == 4.0 and row["gpu_tpot_ms"] == 0.5
    doc = br.make_doc({"name": "cpu", "driver": "-", "copy_gbps": None}, {}, {"name": "tiny", "dtype": "float32",
                      "weight_bytes": 1}, [br.system_entry("timed", 0.0, None, [row])])
    md = br.to_markdown(doc)
    assert "GPU prefill median / P99 ms" in md and "| timed | 7 | 4.00 / 4.00 | 0.500 |" in md
    plain = bench.bench_length(NumpyEngine(cfg, dummy_checkpoint(cfg, seed=1, dtype="float32").weights), 7, args,
                               cfg, 4, SamplingParams())
    assert "gpu_prefill_ms" not in plain


def test_max_seq_len_sets_the_context(tmp_path, monkeypatch):
    seen = []
    real = bench.make_engine

    def spy(source, backend, mode, args, max_seq):
        engine, startup = real(source, backend, mode, args, max_seq)
        seen.append(engine.max_seq_len)
        return engine, startup
    monkeypatch.setattr(bench, "make_engine", spy)
    _run(tmp_path, "--preset", "tiny", "--max-seq-len", "333")
    _run(tmp_path, "--preset", "tiny")
    assert seen == [333, 12 + 4]
    with pytest.raises(SystemExit):  # must hold the longest prompt and the new tokens
        bench.parse_args(["--prompt-lens", "5,12", "--new-tokens", "4", "--max-seq-len", "15"])
    from cugraphllm.errors import ConfigError
    with pytest.raises(ConfigError, match="exceeds the model's context of 1024"):
        _run(tmp_path, "--preset", "tiny", "--max-seq-len", "1025")
