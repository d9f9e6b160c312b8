#!/bin/bash
# For the next session (nvidia-h200, < 5 minutes): why the int4 tiles lose on 7B's wo / w2 (tiles (8, 2, 8): wo 7.03
# / w2 16.95 us against the half2 path's 6.01 / 12.28, eleventh session s19c; unroll 1 no slower than 2, so not
# bytes in flight alone). quant_knockout (QG_KO 0 / 1 prologue / 2 products / 4 epilogue / 7 loads only) on int4
# wo+ss and w2+ss under the default plan (half2) and three tile plans through --plan.
source scripts/device_lib.sh tiles_ko
T0=$(date +%s)
ko() {  # tag plan
  timeout 100 python3 -m scripts.quant_knockout --formats int4 --matrices wo+ss,w2+ss --plan "$2" \
    --out $L/ko_$1.json > $L/ko_$1.log 2>&1
  echo "=== $1 ($2) rc $?"; tail -n 3 $L/ko_$1.log
}
ko default ""
ko t8m8 "mma_min_pairs=0,warps=8,ksplit=8"
ko t16m8 "mma_min_pairs=0,warps=16,ksplit=8"
ko t8m4 "mma_min_pairs=0,warps=8,ksplit=4"
tar -czf "$OUT/tiles_ko.tgz" -C /tmp tiles_ko; echo "total $(( $(date +%s) - T0 )) s"
