#!/bin/bash
# Ninth session, call 2 (nvidia-h200): every one-GPU GPU test (-m "gpu and not big"; the two-GPU ones skip on this
# kind), 12 xdist workers on the one GPU, the 40 slowest listed. pytest gets SIGINT at the timeout, so a cut run
# still prints its summary. Log in $OUT/s17b.tgz.
source scripts/device_lib.sh s17b
T0=$(date +%s)
nvidia-smi -L
CUGRAPHLLM_PIN_GPUS=1 t single 530 -n 12 -rfE --tb=short --durations=40 tests/
echo "total $(( $(date +%s) - T0 )) s"
grep -E "passed|failed" $L/single.log | tail -n 3
tar -czf "$OUT/s17b.tgz" -C /tmp s17b
