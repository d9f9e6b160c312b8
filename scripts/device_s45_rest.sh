#!/bin/bash
# Thirty-seventh session (nvidia-h200): the GPU tests that the suite call (device_suite.sh single, cut at 560 s) did
# not reach, listed by scripts/suite_rest.py in benchmarks/results/thirtyseventh_2026-12-03/s45_rest/rest.txt.
source scripts/device_lib.sh s45_rest
mapfile -t REST < benchmarks/results/thirtyseventh_2026-12-03/s45_rest/rest.txt  # node ids may hold spaces
CUGRAPHLLM_PIN_GPUS=1 t rest ${LIMIT:-540} -n 8 -rfE --tb=short "${REST[@]}"
snap
