#!/bin/bash
# One nvidia-h200 call (2026-11-30, fifth session): the HTTP TTFT overhead with a stream's headers written by the
# engine thread together with the first chunk (default), against the previous order (loophead: headers by the
# loop before the prefill) and early (the job released as soon as it is queued), all servers up at once and
# every prompt through each side in a random order; 60 timed requests a length. Then the decode GEMVs of the
# 13B and 70B shapes (fp16 and int4) and 13B int4 end to end, to place the 13B int4 figure of the first session.
source scripts/device_lib.sh http3
T=.device/shared/models/llama2-tokenizer/tokenizer.model
timeout 300 python3 -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --prompt-lens 10,500 --tokenizer $T \
  --new-tokens 16 --reps 60 --warmup 5 --interleave --variants default,loophead,early \
  --out "$L/bench/server_7b_ab3.json" > "$L/server_7b_ab3.log" 2>&1
echo "=== bench_server exit $?"; grep -E "TTFT (median|less)|server side" "$L/server_7b_ab3.log"
for p in llama-2-13b llama-2-70b; do
  timeout 100 python3 -m scripts.bench_quant --preset $p --formats fp16,int4 --out "$L/bench/quant_gemv_$p.json" \
    > "$L/quant_$p.log" 2>&1; echo "=== bench_quant $p exit $?"; grep -E "us|GEMVs" "$L/quant_$p.log" | head -14
done
timeout 100 python3 -m cugraphllm bench --backend cuda --preset llama-2-13b --quant int4 --modes hybrid \
  --prompt-lens 10,500 --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out "$L/bench" --stem one_13b_int4 \
  > "$L/one_13b_int4.log" 2>&1; echo "=== 13b int4 exit $?"; grep -E "^\| cugraphllm-hybrid \| (10|500) \| 64" "$L/one_13b_int4.log"
tar -czf "$OUT/http3.tgz" -C /tmp http3
