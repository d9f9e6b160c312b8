"""GPTQ (v1 / v2; group 128, 64, 32, -1; sym / asym; desc_act) and AWQ GEMM folders, built from known integer
matrices by packers written from the format description (quant_ckpt_helpers.py), load as exactly the weights those
integers mean: dequantize(loaded) equals the float64 formula bit for bit, q/k rows un-permuted, norm gains in
QuantLinear.gain. stories260K repacked as GPTQ / AWQ gives the same greedy tokens as our own int4 of the same
integers. Bad folders give one-line errors naming the file and the tensor."""
import json

import numpy as np
import pytest

from cugraphllm.errors import CheckpointError
from cugraphllm.loader import load_checkpoint
from cugraphllm.quant.formats import QuantLinear, dequantize, pack_int4
from cugraphllm.quant.layers import QuantSpec
from cugraphllm.reference import NumpyEngine
from cugraphllm.safetensors_io import SafetensorsFile, write_safetensors_typed
from cugraphllm.sampling import SamplingParams
from quant_ckpt_helpers import SMALL, small_weights, unpermute, write_int4_folder


def _expected(cfg, want, w, i):
    """float64 effective (wqkv, wo, w13, w2) of layer i from the per-module dense matrices (HF row order)."""
    p = f"model.layers.{i}."
    lw = w.layers[i]
    F = cfg.hidden_dim
    plain = {"mlp.gate_proj": lw.w13[:F], "mlp.up_proj": lw.w13[F:], "mlp.down_proj": lw.w2}

    def get(n):  # a 16-bit module (None in want) is the original matrix
        return want[p + n] if want[p + n] is not None else np.asarray(plain[n], np.float64)
    qkv = np.concatenate([unpermute(get("self_attn.q_proj"), cfg.n_heads),
                          unpermute(get("self_attn.k_proj"), cfg.n_kv_heads), get("self_attn.v_proj")])
    w13 = np.concatenate([get("mlp.gate_proj"), get("mlp.up_proj")])
    an, fn = np.asarray(lw.attention_norm, np.float64), np.asarray(lw.ffn_norm, np.float64)
    return qkv * an[None, :], get("self_attn.o_proj"), w13 * fn[None, :], get("mlp.down_proj")


CASES = [("gptq", 128, False, False, True), ("gptq", 64, True, False, True), ("gptq", 32, False, True, True),
         ("gptq", -1, True, True, False), ("gptq", 32, True, True, False), ("gptq", 128, False, True, False),
         ("awq", 128, False, False, True), ("awq", 64, False, False, True)]


@pytest.mark.parametrize("method,g,sym,desc_act,v1", CASES)
def test_int4_folder_dequantizes_exactly(tmp_path, method, g, sym, desc_act, v1):
    w = small_weights(3)
    want = write_int4_folder(tmp_path, SMALL, w, method, g, sym=sym, desc_act=desc_act, v1=v1, seed=g + 7)
    got = load_checkpoint(tmp_path).weights
    for i, lw in enumerate(got.layers):
        assert isinstance(lw.wqkv, QuantLinear) and lw.wqkv.fmt == "int4"
        assert lw.wqkv.group_size == (SMALL.dim if g == -1 else g)
        np.testing.assert_array_equal(lw.attention_norm, 1)  # the gain moved into the QuantLinear
        np.testing.assert_array_equal(lw.ffn_norm, 1)
        if desc_act and 0 < g < SMALL.dim:  # one group per row needs no reorder
            assert not np.array_equal(lw.wqkv.perm, np.arange(SMALL.dim))
            np.testing.assert_array_equal(np.diff(lw.wqkv.perm.reshape(-1, g), axis=1) > 0, True)  # stable
        else:
            assert lw.wqkv.perm is None
        assert (lw.w2.perm is not None) == (desc_act and 0 < g < SMALL.hidden_dim)
        mats = (lw.wqkv, lw.wo, lw.w13, lw.w2)
        for name, a, e in zip(("wqkv", "wo", "w13", "w2"), mats, _expected(SMALL, want, w, i)):
            np.testing.assert_array_equal(dequantize(a), e, err_msg=f"layer {i} {name}")
    np.testing.assert_array_equal(got.norm, w.norm)   # lm_head stays 16-bit: the final norm keeps its gain
    np.testing.assert_array_equal(got.output, w.output)


def test_gptq_quantized_lm_head(tmp_path):
    """GPTQ with lm_head quantized: the final norm's gain moves into the head's QuantLinear."""
    w = small_weights(3)
    want = write_int4_folder(tmp_path, SMALL, w, "gptq", 32, head=True)
    got = load_checkpoint(tmp_path).weights
    assert isinstance(got.output, QuantLinear) and not isinstance(got.tok_embeddings, QuantLinear)
    np.testing.assert_array_equal(got.norm, 1)
    np.testing.assert_array_equal(dequantize(got.output), want["lm_head"] * w.norm.astype(np.float64)[None, :])


