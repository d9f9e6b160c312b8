"""Torch peers on the same protocol as `python -m cugraphllm bench`: batch 1, random prompt ids, greedy,
forced length, warm-up discarded, host wall clock with a device sync per token (what a streaming user sees).

Systems (LLaMA-2-7B shapes, random fp16 weights, nothing downloaded):
  gptfast     a minimal gpt-fast-style model (scripts/peers_gptfast.py), decode under torch.compile reduce-overhead,
              prefill eager (gpt-fast --compile)
  gptfast-prefill  the same with prefill compiled too, dynamic shapes (gpt-fast --compile --compile_prefill)
  gptfast[-prefill]-int8 / -int4  the same with weight-only quantized linears as gpt-fast's quantize.py makes
              them (scripts/peers_quant.py): int8 per-row symmetric, int4 group --group-size (128) with bf16
              scales and zeros through aten._weight_int4pack_mm; embedding and LM head 16-bit unless --quant-head.
              Before timing, a self-check (not a timing): the logits on a --check-len prompt against the same
              model's fp16 logits, and layer 0's w13 against its dequantized float32 reference (JSON "quant", notes)
  hf-eager    Hugging Face transformers LlamaForCausalLM.generate, dynamic cache, eager
  hf-compile  the same with cache_implementation="static", which makes generate compile the decode step
Needs torch and transformers (the GPU image has them; cugraphllm never does). Writes the cugraphllm-bench/1 JSON
after every system, so a run stopped early still leaves its figures.

  python3 -m scripts.bench_peers --out $OUT [--prompt-lens 10,128,500 --new-tokens 64 --reps 5] [--paper]
  python3 -m scripts.bench_peers --systems gptfast-int8,gptfast-int4 --out $OUT   # the quantized peers
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path


import torch

from cugraphllm import bench_report as br
from cugraphllm.config import ModelConfig

QUANT = ("int8", "int4")
SYSTEMS = ("gptfast", "gptfast-prefill", "hf-eager", "hf-compile") + tuple(
    f"{base}-{q}" for base in ("gptfast", "gptfast-prefill") for q in QUANT)
T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[peers {time.perf_counter() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ---- device facts -------------------------------------------------------------------------------
def copy_gbps(nbytes: int = 1 << 30, reps: int = 20) -> float:
    """Device-to-device copy rate, bytes read + written, CUDA events."""
    a = torch.empty(nbytes, dtype=torch.uint8, device="cuda").random_()
    b = torch.empty_like(a)
    b.copy_(a)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        b.copy_(a)
    end.record()
    end.synchronize()
    gbps = 2 * nbytes * reps / (start.elapsed_time(end) * 1e-3) / 1e9
    del a, b
    torch.cuda.empty_cache()
    return gbps


def driver_version() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip().splitlines()[0]
    except Exception:  # noqa: BLE001 - informational only
        return "unknown"


def versions() -> dict:
    import transformers
    return {"python": platform.python_version(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "transformers": transformers.__version__}


# ---- Hugging Face runners -----------------------------------------------------------------------
def build_hf(cfg: ModelConfig):
    from transformers import LlamaConfig, LlamaForCausalLM
    kw = dict(hidden_size=cfg.dim, intermediate_size=cfg.hidden_dim, num_hidden_layers=cfg.n_layers,
              num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_kv_heads, vocab_size=cfg.vocab_size,
              max_position_embeddings=cfg.max_seq_len, rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta,
              tie_word_embeddings=cfg.tie_embeddings)
    try:
        hf_cfg = LlamaConfig(**kw, attn_implementation="sdpa")
    except TypeError:
        hf_cfg = LlamaConfig(**kw)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float16)
    try:
        with torch.device("cuda"):
            model = LlamaForCausalLM(hf_cfg).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    gc_ = model.generation_config
    gc_.eos_token_id, gc_.pad_token_id, gc_.bos_token_id = None, 0, 1  # forced length: nothing stops early
    gc_.do_sample, gc_.temperature, gc_.top_p, gc_.top_k = False, None, None, None
    return model


class _Clock:
    """A transformers streamer: put() is called with the prompt, then once per new token (already on the host,
    so the device has synchronized); we record the host time of each token."""

    def __init__(self):
        self.times = []

    def put(self, value):
        if value.dim() == 1:  # new tokens come as [batch]; the prompt as [batch, L]
            self.times.append(time.perf_counter())

    def end(self):
        pass


class HFRunner:
    def __init__(self, model):
        self.model = model

    def run(self, prompt, n: int):
        clock = _Clock()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.inference_mode():
            self.model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n,
                                min_new_tokens=n, do_sample=False, streamer=clock)
        if len(clock.times) != n:
            raise RuntimeError(f"generate produced {len(clock.times)} tokens, expected {n}")
        t = clock.times
        return t[0] - t0, [b - a for a, b in zip(t, t[1:])]


def enable_static_compile(model) -> str:
    model.generation_config.cache_implementation = "static"
    try:
        from transformers import CompileConfig
        model.generation_config.compile_config = CompileConfig(fullgraph=True, dynamic=False, mode="reduce-overhead")
        return "static cache; generate compiles the decode step (CompileConfig fullgraph, reduce-overhead)"
    except Exception as e:  # noqa: BLE001
        return f"static cache; default compile config ({type(e).__name__}: {e})"


# ---- the protocol -------------------------------------------------------------------------------
def measure(runner, cfg, args, gen: torch.Generator) -> tuple[list, list]:
    """Warm-up (largest length first, so static caches and graphs are sized once), then the timed reps."""
    results, warm = [], []
    lens = sorted(args.prompt_lens, reverse=True)
    for L in lens:
        for _ in range(args.warmup):
            t = time.perf_counter()
            runner.run(_prompt(cfg, L, gen), args.new_tokens)
            warm.append((L, time.perf_counter() - t))
            log(f"  warm-up L={L}: {warm[-1][1]:.2f} s")
    for L in sorted(args.prompt_lens):
        if time.perf_counter() - T0 > args.budget_s:
            log(f"  budget of {args.budget_s} s spent: skipping L={L}")
            continue
        ttft, itl_runs = [], []
        for r in range(max(args.reps, args.ttft_reps)):
            full = r < args.reps
            t, itl = runner.run(_prompt(cfg, L, gen), args.new_tokens if full else 1)
            ttft.append(t)
            if full:
                itl_runs.append(itl)
        row = br.result_entry(L, args.new_tokens, ttft, itl_runs, cfg, itemsize=2)
        log(f"  L={L}: TTFT median {row['ttft_ms']['median']:.2f} ms, TPOT {row['tpot_ms']:.3f} ms")
        results.append(row)
    return results, warm


def _prompt(cfg, L: int, gen: torch.Generator):
    return torch.randint(3, cfg.vocab_size, (1, L), generator=gen, device="cpu").to("cuda")


def run_system(name: str, cfg: ModelConfig, args, state: dict) -> dict:
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    extra = {}
    if name.startswith("gptfast"):
        try:  # `python3 -m scripts.bench_peers` from the checkout, or the file itself
            from scripts.peers_gptfast import GptFastRunner
        except ImportError:
            from peers_gptfast import GptFastRunner
        base, _, fmt = name.rpartition("-") if name.endswith(QUANT) else (name, "", None)
        cp = base == "gptfast-prefill"
        runner = GptFastRunner(cfg, max_seq=_round_up(max(args.prompt_lens) + args.new_tokens, 8), compile_prefill=cp)
        extra["design"] = ("static KV cache, fused wqkv/w13, device-side position, decode torch.compile "
                           "reduce-overhead, prefill " + ("torch.compile dynamic=True" if cp else "eager"))
        if fmt:
            extra["quant"] = quantize_peer(runner.model, fmt, cfg, args)
    else:
        if state.get("hf") is None:
            state["hf"] = build_hf(cfg)
        model = state["hf"]
        extra["attn_implementation"] = str(getattr(model.config, "_attn_implementation", "?"))
        if name == "hf-compile":
            extra["design"] = enable_static_compile(model)
        runner = HFRunner(model)
    build_s = time.perf_counter() - t
    gen = torch.Generator().manual_seed(args.seed)
    results, warm = measure(runner, cfg, args, gen)
    if "quant" in extra:
        _peers_quant().quant_gbps(results, cfg, extra["quant"]["bytes_per_token"], args.new_tokens)
    if name == "hf-compile":
        extra["compiled_call"] = getattr(model, "_compiled_call", None) is not None
    del runner
    first_warm = warm[0][1] if warm else 0.0
    return br.system_entry(name, build_s + first_warm, torch.cuda.max_memory_allocated(), results,
                           build_s=build_s, warmup_s=[[L, s] for L, s in warm], **extra)


# ---- quantized peers ----------------------------------------------------------------------------
def _peers_quant():
    try:  # as for peers_gptfast: from the checkout, or beside this file
        from scripts import peers_quant
    except ImportError:
        import peers_quant
    return peers_quant


def quantize_peer(model, fmt: str, cfg: ModelConfig, args) -> dict:
    """Quantize the built 16-bit peer in place (scripts/peers_quant.py) with its self-check; the peak-memory
    counter restarts afterwards, so gpu_mem_gib is the quantized model's, not the 16-bit one it came from."""
    pq = _peers_quant()
    prompt = None
    if args.check_len:
        gen = torch.Generator().manual_seed(args.seed + 1)
        prompt = torch.randint(3, cfg.vocab_size, (1, args.check_len), generator=gen).to("cuda")
    t = time.perf_counter()
    info = pq.quantize_with_check(model, fmt, args.group_size, args.quant_head, prompt)
    info["quantize_s"] = time.perf_counter() - t
    for line in pq.quant_notes(fmt, info):
        log("  " + line)
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return info


