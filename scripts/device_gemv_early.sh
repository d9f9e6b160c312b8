#!/bin/bash
# Issue #13, GEMV_EARLY (nvidia-h200, < 8 minutes): the 16-bit decode GEMVs' qkv / residual epilogue inputs loaded
# right after pdl_enter (CUGRAPHLLM_GEMV_EARLY=1, the new default) or after the weight stream (0, as before).
#  1) the GEMV / fused-norm / decode-graph / engine GPU tests and the 0-vs-1 bit-identity test (-n 8);
#  2) two rounds, alternating 0 / 1: decode_anatomy (7B fp16, pos 10 / 500; per-op kernel_us / graph_us of wqkv,
#     wo, w13, w2 and the greedy step) and the 7B fp16 hybrid bench at prompts 10 / 500 (TPOT, GPU ms per step).
# A step that could pass the 470 s mark is skipped (said so). Results in $OUT/gemv_early.tgz after each step.
source scripts/device_lib.sh gemv_early
T0=$(date +%s)
snap() { tar -czf "$OUT/gemv_early.tgz" -C /tmp gemv_early; echo "[at $(( $(date +%s) - T0 )) s]"; }
fits() { [ $(( $(date +%s) - T0 + $1 )) -le 470 ] || { echo "=== skipped ($2): would pass 470 s"; false; }; }
anat() {  # file: per position, the greedy step and kernel / graph us of the four layer GEMVs
  python3 -c "import json, sys
for r in json.load(open(sys.argv[1]))['results']['float16']:
    o = r['ops']
    print(f\"  pos {r['pos']}: step {r['step_us']['greedy']:.1f} us;\", ' '.join(
        f\"{k} {o[k]['kernel_us']:.2f}/{o[k]['graph_us']:.2f}\" for k in ('wqkv+norm+rope', 'wo+ss', 'w13+norm+silu', 'w2+ss')))
" "$1"; }
nvidia-smi -L
t tests 160 -n 8 tests/test_gemv_early_gpu.py tests/test_gemv_gpu.py tests/test_fused_norm_gpu.py \
  tests/test_decode_graph_gpu.py tests/test_engine_gpu.py
snap
for r in 1 2; do for e in 0 1; do
  if fits 75 "anatomy e$e r$r"; then
    CUGRAPHLLM_GEMV_EARLY=$e timeout 75 python3 -m scripts.decode_anatomy --dtypes float16 --pos 10,500 \
      --out $L/anat_e${e}_r$r.json > $L/anat_e${e}_r$r.log 2>&1
    echo "=== anatomy GEMV_EARLY=$e round $r rc $? (kernel/graph us)"; anat $L/anat_e${e}_r$r.json
  fi
  if fits 50 "bench e$e r$r"; then
    CUGRAPHLLM_GEMV_EARLY=$e timeout 50 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid \
      --lengths 10,500 --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench \
      --stem fp16_e${e}_r$r > $L/fp16_e${e}_r$r.log 2>&1
    echo "=== bench GEMV_EARLY=$e round $r rc $?: TPOT $(grep -E '^\| cugraphllm-hybrid \| (10|500) \| 64' \
      $L/fp16_e${e}_r$r.log | cut -d'|' -f3,7 | tr '\n' ' ') GPU step $(grep -E \
      '^\| cugraphllm-hybrid \| (10|500) \| [0-9.]+ / ' $L/fp16_e${e}_r$r.log | cut -d'|' -f3,5 | tr '\n' ' ')"
  fi
  snap
done; done
