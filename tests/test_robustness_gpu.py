"""Robustness of the cuda backend (gpu-marked: skipped without a GPU): the context limit, out of memory at load,
Ctrl-C at arbitrary points of a decode, a failed graph capture.

Covered elsewhere, not repeated: the kernels never write K/V at pos >= S (test_gemv_gpu.py::
test_qkv_rope_never_writes_outside); same seed, same tokens in every mode, and no memory-pool growth over
many generations (test_engine_gpu.py); the 10,000-token soak with P50/P99 latency is scripts/soak.py, run on
the device by the integrator. The CPU counterparts are in test_robustness.py."""
import gc
import re

import numpy as np
import pytest

from conftest import interrupt_cli
from cugraphllm.config import ModelConfig, RuntimeConfig
from cugraphllm.errors import BackendError, ContextLimitError
from cugraphllm.sampling import SamplingParams
from test_robustness import run_interrupts

pytestmark = pytest.mark.gpu
GREEDY = SamplingParams()
SAMPLED = SamplingParams(temperature=0.8, top_k=40, top_p=0.95, repetition_penalty=1.1, seed=5)
PROMPT = [1, 403, 407, 261, 378]  # "Once upon a time" in tok512


@pytest.fixture(scope="module")
def stories(stories_dir):
    from cugraphllm.loader import load_checkpoint
    return load_checkpoint(stories_dir / "stories260K.bin")


def cuda_engine(ck, mode="hybrid", max_seq_len=None):
    from cugraphllm.gpu.engine import CudaEngine
    return CudaEngine(ck.config, ck.weights, RuntimeConfig(backend="cuda", mode=mode, max_seq_len=max_seq_len))


# ---- context limit -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["eager", "hybrid"])
def test_prompt_over_the_context_leaves_cache_untouched(stories, mode):
    eng = cuda_engine(stories, mode, max_seq_len=64)
    out = list(eng.generate(PROMPT, SAMPLED, 20))                 # the cache holds real rows (never zeros)
    eng.sync()
    kv, hist, tokens = eng.kv.data.get(), eng.s.hist_host.copy(), list(eng.tokens)
    assert np.abs(kv.astype(np.float32)).sum() > 0 and len(tokens) == 24
    for new in ([7] * 65, [7] * (64 - len(tokens) + 1)):
        with pytest.raises(ContextLimitError, match="context of 64"):
            eng.generate(new, SAMPLED, 1)                         # at the call: no GPU work queued
        eng.sync()
        assert eng.tokens == tokens and np.array_equal(eng.kv.data.get(), kv)
        assert np.array_equal(eng.s.hist_host, hist)
    eng.reset()
    assert list(eng.generate(PROMPT, SAMPLED, 20)) == out         # and the engine still works


@pytest.mark.parametrize("mode", ["eager", "graph", "hybrid"])
def test_run_to_the_context_limit_equals_numpy(stories, mode):
    from cugraphllm.reference import NumpyEngine
    S = 40
    eng = cuda_engine(stories, mode, max_seq_len=S)
    got = list(eng.generate(PROMPT, GREEDY, 1000))
    want = list(NumpyEngine(stories.config, stories.weights, max_seq_len=S).generate(PROMPT, GREEDY, 1000))
    assert got == want and len(got) == S - len(PROMPT) + 1        # the last token sits at position S: not cached
    assert len(eng.tokens) == S and eng.tokens == PROMPT + got[:-1]
    assert int(eng.s.hist_host[S]) == got[-1]                     # hist has S + 1 slots; nothing beyond


def test_api_cuda_context_message(stories_dir):
    from cugraphllm.api import LLM
    llm = LLM.load("dummy:tiny", tokenizer=stories_dir / "tok512.model", backend="cuda", max_seq_len=32)
    llm.generate("Once upon a time", max_new_tokens=100)
    assert llm.last.finish_reason == "context" and "context limit of 32" in llm.last.message
    with pytest.raises(ContextLimitError):
        llm.generate("Once upon a time " * 20)


# ---- out of memory -------------------------------------------------------------------------------------------------
def too_big_config() -> ModelConfig:
    """llama-2-70b (138 GB of float16 weights), with more layers if this GPU is larger than that."""
    import cupy as cp
    total = cp.cuda.runtime.memGetInfo()[1]
    cfg = ModelConfig.from_preset("llama-2-70b")
    while 2 * cfg.n_params() < 1.2 * total:
        cfg = cfg.with_(n_layers=2 * cfg.n_layers)
    return cfg


def pool_state():
    import cupy as cp
    gc.collect()
    pool = cp.get_default_memory_pool()
    return pool.used_bytes(), cp.cuda.runtime.memGetInfo()[0]


def test_out_of_memory_at_load_is_one_clear_line():
    from cugraphllm.gpu.engine import CudaEngine
    used0, free0 = pool_state()
    with pytest.raises(BackendError) as e:
        CudaEngine.dummy(too_big_config(), RuntimeConfig(backend="cuda"))
    msg = str(e.value)
    assert "\n" not in msg and "out of GPU memory" in msg, msg
    need, free = (float(x) for x in re.search(r"needs ([\d.]+) GiB.* ([\d.]+) GiB are free", msg).groups())
    assert need > free and abs(free - free0 / 2 ** 30) < 1.0, msg
    del e
    used1, free1 = pool_state()
    assert used1 == used0 and abs(free1 - free0) < 64 << 20         # nothing left allocated


