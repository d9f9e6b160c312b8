#!/bin/bash
# Eighth session (2026-11-30), nvidia-h200-x2, sixth call. test_tp2_quantized_logits_within_tolerance_of_tp1
# [int4-load] fails on main (decode logits 5-10% off TP1). The same test on: main; main with the seventh session's
# quantized GEMV prologue merge (0a29a4d) reverted (.device/rev); commit ffa666f (.device/old, before that merge).
# Then the sampler GPU tests on main (mark_history / process_logit shared by both samplers). Logs in $OUT/int4tp.tgz.
source scripts/device_lib.sh int4tp
T0=$(date +%s)
snap() { tar -czf "$OUT/int4tp.tgz" -C /tmp int4tp; echo "[at $(( $(date +%s) - T0 )) s]"; }
K="test_tp2_quantized_logits_within_tolerance_of_tp1 and int4"
t tp_main 70 --tb=line -k "$K" tests/test_tp_gpu.py; snap
(cd .device/rev && t tp_rev 70 --tb=line -k "$K" tests/test_tp_gpu.py); snap
(cd .device/old && t tp_old 70 --tb=line -k "$K" tests/test_tp_gpu.py); snap
CUDA_VISIBLE_DEVICES=0 t samp 70 -n 8 tests/test_sampling_gpu.py tests/test_sampling_v2_gpu.py; snap
