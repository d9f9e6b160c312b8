#!/bin/bash
# Twenty-sixth session, call f (nvidia-h200, ~3 min): what the int4 cursor tiles' scale / zero loads cost (QG_KO 128,
# bench only: the loop without them, the products unchanged), beside the whole kernel (0) and no products (2):
# quant_knockout on the 7B int4 GEMVs (wqkv / w13 on tiles; wo / w2 are the half2 path, where bit 128 does nothing).
# Nsight (s34d) put 10.5% of w13's stall samples on the first use of a scale.
source scripts/device_lib.sh s34f
LIMIT=${LIMIT:-240}
nvidia-smi -L
ko_int4 ko7b 200 7b 0,128,2 --matrices wqkv+norm,w13+norm
snap; echo "total $(( $(date +%s) - T0 )) s"