def test_out_of_memory_past_the_estimate_is_a_backend_error(monkeypatch):
    import cupy as cp
    import cugraphllm.gpu.engine as engine_mod
    used0, _ = pool_state()
    monkeypatch.setattr(engine_mod, "check_gpu", lambda *a: None)  # as if the estimate had been too low
    try:
        engine_mod.CudaEngine.dummy(too_big_config(), RuntimeConfig(backend="cuda"))
        raised = None
    except Exception as exc:  # caught here, not by pytest: its traceback would keep the partial weights alive
        raised, msg = type(exc), str(exc)
    used1, _ = pool_state()
    cp.get_default_memory_pool().free_all_blocks()              # give the memory back to the next tests
    assert used1 == used0                                         # nothing left allocated
    assert raised is BackendError and "\n" not in msg and "GiB" in msg, (raised, msg)


# ---- Ctrl-C --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["hybrid", "graph", "eager"])
def test_ctrl_c_anywhere_keeps_the_cuda_engine_valid(stories_dir, mode):
    """SIGINT at random points of pipelined decodes (and of captures and background compiles): the cached tokens
    stay a prefix of the uninterrupted run, continuing from them gives its next tokens, and the same request
    again equals a fresh engine's tokens (graphs and caches still valid)."""
    run_interrupts("cuda", 20, stories_dir / "stories260K.bin", mode, timeout=600)


def test_cli_generate_ctrl_c_on_cuda_exits_130(llama2_tokenizer_dir):
    code, err = interrupt_cli(["generate", "--model", "dummy:llama-2-7b", "--tokenizer",
                               llama2_tokenizer_dir / "tokenizer.model", "--backend", "cuda", "--prompt", "Once",
                               "--max-new-tokens", "4000"], 1.0, 120)
    assert code == 130 and "Traceback" not in err and "finish: interrupted" in err, err


# ---- failed capture ------------------------------------------------------------------------------------------------
class FailingStream:
    """Stands in for the runtime's capture stream: begin_capture fails (as it does on a driver without graphs)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def begin_capture(self, *a, **k):
        raise RuntimeError("injected: cudaStreamBeginCapture failed")


def fail_at_begin(monkeypatch):
    import cugraphllm.gpu.runtime as rt
    real = rt.GraphRuntime.__init__

    def init(self, engine, mode):
        real(self, engine, mode)
        self._capture_stream = FailingStream()
    monkeypatch.setattr(rt.GraphRuntime, "__init__", init)


def fail_inside(monkeypatch):
    """The kernels are recorded, then something raises before end_capture (e.g. an illegal op inside capture)."""
    import cugraphllm.gpu.runtime as rt
    real_capture, real_forward, state = rt.GraphRuntime.capture, rt.forward, {"on": False}

    def capture(self, key):
        state["on"] = True
        try:
            return real_capture(self, key)
        finally:
            state["on"] = False

    def forward(*a, **k):
        real_forward(*a, **k)
        if state["on"]:
            raise RuntimeError("injected: failure inside the capture")
    monkeypatch.setattr(rt.GraphRuntime, "capture", capture)
    monkeypatch.setattr(rt, "forward", forward)


@pytest.mark.parametrize("inject", [fail_at_begin, fail_inside])
@pytest.mark.parametrize("mode", ["graph", "hybrid"])
def test_failed_capture_falls_back_to_eager_with_a_warning(stories, monkeypatch, inject, mode):
    inject(monkeypatch)
    with pytest.warns(UserWarning, match="capture failed"):
        eng = cuda_engine(stories, mode)
        eng.wait_ready()
    got = []
    for p in (GREEDY, SAMPLED):
        eng.reset()
        got.append(list(eng.generate(PROMPT, p, 100)))
    assert not eng.rt.graphs and eng.rt.failed                    # every step ran eagerly
    if inject is fail_inside:
        assert not eng.rt._capture_stream.is_capturing()          # the failed capture was ended
    monkeypatch.undo()
    ref = cuda_engine(stories, mode)  # the same mode with working graphs: the fallback launches the same kernels
    want = []
    for p in (GREEDY, SAMPLED):
        ref.reset()
        want.append(list(ref.generate(PROMPT, p, 100)))
    assert got == want


def test_generation_pauses_the_garbage_collector_and_restores_it(stories):
    import gc
    eng = cuda_engine(stories, "hybrid")
    assert gc.isenabled()
    it = eng.generate(PROMPT, GREEDY, 20)
    first = next(it)
    assert not gc.isenabled()               # paused while the request's tokens flow
    it.close()                               # early stop (the consumer broke off)
    assert gc.isenabled() and isinstance(first, int)
    eng.reset()
    assert len(list(eng.generate(PROMPT, GREEDY, 5))) == 5 and gc.isenabled()
    gc.disable()                             # a caller that runs with the collector off keeps it off
    try:
        eng.reset()
        list(eng.generate(PROMPT, GREEDY, 3))
        assert not gc.isenabled()
    finally:
        gc.enable()
