#!/bin/bash
# Eighteenth session, call 5 (nvidia-h200): the int4 wgmma prefill kernel (group values loaded when the group
# changes) under 2 / 3 / 4 consumer warpgroups, 4 with a producer warpgroup giving its registers away (112 a consumer
# thread), 7B shapes at 512 rows; one process a config, each under its own timeout (a hang costs one minute).
# (Configs with the kb / ovl fields ran on that call's working tree; the probe no longer takes them.)
source scripts/device_lib.sh s26e
nvidia-smi -L
for c in wg2:bt128 wg3:bt128 wg4:bt128:pw1 wg4:bt128:pw1:ovl0 wg4:bt64:pw1 wg3:bt128:pw1; do w4_one $c; done
snap
echo "total $(( $(date +%s) - T0 )) s"