def test_fused_linears_must_share_a_format(tmp_path):
    write_int4_folder(tmp_path, SMALL, small_weights(3), "gptq", 32, skip=("self_attn.k_proj",))
    with pytest.raises(CheckpointError, match=r"tensor 'model.layers.0.self_attn.k_proj': stored 16-bit while "
                                              r"model.layers.0.self_attn.q_proj is quantized"):
        load_checkpoint(tmp_path)


def test_gptq_v1_zero_wraps_to_16(tmp_path):
    """v1 stores zero - 1: a stored 15 is a zero point of 16 (the value every GPTQ v1 kernel uses)."""
    w = small_weights(3)
    want = write_int4_folder(tmp_path, SMALL, w, "gptq", 32, v1=False)
    f = SafetensorsFile(tmp_path / "model.safetensors")
    tensors = {n: np.array(f.raw(n, ints=True)) for n in f.tensors}
    tensors["model.layers.0.self_attn.o_proj.qzeros"][:] = -1     # every nibble 15
    write_safetensors_typed(tmp_path / "model.safetensors", tensors)
    conf = json.loads((tmp_path / "config.json").read_text())
    conf["quantization_config"]["checkpoint_format"] = "gptq"
    (tmp_path / "config.json").write_text(json.dumps(conf))
    wo = load_checkpoint(tmp_path).weights.layers[0].wo
    np.testing.assert_array_equal(wo.zeros, 16)
    assert want  # the folder was built from known integers


@pytest.fixture(scope="module")
def stories(stories_dir):
    return load_checkpoint(stories_dir / "stories260K.bin")


def _ours(cfg, w, want):
    """float32 Weights holding the effective matrices the integers mean (gains folded, norms ones)."""
    from cugraphllm.weights import LayerWeights, Weights
    layers = []
    for i, lw in enumerate(w.layers):
        qkv, wo, w13, w2 = (m.astype(np.float32) for m in _expected(cfg, want, w, i))
        ones = np.ones(cfg.dim, np.float32)
        # a 16-bit MLP keeps its gain in the norm field
        fn = ones if want[f"model.layers.{i}.mlp.up_proj"] is not None else lw.ffn_norm
        w13 = w13 if fn is ones else np.asarray(lw.w13, np.float32)
        layers.append(LayerWeights(ones, qkv, wo, fn, w13, w2))
    return Weights(w.tok_embeddings, layers, w.norm, w.tok_embeddings)


def _greedy(cfg, w, prompt, n=60):
    eng = NumpyEngine(cfg, w, 128)
    return list(eng.generate(prompt, SamplingParams(temperature=0.0), n))


@pytest.mark.parametrize("method,g,sym,desc_act,v1", [("gptq", 32, True, False, True), ("gptq", 64, False, False, False),
                                                     ("gptq", 32, False, True, True), ("awq", 32, False, False, True)])
def test_stories260k_int4_greedy(tmp_path, stories, method, g, sym, desc_act, v1):
    """The MLP of stories260K (hidden 172) cannot be packed: GPTQ / AWQ keep it 16-bit, as modules_to_not_convert."""
    cfg, w = stories.config, stories.weights
    want = write_int4_folder(tmp_path, cfg, w, method, g, sym=sym, desc_act=desc_act, v1=v1,
                             skip=("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"))
    got = load_checkpoint(tmp_path)
    assert got.config.tie_embeddings and isinstance(got.weights.layers[0].wqkv, QuantLinear)
    assert not isinstance(got.weights.layers[0].w13, QuantLinear)
    for i, lw in enumerate(got.weights.layers):
        qkv, wo, _, _ = _expected(cfg, want, w, i)
        np.testing.assert_array_equal(dequantize(lw.wqkv), qkv)
        np.testing.assert_array_equal(dequantize(lw.wo), wo)
    prompt = [1, 403, 407, 261, 378]
    ours_tokens = _greedy(cfg, _ours_quant(w, got), prompt)
    assert _greedy(got.config, got.weights, prompt) == ours_tokens
    fp32 = _greedy(cfg, w, prompt)
    assert sum(a == b for a, b in zip(ours_tokens, fp32)) >= 10   # int4 of a real model stays on track a while


