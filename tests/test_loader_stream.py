"""Streaming a sharded checkpoint from its memory maps (load_checkpoint(lazy=True), the GPU upload's source): the
chunks equal the eager loader's arrays bit for bit, every byte read is released from the process, and the host
never materializes the model (tracemalloc bound far below the model's size)."""
import tracemalloc

import numpy as np
import pytest

from cugraphllm.config import ModelConfig
from cugraphllm.convert import write_hf
from cugraphllm.loader import dummy_weights, load_checkpoint
from cugraphllm.loader_common import LazyMatrix, read_rows, row_chunks
from cugraphllm.safetensors_io import SafetensorsFile

# GQA, awkward sizes: head_dim 24 (RoPE permutation on), hidden 700, vocab 1003; 6 layers, ~10 MB in fp16
CFG = ModelConfig(dim=192, n_layers=6, n_heads=8, n_kv_heads=2, vocab_size=1003, hidden_dim=700, max_seq_len=64)
CHUNK = 48 << 10  # bytes per streamed chunk: a few head groups of the 192-column matrices


@pytest.fixture(scope="module", params=["float16", "bfloat16"])
def folder(request, tmp_path_factory):
    w = dummy_weights(CFG, seed=3, dtype="float32")
    rng = np.random.default_rng(5)
    for lw in w.layers:  # non-unit gains, so that a wrong norm would show
        lw.attention_norm = rng.uniform(0.5, 1.5, CFG.dim).astype(np.float32)
    w.output = np.array(w.tok_embeddings[::-1])  # untied, different from the embedding
    return write_hf(tmp_path_factory.mktemp("hf") / request.param, CFG, w, dtype=request.param, shards=3)


def _matrices(w):
    yield "tok_embeddings", w.tok_embeddings
    for i, lw in enumerate(w.layers):
        for k in ("wqkv", "wo", "w13", "w2"):
            yield f"{k}[{i}]", getattr(lw, k)
    yield "output", w.output


def _stream(src, dtype, buf):
    """Every row of src through one reused buffer (as the pinned staging slot), concatenated."""
    out = []
    for a, b in row_chunks(src, CHUNK):
        view = buf[:(b - a) * src.shape[1]].reshape(b - a, src.shape[1])
        view[...] = np.nan  # poison: a chunk that is not fully written shows
        read_rows(src, a, b, view)
        out.append(view.copy())
    return np.concatenate(out)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_lazy_chunks_equal_eager_arrays(folder, dtype):
    eager = load_checkpoint(folder, dtype=dtype, progress=False)
    lazy = load_checkpoint(folder, dtype=dtype, progress=False, lazy=True)
    assert lazy.config == eager.config
    buf = np.empty(CHUNK // np.dtype(dtype).itemsize, dtype)
    for (name, e), (_, z) in zip(_matrices(eager.weights), _matrices(lazy.weights)):
        assert isinstance(z, LazyMatrix) and z.shape == e.shape and z.dtype == e.dtype, name
        np.testing.assert_array_equal(_stream(z, dtype, buf), e, err_msg=name)
        np.testing.assert_array_equal(np.asarray(z), e, err_msg=name)
    for le, ll in zip(eager.weights.layers, lazy.weights.layers):  # norms are read at once, as arrays
        np.testing.assert_array_equal(ll.attention_norm, le.attention_norm)


def test_chunks_keep_rope_heads_whole(folder):
    lazy = load_checkpoint(folder, dtype="float16", progress=False, lazy=True).weights
    wqkv = lazy.layers[0].wqkv
    assert wqkv.row_align == CFG.head_dim
    chunks = row_chunks(wqkv, 7 * CFG.dim * 2)  # 7 rows' worth: rounded down to one whole head
    assert all((b - a) == CFG.head_dim for a, b in chunks[:-1]) and chunks[-1][1] == CFG.qkv_dim
    with pytest.raises(ValueError, match="splits a head"):
        wqkv.read_rows(0, 5, np.empty((5, CFG.dim), np.float16))


def test_streaming_never_holds_the_model(folder, monkeypatch):
    released = []
    real = SafetensorsFile.release
    monkeypatch.setattr(SafetensorsFile, "release", lambda self, view: (released.append(view.nbytes),
                                                                        real(self, view)))
    model_bytes = 2 * CFG.n_params()
    buf = np.empty(CHUNK // 2, np.float16)
    tracemalloc.start()
    try:
        lazy = load_checkpoint(folder, dtype="float16", progress=False, lazy=True)
        total = 0
        for _, m in _matrices(lazy.weights):
            for a, b in row_chunks(m, CHUNK):
                read_rows(m, a, b, buf[:(b - a) * m.shape[1]].reshape(b - a, m.shape[1]))
                total += (b - a) * m.shape[1] * 2
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == model_bytes - 2 * (CFG.n_layers * 2 + 1) * CFG.dim  # every matrix row (norms: 1-D, apart)
    # bf16 checkpoints decode to float32 per chunk: a few chunks of temporaries, never the model (~10 MB)
    assert peak < 16 * CHUNK < model_bytes / 8, f"peak traced host memory {peak} bytes"
    assert sum(released) == total  # every stored byte read (2 bytes each, fp16 or bf16) was released again
