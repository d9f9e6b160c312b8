"""Tensor parallelism without a GPU: the one-line refusals (--tp too small, a model that does not split, too few
GPUs, the numpy backend), the per-GPU shapes against tp_shard's slices, and gpu/tp.py's rendezvous (every rank's
collective issued in ONE NCCL group, rank order; errors released to every rank, the group usable again) with a fake
NCCL and fake devices."""
import threading

import numpy as np
import pytest

from cugraphllm.config import ModelConfig, RuntimeConfig
from cugraphllm.errors import BackendError, ConfigError
from cugraphllm.gpu import tp, tp_shard
from cugraphllm.gpu.tp_engine import check_split, local_config, shard_bytes
from cugraphllm.loader import dummy_weights

TINY = ModelConfig.from_preset("tiny")  # 8 heads, 4 KV heads, vocab 512
L70 = ModelConfig.from_preset("llama-2-70b")


@pytest.mark.parametrize("cfg, n, what", [(TINY, 3, "n_heads 8 is not divisible by 3"),
                                          (TINY, 1, "at least 2 GPUs"), (TINY, 0, "at least 2 GPUs"),
                                          (TINY.with_(vocab_size=511), 2, "vocab_size 511"),
                                          (L70, 3, "n_heads 64")])
def test_split_refusals_are_one_line(cfg, n, what):
    with pytest.raises(ConfigError, match=what) as e:
        check_split(cfg, n)
    assert "\n" not in str(e.value)


def test_runtime_tp_must_be_a_positive_int():
    assert RuntimeConfig(tp=2).tp == 2
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(ConfigError, match="tp must be"):
            RuntimeConfig(tp=bad)


def test_too_few_gpus_is_one_line():
    with pytest.raises(BackendError, match="needs 4096 CUDA GPUs") as e:
        tp.check_devices(4096)
    assert "\n" not in str(e.value)


def test_numpy_backend_refuses_tp():
    from cugraphllm.api import _make_engine
    with pytest.raises(BackendError, match="needs the cuda backend"):
        _make_engine(TINY, RuntimeConfig(backend="numpy", tp=2))


@pytest.mark.parametrize("cfg, n", [(TINY, 2), (TINY, 4), (TINY, 8), (L70.with_(n_layers=1), 2),
                                    (L70.with_(n_layers=1), 16)])
