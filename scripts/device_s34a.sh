#!/bin/bash
# Twenty-sixth session, first call (nvidia-h200, ~8 min): l2_probe (are the 7B decode GEMVs faster with their weights
# in L2? cold vs hot per format), then device_next_attn.sh's tests: the decode attention as committed in the
# twenty-fifth session against the float64 reference, and the engine tests, one pytest at a time.
source scripts/device_lib.sh s34a
LIMIT=${LIMIT:-560}
nvidia-smi -L
timeout 200 python3 -m scripts.l2_probe --out $L/l2_probe.json > $L/l2_probe.log 2>&1; echo "l2_probe rc $?"
grep -E "cold|Error|Traceback" $L/l2_probe.log | head -24; snap
t attn 150 -rfE --tb=short tests/test_attention_gpu.py; snap
fits 150 engine && t engine 150 -rfE --tb=short tests/test_engine_gpu.py tests/test_decode_graph_gpu.py tests/test_pdl_gpu.py
snap; echo "total $(( $(date +%s) - T0 )) s"
