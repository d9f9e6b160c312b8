#!/bin/bash
# Eighteenth session, call 7 (nvidia-h200): the int4 wgmma prefill kernel on 256-token tiles (m64n256k16: each
# dequantized fragment feeds twice the tokens), against 128-token tiles, with the no-wgmma variant (pr2) of each;
# 7B shapes at 512 rows, one process a config, each under its own timeout.
source scripts/device_lib.sh s26g
nvidia-smi -L
for c in wg2:bt256:pw1 wg2:bt256:pw1:st3 wg2:bt256:pw1:pr2 wg2:bt128:pw1:pr2 wg3:bt128:pw1 wg2:bt128:pw1; do w4_one $c; done
snap
echo "total $(( $(date +%s) - T0 )) s"
