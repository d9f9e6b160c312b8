#!/bin/bash
# For the next session (nvidia-h200, < 8 minutes): L2 prefetch before the PDL wait only (QuantPlan.pfp, QG_PFP;
# branch pfp, off by default, PTX of every default module unchanged). The quantized GEMVs' prologue (activation and
# norm staging after the PDL wait) costs 0.8-2.1 us a matrix with the weight stream stalled (eleventh session
# knockouts; fp8 ~5.5 us a layer, its 1.95 ms target 4.4 us a layer away). 1) tests/test_quant_pfp_gpu.py (pfp 0
# vs 2 bit-identical, every format, with the evict_last hint too); 2) bench_quant --sweep pfp (pfp 1 / 2 / 4, with
# and without the evict_last hint, per 7B matrix, the default plan first) for fp8 and int8; 3) 7B fp8 decode with
# pfp 0 / 2 / 2 + evict_last / 0 and int8 with 0 / 2 + evict_last, one process each (int4: a later call).
source scripts/device_lib.sh pfp
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench"
ab() {  # fmt fields secs
  fits $3 "e2e $1 $2" || return
  plan_bench e2e_7b_$1_$(( $(date +%s) - T0 )) $3 $1 "$2" $E2E --preset llama-2-7b --quant $1 --lengths 10,500
}
t pfp_tests 120 -n 8 -rfE --tb=short tests/test_quant_pfp_gpu.py; snap
for f in fp8 int8; do
  fits 100 "sweep $f" || break
  timeout 100 python3 -m scripts.bench_quant --formats $f --sweep pfp --no-table --out $L/bench/sweep_pfp_$f.json \
    > $L/sweep_$f.log 2>&1; echo "=== sweep $f rc $?"; grep "^sweep" $L/sweep_$f.log | sed 's/^sweep //'; snap
done
for v in "pfp=0" "pfp=2" "pfp=2, pfp_last=1" "pfp=0"; do ab fp8 "$v" 45; done; snap
for v in "pfp=0" "pfp=2, pfp_last=1"; do ab int8 "$v" 45; done; snap
echo "total $(( $(date +%s) - T0 )) s"
