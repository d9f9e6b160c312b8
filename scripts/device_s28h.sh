#!/bin/bash
# Twentieth session, call h (nvidia-h200): 70B int4 with wo / w2 on the tiles (tile-contiguous; INT4_TILE_SHAPES)
# against the plan of before (half2 there; scripts/plan_bench.py), one process each; then today's defaults on 13B and
# 7B int4 (decode, TTFT) and the tile-contiguous GPU tests
source scripts/device_lib.sh s28h
LIMIT=560
nvidia-smi -L
OLD='mma_shapes=((("qgemv_residual_ss", 5120, 2560), (8, 2, 8)), (("qgemv_residual_ss", 13824, 2560), (8, 2, 8)), (("qgemv_qkv_rope_norm", 8192, 5120), (8, 2, 4)))'
E2E="--backend cuda --modes hybrid --new-tokens 32 --reps 2 --warmup 1 --ttft-reps 5 --no-plot --out $L/bench"
env_bench e2e_70b_new 70b_int4_new 200 CUGRAPHLLM_QG_TILED=1 --preset llama-2-70b --quant int4 --prompt-lens 10,128,500
plan_bench e2e_70b_old 200 int4 "$OLD" $E2E --preset llama-2-70b --quant int4 --prompt-lens 10,128,500
env_bench e2e_70b_new2 70b_int4_new2 200 CUGRAPHLLM_QG_TILED=1 --preset llama-2-70b --quant int4 --prompt-lens 10,128,500
snap
env_bench e2e_13b 13b_int4 75 CUGRAPHLLM_QG_TILED=1 --preset llama-2-13b --quant int4 --prompt-lens 10,128,500
env_bench e2e_7b 7b_int4 60 CUGRAPHLLM_QG_TILED=1 --preset llama-2-7b --quant int4 --prompt-lens 10,128,500
snap
t tiles 150 -rfE --tb=short -n 6 tests/test_quant_tiles_gpu.py tests/test_quant_plan.py; snap
echo "total $(( $(date +%s) - T0 )) s"
