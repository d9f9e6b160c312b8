#!/bin/bash
# Sixteenth session, call 1 (nvidia-h200): the GPU tests of e2efd12's review edits (pdl.launch attribute cache, the
# early decode path's single pos read: attention, decode graphs, PDL, engine), then Nsight Compute per-kernel times
# of one eager 7B fp16 prefill step at 16 / 128 / 512 rows (scripts/prefill_kernels.py).
source scripts/device_lib.sh s24a
nvidia-smi -L
t attn 220 -rfE --tb=short -n 4 tests/test_attention_gpu.py tests/test_decode_graph_gpu.py tests/test_pdl_gpu.py \
  tests/test_engine_gpu.py; snap
timeout 240 ncu --profile-from-start off --clock-control none --metrics gpu__time_duration.sum --csv \
  python3 -m scripts.prefill_kernels --rows 16,128,512 > $L/prefill_kernels.csv 2> $L/prefill_kernels.err
echo "=== ncu rc $?"; tail -3 $L/prefill_kernels.err
python3 -m scripts.prefill_kernels --summarize $L/prefill_kernels.csv --rows 16,128,512 --bytes-gb 13.48 \
  > $L/prefill_kernels.json; head -c 2500 $L/prefill_kernels.json; snap
echo "total $(( $(date +%s) - T0 )) s"
