#!/bin/bash
# Run in the twenty-first session (2026-12-01, benchmarks/results/twentyfirst_2026-12-01/rawx/): slower
# everywhere; QG_RAWX and its test were removed after it. The twentieth session's knockouts put the int4 tiles'
# activation staging at 12.0 us of 13B's 63.6 a layer, and a staging without the |x| max pass and the staging pass at
# 8.4 us less on 13B, 13.7 on 70B (s28l). QG_RAWX (CUGRAPHLLM_QG_RAWX=1) stages x unscaled, in natural order, the
# 16 n products in their own accumulator chain: its GPU tests, then knockouts (ko 0, 1 no prologue; the benches
# give the weights the engine's layout) and 13B / 70B int4 decode, RAWX 1 / 0 one process each. 8-warp tiles
# compile to 80 registers without spills either way; the 16-warp ones (13B / 70B wqkv, w13; 70B wo / w2) spill more
# under it (silu_norm 52 / 48 bytes against 24 / 24, residual_ss 80 / 84 against 44 / 44: nvcc 13.0, ptxas -v).
source scripts/device_lib.sh next_rawx
LIMIT=560
nvidia-smi -L
t rawx 120 -rfE --tb=short -n 6 tests/test_qg_rawx_gpu.py; snap
for m in 13b 70b; do
  for v in 0 1; do
    CUGRAPHLLM_QG_RAWX=$v ko_int4 ko_${m}_r$v 60 $m 0,1
  done
done; snap
for v in 1 0; do
  env_bench e2e_13b_r$v 13b_int4_r$v 75 CUGRAPHLLM_QG_RAWX=$v --preset llama-2-13b --quant int4 --prompt-lens 10,500
done; snap
for v in 1 0; do
  env_bench e2e_70b_r$v 70b_int4_r$v 100 CUGRAPHLLM_QG_RAWX=$v --preset llama-2-70b --quant int4 --prompt-lens 10,128
done; snap
echo "total $(( $(date +%s) - T0 )) s"
