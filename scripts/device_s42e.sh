#!/bin/bash
# Thirty-fourth session, call s42e (nvidia-h200, ~2.5 min: the session's last device time). bis/fold = HEAD with the
# plain prefill attention's query tiles in folded order (heaviest first for the first half of the grid's rows, then
# the rest ascending, so that in a one-wave grid, e.g. 512 rows = 256 blocks on 264 slots, an SM's two blocks pair a
# heavy tile with a light one) against HEAD: the kernel alone; fold's prefill attention GPU tests; the final tree's
# prefill attention + engine GPU tests.
source scripts/device_lib.sh s42e
LIMIT=${LIMIT:-150}
attn_prefill_ab . attn_head 45; attn_prefill_ab bis/fold attn_fold 45; snap
(cd bis/fold && cp -r ../../tests . && t fold_tests 40 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py; \
  rm -rf tests); snap
fits 60 prefill && t prefill 60 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py tests/test_engine_gpu.py; snap
