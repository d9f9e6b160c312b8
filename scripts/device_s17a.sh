#!/bin/bash
# Ninth session, call 1 (nvidia-h200-x2): correctness only, three pytest runs side by side, then the prologue probe.
#  A (both GPUs): the all-reduce and TP GPU tests of this tree (main + sampler-v3 + fp8-actq merged);
#  B (GPU 0): the sampler GPU tests (v3 layout, v2 / v3 against v1, engine and decode-graph tests);
#  C (GPU 1): the fused fp8 activation quantization tests and the fp8 / quantized prefill tests;
#  then D (both GPUs): tests/test_quant_prologue_tp_gpu.py on branch prologue-tp-bug's tree (.device/plg), -rA.
# Logs in $OUT/s17a.tgz after each step.
source scripts/device_lib.sh s17a
T0=$(date +%s)
snap() { tar -czf "$OUT/s17a.tgz" -C /tmp s17a; echo "[at $(( $(date +%s) - T0 )) s]"; }
nvidia-smi -L
t peer 300 -rfE --tb=short tests/test_allreduce_lamport_gpu.py tests/test_allreduce_gpu.py tests/test_tp_gpu.py &
PA=$!
CUDA_VISIBLE_DEVICES=0 t samp 260 -n 4 -rfE --tb=short tests/test_sampling_v3_gpu.py tests/test_sampling_v2_gpu.py \
  tests/test_sampling_gpu.py tests/test_decode_graph_gpu.py tests/test_engine_gpu.py &
PB=$!
CUDA_VISIBLE_DEVICES=1 t actq 280 -n 4 -rfE --tb=short tests/test_fp8_actq_gpu.py tests/test_fp8_lt_gpu.py \
  tests/test_quant_prefill_gpu.py &
PC=$!
wait $PA; snap; wait $PB; wait $PC; snap
cd .device/plg && t plg 200 -rA --tb=short tests/test_quant_prologue_tp_gpu.py; cd ../..
grep -E "^(PASSED|FAILED|ERROR)" $L/plg.log | head -60
snap
