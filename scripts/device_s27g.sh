#!/bin/bash
# Nineteenth session, call 7 (nvidia-h200): the half / tile stagings read the activation once (QG_PARK: the max
# pass parks each chunk in its staging slot; CUGRAPHLLM_QG_PARK=0 reads it twice, as before). Knockout-bench A/B
# per matrix (13B / 70B / 7B int4, 7B int8), the quantized GEMV GPU tests, and end-to-end decode A/B (13B, 7B int4).
source scripts/device_lib.sh s27g
LIMIT=560
nvidia-smi -L
ko() {  # ko NAME PRESET FORMATS MATRICES PARK
  fits 60 "ko $1" || return
  CUGRAPHLLM_QG_PARK=$5 timeout 100 python3 -m scripts.quant_knockout --preset $2 --formats $3 ${4:+--matrices $4} \
    --kos 0 --jobs 14 --out $L/ko_$1_park$5.json > $L/ko_$1_park$5.log 2>&1
  echo "=== ko $1 park $5 rc $?"; tail -n $(( $(echo $3 | tr ',' '\n' | wc -l) * ${6:-4} )) $L/ko_$1_park$5.log
}
for pk in 1 0; do ko 13b llama-2-13b int4 "" $pk; done
for pk in 1 0; do ko 70b llama-2-70b int4 wqkv+norm,w2+ss $pk 2; done
for pk in 1 0; do ko 7b llama-2-7b int4,int8 "" $pk; done; snap
t quant_gemv 200 -rfE --tb=short -n 8 tests/test_quant_gpu.py -k "int4 or int8"; snap
for pk in 1 0 1; do
  env_bench e2e_13b_int4_park$pk 13b_int4_park$pk 75 CUGRAPHLLM_QG_PARK=$pk --preset llama-2-13b --quant int4 \
    --prompt-lens 10,500
done
for pk in 1 0; do
  env_bench e2e_7b_int4_park$pk 7b_int4_park$pk 50 CUGRAPHLLM_QG_PARK=$pk --preset llama-2-7b --quant int4 \
    --prompt-lens 10,500
done; snap
echo "total $(( $(date +%s) - T0 )) s"
