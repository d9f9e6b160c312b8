#!/bin/bash
# Sourced by the scripts/device_*.sh calls of 2026-11-30 (third session) on: the carried wheels, the environment,
# the log folder L (argument 1, under /tmp) and t NAME SECONDS PYTEST_ARGS..., one pytest run logged to $L/NAME.log
# with its summary line and failures echoed; its JUnit XML goes to $L/NAME.xml, written also when the timeout's SIGINT
# cuts the run (scripts/suite_rest.py lists the tests it did not reach).
set -u
bash .device/prep.sh && export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --target /tmp/site .device/whl/*.whl 2>/dev/null
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 CUGRAPHLLM_SHARED=$PWD/.device/shared
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # NVLink multicast off
OUT=${OUT:-/tmp/out}; L=/tmp/$1; mkdir -p "$OUT" "$L/bench"
t() { local n=$1 s=$2; shift 2; timeout -s INT -k 30 "$s" python3 -m pytest -q -m "gpu and not big" -p no:cacheprovider \
        --junitxml="$L/$n.xml" "$@" > "$L/$n.log" 2>&1
      echo "=== $n: $(tail -n 1 "$L/$n.log")"; grep -E "^(FAILED|ERROR)" "$L/$n.log" | head -12; }
# The run's clock and tarball: snap (tar $L into $OUT/NAME.tgz, print the time so far) and fits SECS WHAT (false,
# with a line, when SECS more would pass LIMIT seconds; LIMIT 520 unless the script sets it).
NAME=$1; T0=$(date +%s)
snap() { tar -czf "$OUT/$NAME.tgz" -C /tmp "$NAME"; echo "[at $(( $(date +%s) - T0 )) s]"; }
fits() { [ $(( $(date +%s) - T0 + $1 )) -le "${LIMIT:-520}" ] || { echo "=== skipped ($2): would pass ${LIMIT:-520} s"; false; }; }
# tpot RC STEM WHAT: one line with a bench log's hybrid rows (prompt | TPOT ms), then its first errors if any
tpot() {
  echo "=== $2 ($3) rc $1: TPOT $(grep -E '^\| cugraphllm-hybrid(-tp[0-9]+)? \| [0-9]+ \| [0-9]+ \|' "$L/$2.log" \
    | cut -d'|' -f3,7 | tr '\n' ' ')"
  grep -E "Error|Traceback" "$L/$2.log" | head -3
}
# plan_bench STEM SECS FMT FIELDS BENCH_ARGS..: one `cugraphllm bench` process with QUANT_PLANS[FMT]'s FIELDS
# (Python keywords, e.g. "pipe=1") replaced (scripts/plan_bench.py quant), logged to $L/STEM.log (--stem STEM);
# echoes its hybrid rows' TPOT.
plan_bench() {
  local stem=$1 secs=$2 fmt=$3 fields=$4
  shift 4
  timeout "$secs" python3 -m scripts.plan_bench quant "$fmt" "$fields" "$@" --stem "$stem" > "$L/$stem.log" 2>&1
  tpot $? "$stem" "$fields"
}
# e2e_ab FMT FIELDS SECS PRESET LENGTHS [EXTRA]: plan_bench of `bench $E2E` (E2E set by the script) on one preset,
# stem e2e_<model>_<fmt>_<seconds so far>; skipped, with a line, where it would pass LIMIT
e2e_ab() {
  fits $3 "e2e $4 $1 $2" || return
  plan_bench e2e_${4#llama-2-}_$1_$(( $(date +%s) - T0 )) $3 $1 "$2" $E2E --preset $4 --quant $1 --lengths $5 ${6:-}
}
# attn_bench STEM SECS BPS KNOBS BENCH_ARGS..: one `bench` process with the decode attention plan's knobs replaced
# (scripts/plan_bench.py attn), logged to $L/STEM.log; echoes its hybrid rows' TPOT
attn_bench() {
  local stem=$1 secs=$2; shift 2
  fits $secs "$stem" || return
  timeout $secs python3 -m scripts.plan_bench attn "$@" --stem $stem > $L/$stem.log 2>&1
  tpot $? "$stem" "$1 $2"
}
# env_bench LOG STEM SECS VAR=VALUE BENCH_ARGS..: one `cugraphllm bench` process (hybrid, 32 new tokens, 5 TTFT
# samples, JSON under $L/bench as STEM_<seconds so far>) under one environment setting, logged to $L/LOG.log;
# skipped, with a line, where it would pass LIMIT; echoes its hybrid rows (prompt | TTFT | p90 | TPOT), first errors
env_bench() {
  local log=$1 stem=$2 secs=$3 setting=$4; shift 4
  fits "$secs" "$log" || return
  env "$setting" timeout "$secs" python3 -m cugraphllm bench --backend cuda --modes hybrid --new-tokens 32 --reps 2 \
    --warmup 1 --ttft-reps 5 --no-plot --out $L/bench --stem ${stem}_$(( $(date +%s) - T0 )) "$@" > $L/$log.log 2>&1
  echo "=== $log ($setting) rc $?"
  bench_rows $L/$log.log
}
# bench_rows LOG: a bench log's hybrid rows on one line (prompt | TTFT | p90 | TPOT), then its first errors
bench_rows() {
  grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| [0-9]+' "$1" | cut -d'|' -f3,5,6,7 | tr '\n' ' '; echo
  grep -E "Error|Traceback" "$1" | head -3
}
# w4_one CONFIG: scripts/w4_wgmma_probe.py on one config in its own process (7B shapes at 512 rows, unsplit, 75 s:
# a hang costs one process), logged to $L/w4_<CONFIG, ':' as '-'>.log / .json; echoes each shape's time
w4_one() {
  local c=$1 f=$L/w4_${1//:/-}
  timeout 75 python3 -m scripts.w4_wgmma_probe --rows 512 --splits 1 --out $f.json --configs $c > $f.log 2>&1
  echo "=== $c rc $?: $(grep -h -E 'config|error' $f.log | head -2 | tr '\n' ' ')"
  grep -h '"mat"' $f.log | python3 -c "import sys, json; [print('   ', (r := json.loads(l))['mat'], 'fp16',
    r['fp16_cublas_us'], '$c', r['${c}_s1_us']) for l in sys.stdin]"
}
# ko_int4 LOG SECS PRESET KOS [QUANT_KNOCKOUT_ARGS..]: one scripts/quant_knockout process (int4, 14 compile jobs) on
# llama-2-PRESET, logged to $L/LOG.log / .json; skipped, with a line, where it would pass LIMIT; echoes its exit
# status and table
ko_int4() {
  local log=$1 secs=$2 preset=$3 kos=$4; shift 4
  fits "$secs" "$log" || return
  timeout "$secs" python3 -m scripts.quant_knockout --preset llama-2-$preset --formats int4 --kos "$kos" --jobs 14 \
    --out $L/$log.json "$@" > $L/$log.log 2>&1
  echo "=== $log rc $?"; tail -n 5 $L/$log.log
}
# attn_variants STEM SECS VARIANTS: one scripts/bench_attention process (the default plans and VARIANTS, names of its
# VARIANTS, comma-separated) to $L/STEM.json / .log, skipped with a line where it would pass LIMIT; echoes its exit
# status and one line a decode bucket (keys, splits, us a launch per plan), then snaps
attn_variants() {
  fits "$2" "$1" || return
  timeout "$2" python3 -m scripts.bench_attention --variants "$3" --out $L/$1.json > $L/$1.log 2>&1
  echo "=== $1 rc $?"; python3 -m scripts.bench_attention --summary $L/$1.json; snap
}
# persist SECS [VARIANTS]: one scripts/persist_probe process (all its variants, or the comma-separated VARIANTS),
# logged to $L/persist.log / .json; echoes its exit status and rows, then snaps
persist() {
  timeout "$1" python3 -m scripts.persist_probe --out $L/persist.json ${2:+--variants $2} > $L/persist.log 2>&1
  echo "=== persist rc $?"; tail -14 $L/persist.log; snap
}
# run_bench STEM SECS BENCH_ARGS..: one `cugraphllm bench` process with the caller's common arguments $B, logged to
# $L/STEM.log; skipped, with a line, where it would pass LIMIT; echoes its hybrid rows (prompt | TTFT | p90 | TPOT)
run_bench() {
  local stem=$1 secs=$2; shift 2
  fits $secs $stem || return
  timeout $secs python3 -m cugraphllm bench $B --stem $stem "$@" > $L/$stem.log 2>&1
  echo "=== $stem rc $?"; bench_rows $L/$stem.log
}
# prefill_ab TREE STEM SECS POSITIONS BUCKETS [BENCH_ARGS..]: scripts/bench_attention_prefill (the tensor-core kernel
# alone) run in TREE (a checkout or a bis/ tree) at those comma-separated start positions and query buckets, to
# $L/STEM.json / .log; skipped, with a line, where it would pass LIMIT; echoes "M@pos:ms" for each row (then "/ms" for
# each other build the bench timed in the same process, e.g. `*_ms_32_layers` of a probe flag)
prefill_ab() {
  local tree=$1 stem=$2 secs=$3 positions=$4 buckets=$5; shift 5
  fits $secs $stem || return
  (cd $tree && timeout $secs python3 -m scripts.bench_attention_prefill --no-numba --positions $positions \
    --buckets $buckets --out $L/$stem.json "$@" > $L/$stem.log 2>&1)
  echo "=== $stem rc $?: $(python3 -c "import json; print(' '.join(f\"{r['M']}@{r['pos']}:{r['ours_ms_32_layers']:.3f}\"
    + ''.join(f'/{v:.3f}' for k, v in r.items() if k.endswith('_ms_32_layers') and not k.startswith('ours'))
    for r in json.load(open('$L/$stem.json'))['prefill']))" 2>&1 | tail -1)"
}
# attn_prefill_ab TREE STEM SECS: prefill_ab at 16 / 64 / 128 / 512 rows from positions 0 / 300 / 1024 / 1852
attn_prefill_ab() { prefill_ab $1 $2 $3 0,300,1024,1852 16,64,128,512; }
# turn_ab TREE STEM SECS: scripts/turn_ttft (a 10-token turn after 0 / 300 / 1000 / 1900 / 3800 tokens of history,
# 20 samples) run in TREE, to $L/STEM.json / .log; skipped where it would pass LIMIT; echoes its rows
turn_ab() {
  fits $3 $2 || return
  (cd $1 && timeout $3 python3 -m scripts.turn_ttft --contexts 0,300,1000,1900,3800 --reps 20 --out $L/$2.json \
    > $L/$2.log 2>&1)
  echo "=== $2 rc $?"; grep '"context"' $L/$2.log | cut -c1-140
}
