#!/bin/bash
# The whole GPU suite on nvidia-h200-x2 in two calls (each under the 600 s limit):
#   bash scripts/device_suite.sh single   every GPU test that needs one GPU, 16 xdist workers pinned 8 per GPU
#                                         (CUGRAPHLLM_PIN_GPUS, tests/conftest.py); the two-GPU tests skip here
#   bash scripts/device_suite.sh peer     the two-GPU tests (all-reduce, TP), unpinned
# On nvidia-h200 (one GPU) `single` runs with CUGRAPHLLM_PIN_GPUS=1. Logs in $OUT/suite_<part>.tgz.
source scripts/device_lib.sh suite_$1
T0=$(date +%s)
N=$(nvidia-smi -L | wc -l)
case $1 in
  single) CUGRAPHLLM_PIN_GPUS=$N t single 560 -n $((8 * N)) -rfE --tb=short tests/ ;;
  peer) t peer 560 -rfE --tb=short tests/test_allreduce_lamport_gpu.py tests/test_allreduce_gpu.py tests/test_tp_gpu.py ;;
  *) echo "usage: $0 single|peer"; exit 2 ;;
esac
echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/suite_$1.tgz" -C /tmp suite_$1
