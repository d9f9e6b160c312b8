#!/bin/bash
# Prepared in the thirty-seventh session (its device time was spent), for the next session with device time (~6 min):
# the 16-row GEMMs by row loads (gemm.cu WS 2 / 3 / 4, kernels/gemm_rowload.cuh: whole rows a warp load, fragments
# through a per-warp shared-memory buffer; not a default yet).
#   1. the own-kernel config GPU tests of the WS 2-4 configs (test_gemm_gpu.py: test_own_configs against float64,
#      XS with them refused; test_own_configs_bitwise: the same bits launch to launch);
#   2. scripts/m16r_probe.py (the same idea as a stand-alone probe, beside the own kernel and a bare read);
#   3. bench_gemm --tune at 16 rows, the row-load configs (w2 / w3 / w4) beside the default, on the 7B shapes.
# If a row-load config beats the default on a shape, put it in gemm.OWN_CONFIG[(op, 2)] and A/B the 10-token TTFT
# (scripts/prefill_ab.py, the 16-row bucket) in the same call. Results in $OUT/next_rowload.tgz.
source scripts/device_lib.sh ${1:-next_rowload}
RLC="1x4x2x1x0x0x2x1 or 2x2x2x1x0x0x2 or 1x8x2x1x0x2x3x1 or 2x2x2x2x0x0x3 or 1x16x2x1x0x0x4x1 or 2x4x2x1x0x1x4"
t gemm_own ${T1:-200} -n 4 -rfE --tb=short tests/test_gemm_gpu.py -k "own_configs and ($RLC or 2x2x2x1x1x0x3)"
fits 90 m16r && { timeout 90 python3 -m scripts.m16r_probe --rounds 2 --out $L/m16r.json > $L/m16r.log 2>&1
  echo "=== m16r rc $?"; tail -4 $L/m16r.log | cut -c1-600; }
fits 200 tune && { timeout 200 python3 -m scripts.bench_gemm --tune --tune-only 'w[234]' --ms 16 --out $L/gemm_m16_tune.json > $L/tune.log 2>&1
  echo "=== tune rc $?"; python3 - <<PY
import json
doc = json.load(open("$L/gemm_m16_tune.json"))
for r in doc.get("rows", doc if isinstance(doc, list) else []):
    oc = {k: v for k, v in r.get("own_configs", {}).items() if isinstance(v, (int, float))}
    best = sorted(oc.items(), key=lambda kv: kv[1])[:6]
    rows = {k: v for k, v in oc.items() if "w2" in k or "w3" in k or "w4" in k}
    print(r["shape"], "own", r.get("own", {}).get("us"), "best", best)
    print("   row loads", sorted(rows.items(), key=lambda kv: kv[1])[:6])
PY
}
# 4. the 16-row prefill graph (10-token TTFT) with row-load configs for all three ops vs the default, 2 rounds
#    (edit RL to the tune's winners first when the tune above says otherwise)
RL="gemm.OWN_CONFIG[('residual'|2)]=(1|8|2|1|0|0|3|1);gemm.OWN_CONFIG[('silu'|2)]=(2|2|2|1|0|2|2)"
RL="$RL;gemm.OWN_CONFIG[('qkv'|2)]=(2|4|2|1|0|1|3)"
fits 120 prefill_ab && { timeout 120 python3 -m scripts.prefill_ab --buckets 16 --reps 20 --rounds 2 \
  --order "tune1,tune1;$RL,tune1,tune1;$RL" --out $L/ab16.json > $L/ab16.log 2>&1; echo "=== ab16 rc $?"
  tail -6 $L/ab16.log | cut -c1-400; }
snap
