#!/bin/bash
# Eighteenth session, call 11 (nvidia-h200): the wgmma kernel's K split summed in a fixed order (each split parks
# its tile, the last to arrive adds their sum: repeated launches and graph replays agree bit for bit): the int4 +
# int8 quantized prefill and engine GPU tests, 7B int8 and int4 bench, then the probe's checks (bitwise repeats).
source scripts/device_lib.sh s26k
LIMIT=300
nvidia-smi -L
t quant_int48 150 -rfE --tb=short -n 4 tests/test_quant_prefill_gpu.py tests/test_quant_engine_gpu.py -k "int4 or int8"; snap
for f in int8 int4; do
  fits 45 "bench $f" || break
  timeout 45 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --quant $f --modes hybrid \
    --prompt-lens 10,128,500 --new-tokens 32 --reps 2 --warmup 1 --ttft-reps 5 --no-plot --out $L/bench \
    --stem ${f}_$(( $(date +%s) - T0 )) > $L/bench_$f.log 2>&1
  echo "=== $f rc $?"; grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| [0-9]+' $L/bench_$f.log | cut -d'|' -f3,5,6,7 | tr '\n' ' '; echo
  grep -E "Error|Traceback" $L/bench_$f.log | head -3
done; snap
if fits 45 "probe"; then
  timeout 45 python3 -m scripts.w4_wgmma_probe --rows 512,128 --splits 1 --configs auto --mats wo,w2 \
    --out $L/w4_probe.json > $L/w4_probe.log 2>&1
  echo "=== probe rc $?"; grep -h -E '"mat"|error|config|differ' $L/w4_probe.log | cut -c1-300
fi; snap
echo "total $(( $(date +%s) - T0 )) s"
