"""The argument checks the 16-bit and quantized qkv ops share (gpu/ops.py _qkv_geometry / _qkv_checks), on NumPy
stand-ins of the device arrays: each bad argument is named in a one-line ValueError."""
import numpy as np
import pytest

from cugraphllm.gpu import ops, ops_gemv


def _args(**bad):
    a = dict(q=np.zeros((3, 64), np.float16), k=np.zeros((16, 2, 16), np.float16),
             v=np.zeros((16, 2, 16), np.float16), rope=np.zeros((16, 8, 2), np.float32),
             pos=np.zeros(1, np.int32), nt=np.ones(1, np.int32), Mx=3, t="float16")
    a.update(bad)
    return a["q"], a["k"], a["v"], a["rope"], a["pos"], a["nt"], a["Mx"], a["t"]


def test_geometry_and_good_arguments():
    q, k, v, rope, pos, nt, Mx, t = _args()
    assert ops._qkv_geometry(q, k) == (3, 64, 16, 2, 16)
    assert ops._qkv_checks(q, k, v, rope, pos, nt, Mx, t) is None


@pytest.mark.parametrize("bad, match", [
    (dict(Mx=2), "xn rows 2 vs q rows 3"),
    (dict(q=np.zeros((3, 60), np.float16)), "dim 60, head_dim 16"),
    (dict(t="bfloat16"), "q: expected dtype bfloat16"),
    (dict(k=np.zeros((16, 2, 16), np.float32)), "k_cache: expected dtype float16"),
    (dict(v=np.zeros((16, 2, 8), np.float16)), r"v_cache: expected shape \(16, 2, 16\)"),
    (dict(rope=np.zeros((15, 8, 2), np.float32)), r"rope_cs: expected float32 \[>= 16, 8, 2\]"),
    (dict(rope=np.zeros((16, 8, 2), np.float16)), "rope_cs: expected dtype float32"),
    (dict(pos=np.zeros(2, np.int32)), r"pos: expected shape \(1,\)"),
    (dict(nt=np.ones(1, np.int64)), "n_tokens: expected dtype int32")])
def test_each_bad_argument_is_named(bad, match):
    with pytest.raises(ValueError, match=match):
        ops._qkv_checks(*_args(**bad))


def test_the_16bit_op_checks_through_the_shared_helpers(monkeypatch):
    q, k, v, rope, pos, nt, _, _ = _args()
    monkeypatch.setattr(ops, "_gemv_check", lambda an, a, wn, w, n_rows: (a.shape[0], 64, "float16"))
    xn = np.zeros((3, 64), np.float16)
    M, K, t, pairs, args = ops_gemv._qkv_check(q, xn, None, rope, k, v, pos, nt)
    assert (M, K, t, pairs) == (3, 64, "float16", (64 + 2 * 32) // 2) and args[0] is q and args[-1] == 64
    with pytest.raises(ValueError, match="xn rows 2 vs q rows 3"):
        ops_gemv._qkv_check(q, xn[:2], None, rope, k, v, pos, nt)
