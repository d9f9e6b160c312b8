#!/bin/bash
# Twenty-sixth session, call d (nvidia-h200, ~4 min): Nsight Compute over today's 7B decode GEMVs (scripts/ncu_decode.py,
# eager launches, so no PDL overlap): int4 (wqkv / w13 on the cursor tiles, wo / w2 on the half2 path) and fp16,
# with the warp-state, scheduler, occupancy and speed-of-light sections plus the SASS source counters of the int4
# ones, as a report (ncu -i reads it) and as raw CSV: what bounds the int4 GEMVs that s34a found indifferent to L2
# (issue, a stall reason, occupancy). ncu leaves the clocks alone (--clock-control none, METHOD.md).
source scripts/device_lib.sh s34d
which ncu >/dev/null || export PATH=$PATH:/opt/nvidia/nsight-compute/2025.3.1:/usr/local/cuda/bin
S="--section SpeedOfLight --section WarpStateStats --section SchedulerStats --section Occupancy --section LaunchStats"
M="--matrices wqkv+norm,wo+ss,w13+norm,w2+ss --reps 2"
timeout 200 ncu --clock-control none -k regex:qgemv_ --launch-count 8 $S --section SourceCounters -o $L/int4 -f \
  python3 -m scripts.ncu_decode --format int4 $M > $L/ncu_int4_run.log 2>&1
echo "[ncu int4 rc $? at $(( $(date +%s) - T0 )) s]"; tail -3 $L/ncu_int4_run.log; snap
timeout 100 ncu --clock-control none -k regex:gemv_ --launch-count 8 $S -o $L/fp16 -f \
  python3 -m scripts.ncu_decode --format fp16 $M > $L/ncu_fp16_run.log 2>&1
echo "[ncu fp16 rc $? at $(( $(date +%s) - T0 )) s]"; tail -3 $L/ncu_fp16_run.log
for r in int4 fp16; do
  ncu -i $L/$r.ncu-rep --page raw --csv > $L/${r}_raw.csv 2> $L/${r}_raw.err
  ncu -i $L/$r.ncu-rep --page details > $L/${r}_details.txt 2>&1
  grep -E "qgemv|gemv_|Duration|Issue Slots Busy|Warp Cycles Per Issued|Achieved Occupancy|Registers Per|DRAM Throughput" \
    $L/${r}_details.txt | head -60
done
ncu -i $L/int4.ncu-rep --page source --csv --print-source sass > $L/int4_sass.csv 2> $L/int4_src.err
gzip -f $L/int4_sass.csv; snap; echo "total $(( $(date +%s) - T0 )) s"
