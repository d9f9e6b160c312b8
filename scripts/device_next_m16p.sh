#!/bin/bash
# Prepared in the thirty-sixth session (its device time was spent), for the next session with device time (~1 min):
# scripts/m16_probe.py's persistent variant (m16_persist: a few blocks an SM, each streaming its 16-row tiles one
# after the other through one ring that runs on across tile boundaries), beside the per-tile tensor-map blocks, the
# engine's own 16-row kernel and a bare read, whole and as the bare stream (xc knockouts): the probe's default configs.
# and its stream-K form (m16_sk: equal ranges of (tile, stage) pairs, cut tiles finished in fixed order). s44b_cko
# found per-tile blocks 11-17% under the bare read even with nothing to compute; if the persistent / stream-K stream
# reaches the read, a 16-row GEMM built that way is worth building for #13's TTFT at 10 tokens (the float64 check
# runs first for every config). Results in $OUT/next_m16p.tgz.
bash scripts/device_s44b.sh next_m16p
