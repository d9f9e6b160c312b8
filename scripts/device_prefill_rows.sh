#!/bin/bash
# --prefill-rows A/B (issue #13 item 4, long prompts; nvidia-h200, under 9 minutes):
#  1) tests/test_prefill_rows_gpu.py: chunks of 1024 / 2048 rows against 512 and the NumPy oracle (7B width,
#     2 layers; fp8 at 2048 rows), stories260K greedy tokens with 128 / 256-row chunks;
#  2) 7B fp16 hybrid TTFT at 1000 / 2000 / 3900 tokens with --prefill-rows 512, 1024, 2048: one process each,
#     alternating, two rounds (each run's timeout shrinks to what is left of the call's budget).
# Echoed per run: prompt | TTFT median | TTFT P99 (first table), then prompt | GPU prefill median / P99.
# Logs and the bench JSON / Markdown in $OUT/prefill_rows.tgz after each step.
source scripts/device_lib.sh prefill_rows
T0=$(date +%s)
BUDGET=525  # seconds for the whole call (the device allows 600 per command; this leaves the tar and the start)
snap() { tar -czf "$OUT/prefill_rows.tgz" -C /tmp prefill_rows; echo "[at $(( $(date +%s) - T0 )) s]"; }
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
nvidia-smi -L
t rows 160 -rfE --tb=short tests/test_prefill_rows_gpu.py
snap
for r in 1 2; do for n in ${ROWS:-512 1024 2048}; do  # ROWS="512 2048 4096" bash ... for another set
  s=$(left); s=$(( s < 75 ? s : 75 ))
  if [ "$s" -lt 25 ]; then echo "=== rows $n round $r: skipped, ${s} s left"; continue; fi
  stem=long_rows${n}_r$r
  timeout -k 5 "$s" python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid \
    --lengths 1000,2000,3900 --new-tokens 8 --reps 1 --warmup 1 --ttft-reps 3 --max-seq-len 4096 \
    --prefill-rows $n --no-plot --out $L/bench --stem $stem > $L/$stem.log 2>&1
  rc=$?
  echo "=== rows $n round $r rc $rc (limit $s s): TTFT $(grep -E '^\| cugraphllm-hybrid \| (1000|2000|3900) \| 8 ' \
    $L/$stem.log | cut -d'|' -f3,5,6 | tr '\n' ' ')"
  echo "    GPU prefill: $(grep -E '^\| cugraphllm-hybrid \| (1000|2000|3900) \| [0-9.]+ / ' $L/$stem.log \
    | cut -d'|' -f3,4 | tr '\n' ' ')"
  [ $rc -ne 0 ] && tail -n 3 $L/$stem.log
done; done
snap