def test_local_config_matches_the_shards(cfg, n):
    """Every GPU's local shapes (what its KV cache, attention and scratch are sized by) are the shapes of the
    slices tp_shard gives it, and shard_bytes counts exactly those slices plus the replicated embedding."""
    rng = np.random.default_rng(n)
    host = dummy_weights(cfg, seed=int(rng.integers(1 << 30)), dtype="float16") if cfg is TINY else None
    for r, p in enumerate(check_split(cfg, n)):
        lc = local_config(cfg, p)
        assert lc.head_dim == cfg.head_dim and lc.n_heads * n == cfg.n_heads
        assert lc.n_kv_heads == (max(1, cfg.n_kv_heads // n)) and lc.vocab_size * n == cfg.vocab_size
        if host is None:
            continue
        w = tp_shard.shard_weights(host, cfg, r, n)
        lw = w.layers[0]
        d = cfg.dim
        assert lw.wqkv.shape == (lc.qkv_dim, d) and lw.wo.shape == (d, lc.dim)
        assert lw.w13.shape == (2 * lc.hidden_dim, d) and lw.w2.shape == (d, lc.hidden_dim)
        assert w.output.shape == (lc.vocab_size, d)
        mats = [w.tok_embeddings, w.output] + [a for lw in w.layers for a in (lw.wqkv, lw.wo, lw.w13, lw.w2)]
        assert shard_bytes(cfg, lc) == sum(m.size * 2 for m in mats) + 12 * d


# ---- the rendezvous, with a fake NCCL ------------------------------------------------------------------------------
class FakeNccl:
    NCCL_FLOAT32, NCCL_SUM = 7, 0
    available = True

    def __init__(self, fail_on=None):
        self.log, self.depth, self.fail_on = [], 0, fail_on
        self.NcclCommunicator = self

    def initAll(self, devices):
        return [FakeComm(self, d) for d in devices]

    def groupStart(self):
        self.depth += 1
        self.log.append("start")

    def groupEnd(self):
        self.depth -= 1
        self.log.append("end")


class FakeComm:
    def __init__(self, nccl, dev):
        self.n, self.dev = nccl, dev

    def _call(self, kind, *args):
        assert self.n.depth == 1, "a collective outside its group"
        if self.n.fail_on == kind:
            raise RuntimeError("NCCL error 6: remote process\nexited")
        self.n.log.append((kind, self.dev) + args)

    def allReduce(self, send, recv, count, dtype, op, stream):
        self._call("allreduce", send, count, stream)

    def allGather(self, send, recv, count, dtype, stream):
        self._call("allgather", send, count, stream)

    def destroy(self):
        pass


class FakeDevice:
    def __init__(self, d):
        self.id = d

    def use(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


@pytest.fixture
def fake(monkeypatch):
    import cupy as cp
    nccl = FakeNccl()
    monkeypatch.setattr(tp, "_nccl", lambda: nccl)
    monkeypatch.setattr(cp.cuda, "Device", FakeDevice)
    return nccl


def _group(n):
    g = tp.Group(list(range(n)))
    return g, tp.Workers(g.devices, g)


@pytest.mark.parametrize("n", [2, 3])
def test_every_collective_is_one_group_of_all_ranks(fake, n):
    g, w = _group(n)
    try:
        def step(r):  # what forward does on rank r: 5 all-reduces then the logits all-gather
            for i in range(5):
                g.collective(r, ("allreduce", 1000 * r + i, 1000 * r + i, 4096, 77 + r))
            g.collective(r, ("allgather", 5000 + r, 6000 + r, 256, 77 + r))
        w.run(step)
        w.run(step)
    finally:
        w.close()
    groups = [fake.log[i:i + n + 2] for i in range(0, len(fake.log), n + 2)]
    assert len(groups) == 12
    for k, grp in enumerate(groups):
        assert grp[0] == "start" and grp[-1] == "end"
        kind = "allgather" if k % 6 == 5 else "allreduce"
        calls = grp[1:-1]
        assert [c[1] for c in calls] == list(range(n))      # rank order, each rank's own device
        assert all(c[0] == kind and c[4] == 77 + c[1] for c in calls)  # each on its rank's stream


def test_a_failing_rank_releases_the_others_and_the_group_recovers(fake):
    g, w = _group(2)
    try:
        def step(r):
            if r == 1:
                raise ValueError("rank 1 broke before its collective")
            g.collective(r, ("allreduce", 1, 1, 8, 0))   # would wait for rank 1 forever without the abort
        t = threading.Timer(20, g.abort)  # a safety net only: the test fails (not hangs) if abort is missing
        t.start()
        with pytest.raises(ValueError, match="rank 1 broke"):
            w.run(step)
        t.cancel()
        w.run(lambda r: g.collective(r, ("allreduce", r, r, 8, 0)))  # usable again
        assert fake.log[-4:] == ["start", ("allreduce", 0, 0, 8, 0), ("allreduce", 1, 1, 8, 0), "end"]
    finally:
        w.close()


@pytest.mark.parametrize("bad", ["nccl", "mismatch"])
def test_nccl_failure_or_mismatch_is_one_line_on_every_rank(fake, bad):
    fake.fail_on = "allreduce" if bad == "nccl" else None
    g, w = _group(2)
    try:
        def step(r):
            g.collective(r, ("allreduce" if r == 0 or bad == "nccl" else "allgather", 0, 0, 8, 0))
        with pytest.raises(BackendError) as e:
            w.run(step)
        msg = str(e.value)
        assert "\n" not in msg and "tensor parallel: NCCL" in msg
        assert ("remote process exited" in msg) if bad == "nccl" else ("disagree" in msg)
    finally:
        w.close()


def test_nccl_init_failure_is_one_line(monkeypatch):
    class Broken(FakeNccl):
        def initAll(self, devices):
            raise RuntimeError("ncclUnhandledCudaError\n(run with NCCL_DEBUG=INFO)")
    monkeypatch.setattr(tp, "_nccl", lambda: Broken())
    with pytest.raises(BackendError, match="NCCL init on GPUs \\[0, 1\\] failed") as e:
        tp.Group([0, 1])
    assert "\n" not in str(e.value)


def test_nvls_stays_off(monkeypatch):
    monkeypatch.setenv("NCCL_NVLS_ENABLE", "1")
    tp.nvls_off()
    import os
    assert os.environ["NCCL_NVLS_ENABLE"] == "0" and os.environ["NVSHMEM_DISABLE_NVLS"] == "1"
    assert os.environ["TORCH_SYMM_MEM_DISABLE_MULTICAST"] == "1"


def test_bench_flags():
    from cugraphllm.bench import parse_args
    a = parse_args(["--tp", "2", "--lengths", "500,128", "--modes", "hybrid"])
    assert a.tp == 2 and a.prompt_lens == [128, 500]
    with pytest.raises(SystemExit):
        parse_args(["--tp", "0"])
