#!/bin/bash
# Thirty-second session, s40g (nvidia-h200, ~3 min): the prefill attention's split entry with the plain block's code
# where one range covers the keys. GPU tests of the prefill attention, then the kernel alone (16 / 64 / 128 / 512
# rows from positions 0 / 300 / 1024 / 1852) here, here with CUGRAPHLLM_PREFILL_SPLIT=0 and in TREE (argument 1, the
# commit before), then chat-turn TTFT here and in TREE.
source scripts/device_lib.sh s40g
LIMIT=${LIMIT:-230}
t prefill 90 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py; snap
attn_prefill_ab . attn_new 45; CUGRAPHLLM_PREFILL_SPLIT=0 attn_prefill_ab . attn_cap0 45; attn_prefill_ab $1 attn_old 45
snap; turn_ab . turn_new 45; turn_ab $1 turn_old 45; snap
