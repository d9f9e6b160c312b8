"""Tensor parallelism with packed quantized layers (gpu/tp_shard.py on quant.formats.QuantLinear), in NumPy: every
shard holds exactly the codes, scales and zeros of its slice (its dequantized matrix equals the slice of the whole
one, bit for bit), the split matmuls plus sums equal the unsplit ones in float64, the per-GPU byte count is the
bytes of the shards, and what cannot split (an int4 group across GPUs, a GPTQ act-order perm) is a one-line
ConfigError."""
import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.config import ModelConfig
from cugraphllm.errors import ConfigError
from cugraphllm.gpu import tp_shard as tp
from cugraphllm.gpu.tp_engine import check_quant, check_split, local_config, shard_bytes
from cugraphllm.quant.formats import QuantLinear, dequantize, quantize
from cugraphllm.weights import LayerWeights, Weights

# GQA (8 heads, 4 KV heads), awkward vocabulary; hidden 1536 splits into whole groups of 64 over 2 and 4 GPUs
QC = ModelConfig(dim=512, n_layers=1, n_heads=8, n_kv_heads=4, vocab_size=1002, hidden_dim=1536)


def _layer(c, fmt, g, rng, gain=True):
    def q(r, k, with_gain=False):
        ql = quantize(rng.standard_normal((r, k)) / np.sqrt(k), fmt, g)
        if with_gain:  # a GPTQ-style unfolded norm gain, in packed (= original) column order
            ql.gain = (1 + 0.2 * rng.standard_normal(k)).astype(np.float32)
        return ql
    ones = np.ones(c.dim, np.float32)
    return LayerWeights(attention_norm=ones, wqkv=q(c.qkv_dim, c.dim, gain), wo=q(c.dim, c.dim), ffn_norm=ones,
                        w13=q(2 * c.hidden_dim, c.dim, gain), w2=q(c.dim, c.hidden_dim))


@pytest.mark.parametrize("fmt, g", [("fp8", 128), ("int8", 128), ("int4", 64), ("int4", 128)])
@pytest.mark.parametrize("n", [2, 4])
def test_quant_shards_are_exact_slices_and_sum_to_unsplit(fmt, g, n):
    c, rng = QC, np.random.default_rng(n * 7 + len(fmt))
    lw = _layer(c, fmt, g, rng)
    full = {k: dequantize(getattr(lw, k)) for k in ("wqkv", "wo", "w13", "w2")}
    x, att = rng.standard_normal((3, c.dim)), rng.standard_normal((3, c.dim))
    h13 = x @ full["w13"].T
    h = ref.silu(h13[:, :c.hidden_dim]) * h13[:, c.hidden_dim:]
    out_o, out_2 = np.zeros((3, c.dim)), np.zeros((3, c.dim))
    for r in range(n):
        p = tp.plan(c, r, n)
        s = tp.shard_layer(lw, c, p)
        hd, (q0, q1), (k0, k1), (f0, f1) = c.head_dim, p.q_heads, p.kv_heads, p.hidden
        rows = [(q0 * hd, q1 * hd), (c.dim + k0 * hd, c.dim + k1 * hd),
                (c.dim + c.kv_dim + k0 * hd, c.dim + c.kv_dim + k1 * hd)]
        assert all(isinstance(getattr(s, k), QuantLinear) for k in ("wqkv", "wo", "w13", "w2"))
        np.testing.assert_array_equal(dequantize(s.wqkv), np.concatenate([full["wqkv"][a:b] for a, b in rows]))
        np.testing.assert_array_equal(dequantize(s.w13), np.concatenate([full["w13"][f0:f1],
                                                                         full["w13"][c.hidden_dim + f0:
                                                                                     c.hidden_dim + f1]]))
        np.testing.assert_array_equal(dequantize(s.wo), full["wo"][:, slice(*p.q_cols)])
        np.testing.assert_array_equal(dequantize(s.w2), full["w2"][:, f0:f1])
        for m in (s.wqkv, s.wo, s.w13, s.w2):  # contiguous host arrays: what the upload copies
            assert all(a.flags.c_contiguous for a in (m.qweight, m.scales) + ((m.zeros,) if fmt == "int4" else ()))
        out_o += att[:, slice(*p.q_cols)] @ dequantize(s.wo).T
        out_2 += h[:, f0:f1] @ dequantize(s.w2).T
    np.testing.assert_allclose(out_o, att @ full["wo"].T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out_2, h @ full["w2"].T, rtol=1e-12, atol=1e-12)


def test_quant_head_splits_by_vocabulary():
    c, rng = QC, np.random.default_rng(3)
    head = quantize(rng.standard_normal((c.vocab_size, c.dim)), "int4", 64)
    w = Weights(tok_embeddings=np.zeros((c.vocab_size, c.dim), np.float16), layers=[_layer(c, "int8", 128, rng)],
                norm=np.ones(c.dim, np.float32), output=head)
    full, x = dequantize(head), rng.standard_normal(c.dim)
    logits = np.concatenate([dequantize(tp.shard_weights(w, c, r, 2).output) @ x for r in range(2)])
    np.testing.assert_array_equal(logits, full @ x)


