#!/bin/bash
# Last minutes of 2026-11-30's fifth session: the server GPU tests on the final server code (sse.py split), then
# the quantized engine tests (the int4 plan's tiles from 6144 row pairs), logs copied to $OUT as they finish.
source scripts/device_lib.sh check5
t server 45 tests/test_server_gpu.py; cp $L/*.log "$OUT/"
t quant_engine 90 -n 8 tests/test_quant_engine_gpu.py; cp $L/*.log "$OUT/"
