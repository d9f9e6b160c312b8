#!/bin/bash
# Thirtieth session, s38f (nvidia-h200, ~2.5 min; device_s38e.sh cut to what the last minutes of device time hold):
# the RMSNorm row kernels' GPU tests first (NumPy float64, the fused fp8 norm's bit equality, prefill norms), then
# one A/B round of the 7B fp16 prefill graphs at 128 / 512 rows from idle, random ids (new tree, then bis/e7b52c7).
# Prepared, not run (the session's device time ran out; the change is on branch rmsnorm-regs, reverted on main):
# run on a tree with it, e.g. `git cherry-pick 66f8ae3`, with bis/e7b52c7 set up as the old tree
# (git archive e7b52c7 cugraphllm kernels setup.cfg + scripts/__init__.py, scripts/prefill_ab.py).
source scripts/device_lib.sh s38f
t norm 90 -n 8 -rfE --tb=short tests/test_norm_gpu.py tests/test_fp8_actq_gpu.py tests/test_prefill_norm_gpu.py; snap
ab() {  # TREE STEM
  (cd $1 && timeout 60 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 128,512 --reps 10 --rounds 2 \
    --gap-ms 100 --random --order tune1 --out $L/$2.json > $L/$2.log 2>&1)
  echo "=== $2 rc $?: $(grep -E '"prefill_ms"' $L/$2.log | grep -o '"prefill_ms": {[^}]*}')"
}
fits 60 new1 && ab . new1; snap; fits 60 old1 && ab bis/e7b52c7 old1; snap
