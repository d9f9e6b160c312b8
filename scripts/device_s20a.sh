#!/bin/bash
# Twelfth session (2026-11-30), nvidia-h200, < 9 minutes: the bulk-copy tiles (QuantPlan.bulk, off by default;
# kernels/gemv_quant_bulk.cuh). 1) tests/test_quant_bulk_gpu.py (every format, 5 configs, rings of 1-3 stages);
# 2) bench_quant --sweep bulk on the 7B int4 GEMVs (default plan first: the A/B of the same call); 3) 7B int4
# decode at prompt 10 / 500 with bulk 1 / 0 / 0 / 1, one process each.
# It ran as committed at 60bd616 (one bulk copy a row and stage of 4-16 tile iterations); the bulk-copy tiles were
# removed after the twelfth session's calls (slower on every matrix, their loads alone slower than the register
# loop's: results in benchmarks/results/twelfth_2026-11-30/, index in benchmarks/results/README.md), so it cannot run
# here:
#   git show 60bd616:scripts/device_s20a.sh
echo "device_s20a.sh: the bulk tiles it measures are gone; it ran at 60bd616" >&2
exit 2
