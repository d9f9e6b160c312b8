set -u
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
bash .device/prep.sh && export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --target /tmp/site .device/whl/*.whl 2>/dev/null
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 CUGRAPHLLM_SHARED=$PWD/.device/shared
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
L=/tmp/r6; mkdir -p $L/bench; OUT=${OUT:-/tmp/out}
t() { local n=$1 s=$2; shift 2; timeout "$s" python3 -m pytest -q -m "gpu and not big" -p no:cacheprovider "$@" \
        > "$L/$n.log" 2>&1; el "=== $n: $(tail -n 1 "$L/$n.log")"; grep -E "^(FAILED|ERROR)" "$L/$n.log" | head -12; }
( cd .device/s; export CUDA_VISIBLE_DEVICES=0
  t sampling 200 -n 6 tests/test_sampling_gpu.py
  timeout 120 python3 -m scripts.bench_sampler --rounds 3 --out $L/bench/sampler.json > $L/bench_sampler.log 2>&1
  el "=== bench_sampler rc $?"; cat $L/bench_sampler.log | tail -30
  for v in fused split; do for s in greedy samp; do
    A="--temperature 0"; [ $s = samp ] && A="--temperature 0.8 --top-p 0.9 --seed 1"
    CUGRAPHLLM_SAMPLER=$v timeout 60 python3 -m cugraphllm generate --model dummy:llama-2-7b --tokenizer .device/shared/models/llama2-tokenizer/tokenizer.model --prompt "Once upon a time" --no-echo --max-new-tokens 256 $A > $L/gen_${v}_$s.out 2> $L/gen_${v}_$s.err
    el "gen $v $s: $(tail -n 2 $L/gen_${v}_$s.err | tr '\n' ' ')"
  done; done
  for v in fused split; do
    CUGRAPHLLM_SAMPLER=$v timeout 100 python3 -m scripts.decode_anatomy --dtypes float16 --pos 500 \
      --out $L/bench/decode_anatomy_$v.json > $L/anatomy_$v.log 2>&1
    el "=== decode_anatomy $v: $(grep -i -E "sample|argmax|total|step" $L/anatomy_$v.log | head -6)"
  done
  t decode_graph 150 -n 4 tests/test_decode_graph_gpu.py
  t engine_sampling 120 tests/test_engine_gpu.py -k sampl
) > $L/g0.txt 2>&1 &
( cd .device/ring; export CUDA_VISIBLE_DEVICES=1
  E2E="bench --backend cuda --preset llama-2-7b --modes hybrid --prompt-lens 10,500 --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench"
  timeout 150 python3 -m scripts.bench_quant --formats int4 --sweep ring --no-table \
    --out $L/bench/quant_gemv_sweep_ring.json > $L/sweep.log 2>&1; el sweep; grep "^sweep" $L/sweep.log
  for st in 0 4 6 0; do
    timeout 45 python3 - > $L/e2e_int4_stages$st.log 2>&1 <<PY
import dataclasses
from cugraphllm.gpu import gemv_plan as g
from cugraphllm.cli import main
g.QUANT_PLANS["int4"] = dataclasses.replace(g.QUANT_PLANS["int4"], stages=$st)
main("$E2E --quant int4 --stem e2e_int4_stages$st".split())
PY
    el "e2e stages $st: $(grep -E '^\| cugraphllm-hybrid \| (10|500) \| 64' $L/e2e_int4_stages$st.log | tr '\n' ' ')"
  done
  t ring 120 -n 6 tests/test_quant_ring_gpu.py -k "int4"
) > $L/g1.txt 2>&1 &
wait; cat $L/g0.txt; echo; cat $L/g1.txt
tar -czf $OUT/r6.tgz -C /tmp r6; el done
