#!/bin/bash
# Thirteenth session, call 11 (nvidia-h200, < 1 min): the int8 default-path tests that call 10's 100 s timeout cut
# (tests/test_quant_gpu.py, int8 under the pipelined half2 path, all 43).
source scripts/device_lib.sh q8p
t q8p 130 -n 8 -rfE --tb=short tests/test_quant_gpu.py -k "int8 and h2_pipe"; snap
