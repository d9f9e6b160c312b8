#!/bin/bash
# Thirty-first session, s39f (nvidia-h200, ~4 min): the key split as its own entry (attention_prefill_split, ranges
# of >= 8 key tiles; the plain kernel as before for every other launch) against the tree before (bis/d924c8e, set
# up as in device_s39e.sh): its GPU tests first, then the kernel alone and the chat-turn TTFT, one process a tree.
LIMIT=${LIMIT:-330}
source scripts/device_lib.sh s39f
O=bis/d924c8e
t tests 80 -n 8 -rfE --tb=short tests/test_attention_prefill_gpu.py; snap
attn_prefill_ab . attn_new 40; attn_prefill_ab $O attn_old 40; snap
turn_ab $O turn_old_r1 60; turn_ab . turn_new_r1 60; turn_ab $O turn_old_r2 60; turn_ab . turn_new_r2 60; snap
