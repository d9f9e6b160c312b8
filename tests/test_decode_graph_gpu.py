"""A whole tiny decode step (plain and norm-fused) captured into a CUDA graph replays exactly like eager
launches; every launcher rejects bad shapes and dtypes with ValueError."""
import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu.state import Residual
from kernel_helpers import rand_t

pytestmark = pytest.mark.gpu


# ---- graph capture -----------------------------------------------------------------------------------------
def tiny_step_state(cp, S2=64):
    D, H, KVH, F, V, dtype = 512, 8, 4, 1376, 1000, "float16"
    hd = D // H
    kvd = KVH * hd
    rng = np.random.default_rng(9)
    st = dict(
        table=rand_t(cp, (V, D), dtype, 20), wqkv=rand_t(cp, (D + 2 * kvd, D), dtype, 21, D ** -0.5),
        wo=rand_t(cp, (D, D), dtype, 22, D ** -0.5), w13=rand_t(cp, (2 * F, D), dtype, 23, D ** -0.5),
        w2=rand_t(cp, (D, F), dtype, 24, F ** -0.5), wout=rand_t(cp, (V, D), dtype, 25, D ** -0.5),
        g=cp.asarray((1 + 0.1 * rng.standard_normal(D)).astype(np.float32)),
        r=cp.asarray(rng.standard_normal((1, D)).astype(np.float32)),
        rope=cp.asarray(ref.rope_table(S2, hd, 10000.0).astype(np.float32)),
        x=cp.zeros((1, D), cp.float32), xn=cp.zeros((1, D), cp.float16), q=cp.zeros((1, D), cp.float16),
        h=cp.zeros((1, F), cp.float16), xl=cp.zeros((1, D), cp.float16), logits=cp.zeros((1, V), cp.float32),
        ss=cp.zeros((D + 1) // 2, cp.float32),
        kc0=rand_t(cp, (S2, KVH, hd), dtype, 26), vc0=rand_t(cp, (S2, KVH, hd), dtype, 27),
        hist0=cp.asarray(rng.integers(0, V, S2 + 1).astype(np.int32)),
        token=cp.zeros(1, cp.int32), pos=cp.zeros(1, cp.int32), n=cp.ones(1, cp.int32),
        params=cp.asarray(np.array([0.9, 0.95, 1.1, 20], np.float32)), seed=cp.asarray([77], dtype=cp.uint64))
    st["kc"], st["vc"], st["hist"] = st["kc0"].copy(), st["vc0"].copy(), st["hist0"].copy()
    # Made on the legacy default stream, which a non-blocking stream does not wait for: without this, a step on
    # such a stream can read weights that are still being generated behind an earlier test's queued work.
    cp.cuda.Device().synchronize()
    return st


def tiny_step(ops, s, fused=False):
    if fused:
        return tiny_fused_step(ops, s)
    ops.embedding(Residual(s["x"]), s["table"], s["token"])
    ops.rmsnorm(s["xn"], s["x"], s["g"], 1e-5)
    ops.qkv_rope(s["q"], s["xn"], s["wqkv"], s["rope"], s["kc"], s["vc"], s["pos"], s["n"])
    ops.matmul_residual(Residual(s["x"]), s["q"], s["wo"])  # q stands in for the attention output
    ops.add_rmsnorm(s["x"], s["r"], s["xn"], s["g"], 1e-5)
    ops.matmul_silu(s["h"], s["xn"], s["w13"])
    ops.matmul_residual(Residual(s["x"]), s["h"], s["w2"])
    ops.rmsnorm_last(s["xl"], s["x"], s["g"], 1e-5, s["n"])
    ops.matmul_logits(s["logits"], s["xl"], s["wout"])
    ops.sample(s["token"], s["hist"], s["pos"], s["n"], s["logits"], s["params"], s["seed"])


def tiny_fused_step(ops, s):
    """The decode step of gpu/model.py: norms fused into the GEMVs (s["g"] stands in for folded weights)."""
    x, xn, ss = s["x"], s["xn"], s["ss"]
    ops.embedding(Residual(x, xn, ss), s["table"], s["token"])
    ops.norm_qkv_rope(s["q"], Residual(x, xn, ss), 1e-5, s["wqkv"], s["rope"], s["kc"], s["vc"], s["pos"], s["n"])
    ops.matmul_residual(Residual(x, xn, ss), s["q"], s["wo"])
    ops.norm_matmul_silu(s["h"], Residual(x, xn, ss), 1e-5, s["w13"])
    ops.matmul_residual(Residual(x, xn, ss), s["h"], s["w2"])
    ops.norm_matmul_logits(s["logits"], Residual(x, xn, ss), 1e-5, s["wout"], s["n"])
    ops.sample(s["token"], s["hist"], s["pos"], s["n"], s["logits"], s["params"], s["seed"])


def reset_step(cp, s, pos, token):
    s["kc"][...] = s["kc0"]
    s["vc"][...] = s["vc0"]
    s["hist"][...] = s["hist0"]
    s["pos"].fill(pos)
    s["token"].fill(token)


OUTPUTS = ("x", "xn", "ss", "q", "kc", "vc", "h", "logits", "token", "hist", "pos")


@pytest.mark.parametrize("fused", [False, True])
def test_graph_capture_replay_matches_eager(cp, ops, fused):
    s = tiny_step_state(cp)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        reset_step(cp, s, 0, 3)
        tiny_step(ops, s, fused)  # compile and load everything before capture
        stream.begin_capture()
        tiny_step(ops, s, fused)
        graph = stream.end_capture()
        snaps = []
        for pos, tok in ((5, 17), (40, 999)):
            for mode in ("eager", "graph"):
                reset_step(cp, s, pos, tok)
                tiny_step(ops, s, fused) if mode == "eager" else graph.launch(stream)
                stream.synchronize()
                snaps.append({k: s[k].get() for k in OUTPUTS})
    for (a, b) in ((snaps[0], snaps[1]), (snaps[2], snaps[3])):
        for k in OUTPUTS:
            assert np.array_equal(a[k], b[k], equal_nan=False), f"graph replay differs from eager in {k}"
    assert snaps[1]["pos"][0] == 6 and snaps[3]["pos"][0] == 41
    assert not np.array_equal(snaps[1]["kc"][40], snaps[3]["kc"][40]), "replay must follow the device pos"


# ---- launcher checks ---------------------------------------------------------------------------------------
def test_launchers_reject_bad_inputs(cp, ops):
    w = rand_t(cp, (64, 32), "float16", 1)
    a = rand_t(cp, (1, 32), "float16", 2)
    bad = [
        lambda: ops.matmul_residual(Residual(cp.zeros((1, 64), cp.float64)), a, w),  # x dtype
        lambda: ops.matmul_residual(Residual(cp.zeros((1, 63), cp.float32)), a, w),  # rows
        lambda: ops.matmul_logits(cp.zeros((1, 64), cp.float32), a, w.astype(cp.float32)),  # weight dtype
        lambda: ops.matmul_logits(cp.zeros((1, 64), cp.float32), a, cp.asfortranarray(w)),  # layout
        lambda: ops.matmul_silu(cp.zeros((1, 31), cp.float16), a, w),               # 2F != rows
        lambda: ops.rmsnorm(cp.zeros((2, 32), cp.float16), cp.zeros((2, 32), cp.float32),
                            cp.ones(31, cp.float32), 1e-5),
        lambda: ops.argmax(cp.zeros(1, cp.int64), cp.zeros(9, cp.int32), cp.zeros(1, cp.int32),
                           cp.ones(1, cp.int32), cp.zeros((1, 64), cp.float32)),
        lambda: ops.embedding(Residual(cp.zeros((2, 32), cp.float32)), w, cp.zeros(1, cp.int32)),  # too few tokens
        lambda: ops.embedding(Residual(cp.zeros((1, 32), cp.float32), a, cp.zeros(1, cp.float32)), w,
                              cp.zeros(1, cp.int32)),
        lambda: ops.matmul_residual(Residual(cp.zeros((1, 64), cp.float32), None, cp.zeros(32, cp.float32)), a,
                                    w),  # no xh
        lambda: ops.norm_matmul_logits(cp.zeros((1, 64), cp.float32), Residual(cp.zeros((1, 32), cp.float32), a,
                                       cp.zeros(1, cp.float32)), 1e-5, w, cp.ones(1, cp.int32)),  # ss too short
        lambda: ops.norm_matmul_silu(cp.zeros((1, 32), cp.float16), Residual(cp.zeros((1, 32), cp.float16), a,
                                     cp.zeros(16, cp.float32)), 1e-5, w),  # x not f32
    ]
    for i, f in enumerate(bad):
        with pytest.raises(ValueError):
            f()
