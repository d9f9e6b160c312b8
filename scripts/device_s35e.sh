#!/bin/bash
# Twenty-seventh session (nvidia-h200): the GPU tests that s35d's suite call (device_suite.sh single, cut at 560 s) did
# not reach, listed by scripts/suite_rest.py in benchmarks/results/twentyseventh_2026-12-02/s35d_suite/rest.txt.
source scripts/device_lib.sh s35e
mapfile -t REST < benchmarks/results/twentyseventh_2026-12-02/s35d_suite/rest.txt  # node ids may hold spaces
CUGRAPHLLM_PIN_GPUS=1 t rest ${LIMIT:-420} -n 8 -rfE --tb=short "${REST[@]}"
snap
