#!/bin/bash
# Run in the twenty-seventh session as s35a (nvidia-h200, 232 s); QG_SZS was removed after it (slower).
# Prepared in the twenty-sixth session:
# CUGRAPHLLM_QG_SZS (int4 cursor tiles of 8 warps: the (scale, zero) pairs of every round after the first staged in
# shared memory by cp.async before the PDL wait): bench_quant's
# int4 wqkv / w13 at 0 / 1 (one process each), the cursor tile tests with it on (bit-identical to the loop without
# cursors, which never stages, and against float64) and the wave configs, then 7B / 13B int4 decode 0 / 1 / 0 / 1.
source scripts/device_lib.sh next_szs
LIMIT=${LIMIT:-400}
for v in 0 1; do
  CUGRAPHLLM_QG_SZS=$v timeout 40 python3 -m scripts.bench_quant --formats int4 --matrices wqkv+norm,w13+norm \
    --out $L/bq_szs_$v.json > $L/bq_szs_$v.log 2>&1
  echo "bench_quant SZS=$v rc $?: $(grep -E ' us ' $L/bq_szs_$v.log | awk '{print $2, $3}' | tr '\n' ' ')"
done; snap
fits 110 szs && CUGRAPHLLM_QG_SZS=1 t szs 110 -rfE --tb=short tests/test_qg_cursor_gpu.py \
  tests/test_int4_tile_waves_gpu.py; snap
for v in 0 1 0 1; do env_bench szs_7b_${v}_$(( $(date +%s) - T0 )) int4_7b_szs_$v 40 CUGRAPHLLM_QG_SZS=$v \
  --preset llama-2-7b --quant int4 --lengths 10,500; done
for v in 0 1; do env_bench szs_13b_$v int4_13b_szs_$v 60 CUGRAPHLLM_QG_SZS=$v --preset llama-2-13b --quant int4 \
  --lengths 10,500; done
snap; echo "total $(( $(date +%s) - T0 )) s"
