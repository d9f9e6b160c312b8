"""Tensor-core prefill attention (kernels/attention_prefill.cu) against the float64 NumPy reference.

q, k, v are rounded to the storage dtype first and the reference runs on those rounded values in float64, so the
error left is fp32 accumulation, P rounded to the storage dtype for the P @ V product, and one rounding of the
output: |err| <= atol + rtol*|ref| with fp16 (1e-3, 4e-3) and bf16 (4e-3, 1.6e-2) (bf16 has 8 significant bits,
so P and the output each carry up to 2^-9 relative error). Outputs are poisoned with NaN before every run, and so
are the padded query rows and every cache row the step must not read (rows >= pos + n_tokens).
"""
import numpy as np
import pytest

from cugraphllm.config import ModelConfig
from cugraphllm.reference import attention as ref_attention

from attention_helpers import assert_close, from_bits, to_bits  # tolerances: attention_helpers.TOL

pytestmark = pytest.mark.gpu
NAN_BITS = {"float16": 0x7E00, "bfloat16": 0x7FC0}
S = 2048  # cache rows: room for pos 300 + 512 queries, and short buckets over ~1900 cached keys
SHAPES = {  # name: (n_heads, n_kv_heads, head_dim)
    "7b": (32, 32, 128),
    "70b_gqa8": (64, 8, 128),
    "gqa4_hd64": (16, 4, 64),
    "mha_hd64": (8, 8, 64),
}
# (M bucket, n_tokens, pos): padding everywhere, pos 0 and pos > 0 with prior keys, a single token, a full bucket;
# buckets of <= 2 query tiles over long prefixes take the key split (attention_prefill.n_split), ranges of >= 8 key
# tiles, >= 2 in buckets of <= 16 rows (7B: 16 rows at 1900 -> 8 ranges, 64 at 1500 -> 4, 128 at 1700 -> 4 a query
# tile, 16 at 1020 -> 6, 16 at 300 -> 3)
CASES = [(16, 13, 0), (16, 1, 300), (64, 61, 0), (64, 64, 300), (128, 100, 300), (512, 509, 0), (512, 437, 300),
         (16, 9, 1900), (64, 61, 1500), (128, 120, 1700), (16, 16, 1020)]


class Case:
    """Random q [M, H, Dh] and K/V cache [S, KVH, Dh] (fresh per seed) on the device, with the poisoning."""

    def __init__(self, shape, dtype, M, seed):
        import cupy as cp
        H, KVH, hd = shape
        self.dt, self.M = dtype, M
        rng = np.random.default_rng(seed)
        qb, self.q = to_bits(2.0 * rng.standard_normal((M, H, hd)), dtype)  # peaked softmax rows too
        kb, self.k = to_bits(rng.standard_normal((S, KVH, hd)), dtype)
        vb, self.v = to_bits(rng.standard_normal((S, KVH, hd)), dtype)
        self.q_base, self.k_base, self.v_base = cp.asarray(qb.reshape(M, H * hd)), cp.asarray(kb), cp.asarray(vb)
        self.qd, self.kd, self.vd = (cp.empty_like(a) for a in (self.q_base, self.k_base, self.v_base))
        self.att = cp.empty((M, H * hd), dtype=cp.uint16)
        self.pos, self.ntok = cp.zeros(1, cp.int32), cp.zeros(1, cp.int32)

    def poison(self, pos, n_tokens):
        nan = NAN_BITS[self.dt]
        for dst, src in ((self.qd, self.q_base), (self.kd, self.k_base), (self.vd, self.v_base)):
            dst[...] = src
        self.qd[n_tokens:] = nan
        self.kd[pos + n_tokens:] = nan
        self.vd[pos + n_tokens:] = nan
        self.att.fill(nan)
        self.pos.fill(pos)
        self.ntok.fill(n_tokens)

    def check(self, pos, n_tokens, what):
        out = from_bits(self.att.get(), self.dt).reshape(self.q.shape)
        ref = ref_attention(self.q[:n_tokens], self.k, self.v, pos + np.arange(n_tokens))
        assert_close(out[:n_tokens], ref, self.dt, what)
        assert (out[n_tokens:] == 0).all(), f"{what}: padded rows must be zero"


_KERNELS = {}


def kernel(name, dtype):
    from cugraphllm.gpu.attention_prefill import PrefillKernel
    if (name, dtype) not in _KERNELS:
        _KERNELS[(name, dtype)] = PrefillKernel(*SHAPES[name], dtype, S)
    return _KERNELS[(name, dtype)]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_prefill_matches_reference(name, dtype):
    kern = kernel(name, dtype)
    for i, (M, n_tokens, pos) in enumerate(CASES):
        case = Case(SHAPES[name], dtype, M, seed=1000 * i + len(name) + 7 * len(dtype))
        case.poison(pos, n_tokens)
        kern.launch(case.att, case.qd, case.kd, case.vd, case.pos, case.ntok)
        case.check(pos, n_tokens, f"{name} {dtype} M={M} n={n_tokens} pos={pos}")


