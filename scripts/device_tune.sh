#!/bin/bash
# Seventh session (2026-11-30), nvidia-h200-x2. Phase 1, the GPUs apart: GPU 0 the GEMM GPU tests (tuned dispatch,
# every cuBLASLt algorithm, gemm.py's ops), then 7B fp16 TTFT with the prefill GEMM tuning off / on / off / on (one
# process each, CUGRAPHLLM_GEMM_TUNE); GPU 1 scripts/bench_gemm_lt.py at more row counts and in bf16. Phase 2, both
# GPUs: NCCL all-reduce at prefill sizes under NCCL tuning variables, then 70B and 7B TP2 TTFT with tuning off / on.
source scripts/device_lib.sh tune
T0=$(date +%s)
B=$L/bench
ab() {  # ab <tag> <seconds> <bench args...>: one bench process with GEMM tuning $TUNE
  local tag=$1 s=$2; shift 2
  CUGRAPHLLM_GEMM_TUNE=$TUNE timeout "$s" python3 -m cugraphllm bench --backend cuda --modes hybrid --no-plot \
    --out $B --stem ${tag}_t$TUNE "$@" > $L/${tag}_t$TUNE.log 2>&1
  echo "=== $tag tune=$TUNE rc $? at $(( $(date +%s) - T0 )) s"; grep -E "^\| cugraphllm-hybrid" $L/${tag}_t$TUNE.log | cut -c1-150
}
( export CUDA_VISIBLE_DEVICES=0
  t gemm_tests 150 -n 4 tests/test_gemm_tune_gpu.py tests/test_gemm_gpu.py
  for TUNE in 0 1 0 1; do ab 7b 60 --preset llama-2-7b --lengths 10,128,256,500 --new-tokens 16 --reps 2 \
      --ttft-reps 20 --warmup 1; done
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  timeout 150 python3 -m scripts.bench_gemm_lt --sets 7b --ms 32,64,192,384 --algos 8 --out $L/gemm_lt_more.json \
    > $L/gemm_lt_more.log 2>&1; echo "[gemm_lt fp16 rc $?]"; grep -E "^(7b|  model)" $L/gemm_lt_more.log
  timeout 100 python3 -m scripts.bench_gemm_lt --sets 7b --ms 128,512 --algos 8 --dtype bfloat16 \
    --out $L/gemm_lt_bf16.json > $L/gemm_lt_bf16.log 2>&1; echo "[gemm_lt bf16 rc $?]"; grep -E "^(7b|  model)" $L/gemm_lt_bf16.log
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt
for v in "" "NCCL_MIN_NCHANNELS=16" "NCCL_MIN_NCHANNELS=32" "NCCL_PROTO=Simple" "NCCL_PROTO=LL128" \
         "NCCL_MIN_NCHANNELS=32 NCCL_PROTO=Simple"; do
  env $v timeout 40 python3 -m scripts.bench_nccl_sizes --rows 128,512 --dims 4096,8192 \
    --out "$L/nccl_$(echo ${v:-default} | tr ' =' '_-').json" > $L/nccl_tmp.log 2>&1
  echo "=== nccl [${v:-default}] rc $?: $(python3 -c "import json,sys; print(' '.join(f\"{r['dtype'][5:]}/{r['M']}x{r['D']}:{r['us']}\" for r in json.load(open(sys.argv[1]))['rows']))" "$L/nccl_$(echo ${v:-default} | tr ' =' '_-').json" 2>&1)"
done
for TUNE in 0 1; do ab tp2_70b 120 --preset llama-2-70b --tp 2 --lengths 128,500 --new-tokens 16 --reps 2 \
    --ttft-reps 10 --warmup 1; done
for TUNE in 0 1; do ab tp2_7b 60 --preset llama-2-7b --tp 2 --lengths 128,500 --new-tokens 16 --reps 2 \
    --ttft-reps 10 --warmup 1; done
echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/tune.tgz" -C /tmp tune
