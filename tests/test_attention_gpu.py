"""GPU attention (Numba kernels loaded through CuPy) against the float64 NumPy reference.

Inputs are rounded to the storage dtype first and the reference runs on those rounded values in float64, so the
error left is fp32 accumulation + exp2.approx + one rounding of the output: tolerance |err| <= atol + rtol*|ref|
with fp16 (1e-3, 4e-3) and bf16 (4e-3, 1.6e-2) (bf16 output ulp is 2^-8 relative). Outputs, split-K scratch and
every cache row past the attended range are poisoned with NaN, so a stray read or an unwritten output fails.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cugraphllm.config import ModelConfig
from cugraphllm.reference import attention as ref_attention

from attention_helpers import assert_close, from_bits, to_bits  # tolerances: attention_helpers.TOL

pytestmark = pytest.mark.gpu
NAN_BITS = {"float16": 0x7E00, "bfloat16": 0x7FC0}
EDGES = [1, 63, 64, 65, 127, 128, 129, 511, 512, 513, 4095, 4096]


def cfg(n_heads, n_kv_heads, head_dim, max_seq=4096):
    return ModelConfig(dim=n_heads * head_dim, n_layers=1, n_heads=n_heads, n_kv_heads=n_kv_heads,
                       vocab_size=32, hidden_dim=64, max_seq_len=max_seq)


CONFIGS = {  # name: (config, context)
    "7b": (cfg(32, 32, 128), 4096),
    "r2_hd64": (cfg(16, 8, 64), 600),
    "r4_hd128": (cfg(16, 4, 128), 600),
    "r8_hd128": (cfg(32, 4, 128), 600),
    "r2_hd72": (cfg(6, 3, 72), 600),
    "r2_hd6": (cfg(4, 2, 6), 600),
    "hd8_stories": (cfg(8, 8, 8), 600),
}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("attn_cache")


_ATTN = {}


def _items(a):
    return [("decode", b) for b in a.decode_buckets] + [("prefill", b) for b in a.prefill_buckets]


def attention_for(name, dtype, cache_dir, background=False, **kw):
    from cugraphllm.gpu.attention import Attention
    key = (name, dtype, json.dumps(kw, sort_keys=True))
    if key not in _ATTN:
        config, ctx = CONFIGS[name]
        a = _ATTN[key] = Attention(config, ctx, dtype=dtype, cache_dir=cache_dir, **kw)
        a.prepare_many(_items(a), background=True, jobs=2)
    if not background:
        _ATTN[key].prepare_many(_items(_ATTN[key]))  # waits for its compiles
    return _ATTN[key]


@pytest.fixture(scope="module", autouse=True)
def _compile_all_at_once(cache_dir):
    """Start every compile this module needs together (the device has many cores; one by one takes minutes)."""
    for name in CONFIGS:
        for dtype in ("float16", "bfloat16"):
            attention_for(name, dtype, cache_dir, background=True)
    for kw in PLANS:
        attention_for("7b", "float16", cache_dir, background=True, **kw)
    for name, knobs in GQA_PLANS:
        attention_for(name, "bfloat16", cache_dir, background=True, decode_knobs=knobs)


class Case:
    """Random q and a K/V cache on the device; rows >= `valid` poisoned."""

    def __init__(self, attn, rows, seed):
        import cupy as cp
        c, self.attn, self.dt = attn.config, attn, attn.dtype
        rng = np.random.default_rng(seed)
        S = attn.max_seq_len
        self.q_bits, self.q = to_bits(2.0 * rng.standard_normal((rows, c.n_heads, c.head_dim)), self.dt)
        kb, self.k = to_bits(rng.standard_normal((S, c.n_kv_heads, c.head_dim)), self.dt)
        vb, self.v = to_bits(rng.standard_normal((S, c.n_kv_heads, c.head_dim)), self.dt)
        self.k_base, self.v_base = cp.asarray(kb), cp.asarray(vb)
        self.kd, self.vd = cp.empty_like(self.k_base), cp.empty_like(self.v_base)
        self.qd = cp.asarray(self.q_bits.reshape(rows, c.dim))
        self.att = cp.empty((rows, c.dim), dtype=cp.uint16)
        self.pos = cp.zeros(1, dtype=cp.int32)
        self.ntok = cp.zeros(1, dtype=cp.int32)

    def poison(self, valid):
        nan = NAN_BITS[self.dt]
        self.kd[...] = self.k_base
        self.vd[...] = self.v_base
        self.kd[valid:] = nan
        self.vd[valid:] = nan
        self.att.fill(nan)
        self.attn._part.fill(np.nan)

    def result(self):
        return from_bits(self.att.get(), self.dt).reshape(self.q.shape)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_decode_bucket_edges(name, dtype, cache_dir, kw=None):
    attn = attention_for(name, dtype, cache_dir, **(kw or {}))
    case = Case(attn, 1, seed=len(name) * 7 + len(dtype))
    for length in [n for n in EDGES if n <= attn.max_seq_len] + [attn.max_seq_len]:
        ref = ref_attention(case.q, case.k[:length], case.v[:length], np.array([length - 1]))
        for bucket in (attn.bucket_for(length, "decode"), None):
            case.poison(length)
            case.pos.fill(length - 1)
            attn.decode(case.att, case.qd, case.kd, case.vd, case.pos, bucket=bucket)
            first = case.att.get()
            assert_close(case.result(), ref, dtype, f"{name} {dtype} length {length} bucket {bucket} {kw}")
            attn.decode(case.att, case.qd, case.kd, case.vd, case.pos, bucket=bucket)
            assert np.array_equal(case.att.get(), first), "decode is not deterministic"
        assert int(attn._cnt.sum()) == 0  # tickets reset for the next launch


# other plans of the same kernel on every bucket: split-K everywhere, dim split everywhere (no key split), both at
# once, 8-byte words, other unroll/warp counts, other grid sizes
PLANS = [{"blocks_per_sm": 2}, {"blocks_per_sm": 8}, {"decode_knobs": {"short_iters": 0, "split_keys": 0}},
         {"decode_knobs": {"short_iters": 99, "n_dsplit": 8}}, {"decode_knobs": {"n_split": 3, "n_dsplit": 2}},
         {"decode_knobs": {"wide": False, "unroll": 2}}, {"decode_knobs": {"n_warps": 4, "unroll": 8}},
         {"decode_knobs": {"cluster": 0, "early": 0}}, {"decode_knobs": {"cluster": 1, "early": 1}},
         {"decode_knobs": {"early": 1, "cluster": 0}}, {"blocks_per_sm": 8, "decode_knobs": {"cluster": 1}},
         {"decode_knobs": {"early": 2}}, {"decode_knobs": {"n_split": 3, "n_dsplit": 2, "early": 3}},
         {"decode_knobs": {"short_iters": 2}}, {"decode_knobs": {"one_trip": 0}}, {"decode_knobs": {"one_trip": 1024}}]


@pytest.mark.parametrize("kw", PLANS, ids=lambda kw: json.dumps(kw, sort_keys=True))
def test_decode_other_plans(kw, cache_dir):
    test_decode_bucket_edges("7b", "float16", cache_dir, kw)


GQA_PLANS = [("r8_hd128", {"n_split": 2, "n_dsplit": 2}), ("r2_hd64", {"n_split": 2, "n_dsplit": 4}),
             ("r2_hd72", {"n_split": 2, "n_dsplit": 3}), ("r2_hd6", {"n_dsplit": 3}),  # 3: slices of 3 or 1 words
             ("r8_hd128", {"n_split": 3, "n_dsplit": 2, "early": 3})]


@pytest.mark.parametrize("name,knobs", GQA_PLANS)
def test_decode_gqa_split_plans(name, knobs, cache_dir):
    test_decode_bucket_edges(name, "bfloat16", cache_dir, {"decode_knobs": knobs})


def test_decode_rejects_misaligned_cache(cache_dir):
    import cupy as cp
    from cugraphllm.errors import ConfigError
    attn = attention_for("7b", "float16", cache_dir)
    case = Case(attn, 1, seed=3)
    flat = cp.empty(case.kd.size + 4, dtype=cp.uint16)
    k = flat[4:].reshape(case.kd.shape)  # 8-byte aligned, not 16: the 16-byte loads need 16
    with pytest.raises(ConfigError):
        attn.decode(case.att, case.qd, k, case.vd, case.pos, bucket=64)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", ["7b", "r4_hd128", "r2_hd72", "r2_hd6", "hd8_stories"])
def test_prefill_padding_and_offset(name, dtype, cache_dir):
    attn = attention_for(name, dtype, cache_dir)
    for rows, n_tokens, pos in [(16, 16, 0), (32, 19, 0), (32, 23, 45), (128, 100, 37), (16, 1, 200)]:
        case = Case(attn, rows, seed=rows + pos)
        case.poison(pos + n_tokens)
        case.pos.fill(pos)
        case.ntok.fill(n_tokens)
        attn.prefill(case.att, case.qd, case.kd, case.vd, case.pos, case.ntok, bucket=attn.bucket_for(rows, "prefill"))
        out = case.result()
        ref = ref_attention(case.q[:n_tokens], case.k, case.v, pos + np.arange(n_tokens))
        assert_close(out[:n_tokens], ref, dtype, f"{name} {dtype} M={rows} n={n_tokens} pos={pos}")
        assert (out[n_tokens:] == 0).all(), "padded rows must be zero"


def test_decode_graph_capture_replay(cache_dir):
    import cupy as cp
    attn = attention_for("r2_hd64", "float16", cache_dir)
    case = Case(attn, 1, seed=7)
    case.poison(attn.max_seq_len)
    cp.cuda.Device().synchronize()  # inputs were made on the legacy stream; the non-blocking one won't wait
    stream = cp.cuda.Stream(non_blocking=True)
    graphs = {}
    with stream:
        for bucket in (None, 256):
            case.pos.fill(0)
            attn.decode(case.att, case.qd, case.kd, case.vd, case.pos, bucket=bucket)
            stream.begin_capture()
            attn.decode(case.att, case.qd, case.kd, case.vd, case.pos, bucket=bucket)
            graphs[bucket] = stream.end_capture()
        for bucket, lengths in ((None, [5, 300, 600]), (256, [1, 129, 256])):
            for length in lengths:
                case.pos.fill(length - 1)
                case.att.fill(NAN_BITS["float16"])
                graphs[bucket].launch(stream)
                replay = case.att.get(stream=stream)
                case.att.fill(NAN_BITS["float16"])
                attn.decode(case.att, case.qd, case.kd, case.vd, case.pos, bucket=bucket)
                eager = case.att.get(stream=stream)
                assert np.array_equal(replay, eager), f"bucket {bucket} length {length}"
                ref = ref_attention(case.q, case.k[:length], case.v[:length], np.array([length - 1]))
                assert_close(from_bits(replay, "float16").reshape(ref.shape), ref, "float16", "replay")


_FRESH = """
import sys
from cugraphllm.config import ModelConfig
from cugraphllm.gpu.attention import Attention
c = ModelConfig(dim=96, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=32, hidden_dim=64, max_seq_len=256)
a = Attention(c, 256, dtype="float16", cache_dir=sys.argv[1])
a.prepare("decode", 128)
print(a.compiles, a.ready("decode", 128))
"""


def test_disk_cache_second_process_compiles_nothing(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    runs = [subprocess.run([sys.executable, "-c", _FRESH, str(tmp_path)], env=env, capture_output=True, text=True)
            for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-2000:]
    assert runs[0].stdout.split() == ["1", "True"]
    assert runs[1].stdout.split() == ["0", "True"]


def test_background_prepare_then_ready(tmp_path):
    import time
    from cugraphllm.gpu.attention import Attention
    config, _ = CONFIGS["r2_hd64"]
    a = Attention(config, 300, dtype="bfloat16", cache_dir=tmp_path)
    assert not a.ready("decode", 128)
    a.prepare("decode", 128, background=True)
    assert a.compiles == 1
    deadline = time.monotonic() + 120
    while not a.ready("decode", 128):
        assert time.monotonic() < deadline, f"background compile never finished: {a.errors}"
        time.sleep(0.05)
    assert not a.ready("decode", 64)  # nothing compiled it
