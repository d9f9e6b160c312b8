"""scripts/prefill_ab.graph_ms on a fake engine: back to back, one pos reset and reps + 1 replays; with gap_ms,
every replay starts from pos 0 after the idle time and is timed alone."""
import types

from scripts import prefill_ab


class FakeEngine:
    def __init__(self):
        self.calls = []
        self.rt = types.SimpleNamespace(step=lambda kind, bucket, greedy: self.calls.append(("step", bucket)))

    def _set_step(self, pos, n, prompt=None):
        self.calls.append(("set", pos, n))

    def sync(self):
        self.calls.append(("sync",))


def test_back_to_back(monkeypatch):
    slept = []
    monkeypatch.setattr(prefill_ab.time, "sleep", slept.append)
    e = FakeEngine()
    assert prefill_ab.graph_ms(e, 16, 3) >= 0
    assert [c for c in e.calls if c[0] == "set"] == [("set", 0, 16)]
    assert sum(c[0] == "step" for c in e.calls) == 4 and slept == []


def test_gap_resets_pos_and_sleeps_before_each_replay(monkeypatch):
    slept = []
    monkeypatch.setattr(prefill_ab.time, "sleep", slept.append)
    e = FakeEngine()
    assert prefill_ab.graph_ms(e, 32, 3, n=20, gap_ms=50) >= 0
    assert slept == [0.05] * 3
    sets = [i for i, c in enumerate(e.calls) if c[0] == "set"]
    steps = [i for i, c in enumerate(e.calls) if c[0] == "step"]
    assert len(sets) == 4 and len(steps) == 4 and all(e.calls[i] == ("set", 0, 20) for i in sets)
    assert all(s < t for s, t in zip(sets[1:], steps[1:]))  # each timed replay follows its own reset


def test_norm_knockout_replaces_the_binding_the_prefill_norms_call(monkeypatch):
    """ko:norm must patch the name norm_qkv_rope / norm_matmul_silu resolve (ops_gemv's import of rmsnorm): patching
    ops.rmsnorm, as before the ops split, knocked out nothing."""
    from cugraphllm.gpu import ops, ops_gemv  # noqa: F401 (ops first: it loads ops_gemv)
    for owner, name, fn in prefill_ab._knockouts()["norm"]:
        monkeypatch.setattr(owner, name, fn)
    for op in (ops_gemv.norm_qkv_rope, ops_gemv.norm_matmul_silu):
        assert op.__globals__["rmsnorm"] is fn
    assert fn(None, types.SimpleNamespace(shape=(16, 64)), None, 1e-5) is None  # M > 1: no kernel, out untouched


def test_epilogue_knockout_reaches_the_cublas_paths(monkeypatch):
    """ko:epi replaces the stand-alone epilogue launcher that gemm.qkv_rope / matmul_silu call after cuBLAS."""
    from cugraphllm.gpu import gemm
    (owner, name, fn), = prefill_ab._knockouts()["epi"]
    monkeypatch.setattr(owner, name, fn)
    for op in (gemm.qkv_rope, gemm.matmul_silu):
        assert op.__globals__["_epi_launch"] is fn
    assert fn("silu_mul_rows", "float16", 512, 11008, ()) is None


def test_apply_sets_and_undoes_dict_entries():
    """module.NAME[KEY]=VALUE sets one entry of a dict attribute ('|' for ','); the next setting restores the entry
    it replaced and drops the one it added."""
    from cugraphllm.gpu import gemm
    from scripts import prefill_ab as pa
    before = dict(gemm.OWN_CONFIG)
    pa.apply("gemm.OWN_CONFIG[('residual'|2)]=(1|8|2|1|0|0|3|1);gemm.OWN_CONFIG[('qkv'|9)]=(2|4|2)")
    assert gemm.OWN_CONFIG[("residual", 2)] == (1, 8, 2, 1, 0, 0, 3, 1) and gemm.OWN_CONFIG[("qkv", 9)] == (2, 4, 2)
    pa.apply("gemm.AUTO_RESIDUAL_MAX_K=11008")
    assert gemm.OWN_CONFIG == before and gemm.AUTO_RESIDUAL_MAX_K == 11008
    pa.apply("gemm.OWN_CONFIG[('silu'|2)]=(2|2|2|1|0|2|2)")
    assert gemm.AUTO_RESIDUAL_MAX_K == 4096 and gemm.OWN_CONFIG[("silu", 2)] == (2, 2, 2, 1, 0, 2, 2)
    pa.apply("gemm.AUTO_RESIDUAL_MAX_K=4096")
    assert gemm.OWN_CONFIG == before
