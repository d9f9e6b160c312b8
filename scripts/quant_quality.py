"""CPU quality of the quantized weight formats (NumPy backend, which runs the dequantized packed tensors).

    python -m scripts.quant_quality                       # writes benchmarks/results/quant_quality_<date>.{json,md}
    python -m scripts.quant_quality --layers 2 --tokens 16

1. stories260K (../shared/models): greedy agreement with fp32 over 60 new tokens for three prompts (tokens equal
   position by position / common prefix), and perplexity over a fixed text (cugraphllm.quant.quality.TEXT).
   Its dim is 64 and its hidden size 172, so int4 g128 cannot apply; int4 runs g32 / g64 (= -1, one group per
   row) with the MLP down projection (172 inputs) left 16-bit.
2. 7B width (dim 4096, hidden 11008, 32 heads, vocab 32000), seeded random fp16 weights, --layers layers: logits of
   each format against fp16 weights (both computed in fp32) over --tokens prompt positions: max |error| / sd and
   RMS error / sd. The LM head stays 16-bit except in the "+ head" rows.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from cugraphllm.config import PRESETS
from cugraphllm.loader import dummy_weights, load_checkpoint
from cugraphllm.quant import quality as Q
from cugraphllm.quant.layers import QuantSpec, quantize_weights
from cugraphllm.reference import forward
from cugraphllm.tokenizer import Tokenizer

STORIES = ROOT.parent / "shared" / "models" / "stories260K"
PROMPTS = ("Once upon a time", "Lily and Ben went to the park", "The little cat")
STORY_SPECS = [("fp8", 128, False), ("int8", 128, False), ("int4", 32, False), ("int4", -1, False),
               ("fp8", 128, True), ("int8", 128, True)]
WIDE_SPECS = [("fp8", 128, False), ("int8", 128, False), ("int4", 128, False), ("int4", 32, False),
              ("int4", -1, False), ("fp8", 128, True), ("int8", 128, True), ("int4", 128, True)]


def label(fmt, g, head):
    name = fmt if fmt != "int4" else (f"int4 g{g}" if g != -1 else "int4 per row")
    return name + (" + head" if head else "")


def stories(log) -> list[dict]:
    ck = load_checkpoint(STORIES / "stories260K.bin")
    tok = Tokenizer.load(STORIES / "tok512.model")
    prompts = [tok.encode(p, bos=True) for p in PROMPTS]
    ids = tok.encode(Q.TEXT, bos=True)
    base = [Q.greedy(ck.config, ck.weights, p) for p in prompts]
    rows = [{"format": "fp32", "agree": [60] * 3, "prefix": [60] * 3,
             "ppl": Q.perplexity(ck.config, ck.weights, ids)}]
    for fmt, g, head in STORY_SPECS:
        q = load_checkpoint(STORIES / "stories260K.bin", quant=QuantSpec(fmt, g, head, strict=False))
        agree = [Q.agreement(Q.greedy(q.config, q.weights, p), b) for p, b in zip(prompts, base)]
        rows.append({"format": label(fmt, g, head), "agree": [a for a, _ in agree], "prefix": [p for _, p in agree],
                     "ppl": Q.perplexity(q.config, q.weights, ids)})
        log(f"stories260K {rows[-1]}")
    return rows


def wide(layers: int, tokens: int, log) -> list[dict]:
    cfg = PRESETS["llama-2-7b"].with_(n_layers=layers, max_seq_len=max(tokens, 16))
    ids = np.random.default_rng(11).integers(0, cfg.vocab_size, tokens)
    ref = forward(cfg, dummy_weights(cfg, seed=3, dtype="float16"), ids)
    rows = []
    for fmt, g, head in WIDE_SPECS:
        t = time.perf_counter()
        w = quantize_weights(dummy_weights(cfg, seed=3, dtype="float16"), QuantSpec(fmt, g, head))
        got = forward(cfg, w, ids)
        rows.append({"format": label(fmt, g, head), **Q.logit_error(ref, got),
                     "argmax_agree": float(np.mean(got.argmax(1) == ref.argmax(1)))})
        log(f"7B width {rows[-1]} ({time.perf_counter() - t:.0f} s)")
    return rows


def markdown(res: dict) -> str:
    out = ["| format | stories260K greedy agreement (3 prompts, of 60) | common prefix | perplexity (fp32 "
           f"{res['stories'][0]['ppl']:.3f}) |", "| --- | --- | --- | ---: |"]
    for r in res["stories"][1:]:
        out.append(f"| {r['format']} | {' / '.join(map(str, r['agree']))} | {' / '.join(map(str, r['prefix']))} "
                   f"| {r['ppl']:.3f} |")
    out += ["", f"| format | 7B width, {res['layers']} layer(s): logits max err / sd | RMS err / sd | argmax "
                "agreement |", "| --- | ---: | ---: | ---: |"]
    for r in res["wide"]:
        out.append(f"| {r['format']} | {r['max_err_over_sd']:.4f} | {r['rms_err_over_sd']:.4f} | "
                   f"{r['argmax_agree']:.2f} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, default=1, help="layers of the 7B-width model (default 1)")
    p.add_argument("--tokens", type=int, default=8, help="prompt positions compared (default 8)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="output folder")
    a = p.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    res = {"date": datetime.date.today().isoformat(), "layers": a.layers, "tokens": a.tokens,
           "stories": stories(log), "wide": wide(a.layers, a.tokens, log)}
    stem = Path(a.out) / f"quant_quality_{res['date']}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
