"""scripts/bench_server.py end to end on the fake engine (CPU, a few seconds): the run the lead repeats on the GPU
produces both sides, the server's timeline in order, what uvicorn ran on, and one entry per --variants (the
bench's own client and http.client's, variant httpclient, alike)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

REPO = Path(__file__).resolve().parents[1]


def test_bench_server_fake_with_variants(tmp_path):
    from cugraphllm.server.worker import TIMELINE
    out = tmp_path / "b.json"
    run = subprocess.run([sys.executable, "-m", "scripts.bench_server", "--fake", "2,1,0.3,0.05", "--prompt-lens", "7,40",
                          "--new-tokens", "5", "--reps", "3", "--warmup", "1",
                          "--variants", "default,early+h11+httpclient",
                          "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["variant"] == "default" and list(doc["variants"]) == ["early,h11,httpclient"]   # both clients
    assert doc["variants"]["early,h11,httpclient"]["server_http"] == "h11"
    assert doc["server_http"] in ("httptools", "h11") and doc["server_loop"] in ("uvloop", "asyncio")
    for variant, rows in (("default", doc["results"]), ("early", doc["variants"]["early,h11,httpclient"]["results"])):
        assert [r["prompt_len"] for r in rows] == [7, 40]
        for r in rows:
            for side in ("library", "library_thread", "server"):
                assert r[side]["chunks_per_request"] == 5 and r[side]["ttft_ms"]["n"] == 3
                assert r[side]["itl_ms"]["n"] == 12 and r[side]["itl_first_gap_ms"]["n"] == 3
            steps = r["server_timeline"]["median_ms"]
            assert list(steps) == ["request_in", *TIMELINE, "response_out", "gpu_prefill"]
            inside = [steps[k] for k in TIMELINE]   # early: the engine may start a job before its release
            assert steps["request_in"] > 0 and (variant == "early" or inside == sorted(inside))
            assert r["server_timeline"]["engine_longest_gap_ms"]["max"] > 0
            assert r["tokenize_ms_median"] > 0 and r["prompt_tokens_mean"] <= r["prompt_len"]
            assert r["library_tokenize_in_ttft_ms"] > 0
            assert r["library_gpu_prefill_ms"] == steps["gpu_prefill"] == 2.0   # the fake's modelled GPU time
