"""TTFT of a chat turn: a short prompt appended to a conversation already in the KV cache (what a user of `chat`
waits for at every turn after the first). 7B-shaped dummy weights, hybrid mode.

Per context length C and rep: reset, prefill C tokens of history (first token only, untimed), then time the first
token of a --turn-token prompt appended to them: host wall clock (TTFT) and the engine's CUDA-event prefill time. The
turn's prefill runs the 16-row bucket (turns <= 16 tokens) over C + turn cached keys, where the attention's key
split (kernels/attention_prefill.cu) applies.

    python3 -m scripts.turn_ttft [--contexts 0,500,1000,1900,3800] [--turn 10] [--reps 20] [--out F.json]
"""
from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import numpy as np


def turn_times(engine, history: list[int], turn: list[int], reps: int) -> dict:
    """Median / min TTFT (ms, host) and GPU prefill (ms) of `turn` after `history`, over reps."""
    from cugraphllm.sampling import SamplingParams
    host, gpu = [], []
    for _ in range(reps):
        engine.reset()
        if history:
            for _ in engine.generate(history, SamplingParams(), 1):
                pass
        engine.sync()
        t0 = time.perf_counter()
        it = engine.generate(turn, SamplingParams(), 1)
        next(it)
        host.append(time.perf_counter() - t0)
        it.close()
        gpu.append(engine.last_gpu_times()[0])
    ms = 1e3 * np.asarray(host)
    return {"ttft_ms": round(float(np.median(ms)), 4), "ttft_min_ms": round(float(ms.min()), 4),
            "gpu_prefill_ms": round(float(np.median(gpu)), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contexts", default="0,500,1000,1900,3800", help="history lengths in tokens")
    ap.add_argument("--turn", type=int, default=10, help="tokens of the timed turn")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--preset", default="llama-2-7b")
    ap.add_argument("--out", type=Path, default=Path("turn_ttft.json"))
    args = ap.parse_args()
    from cugraphllm.bench import prompts_for
    from cugraphllm.config import ModelConfig, RuntimeConfig
    from cugraphllm.engines import _make_engine
    contexts = [int(x) for x in args.contexts.split(",")]
    cfg = ModelConfig.from_preset(args.preset)
    e = _make_engine(cfg, RuntimeConfig(backend="cuda", mode="hybrid", max_seq_len=max(contexts) + args.turn + 8))
    e.wait_ready()
    turn = prompts_for(args.turn, 1, cfg.vocab_size, 2)[0]
    rows = []
    for c in contexts:
        history = prompts_for(c, 1, cfg.vocab_size, 3)[0] if c else []
        turn_times(e, history, turn, 2)  # warm-up: graphs of this context's buckets
        rows.append({"context": c, "turn": args.turn, **turn_times(e, history, turn, args.reps)})
        print(json.dumps(rows[-1]), flush=True)
    args.out.write_text(json.dumps({"date": datetime.datetime.now().isoformat(timespec="seconds"),
                                    "preset": args.preset, "reps": args.reps, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
