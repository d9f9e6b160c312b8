#!/bin/bash
# Eighteenth session, call 6 (nvidia-h200): the int4 wgmma prefill kernel with a register-giving producer
# warpgroup (pw1) under ring depth 3, no in-batch overlap and 2 / 4 k-tiles a batch, 7B shapes at 512 rows; one
# process a config, each under its own timeout.
# (Configs with the kb / ovl fields ran on that call's working tree; the probe no longer takes them.)
source scripts/device_lib.sh s26f
nvidia-smi -L
for c in wg3:bt128:pw1:st3 wg3:bt128:pw1:ovl0 wg3:bt128:pw1 wg2:bt128:pw1 wg2:bt128:pw1:kb4 wg2:bt128:st3 wg2:bt128:pw1:kb2:st6; do w4_one $c; done
snap
echo "total $(( $(date +%s) - T0 )) s"
