#!/bin/bash
# RECORD: run at 691489a; QG_ACC2 was slower (s34c) and was removed with these results (d776cec).
# Twenty-sixth session, call c (nvidia-h200, ~8 min): the decode attention plans as now committed (early loads on
# buckets of <= 128 keys too, 13B back to 7 splits at 4096 keys) against the float64 reference and through the
# engine; then CUGRAPHLLM_QG_ACC2 (int4 tiles: an iteration's mma chain in two accumulators): its tile GPU tests
# (the cursor file's float64 and bit-identity cases, the wave configs) with the switch on, bench_quant's int4 tile
# GEMVs 0 / 1 / 0 / 1 (one process each), 7B int4 decode 0 / 1 / 0 / 1 and 13B int4 0 / 1 (one process each).
source scripts/device_lib.sh s34c
LIMIT=${LIMIT:-570}
nvidia-smi -L
t attn 150 -rfE --tb=short tests/test_attention_gpu.py; snap
t engine 120 -rfE --tb=short tests/test_engine_gpu.py tests/test_decode_graph_gpu.py; snap
CUGRAPHLLM_QG_ACC2=1 t acc2 100 -rfE --tb=short tests/test_qg_cursor_gpu.py tests/test_int4_tile_waves_gpu.py; snap
for v in 0 1 0 1; do
  CUGRAPHLLM_QG_ACC2=$v timeout 60 python3 -m scripts.bench_quant --formats int4 \
    --matrices wqkv+norm,w13+norm,logits+norm --quant-head --out $L/bq_acc2_${v}_$(( $(date +%s) - T0 )).json \
    > $L/bq_acc2_$v.log 2>&1; echo "bench_quant ACC2=$v rc $?: $(grep -E ' us ' $L/bq_acc2_$v.log | awk '{print $2, $3}' | tr '\n' ' ')"
done; snap
for v in 0 1 0 1; do env_bench acc2_7b_${v}_$(( $(date +%s) - T0 )) int4_7b_acc2_$v 60 CUGRAPHLLM_QG_ACC2=$v \
  --preset llama-2-7b --quant int4 --lengths 10,500; done; snap
for v in 0 1; do env_bench acc2_13b_$v int4_13b_acc2_$v 80 CUGRAPHLLM_QG_ACC2=$v --preset llama-2-13b --quant int4 \
  --lengths 10,500; done
snap; echo "total $(( $(date +%s) - T0 )) s"
