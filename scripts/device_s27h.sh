#!/bin/bash
# Nineteenth session, call 8 (nvidia-h200): the final parked-staging rule (ops_quant._parked: the unparked build
# where the parked one spills more): 70B int4 wo / w2 knockout-bench A/B (default vs CUGRAPHLLM_QG_PARK=0), the
# quantized engine GPU tests, 7B int8 decode A/B end to end.
source scripts/device_lib.sh s27h
LIMIT=330
nvidia-smi -L
for pk in 1 0; do
  CUGRAPHLLM_QG_PARK=$pk timeout 80 python3 -m scripts.quant_knockout --preset llama-2-70b --formats int4 \
    --matrices wo+ss,w2+ss --kos 0 --jobs 14 --out $L/ko_70b_park$pk.json > $L/ko_70b_park$pk.log 2>&1
  echo "=== ko 70b park $pk rc $?"; tail -n 2 $L/ko_70b_park$pk.log
done; snap
t quant_engine 120 -rfE --tb=short -n 6 tests/test_quant_engine_gpu.py tests/test_quant_knockout_gpu.py; snap
for pk in 1 0; do
  env_bench e2e_7b_int8_park$pk 7b_int8_park$pk 50 CUGRAPHLLM_QG_PARK=$pk --preset llama-2-7b --quant int8 \
    --prompt-lens 10,500
done; snap
echo "total $(( $(date +%s) - T0 )) s"
