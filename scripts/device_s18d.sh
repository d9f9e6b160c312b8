#!/bin/bash
# Session 18 call 4 (nvidia-h200-x2, branch s18c). Phase 1, side by side: GPU 0 the int4 tile knockout profile
# (scripts/int4_knockout.py, quiet GPU), GPU 1 the fp8 2048-row split diagnosis (scripts/fp8_rows_diag.py).
# Phase 2: every one-GPU GPU test file (not the two-GPU ones, run in calls 2-3 and the ninth session), split over
# the two GPUs, 10 workers each, cut at ~565 s (JUnit XML: scripts/suite_rest.py lists what was not reached).
source scripts/device_lib.sh s18d
T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
snap() { tar -czf "$OUT/s18d.tgz" -C /tmp s18d; }
( CUDA_VISIBLE_DEVICES=0 timeout 120 python3 -m scripts.int4_knockout --out $L/int4_knockout.json > $L/ko.log 2>&1
  echo "=== knockout rc $? at $(el) s"; tail -n 20 $L/ko.log ) > $L/p1_gpu0.txt 2>&1 &
P0=$!
( CUDA_VISIBLE_DEVICES=1 timeout 150 python3 -m scripts.fp8_rows_diag > $L/fp8diag.log 2>&1
  echo "=== fp8 diag rc $? at $(el) s"; grep -E "rows|Error" $L/fp8diag.log | tail -n 12 ) > $L/p1_gpu1.txt 2>&1 &
P1=$!
wait $P0; wait $P1
cat $L/p1_gpu0.txt $L/p1_gpu1.txt; snap
A="tests/test_quant_gpu.py tests/test_fused_norm_gpu.py tests/test_memory_gpu.py tests/test_robustness_gpu.py
   tests/test_ux_gpu.py tests/test_sampling_gpu.py tests/test_sampling_v2_gpu.py tests/test_server_gpu.py
   tests/test_norm_gpu.py tests/test_pdl_gpu.py"
B=$(ls tests/test_*_gpu.py | grep -v -E "allreduce|tp_gpu|$(echo $A | tr ' ' '\n' | sed 's#tests/##' | paste -sd'|')")
S=$(( 565 - $(el) ))
echo "suite: ${S} s each; B = $(echo $B | wc -w) files"
CUDA_VISIBLE_DEVICES=0 t suiteA $S -n 10 -rfE --tb=short --durations=15 $A &
PA=$!
CUDA_VISIBLE_DEVICES=1 t suiteB $S -n 10 -rfE --tb=short --durations=15 $B &
PB=$!
wait $PA; wait $PB
echo "total $(el) s"; snap
