#!/bin/bash
# Eighth session (2026-11-30), nvidia-h200-x2, fifth call. The fourth call's TP / all-reduce test run hit its
# timeout with two failures whose tracebacks it never printed. 1) The TP GPU tests on this main, tracebacks shown;
# 2) the same tests of commit ffa666f (.device/old: the seventh session's tree that passed them) for comparison;
# 3) GPU 0: inter-token intervals after a 500-token prefill vs after a 10-token one, SM clock logged.
# Results in $OUT/tpcheck.tgz, refreshed after each step.
source scripts/device_lib.sh tpcheck
T0=$(date +%s)
snap() { tar -czf "$OUT/tpcheck.tgz" -C /tmp tpcheck; echo "[at $(( $(date +%s) - T0 )) s]"; }
t tp_new 150 -rfE --tb=short tests/test_tp_gpu.py; snap
grep -E "^(FAILED|ERROR)|Error|error:|assert" $L/tp_new.log | head -30
if grep -qE "^(FAILED|ERROR)" $L/tp_new.log; then
  (cd .device/old && t tp_old 150 -rfE --tb=line tests/test_tp_gpu.py); snap
fi
for n in 500 10; do
  CUDA_VISIBLE_DEVICES=0 timeout 60 python3 -m scripts.itl_drift --runs 4 --prompt-len $n --gpu 0 \
    --out $L/itl_drift_p$n.json > $L/itl_drift_p$n.log 2>&1
  echo "=== itl drift prompt $n rc $?"; cut -c1-700 $L/itl_drift_p$n.log; snap
done
