#!/bin/bash
# Twelfth session (2026-11-30), nvidia-h200, < 9 minutes: the bulk-copy tiles with whole-row stages (s20a's
# row-slice stages ran at ~1 TB/s: one copy a row a stage). 1) tests/test_quant_bulk_gpu.py; 2) bench_quant
# --sweep bulk on the 7B int4 and fp8 GEMVs (default plan first: the A/B of the same call); 3) 7B int4 decode at
# prompt 10 / 500 with bulk 1 / 0, one process each.
# It ran as committed at 6b4c79e (stages of whole rows, one or two copies a stage); the bulk-copy tiles were removed
# after the twelfth session's calls (slower on every matrix, their loads alone slower than the register loop's:
# results in benchmarks/results/twelfth_2026-11-30/, index in benchmarks/results/README.md), so it cannot run here:
#   git show 6b4c79e:scripts/device_s20b.sh
echo "device_s20b.sh: the bulk tiles it measures are gone; it ran at 6b4c79e" >&2
exit 2
