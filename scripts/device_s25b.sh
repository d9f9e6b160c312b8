#!/bin/bash
# Seventeenth session, call 2 (nvidia-h200): the int4 wgmma probe's mainloop: one or two k-tiles a loop trip (own A
# registers each), without dequantization, without epilogue at one CTA an SM; beside the fp16 TMA probe's mainloop
# on the same shapes. And whether this image has a SASS disassembler.
source scripts/device_lib.sh s25b
nvidia-smi -L; which nvdisasm cuobjdump; ls /usr/local/cuda/bin 2>/dev/null | head; python3 -c "import nvidia, os; print(os.listdir(os.path.dirname(nvidia.__path__[0]) + '/nvidia'))" 2>&1 | tail -1
timeout 300 python3 -m scripts.w4_wgmma_probe --configs bt128:unr1,bt128:unr2,bt128:unr1:nodeq,bt128:unr2:nodeq,bt128:unr1:ko:pad,bt128:unr2:ko:pad,bt128:unr2:nodeq:ko:pad \
  --splits 1 --rows 512,128 --mats wqkv,w2 --out $L/w4_probe.json > $L/w4_probe.log 2>&1
echo "=== probe rc $?"; cut -c1-600 $L/w4_probe.log | tail -12; snap
timeout 120 python3 -m scripts.wgmma_probe --configs tma:2:4:1:1:128,tma:2:4:0:1:128 --splits 1 \
  --shapes 512:12288:4096,512:4096:11008,128:12288:4096 --out $L/fp16_probe.json > $L/fp16_probe.log 2>&1
echo "=== fp16 probe rc $?"; cut -c1-300 $L/fp16_probe.log | tail -8; snap
echo "total $(( $(date +%s) - T0 )) s"
