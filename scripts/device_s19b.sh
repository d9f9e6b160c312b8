#!/bin/bash
# Eleventh session, second call (nvidia-h200, < 9 minutes): the row-pair drivers' knockout profile
# (device_quant_knockout.sh: fp8 / int8 / int4 on the 7B layer matrices, quiet GPU), then the fp8 W8A8 prefill
# against its NumPy reference (device_w8a8_ref.sh). Each writes its own tar into $OUT.
T0=$(date +%s)
bash scripts/device_quant_knockout.sh
echo "=== knockout done at $(( $(date +%s) - T0 )) s"
bash scripts/device_w8a8_ref.sh
echo "=== all done at $(( $(date +%s) - T0 )) s"
