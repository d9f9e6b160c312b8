#!/bin/bash
# For the next session (nvidia-h200, < 7 minutes): fp8 / int8 on the tensor-core tiles with the cursor loop
# (twelfth session, not GPU-run; PTX a round fp8 147-161 -> 115-116, int8 142-152 -> 93-95; their plans keep the
# pipe / half2 paths, on which the old tile loop lost everywhere). 1) tests/test_qg_cursor8_gpu.py (bits under
# QG_CURSOR 0 / 1, float64 check); 2) bench_quant --sweep mma8 on the 7B matrices (the default plan first); if a
# tile config wins a matrix, it is an mma_shapes entry for that format.
source scripts/device_lib.sh cursor8
t cursor8_tests 150 -n 8 -rfE --tb=short tests/test_qg_cursor8_gpu.py; snap
for f in fp8 int8; do
  fits 110 "sweep $f" || break
  timeout 110 python3 -m scripts.bench_quant --formats $f --sweep mma8 --no-table \
    --out $L/bench/sweep_mma8_$f.json > $L/sweep_$f.log 2>&1
  echo "=== sweep $f rc $?"; grep "^sweep" $L/sweep_$f.log | sed 's/^sweep //'; snap
done
echo "total $(( $(date +%s) - T0 )) s"
