#!/bin/bash
# Knockout profile of the quantized decode GEMVs' drivers (nvidia-h200, < 4 minutes, quiet GPU):
# scripts/quant_knockout.py for fp8, int8 and int4 on the four 7B layer matrices (wqkv+norm, wo+ss, w13+norm, w2+ss),
# QG_KO 0, 1, 2, 4, 7, each row beside the bare read of the same packed bytes; its 45 modules compiled first by 8
# processes. The JSON, the log and its table come back in $OUT/qko.tgz (the JSON also as $OUT/quant_knockout.json).
source scripts/device_lib.sh qko
T0=$(date +%s)
timeout -k 10 200 python3 -m scripts.quant_knockout --jobs 8 --out $L/quant_knockout.json > $L/ko.log 2>&1
echo "=== quant_knockout rc $? at $(( $(date +%s) - T0 )) s"
tail -n 16 $L/ko.log
cp $L/quant_knockout.json "$OUT/" 2>/dev/null
tar -czf "$OUT/qko.tgz" -C /tmp qko