def _round_up(x: int, m: int) -> int:
    return (x + m - 1) // m * m


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompt-lens", default="10,128,500")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--reps", type=int, default=5, help="full-length runs per prompt length")
    p.add_argument("--ttft-reps", type=int, default=0, help="TTFT samples per length (>= reps)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--paper", action="store_true", help="paper lengths 10..500, 128 new tokens, 100 TTFT reps")
    p.add_argument("--systems", default="gptfast,gptfast-prefill,hf-eager,hf-compile")
    p.add_argument("--preset", default="llama-2-7b")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget-s", type=float, default=520.0, help="skip remaining lengths after this many seconds")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--stem", default=None, help="file name stem (default peers_<date>)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--group-size", type=int, default=128, help="int4 group along the input dimension")
    p.add_argument("--quant-head", action="store_true", help="quantize the LM head too (gpt-fast's quantize.py does)")
    p.add_argument("--check-len", type=int, default=None,
                   help="self-check prompt length of the quantized peers (default min(128, longest prompt); 0: off)")
    a = p.parse_args(argv)
    if a.paper:
        a.prompt_lens, a.new_tokens, a.ttft_reps = "10,25,50,100,128,200,300,500", 128, 100
    a.prompt_lens = [int(x) for x in a.prompt_lens.split(",")]
    a.systems = [s for s in a.systems.split(",") if s]
    bad = [s for s in a.systems if s not in SYSTEMS]
    if bad:
        p.error(f"unknown systems {bad}; known: {SYSTEMS}")
    if a.group_size not in (32, 64, 128, 256):  # the group sizes torch's int4 kernel is built for
        p.error(f"--group-size {a.group_size}: torch's _weight_int4pack_mm supports 32, 64, 128 or 256")
    if a.check_len is None:
        a.check_len = min(128, max(a.prompt_lens))
    if not 0 <= a.check_len <= max(a.prompt_lens) + a.new_tokens:
        p.error(f"--check-len {a.check_len}: must be in [0, longest prompt + new tokens]")
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = ModelConfig.from_preset(args.preset)
    device = {"name": torch.cuda.get_device_name(0), "driver": driver_version(), "copy_gbps": copy_gbps()}
    log(f"{device['name']}, driver {device['driver']}, copy {device['copy_gbps']:.0f} GB/s")
    model = {"name": f"{args.preset} (random weights)", "dtype": "float16", "weight_bytes": cfg.n_params() * 2}
    notes = [f"protocol: batch 1, random prompt ids (seed {args.seed}), greedy, forced length {args.new_tokens}, "
             f"{args.warmup} warm-up run(s) per length discarded, {args.reps} full runs per length; host wall clock, "
             "device sync per token",
             "command: python3 scripts/bench_peers.py " + " ".join(sys.argv[1:] if argv is None else argv)]
    stem = args.stem or f"peers_{dt.date.today().isoformat()}"
    systems, state = [], {}
    for name in args.systems:
        log(f"{name}: building")
        try:
            systems.append(run_system(name, cfg, args, state))
            if "quant" in systems[-1]:
                notes += _peers_quant().quant_notes(name, systems[-1]["quant"])
        except Exception as e:  # noqa: BLE001 - one broken peer must not lose the others' figures
            traceback.print_exc()
            notes.append(f"{name} failed: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
        if name.startswith("gptfast"):
            torch._dynamo.reset()  # drops the compiled decode and its CUDA graphs, which hold the model
            gc.collect()
            torch.cuda.empty_cache()
        doc = br.make_doc(device, versions(), model, systems, notes)
        paths = br.write_outputs(doc, Path(args.out), stem, png=False)
    paths = br.write_outputs(doc, Path(args.out), stem, png=not args.no_plot, log=log)
    print(br.to_markdown(doc))
    log("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
