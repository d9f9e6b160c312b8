"""Collect the `bench --tp` documents of a folder into one JSON list and one Markdown file, and print a line per
(model, prompt length): TTFT, decode, GPU step, collectives per step, weights per GPU (scripts/device_tp*.sh).

    python3 -m scripts.tp_bench_summary BENCH_DIR OUT_DIR
"""
import json
import pathlib
import sys


def main(argv=None) -> int:
    src, out = (pathlib.Path(a) for a in (argv or sys.argv[1:]))
    docs = [json.loads(p.read_text()) for p in sorted(src.glob("*.json"))]
    (out / "tp_bench.json").write_text(json.dumps(docs, indent=1))
    (out / "tp_bench.md").write_text("\n\n".join(p.read_text() for p in sorted(src.glob("*.md"))))
    for d in docs:
        m = d["model"]
        for s in d["systems"]:
            for r in s["results"]:
                print(f"{m['name']:>12} {s['system']:>24}  L={r.get('prompt_len', r.get('length'))}  "
                      f"TTFT {r['ttft_ms']['median']:.2f} ms  TPOT {r['tpot_ms']:.3f} ms  "
                      f"GPU step {r.get('gpu_tpot_ms') or float('nan'):.3f} ms  collectives "
                      f"{s.get('allreduce_us_per_step', float('nan')):.1f} us/step  weights/GPU "
                      f"{m.get('weight_bytes_per_gpu', m['weight_bytes']) / 1e9:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
