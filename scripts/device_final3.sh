#!/bin/bash
# The last nvidia-h200-x2 call of 2026-11-30 (third session), about 6 minutes. Phase 1, one GPU each: GPU 0 runs
# the engine + PDL tests, the decode attention tests (now a PDL launch) and the fp8 GEMV tests on its default
# fp32-product path (shared helpers of d92008e); GPU 1 measures the HTTP overhead (server path of this session
# against the previous one, interleaved) and 7B fp16 decode with PDL off / on. Phase 2, both GPUs: the custom
# all-reduce and tensor-parallel tests (their kernels are PDL launches now) and 7B TP2 decode.
source scripts/device_lib.sh final3
( export CUDA_VISIBLE_DEVICES=0
  t engine 80 tests/test_engine_gpu.py tests/test_pdl_gpu.py
  t attention 40 tests/test_attention_gpu.py -k "bucket_edges and (7b or stories) or decode_graph_capture or n_split"
  t quant_f32_fp8 100 tests/test_quant_gpu.py -k "f32acc and fp8"
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  timeout 130 python3 -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --prompt-lens 10,500 \
    --tokenizer .device/shared/models/llama2-tokenizer/tokenizer.model --new-tokens 16 --reps 10 --warmup 3 \
    --interleave --variants default,legacy --out $L/bench/server_7b_ab.json > $L/server.log 2>&1
  echo "server exit $?"; grep -E "TTFT (median|less)|server side|overhead" $L/server.log | head -12
  for P in 0 1; do
    CUGRAPHLLM_PDL=$P timeout 35 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid \
      --prompt-lens 10,500 --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --out $L/bench \
      --stem e2e_fp16_pdl$P --no-plot > $L/e2e_fp16_$P.log 2>&1
    echo "fp16 pdl=$P"; grep -E "^\| cugraphllm-hybrid \| (10|500) \| 64" $L/e2e_fp16_$P.log
  done
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt
tar -czf "$OUT/final3.tgz" -C /tmp final3   # again at the end: what phase 1 measured survives a cut-off
t allreduce 40 tests/test_allreduce_gpu.py
t tp 60 tests/test_tp_gpu.py -k "greedy_equals_tp1 or within"
timeout 40 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --tp 2 --modes hybrid --prompt-lens 128 \
  --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --out $L/bench --stem tp2_7b --no-plot > $L/tp2.log 2>&1
echo "7B TP2:"; grep -E "^\| cugraphllm-hybrid \| 128|collectives" $L/tp2.log | head -4
tar -czf "$OUT/final3.tgz" -C /tmp final3
