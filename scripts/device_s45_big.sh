#!/bin/bash
# Thirty-seventh session (nvidia-h200): the GPU tests marked `big` (70B-shape quantized kernel tests against float64,
# setup.cfg), which device_suite.sh leaves out ("gpu and not big"); last run in the tenth session's final calls.
source scripts/device_lib.sh s45_big
t big ${LIMIT:-300} -n 6 -rfE --tb=short -m "gpu and big" tests/
snap
