#!/bin/bash
# Issue 11, nvidia-h200-x2: the value-as-flag ("lamport") one-shot all-reduce (kernels/allreduce_lamport.cu) beside
# the flag protocol ("custom"). 1) the all-reduce GPU tests (each protocol alone, then lamport against custom bit for
# bit, and lamport's buffer state across the call counter's wrap); 2) the A/B on dummy 7B TP2 (nccl, custom-unfused,
# custom, lamport-unfused, lamport) and 13B TP2 (nccl, custom, lamport): ms/token and us per all-reduce
# (scripts/bench_allreduce.py); 3) the TP GPU tests with CUGRAPHLLM_ALLREDUCE=lamport. Timeouts 140 + 100 + 120 +
# 170 = 530 s. Summary lines on stdout; logs and the A/B JSONs in $OUT/lamport.tgz. Needs .device/ as in
# scripts/device_tp.sh.
# Usage: bash scripts/device_lamport.sh
source scripts/device_lib.sh lamport
T0=$(date +%s)
nvidia-smi topo -m > "$L/gpu.txt" 2>&1; head -4 "$L/gpu.txt"
t allreduce_tests 140 --durations=10 tests/test_allreduce_gpu.py tests/test_allreduce_lamport_gpu.py
ab() {  # ab <seconds> <preset> <backends>
  timeout "$1" python3 -m scripts.bench_allreduce --preset "$2" --tp 2 --backends "$3" \
    --out "$L/bench/allreduce_ab_$2.json" > "$L/ab_$2.log" 2>&1
  echo "=== A/B $2 rc $? at $(( $(date +%s) - T0 )) s"; grep -v "^\[bench_allreduce" "$L/ab_$2.log" | tail -12
}
ab 100 llama-2-7b nccl,custom-unfused,custom,lamport-unfused,lamport
ab 120 llama-2-13b nccl,custom,lamport
(export CUGRAPHLLM_ALLREDUCE=lamport; t tp_tests_lamport 170 tests/test_tp_gpu.py)
grep -h "never reached this collective" "$L"/*.log | head -5  # a kernel's timeout line, if any
echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/lamport.tgz" -C /tmp lamport
