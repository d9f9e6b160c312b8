#!/bin/bash
# Twenty-fourth session, call g (nvidia-h200): persist_probe's producer stream alone (KO 7) at one to three blocks an
# SM and several chunk sizes, beside plain register reads of the same bytes in the same pattern (regstream), and the
# best full variant (s32f: stream with stagings 40 us a layer, nt512 with products 62.6).
source scripts/device_lib.sh s32g
LIMIT=240
nvidia-smi -L
persist 200 bare,bare_t4,bare_s8,bare_x2,bare_x3,reg256,reg512,reg1024,reg512x2,reg256u16,stream,nt512,bare
echo "total $(( $(date +%s) - T0 )) s"
