#!/bin/bash
# Twenty-second session, call 5 (nvidia-h200, < 4 min). 1) test_memory_gpu.py alone (its three failures in s30d
# were out-of-memory errors beside 7 other test workers on the one GPU); 2) #13's inter-token spread: 7B decode runs
# (prompt 10, 128 tokens) with the SM clock / power logged, alone and after 97 first-token-only prefills of 500
# tokens each (the paper protocol's TTFT samples), scripts/itl_drift.py.
source scripts/device_lib.sh s30e
nvidia-smi -L
t memory 120 -rfE --tb=short tests/test_memory_gpu.py; snap
for n in 0 97; do
  timeout 90 python3 -m scripts.itl_drift --runs 4 --prefills $n --prefill-len 500 --period-ms 10 \
    --out $L/itl_p$n.json > $L/itl_p$n.log 2>&1
  echo "=== itl prefills $n rc $?"; cut -c1-400 $L/itl_p$n.log | grep -v Warning | tail -n 4
done; snap
echo "total $(( $(date +%s) - T0 )) s"
