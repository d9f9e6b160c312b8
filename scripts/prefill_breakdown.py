"""Where prefill time goes: one eager 7B prefill step per bucket, each op timed with CUDA events.

    python3 -m scripts.prefill_breakdown [--preset llama-2-7b] [--rows 16,128,512]
"""
import argparse
import collections
import json
import sys


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="llama-2-7b", help="model preset (dummy weights)")
    ap.add_argument("--rows", default="16,128,512", help="prefill buckets to time")
    a = ap.parse_args(argv)
    import cupy as cp
    from cugraphllm.config import ModelConfig, RuntimeConfig
    from cugraphllm.gpu import model, ops
    from cugraphllm.gpu.engine import CudaEngine
    e = CudaEngine.dummy(ModelConfig.from_preset(a.preset), RuntimeConfig(backend="cuda", mode="eager"))
    e.wait_ready()
    times = collections.defaultdict(list)

    def timed(name, fn):
        def run(*args, **kw):
            t0, t1 = cp.cuda.Event(), cp.cuda.Event()
            t0.record(e.stream)
            fn(*args, **kw)
            t1.record(e.stream)
            times[name].append((t0, t1))
        return run
    for name in ("embedding", "norm_qkv_rope", "matmul_residual", "norm_matmul_silu", "norm_matmul_logits",
                 "argmax"):
        setattr(model.ops, name, timed(name, getattr(ops, name)))
    e.attn.prefill = timed("attention_prefill", e.attn.prefill)
    out = {}
    for rows in [int(r) for r in a.rows.split(",")]:
        for rep in range(2):  # the first pass warms up
            times.clear()
            e._set_step(0, rows, list(range(3, 3 + rows)))
            with e.stream:
                model.forward(e.config, e.w, e.kv, e.s, e.attn, rows, rows, True)
            e.stream.synchronize()
        out[rows] = {k: round(sum(cp.cuda.get_elapsed_time(t0, t1) for t0, t1 in v), 3) for k, v in times.items()}
        out[rows]["total_ms"] = round(sum(out[rows].values()), 3)
        print(rows, json.dumps(out[rows]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
