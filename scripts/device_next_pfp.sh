#!/bin/bash
# Twelfth session's prepared call, run first in the thirteenth (2026-11-30), nvidia-h200, < 9 minutes: L2 prefetch
# before the PDL wait only (QuantPlan.pfp / pfp_last, QG_PFP / QG_PFP_LAST, off by default). 1) its GPU tests
# (tests/test_quant_pfp_gpu.py); 2) bench_quant --sweep pfp for fp8 / int8; 3) 7B fp8 / int8 decode A/B.
# It ran as committed at f69c1d5; pfp was slower end to end (7B fp8 2.10 / 2.23 at pfp 0, 2.30 / 2.43 at 2,
# 2.35 / 2.49 with evict_last; benchmarks/results/thirteenth_2026-11-30/pfp/) and was removed after, so it cannot
# run here:
#   git show f69c1d5:scripts/device_next_pfp.sh
echo "device_next_pfp.sh: the pfp prefetch it measures is gone; it ran at f69c1d5" >&2
exit 2
