#!/bin/bash
# For the next session (thirteenth session's follow-up; two calls, ~12 device minutes in all).
# KIND=x2 (nvidia-h200-x2, < 6 min): int8 now takes the pipelined row-pair loop (QuantPlan pipe=1), measured on one
#   GPU only: the two-GPU tests (tests/test_tp_gpu.py, int8 packed TP2 logits among them) and 7B int8 --tp 2
#   decode with pipe 1 / 0 / 1 / 0, one process each.
# KIND=tiles7b (nvidia-h200, < 5 min): 7B int4 decode with other tile configs (warps, unroll, warps a tile) for
#   wqkv (768 tiles; wave rule: 8, 2, 4) and w13 (1376 tiles; 8, 2, 2), chosen from isolated sweeps so far.
# KIND=one (nvidia-h200, < 8 min): scripts/boundary_probe.py first (what kernel boundaries cost a stream of weight
#   reads, with and without PDL: fp8's GEMVs sit 7.4 us a layer above four linear reads of their bytes, and no
#   in-kernel path probed closed it), then the decode step under plan variants on 13B (the isolated GEMV sweeps have not
#   predicted the step; the thirteenth session's 7B scan found int8's pipe this way): int8 pipe 1 / 0, fp8 and
#   int4 variants, one process each, the default first and last.
source scripts/device_lib.sh plans2
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench"
if [ "${KIND:-one}" = x2 ]; then
  nvidia-smi -L
  t tp 220 -rfE --tb=short tests/test_tp_gpu.py; snap
  for v in "pipe=1" "pipe=0" "pipe=1" "pipe=0"; do e2e_ab int8 "$v" 60 llama-2-7b 128,500 "--tp 2"; done; snap
elif [ "${KIND:-one}" = tiles7b ]; then
  shape() { echo "mma_shapes=g.INT4_TILE_SHAPES + (((\"$1\", 4096, $2), ($3)),)"; }
  e2e_ab int4 "hacc=1" 60 llama-2-7b 10,500
  for c in "8, 2, 8" "16, 2, 4" "16, 2, 8" "8, 1, 4"; do e2e_ab int4 "$(shape qgemv_qkv_rope_norm 6144 "$c")" 40 llama-2-7b 10; done
  for c in "8, 2, 4" "16, 2, 2" "16, 2, 4" "8, 1, 2"; do e2e_ab int4 "$(shape qgemv_silu_norm 11008 "$c")" 40 llama-2-7b 10; done
  e2e_ab int4 "hacc=1" 60 llama-2-7b 10,500; snap
else
  timeout 120 python3 -m scripts.boundary_probe --out $L/boundary.json > $L/boundary.log 2>&1
  echo "=== boundary rc $?"; cat $L/boundary.log | tail -14; snap
  for v in "pipe=1" "pipe=0" "pipe=1"; do e2e_ab int8 "$v" 60 llama-2-13b 10,500; done; snap
  for v in "pipe=1" "hacc=1" "warps=8" "pipe=1"; do e2e_ab fp8 "$v" 60 llama-2-13b 10; done; snap
  for v in "hacc=1" "mma_waves=0" "mma_min_pairs=0" "unroll=1" "hacc=1"; do e2e_ab int4 "$v" 60 llama-2-13b 10; done; snap
fi
echo "total $(( $(date +%s) - T0 )) s"
