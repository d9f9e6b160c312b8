#!/bin/bash
# RECORD: the pipe knob was removed after these runs (no end-to-end gain); its code and tests are at commit 2dce258.
# Fourteenth session, call 9 (nvidia-h200, < 8 min): the pipelined decode attention walk (DECODE_KNOBS pipe,
# decode_kernels.py pipe_steps: the next key step's loads before this step's math). Its GPU tests, then
# bench_attention (every bucket: default, VARIANTS incl. pipe2 / pipe4 / pipe8), then 7B fp16 decode at prompt 500
# and 3900 with pipe 1 + unroll 4 against the default, one process each, alternating.
source scripts/device_lib.sh s22i
LIMIT=${LIMIT:-540}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
nvidia-smi -L
t attn 150 -rfE --tb=short tests/test_attention_gpu.py -k "pipe"; snap
timeout 150 python3 -m scripts.bench_attention --out $L/attention.json > $L/attention.log 2>&1; echo "=== bench_attention rc $?"
python3 - $L/attention.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["decode"]:
    print(r["length"], "default %.2f" % r["bucket_us"], " ".join("%s %.2f" % (k[2:-3], r[k]) for k in r if k.startswith("v_pipe")))
PY
snap
for v in "0:-" "0:pipe=1,unroll=4" "0:-" "0:pipe=1,unroll=4"; do
  attn_bench p500_$(( $(date +%s) - T0 )) 45 ${v%%:*} ${v#*:} $E2E --preset llama-2-7b --lengths 500; done
for v in "0:-" "0:pipe=1,unroll=4"; do
  attn_bench p3900_$(( $(date +%s) - T0 )) 70 ${v%%:*} ${v#*:} $E2E --preset llama-2-7b --lengths 3900; done; snap
echo "total $(( $(date +%s) - T0 )) s"