@pytest.mark.parametrize("M,n_tokens,pos", [(16, 11, 1900), (128, 128, 1600)])
def test_key_split_repeats_bit_for_bit(M, n_tokens, pos):
    """The key split's tickets return to zero after every launch, and its fixed-order merge repeats exactly."""
    kern = kernel("7b", "float16")
    case = Case(SHAPES["7b"], "float16", M, seed=M + pos)
    outs = []
    for _ in range(3):
        case.poison(pos, n_tokens)
        kern.launch(case.att, case.qd, case.kd, case.vd, case.pos, case.ntok)
        outs.append(case.att.get())
        assert not kern.cnt.get().any(), "tickets must be zero between launches"
    case.check(pos, n_tokens, f"split M={M} pos={pos}")
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


def test_graph_replay_with_changed_pos_equals_eager():
    import cupy as cp
    kern = kernel("70b_gqa8", "float16")
    case = Case(SHAPES["70b_gqa8"], "float16", 128, seed=11)
    cp.cuda.Device().synchronize()  # inputs were made on the legacy stream; the non-blocking one won't wait
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        case.poison(0, 128)
        kern.launch(case.att, case.qd, case.kd, case.vd, case.pos, case.ntok)  # warm-up before capture
        stream.begin_capture()
        kern.launch(case.att, case.qd, case.kd, case.vd, case.pos, case.ntok)
        graph = stream.end_capture()
        for pos, n_tokens in ((0, 128), (300, 77), (57, 1), (896, 128), (1900, 100), (300, 128)):
            case.poison(pos, n_tokens)
            graph.launch(stream)
            replay = case.att.get(stream=stream)
            case.check(pos, n_tokens, f"replay pos={pos} n={n_tokens}")
            case.att.fill(NAN_BITS["float16"])
            kern.launch(case.att, case.qd, case.kd, case.vd, case.pos, case.ntok)
            assert np.array_equal(replay, case.att.get(stream=stream)), f"pos={pos} n={n_tokens}"


def _config(n_heads, n_kv_heads, head_dim):
    return ModelConfig(dim=n_heads * head_dim, n_layers=1, n_heads=n_heads, n_kv_heads=n_kv_heads,
                       vocab_size=32, hidden_dim=64, max_seq_len=S)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_attention_dispatch_prepare_ready(dtype, tmp_path):
    from cugraphllm.gpu.attention import Attention
    attn = Attention(_config(16, 4, 64), S, dtype=dtype, cache_dir=tmp_path)
    assert not attn.ready("prefill", 64)
    attn.prepare("prefill", None)
    assert all(attn.ready("prefill", b) for b in attn.prefill_buckets)
    assert attn.compiles == 0, "the tensor-core path must not start a Numba compile"
    case = Case((16, 4, 64), dtype, 128, seed=5)
    case.poison(300, 90)
    attn.prefill(case.att, case.qd, case.kd, case.vd, case.pos, case.ntok, bucket=128)
    case.check(300, 90, f"Attention.prefill {dtype}")


def test_other_head_dims_stay_on_numba(tmp_path):
    from cugraphllm.gpu.attention import Attention
    for hd in (8, 32, 72):
        attn = Attention(_config(4, 2, hd), S, cache_dir=tmp_path)
        assert not attn._fast_prefill_shape()
        assert attn._prepare_fast_prefill([("prefill", None)]) == [("prefill", None)]
    attn = Attention(_config(4, 2, 128), S, cache_dir=tmp_path)
    attn.prefill_impl = "numba"
    assert attn._prepare_fast_prefill([("prefill", 16)]) == [("prefill", 16)]


def test_launcher_rejects_bad_shapes():
    import cupy as cp
    from cugraphllm.errors import ConfigError
    from cugraphllm.gpu.attention_prefill import PrefillKernel
    with pytest.raises(ConfigError):
        PrefillKernel(4, 2, 96, "float16", S)
    kern = kernel("mha_hd64", "float16")
    q = cp.zeros((16, 8 * 64), cp.float16)
    k = cp.zeros((S, 8, 64), cp.float16)
    p = cp.zeros(1, cp.int32)
    with pytest.raises(ConfigError):
        kern.launch(q, q, k[:-1], k[:-1], p, p)
    with pytest.raises(ConfigError):
        kern.launch(q, q, k, k, p.astype(cp.int64), p)
