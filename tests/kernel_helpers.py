"""Shared by the decode-kernel GPU tests (test_{norm,gemv,fused_norm,sampling,decode_graph,quant}_gpu.py): storage
dtypes, tolerances, random device inputs, poisoning, the float64 references, and the fused-norm inputs (x, xn, ss
as the decode embedding writes them) with the run-twice determinism check.

Tolerances, on ||out - ref|| / ||ref|| with the reference computed in float64 from the same T-rounded inputs:
- outputs stored in T: float16 2e-3, bfloat16 1.6e-2 (one rounding to T dominates: 2^-11 / 2^-8 per element);
- float32 outputs (logits, residual, embedding, the new x of add_rmsnorm): 1e-5 (fp32 accumulation only).
- fused-norm ops (norm_qkv_rope, norm_matmul_silu, norm_matmul_logits) against rmsnorm-then-matmul in float64 with
  the UNFOLDED weights and gain: TOL_T for every output, logits included (the activation T(x) and the folded
  weights T(W * g) are each rounded once to T before the fp32 dot products).
Every output is poisoned (NaN) before each run, inputs are fresh random data, and the GEMV shapes are awkward
sizes plus the LLaMA-2 7B/13B/70B shapes (70B GQA: 64 heads, 8 KV heads).
"""
import numpy as np

from cugraphllm import reference as ref

DTYPES = ["float16", "bfloat16"]
TOL_T = {"float16": 2e-3, "bfloat16": 1.6e-2}
TOL_F32 = 1e-5
POSITIONS = [0, 1, 511, 4095]
S = 4096

def gpu_count() -> int:
    """CUDA devices visible here (0 without CuPy or a driver): the multi-GPU test files skip below 2."""
    try:
        import cupy as cp
        return cp.cuda.runtime.getDeviceCount()
    except Exception:
        return 0


def dt(cp, name):
    if name == "float16":
        return cp.float16
    import ml_dtypes
    return ml_dtypes.bfloat16


def rand_t(cp, shape, name, seed, scale=1.0):
    """Random T array made on the GPU (fast for the 70B shapes)."""
    g = cp.random.default_rng(seed).standard_normal(shape, dtype=cp.float32) * np.float32(scale)
    return g.astype(dt(cp, name))


def host64(a):
    return a.get().astype(np.float64)


def poison(cp, shape, dtype):
    return cp.full(shape, np.nan, dtype=dtype)


def rel_err(out, want):
    out = np.asarray(out, np.float64)
    assert np.all(np.isfinite(out)), "output has non-finite values (unwritten?)"
    return float(np.linalg.norm(out - want) / np.linalg.norm(want))


def matvec64(w, a64, chunk=8192):
    """float64 W [N, K] @ a [K] from a device T matrix, in row chunks (the 70B matrices are large)."""
    return np.concatenate([host64(w[i:i + chunk]) @ a64 for i in range(0, w.shape[0], chunk)])


def qkv_reference(wqkv, a64, table, D, kvd, H, KVH, hd, pos):
    y = matvec64(wqkv, a64)
    q = ref.apply_rope(y[:D].reshape(1, H, hd), np.array([pos]), table).reshape(D)
    k = ref.apply_rope(y[D:D + kvd].reshape(1, KVH, hd), np.array([pos]), table).reshape(kvd)
    return q, k, y[D + kvd:]


def stats_buffers(cp, D, dtype):
    """Poisoned (x f32 [1, D], xn T [1, D], ss f32 [(D + 1) // 2]) as Scratch sizes them."""
    return poison(cp, (1, D), cp.float32), poison(cp, (1, D), dt(cp, dtype)), poison(cp, ((D + 1) // 2,), cp.float32)


def produced_x(cp, ops, D, dtype, seed):
    """x f32 [1, D] with xn and ss as the decode embedding writes them (a random row, mean 0.3, std 2)."""
    from cugraphllm.gpu.state import Residual
    rng = np.random.default_rng(seed)
    table = cp.asarray((rng.standard_normal((5, D)) * 2 + 0.3).astype(np.float32)).astype(dt(cp, dtype))
    x, xn, ss = stats_buffers(cp, D, dtype)
    ops.embedding(Residual(x, xn, ss), table, cp.asarray([3], dtype=cp.int32))
    return x, xn, ss


def twice(cp, run, shape, dtype):
    """Run a fused op twice on fresh poisoned outputs; both results must be bit-identical."""
    outs = []
    for _ in range(2):
        out = poison(cp, shape, dtype)
        run(out)
        outs.append(out)
    assert cp.array_equal(outs[0], outs[1]), "fused op is not deterministic"
    return outs[0]