def _ours_quant(w, got):
    """Our own int4 of the same integers: each loaded wqkv / wo re-made as a QuantLinear from its integers,
    scales and zeros, the norm gain left in the norm field (the 16-bit form), instead of in QuantLinear.gain."""
    from cugraphllm.quant.formats import unpack_int4
    from cugraphllm.weights import LayerWeights, Weights

    def remake(q):
        return QuantLinear("int4", pack_int4(unpack_int4(q.qweight)), q.scales.copy(), q.shape, q.zeros.copy(),
                           q.group_size, q.perm)
    layers = [LayerWeights(lw0.attention_norm, remake(lw.wqkv), remake(lw.wo), lw0.ffn_norm, lw0.w13, lw0.w2)
              for lw0, lw in zip(w.layers, got.weights.layers)]
    return Weights(w.tok_embeddings, layers, w.norm, w.tok_embeddings)


# ---- bad folders ---------------------------------------------------------------------------------------------
def _folder(tmp_path, **kw):
    write_int4_folder(tmp_path, SMALL, small_weights(3), kw.pop("method", "gptq"), kw.pop("g", 32), **kw)
    return tmp_path


def _edit_config(path, **changes):
    conf = json.loads((path / "config.json").read_text())
    conf["quantization_config"].update(changes)
    (path / "config.json").write_text(json.dumps(conf))


def _edit_tensor(path, name, fn):
    f = SafetensorsFile(path / "model.safetensors")
    tensors = {n: np.array(f.raw(n, ints=True)) for n in f.tensors}
    del f
    tensors[name] = fn(tensors[name])
    write_safetensors_typed(path / "model.safetensors", tensors)


@pytest.mark.parametrize("changes,words", [
    ({"bits": 8}, "config.json: GPTQ bits 8 is not supported; supported: 4"),
    ({"group_size": 12}, "config.json: GPTQ group_size 12 is not supported; supported: -1 or a positive multiple"),
    ({"group_size": 48}, r"model.safetensors: tensor 'model.layers.0.self_attn.q_proj': GPTQ group_size 48 with "
                         r"\[128 out, 128 in\]: supported: .* a group size that divides the input"),
    ({"checkpoint_format": "marlin"}, "config.json: GPTQ checkpoint_format 'marlin'"),
    ({"quant_method": "bitsandbytes"}, "config.json: quant_method 'bitsandbytes' is not supported; supported: gptq")])
def test_unsupported_gptq_config(tmp_path, changes, words):
    _edit_config(_folder(tmp_path), **changes)
    with pytest.raises(CheckpointError, match=words) as e:
        load_checkpoint(tmp_path)
    assert "\n" not in str(e.value)


def test_unsupported_awq_config(tmp_path):
    _edit_config(_folder(tmp_path, method="awq"), version="gemv")
    with pytest.raises(CheckpointError, match="AWQ version 'gemv' is not supported; supported: gemm"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("tensor,fn,words", [
    ("model.layers.1.mlp.up_proj.qweight", lambda a: a[:-1], r"up_proj.qweight': shape \[15, 384\], expected \[16, 384\]"),
    ("model.layers.0.self_attn.k_proj.scales", lambda a: a[:, :8], r"k_proj.scales': shape \[4, 8\], expected \[4, 64\]"),
    ("model.layers.0.self_attn.o_proj.scales", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 5, 0, a),
     "o_proj': 1 scales are NaN, Inf or 0"),
    ("model.layers.1.mlp.down_proj.scales", lambda a: np.full_like(a, np.nan), "down_proj': 1536 scales are NaN"),
    ("model.layers.0.self_attn.q_proj.g_idx", lambda a: a[::-1].copy(), "share one desc_act order"),
])
def test_bad_packed_tensors(tmp_path, tensor, fn, words):
    _edit_tensor(_folder(tmp_path), tensor, fn)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: tensor .*" + words) as e:
        load_checkpoint(tmp_path)
    assert "\n" not in str(e.value)


def test_quant_on_quantized_folder(tmp_path):
    with pytest.raises(CheckpointError, match="already quantized \\(gptq\\).*drop --quant"):
        load_checkpoint(_folder(tmp_path), quant=QuantSpec("int8"))


def test_quantize_config_json_and_awq_quant_config(tmp_path):
    """AutoGPTQ's quantize_config.json and AutoAWQ's quant_config.json are found when config.json has none."""
    for method, name, qc in (("gptq", "quantize_config.json", {"bits": 4, "group_size": 32, "desc_act": False}),
                             ("awq", "quant_config.json", {"w_bit": 4, "q_group_size": 32, "zero_point": True,
                                                            "version": "GEMM"})):
        d = tmp_path / method
        want = write_int4_folder(d, SMALL, small_weights(3), method, 32)
        conf = json.loads((d / "config.json").read_text())
        del conf["quantization_config"]
        (d / "config.json").write_text(json.dumps(conf))
        (d / name).write_text(json.dumps(qc))
        wo = load_checkpoint(d).weights.layers[1].wo
        np.testing.assert_array_equal(dequantize(wo), want["model.layers.1.self_attn.o_proj"])
