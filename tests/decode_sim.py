"""Run the decode kernel body on Numba's CUDA simulator (CPU) against the float64 reference; used by
test_attention_cpu.py in a child process (NUMBA_ENABLE_CUDASIM must be set before Numba is imported).

The simulator lacks warp shuffles, so they are added here (a barrier per warp: every lane of a warp must call them
together, which the kernel does); the llvmlite intrinsics get Python twins. This checks the index arithmetic of a
plan (unrolled loads, clamped/masked keys, key split + ticket, dim split), not fp32 rounding or speed.

    NUMBA_ENABLE_CUDASIM=1 python tests/decode_sim.py '[[n_heads, n_kv_heads, head_dim, dtype, lmax, knobs], ...]'
"""
import json
import os
import sys
import threading

import numpy as np

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "set NUMBA_ENABLE_CUDASIM=1"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
if not hasattr(np, "row_stack"):
    np.row_stack = np.vstack
from numba import cuda  # noqa: E402
from numba.cuda.simulator import kernelapi  # noqa: E402
from numba.np import numpy_support  # noqa: E402

from cugraphllm.config import ModelConfig  # noqa: E402
from cugraphllm.gpu.attention import plan_decode  # noqa: E402
from cugraphllm.reference import attention as ref_attention  # noqa: E402

_LOCK = threading.Lock()
_WARPS: dict = {}


def _shfl_xor_sync(self, mask, value, off):
    t = threading.current_thread()
    with _LOCK:
        bar, slots = _WARPS.setdefault((id(t._manager), t.blockIdx.x, t.blockIdx.y, t.blockIdx.z, t.thread_id // 32),
                                       (threading.Barrier(32), [None] * 32))
    lane = t.thread_id % 32
    slots[lane] = value
    bar.wait()
    out = slots[lane ^ off]
    bar.wait()
    return out


def _locked_shared(self, shape, dtype, alignment=None):
    # the simulator's own version keys allocations by call site without a lock (racy under threads)
    site = (sys._getframe(1).f_code, sys._getframe(1).f_lineno)
    with _LOCK:
        if site not in self._allocations:
            self._allocations[site] = np.empty(shape, numpy_support.as_dtype(dtype))
        return self._allocations[site]


kernelapi.FakeCUDAModule.shfl_xor_sync = _shfl_xor_sync
kernelapi.FakeCUDAShared.array = _locked_shared
_JIT = cuda.jit
cuda.jit = lambda *a, forceinline=None, **kw: _JIT(*a, **kw)  # the simulator's jit has no forceinline


def sim_ops(dtype):
    bf = dtype == "bfloat16"

    def to_f32(x):
        b = np.uint32(int(x) & 0xFFFF)
        return np.float32((b << np.uint32(16)).view(np.float32) if bf else np.uint16(b).view(np.float16))

    def to_t(x):
        return bits(np.array([x], np.float64), dtype)[0].view(np.int16)

    def ticket(cnt, idx, val):
        with _LOCK:
            old = int(cnt[idx])
            cnt[idx] = old + val
        return old

    return {"to_f32": to_f32, "to_t": to_t, "ldg16": ldg16, "ticket": ticket, "pdl_enter": pdl_enter,
            "pdl_wait": pdl_enter}


# The step's own K/V row (pos) is written by the kernel before attention: a read of it before the PDL wait would see
# whatever was there. Modelled per thread: until a thread has passed pdl_enter, its 16-byte loads of that row's words
# [lo, hi) return NaN bits (every early load must avoid the row and its reload after the wait must happen).
_UNWRITTEN = [0, 0]
_NAN_WORD = np.int64(0x7E007E007E007E00)


def pdl_enter():
    threading.current_thread().cgl_waited = True


def ldg16(p, i):
    if _UNWRITTEN[0] <= i < _UNWRITTEN[1] and not getattr(threading.current_thread(), "cgl_waited", False):
        return _NAN_WORD, _NAN_WORD
    return p[2 * i], p[2 * i + 1]


def bits(x, dtype):
    if dtype == "float16":
        return x.astype(np.float16).view(np.uint16)
    b = x.astype(np.float32).view(np.uint32)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


def value(b, dtype):
    return b.view(np.float16).astype(np.float64) if dtype == "float16" else \
        (b.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def run_case(n_heads, n_kv_heads, head_dim, dtype, lmax, knobs, seed=0):
    """Max |err| - tolerance over lengths crossing the plan's edges (<= 0 means every output is within tolerance)."""
    c = ModelConfig(dim=n_heads * head_dim, n_layers=1, n_heads=n_heads, n_kv_heads=n_kv_heads, vocab_size=32,
                    hidden_dim=64, max_seq_len=lmax)
    spec = plan_decode(c, dtype, lmax, n_sm=8, **{"cluster": 0, **knobs})  # the simulator has no clusters
    from cugraphllm.gpu import decode_kernels  # after the patches above
    fn, _ = decode_kernels.make_decode(spec, sim_ops(dtype))
    kernel = cuda.jit(fn)
    rng = np.random.default_rng(seed)
    S, word = lmax + 3, np.int32 if spec["vec"] == 2 else np.int64
    qb = bits(2.0 * rng.standard_normal((1, n_heads, head_dim)), dtype)
    kb = bits(rng.standard_normal((S, n_kv_heads, head_dim)), dtype)
    vb = bits(rng.standard_normal((S, n_kv_heads, head_dim)), dtype)
    part = np.full(n_heads * spec["n_split"] * (head_dim + 2), np.nan, np.float32)
    cnt = np.zeros(n_kv_heads, np.int32)
    worst, grid = -1.0, (n_kv_heads, spec["n_split"], spec["n_dsplit"])
    chunk = spec["chunk"]
    for length in sorted({1, 2, chunk - 1, chunk, chunk + 1, lmax - 1, lmax} & set(range(1, lmax + 1))):
        att = np.full(n_heads * head_dim, 0x7E00, np.uint16).view(np.int16)
        k, v = kb.copy(), vb.copy()
        k[length:], v[length:] = 0x7E00, 0x7E00  # NaN past the attended keys (fp16 and bf16 NaN bits alike)
        row_words = n_kv_heads * head_dim // 8
        _UNWRITTEN[:] = (length - 1) * row_words, length * row_words
        kernel[grid, 32 * spec["n_warps"]](att, qb.view(np.int16).ravel(), k.view(word).ravel(),
                                           v.view(word).ravel(), np.array([length - 1], np.int32), part, cnt)
        ref = ref_attention(value(qb, dtype), value(kb, dtype)[:length], value(vb, dtype)[:length],
                            np.array([length - 1]))
        out = value(att.view(np.uint16), dtype).reshape(ref.shape)
        atol, rtol = (1e-3, 4e-3) if dtype == "float16" else (4e-3, 1.6e-2)
        err = np.abs(out - ref) - (atol + rtol * np.abs(ref))
        worst = max(worst, float(np.nan_to_num(err, nan=np.inf).max()))
        assert cnt.sum() == 0, "ticket not reset"
    return {"spec": {k: spec[k] for k in ("vec", "g", "n_warps", "unroll", "chunk", "n_split", "n_dsplit")},
            "worst": worst}


if __name__ == "__main__":
    print(json.dumps([run_case(*case) for case in json.loads(sys.argv[1])]))