@pytest.mark.parametrize("fmt, g, quant_head", [("int4", 64, False), ("int8", 128, True), ("int4", 128, True)])
def test_shard_bytes_counts_the_quantized_shards(fmt, g, quant_head):
    c, rng = QC, np.random.default_rng(5)
    lw = _layer(c, fmt, g, rng, gain=False)
    head = quantize(rng.standard_normal((c.vocab_size, c.dim)), fmt, g) if quant_head else \
        rng.standard_normal((c.vocab_size, c.dim)).astype(np.float16)
    w = Weights(tok_embeddings=np.zeros((c.vocab_size, c.dim), np.float16), layers=[lw],
                norm=np.ones(c.dim, np.float32), output=head)
    for r, p in enumerate(check_split(c, 2)):
        s = tp.shard_weights(w, c, r, 2)
        mats = [s.layers[0].wqkv, s.layers[0].wo, s.layers[0].w13, s.layers[0].w2, s.output]
        got = w.tok_embeddings.nbytes + sum(m.nbytes for m in mats) + 3 * 4 * c.dim
        assert shard_bytes(c, local_config(c, p), 2, fmt, g, quant_head) == got


def test_what_cannot_split_is_one_line():
    c, rng = QC, np.random.default_rng(9)
    lw = _layer(c, "int4", 128, rng, gain=False)
    c8 = c.with_(n_kv_heads=8, vocab_size=1000)
    with pytest.raises(ConfigError, match="int4 group size 128") as e:  # hidden 1536 / 8 = 192 columns per GPU
        tp.shard_layer(lw, c8, tp.plan(c8, 3, 8))
    assert "\n" not in str(e.value)
    lw.wo.perm = rng.permutation(c.dim).astype(np.int32)
    with pytest.raises(ConfigError, match="act-order perm") as e:
        tp.shard_layer(lw, c, tp.plan(c, 1, 2))
    assert "\n" not in str(e.value)
    # quantize at load: the same rule, checked on every GPU's shapes before anything is allocated
    with pytest.raises(ConfigError, match="tensor parallel over 8 GPUs.*tensor wo") as e:
        for p in check_split(c8, 8):
            check_quant(c8, local_config(c8, p), 8, "int4", 128)
    assert "\n" not in str(e.value)
    for p in check_split(c, 2):  # 768 columns per GPU: whole groups of 128
        check_quant(c, local_config(c, p), 2, "int4", 128, True)


# ---- the residual op's TP path routes a QuantLinear weight like one GPU does (fakes: no GPU needed) -------------
class _Dev(np.ndarray):
    """A NumPy array with the `.data.ptr` the launchers' alignment checks read."""
    @property
    def data(self):
        from types import SimpleNamespace
        return SimpleNamespace(ptr=self.ctypes.data)


def _dev(a):
    return np.ascontiguousarray(a).view(_Dev)


@pytest.mark.parametrize("quant", [False, True])
def test_tp_residual_partial_product_goes_through_the_weight_dispatch(monkeypatch, quant):
    from cugraphllm.gpu import ops, ops_quant
    from cugraphllm.gpu.state import Residual
    rng, D, K = np.random.default_rng(quant), 64, 48
    w16 = rng.standard_normal((D, K)).astype(np.float16)
    w = quantize(w16, "int4", 16) if quant else _dev(w16)
    a = _dev(rng.standard_normal((1, K)).astype(np.float16))
    calls = []

    def product(name):
        def run(p, a_, w_):
            calls.append((name, p.shape, w_ is w))
            p[:] = a_.astype(np.float64) @ (dequantize(w_) if quant else w_.astype(np.float64)).T
        return run

    class Comm:
        part = _dev(np.full((4, D), np.nan, np.float32))

        def all_reduce(self, p):
            calls.append(("all_reduce", p.shape, bool(np.isfinite(p).all())))

    class Kernel:
        def __init__(self, name):
            self.name = name

        def __call__(self, grid, block, args):
            calls.append((self.name, grid, np.shares_memory(np.asarray(args[3]), np.asarray(Comm.part))))

    monkeypatch.setattr(ops_quant, "matmul_logits", product("ops_quant.matmul_logits"))
    monkeypatch.setattr(ops, "_launch_gemv", lambda kernel, t, K_, n, args: product(kernel)(*args[:3]))
    monkeypatch.setattr(ops, "_fn", lambda file, kernel, t, **d: Kernel(f"{file}:{kernel}"))
    r = Residual(_dev(np.zeros((1, D), np.float32)), _dev(np.zeros((1, D), np.float16)),
                 _dev(np.zeros(D // 2, np.float32)), Comm())
    ops.matmul_residual(r, a, w)
    first = "ops_quant.matmul_logits" if quant else "gemv_logits"
    assert [c[0] for c in calls] == [first, "all_reduce", "tp.cu:residual_add_ss"], calls
    assert calls[0][1] == (1, D) and calls[0][2] and calls[1][2]  # this rank's weight; a finite partial sum
    assert calls[2][2]                                             # the add reads the all-reduced part
    want = a.astype(np.float64) @ (dequantize(w) if quant else w16.astype(np.float64)).T
    np.testing.assert_allclose(np.asarray(Comm.part[:1]), want, rtol=1e-6, atol=1e-6)
