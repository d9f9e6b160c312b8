#!/bin/bash
# Thirtieth session, s38e (nvidia-h200, ~4 min): the RMSNorm row kernels with 4 float4 columns a thread in
# registers (256 threads a 7B row, one wave at 512 rows) against the old 1024-thread blocks: the 7B fp16 prefill
# graphs at 128 / 512 rows from idle with random ids, one process a tree (bis/e7b52c7: the tree before the change),
# then the GPU tests (NumPy float64, the fused fp8 norm's bit equality, prefill norms, engine), then a second round.
# Prepared, not run (the session's device time ran out; the change is on branch rmsnorm-regs, reverted on main):
# run on a tree with it, e.g. `git cherry-pick 66f8ae3`, with bis/e7b52c7 set up as the old tree
# (git archive e7b52c7 cugraphllm kernels setup.cfg + scripts/__init__.py, scripts/prefill_ab.py).
source scripts/device_lib.sh s38e
ab() {  # TREE STEM
  (cd $1 && timeout 80 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 128,512 --reps 10 --rounds 2 \
    --gap-ms 100 --random --order tune1 --out $L/$2.json > $L/$2.log 2>&1)
  echo "=== $2 rc $?: $(grep -E '"prefill_ms"' $L/$2.log | grep -o '"prefill_ms": {[^}]*}')"
}
ab . new1; ab bis/e7b52c7 old1; snap
fits 130 tests && t norm 130 -n 8 -rfE --tb=short tests/test_norm_gpu.py tests/test_fp8_actq_gpu.py tests/test_prefill_norm_gpu.py \
  tests/test_engine_gpu.py; snap
fits 70 new2 && ab . new2; fits 70 old2 && ab bis/e7b52c7 old2; snap
