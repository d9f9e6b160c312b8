#!/bin/bash
# One nvidia-h200 call: the HTTP TTFT overhead of the 2026-12 request path (stream headers os.write()n by the loop,
# body read from receive, lighter job; the bench's own blocking-socket client) against the old path (legacy, which
# also sends the headers through uvicorn) and the old client (default+httpclient), with one ordering candidate
# (releasefirst: the job released just before the headers' write, which now lets the GIL go), all servers up at
# once and every prompt timed through each side in a random order (--interleave: one 7B dummy model per server).
# Not run yet: the server start-up (dummy weights, graphs) sets the time.
source scripts/device_lib.sh http2
T=.device/shared/models/llama2-tokenizer/tokenizer.model
B="python3 -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --prompt-lens 10,500 --tokenizer $T"
timeout 540 $B --new-tokens 16 --reps 30 --warmup 3 --interleave \
  --variants default,default+httpclient,releasefirst,legacy --out "$OUT/server_7b_ab2.json" > "$OUT/server_7b_ab2.log" 2>&1
echo "exit $?"; grep -E "TTFT (median|less)|server side" "$OUT/server_7b_ab2.log"
