"""Property-based fuzzing (hypothesis) of every input boundary: tokenizer text, checkpoint bytes and headers,
config values and CLI flags. The property is always the same: the input is accepted and behaves, or it is
refused with one line of a CugraphError subclass (the CLI: exit 2); never another exception, never silent
garbage. NaN/Inf weights load with a warning that names the file and the tensor.

Known-good properties hold already in test_loader_errors.py / test_tokenizer.py for hand-picked cases; these
tests search around them. Example counts are sized to keep the file well under 30 s on 2 cores."""
import contextlib
import io
import json
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cugraphllm import api, cli
from cugraphllm.config import ModelConfig, RuntimeConfig
from cugraphllm.convert import hf_config, hf_tensors
from cugraphllm.errors import CheckpointError, ConfigError, TokenizerError
from cugraphllm.loader import dummy_weights, load_checkpoint
from cugraphllm.loader_llama2c import HEADER, _layout
from cugraphllm.safetensors_io import write_safetensors
from cugraphllm.sampling import SamplingParams
from cugraphllm.tokenizer import StreamDecoder

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CFG = ModelConfig(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=50, hidden_dim=40, max_seq_len=64)
TEXT = st.text(alphabet=st.one_of(st.sampled_from(list(" \t\n\r\u3000\u00a0\u2028\ufeff\u200b\x00a日😀\u0301ﬁ①")),
                                  st.characters(exclude_categories=("Cs",))), max_size=60)
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=4),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
                    max_leaves=8)


def one_line(err) -> str:
    msg = str(err)
    assert msg and "\n" not in msg, msg
    return msg


# ---- tokenizer ---------------------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(text=st.one_of(TEXT, st.text()))
def test_llama2_roundtrip_is_exact(llama2, text):
    # identity normalizer, no whitespace collapsing, byte fallback: every surrogate-free text comes back
    assert llama2.decode(llama2.encode(text)) == text
    assert llama2.encode(text, bos=False, eos=True)[-1] == llama2.eos_id


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(TEXT, st.text()))
def test_tok512_decode_is_a_normal_form(tok512, text):
    # tok512 applies NFKC and collapses whitespace: decode(encode(s)) is the normalized s, a fixed point
    ids = tok512.encode(text, bos=False)
    assert tok512.encode(tok512.decode(ids), bos=False) == ids
    assert all(0 <= i < tok512.vocab_size for i in ids)


@FAST
@given(text=TEXT, cut=st.integers(0, 60), bad=st.sampled_from(["\ud800", "\udcff", "\udfff"]))
def test_lone_surrogates_are_a_tokenizer_error(llama2, tok512, text, cut, bad):
    for tok in (llama2, tok512):   # e.g. a --prompt whose bytes were not UTF-8 (argv uses surrogateescape)
        with pytest.raises(TokenizerError) as e:
            tok.encode(text[:cut] + bad + text[cut:])
        assert "surrogate" in one_line(e.value)


@FAST
@given(ids=st.lists(st.integers(-2 ** 70, 2 ** 70) | st.integers(0, 600), max_size=20))
def test_decode_any_ids(llama2, tok512, ids):
    for tok in (llama2, tok512):
        if all(0 <= i < tok.vocab_size for i in ids):
            assert isinstance(tok.decode(ids), str)
        else:
            with pytest.raises(TokenizerError):
                tok.decode(ids)


@pytest.mark.parametrize("kind", ["mixed", "one word", "emoji", "spaces"])
def test_very_long_text(llama2, tok512, kind):
    rng = np.random.default_rng(5)
    alphabet = np.array(list("abcdefghij  \t\n日本語😀éß\u0301\x00"))
    text = {"mixed": "".join(rng.choice(alphabet, 100_000)), "one word": "a" * 100_000,
            "emoji": "😀" * 100_000, "spaces": " " * 100_000}[kind]
    assert llama2.decode(llama2.encode(text)) == text
    ids = tok512.encode(text)
    assert tok512.encode(tok512.decode(ids)) == ids
    part = llama2.encode(text[:20_000], bos=False)   # streaming over a long text equals one decode
    dec = StreamDecoder(llama2)
    assert "".join(dec.push(t) for t in part) + dec.flush() == llama2.decode(part)


# ---- checkpoint bytes --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """A valid HF folder's config and safetensors bytes, and the weights it loads as."""
    folder = tmp_path_factory.mktemp("valid")
    (folder / "config.json").write_text(json.dumps(hf_config(CFG, "float32")))
    write_safetensors(folder / "model.safetensors", hf_tensors(CFG, dummy_weights(CFG, seed=4, dtype="float32")))
    blob = (folder / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", blob[:8])[0]
    return dict(folder=folder, blob=blob, header=json.loads(blob[8:8 + n]), data=blob[8 + n:],
                weights=load_checkpoint(folder).weights)


@contextlib.contextmanager
def hf_folder(valid, st_bytes: bytes):
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "config.json").write_bytes((valid["folder"] / "config.json").read_bytes())
        (Path(d) / "model.safetensors").write_bytes(st_bytes)
        yield Path(d)


def with_header(header: dict, data: bytes) -> bytes:
    blob = json.dumps(header).encode()
    return struct.pack("<Q", len(blob)) + blob + data


def load_or_refuse(path):
    """Load quietly (random floats are NaN); a refusal must be one CheckpointError/ConfigError line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_checkpoint(path)
    except (CheckpointError, ConfigError) as e:
        one_line(e)
        return None


@FAST
@given(data=st.binary(max_size=400), framed=st.booleans())
def test_random_safetensors_bytes(valid, data, framed):
    blob = struct.pack("<Q", len(data)) + data if framed else data   # framed: a header length that fits
    with hf_folder(valid, blob) as d:
        assert load_or_refuse(d) is None


@FAST
@given(header=st.dictionaries(st.sampled_from(sorted(hf_tensors(CFG, dummy_weights(CFG)))) | st.text(max_size=6),
                              JSON | st.fixed_dictionaries({"dtype": st.sampled_from(["F32", "F16", "BF16", "I8"]) | JSON,
                                                            "shape": st.lists(st.integers(-1, 2 ** 65), max_size=3),
                                                            "data_offsets": st.lists(st.integers(-1, 2 ** 65),
                                                                                     min_size=2, max_size=2)}),
                              max_size=4))
def test_random_safetensors_headers(valid, header):
    with hf_folder(valid, with_header(header, valid["data"][:4096])) as d:
        assert load_or_refuse(d) is None   # never a complete model: always a one-line refusal


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_header_that_lies(valid, data):
    """One entry of a valid header changed (dtype, shape, offsets, or the whole entry): refused in one line,
    or, when the change is a no-op, the same weights. Never other weights."""
    header = json.loads(json.dumps(valid["header"]))
    name = data.draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")))
    field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets", "entry"]))
    entry = header[name]
    lie = {"dtype": st.sampled_from(["F16", "BF16", "F64", "I32", "U8", "F8_E4M3"]) | JSON,
           "shape": st.lists(st.integers(0, 2 ** 64), max_size=3).map(list) | st.permutations(entry["shape"]) | JSON,
           "data_offsets": st.tuples(st.integers(-8, len(valid["data"]) + 8), st.integers(-8, len(valid["data"]) + 8))
           .map(list) | st.just([x + 4 for x in entry["data_offsets"]]) | JSON,
           "entry": JSON}[field]
    value = data.draw(lie)
    if field == "entry":
        header[name] = value
    else:
        entry[field] = value
    with hf_folder(valid, with_header(header, valid["data"])) as d:
        ck = load_or_refuse(d)
        if ck is not None:
            assert header == valid["header"]
            for a, b in zip(ck.weights.layers, valid["weights"].layers):
                assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in vars(a))


def test_truncated_at_every_tensor_boundary_and_inside(valid):
    """Cut the file at each tensor's first byte, in its middle, and through the header: always refused,
    naming a tensor whose data was cut (or the header)."""
    blob, n = valid["blob"], 8 + struct.unpack("<Q", valid["blob"][:8])[0]
    spans = {k: v["data_offsets"] for k, v in valid["header"].items() if k != "__metadata__"}
    cuts = sorted({n + b for b, _ in spans.values()} | {n + (b + e) // 2 for b, e in spans.values()}
                  | {0, 4, 7, 8, 9, n // 2, n - 1, len(blob) - 1})
    for cut in cuts:
        with hf_folder(valid, blob[:cut]) as d, pytest.raises(CheckpointError) as e:
            load_checkpoint(d)
        msg = one_line(e.value)
        assert "model.safetensors" in msg and ("truncated" in msg or "too short" in msg), (cut, msg)
        if cut > n:
            named = msg.split("tensor '")[1].split("'")[0]
            assert n + spans[named][1] > cut, (cut, msg)
    with hf_folder(valid, blob) as d:
        assert load_checkpoint(d).config == CFG.with_(dtype="float32")


@FAST
@given(header=st.tuples(*[st.sampled_from([0, 1, 2, 4, 8, 16, 64, -1, -64, 2 ** 31 - 1, -2 ** 31])] * 7),
       body=st.binary(max_size=64), exact=st.booleans())
def test_random_llama2c_files(header, body, exact):
    """A .bin of random bytes behind a random header; with exact=True, a body of exactly the size the header
    implies (when that is small), so random floats really load."""
    try:
        cfg = ModelConfig.from_llama2c_header(header)
        size = 4 * sum(int(np.prod(s)) for _, s in _layout(cfg))
    except ConfigError:
        size = None
    if exact and size is not None and size < 1 << 20:
        body = np.random.default_rng(0).bytes(size)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.bin"
        path.write_bytes(HEADER.pack(*header) + body)
        assert (load_or_refuse(path) is not None) == (size is not None and len(body) == size)


# ---- NaN / Inf weights -----------------------------------------------------------------------------------------
def loader_warnings(path, dtype):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_checkpoint(path, dtype=dtype)
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


@settings(max_examples=30, deadline=None)
@given(data=st.data(), value=st.sampled_from([np.nan, np.inf, -np.inf]),
       stored=st.sampled_from(["float32", "float16", "bfloat16"]), dtype=st.sampled_from(["float32", "float16"]))
def test_nonfinite_hf_weight_warns_with_its_name(valid, data, value, stored, dtype):
    tensors = hf_tensors(CFG, dummy_weights(CFG, seed=4, dtype="float32"))
    name = data.draw(st.sampled_from(sorted(tensors)))
    flat = tensors[name].reshape(-1)
    flat[data.draw(st.integers(0, flat.size - 1))] = value
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "config.json").write_text(json.dumps(hf_config(CFG, stored)))
        write_safetensors(Path(d) / "model.safetensors", tensors, dtype=stored)
        got = loader_warnings(d, dtype)
    assert len(got) == 1 and f"model.safetensors: tensor '{name}'" in got[0] and "NaN or Inf" in got[0], got


def test_clean_weights_do_not_warn_and_float16_overflow_does(valid, tmp_path):
    assert loader_warnings(valid["folder"], "float16") == []
    tensors = hf_tensors(CFG, dummy_weights(CFG, seed=4, dtype="float32"))
    tensors["model.layers.1.mlp.up_proj.weight"][2, 3] = 1e5          # finite in float32, Inf in float16
    (tmp_path / "config.json").write_text(json.dumps(hf_config(CFG, "float32")))
    write_safetensors(tmp_path / "model.safetensors", tensors)
    assert loader_warnings(tmp_path, "float32") == []
    got = loader_warnings(tmp_path, "float16")
    assert len(got) == 1 and "model.layers.1.mlp.up_proj.weight" in got[0] and "float16" in got[0], got


@settings(max_examples=15, deadline=None)
@given(data=st.data(), value=st.sampled_from([np.nan, np.inf, -np.inf]), dtype=st.sampled_from(["float32", "float16"]))
def test_nonfinite_llama2c_weight_warns_with_its_name(stories_dir, data, value, dtype):
    raw = bytearray((stories_dir / "stories260K.bin").read_bytes())
    cfg = ModelConfig.from_llama2c_header(HEADER.unpack(raw[:HEADER.size]))
    layout = [(n, s) for n, s in _layout(cfg)]
    k = data.draw(st.sampled_from([i for i, (n, _) in enumerate(layout) if n != "freq_cis"]))
    name, shape = layout[k]
    start = sum(int(np.prod(s)) for _, s in layout[:k])
    idx = data.draw(st.integers(0, int(np.prod(shape)) - 1))
    struct.pack_into("<f", raw, HEADER.size + 4 * (start + idx), value)
    label = name if len(shape) < 3 and name not in ("attention_norm", "ffn_norm") else \
        f"{name}[{idx // int(np.prod(shape[1:]))}]"
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "m.bin").write_bytes(bytes(raw))
        got = loader_warnings(Path(d) / "m.bin", dtype)
    assert len(got) == 1 and f"m.bin: tensor '{label}'" in got[0], (label, got)


# ---- config ----------------------------------------------------------------------------------------------------
HF_KEYS = ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size",
           "intermediate_size", "max_position_embeddings", "rms_norm_eps", "rope_theta", "head_dim",
           "tie_word_embeddings", "model_type", "hidden_act", "rope_scaling"]
SIZES = st.integers(-3, 3) | st.integers(-2 ** 40, 2 ** 40) | st.sampled_from([8, 16, 32, 64, 48])


def assert_sane(c: ModelConfig) -> None:
    for v in (c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.hidden_dim, c.max_seq_len):
        assert type(v) is int and v > 0
    assert c.dim == c.n_heads * c.head_dim and c.head_dim % 2 == 0 and c.n_heads == c.n_rep * c.n_kv_heads
    assert 0 < c.norm_eps < np.inf and 0 < c.rope_theta < np.inf


@settings(max_examples=300, deadline=None)
@given(change=st.dictionaries(st.sampled_from(HF_KEYS), SIZES | JSON | st.floats(), max_size=4),
       drop=st.sets(st.sampled_from(HF_KEYS), max_size=2))
def test_hf_config_values(change, drop):
    d = dict(hf_config(CFG, "float16"), **change)
    for k in drop:
        d.pop(k, None)
    try:
        assert_sane(ModelConfig.from_hf_config(d, source="x/config.json"))
    except ConfigError as e:
        assert one_line(e).startswith("x/config.json: ")


@settings(max_examples=300, deadline=None)
@given(sizes=st.tuples(*[SIZES] * 7))
def test_model_config_sizes_and_llama2c_headers(sizes):
    dim, layers, heads, kv, vocab, hidden, seq = sizes
    for make in (lambda: ModelConfig(dim, layers, heads, kv, vocab, hidden, max_seq_len=seq),
                 lambda: ModelConfig.from_llama2c_header(sizes)):
        try:
            assert_sane(make())
        except ConfigError as e:
            one_line(e)


@FAST
@given(content=st.binary(max_size=64) | JSON.map(lambda v: json.dumps(v).encode()))
def test_config_json_bytes(tmp_path_factory, content):
    path = tmp_path_factory.getbasetemp() / "fuzz_config.json"
    path.write_bytes(content)
    try:
        assert_sane(ModelConfig.from_hf_json(path))
    except ConfigError as e:
        assert one_line(e).startswith(str(path))


# ---- CLI flags -------------------------------------------------------------------------------------------------
FLAGS = {  # flag -> (parse the text as, the library's own check of the value)
    "--max-new-tokens": (int, api._check_max_new),
    "--top-k": (int, lambda v: SamplingParams(top_k=v)),
    "--seed": (int, lambda v: SamplingParams(seed=v)),
    "--max-seq-len": (int, lambda v: RuntimeConfig(max_seq_len=v)),
    "--prefill-rows": (int, lambda v: RuntimeConfig(prefill_rows=v)),
    "--temperature": (float, lambda v: SamplingParams(temperature=v)),
    "--top-p": (float, lambda v: SamplingParams(top_p=v)),
    "--repetition-penalty": (float, lambda v: SamplingParams(repetition_penalty=v)),
}
NUMBER_TEXT = (st.integers(-2 ** 70, 2 ** 70) | st.sampled_from([0, 1, -1, 2 ** 64 - 1, 2 ** 64])).map(str) | \
    st.floats().map(repr) | st.sampled_from(["inf", "-inf", "nan", "1e-400", "1e309", "0x10", "1_000", " 7 ", ""]) | \
    st.text(max_size=6)


def library_accepts(kind, check, text) -> bool:
    try:
        check(kind(text))
        return True
    except (ValueError, ConfigError):   # not a number of that kind, or refused by the library
        return False


@settings(max_examples=400, deadline=None)
@given(flag=st.sampled_from(sorted(FLAGS)), text=NUMBER_TEXT, command=st.sampled_from(["generate", "chat"]))
def test_cli_flag_values(flag, text, command):
    """The CLI accepts a value exactly when the library would; otherwise exit 2 and one line naming the flag."""
    kind, check = FLAGS[flag]
    argv = [command, "--model", "m", f"{flag}={text}"] + (["--prompt", "p"] if command == "generate" else [])
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            args = cli.build_parser().parse_args(argv)
            code = None
        except SystemExit as e:
            code = e.code
    if library_accepts(kind, check, text):
        assert code is None, err.getvalue()
        assert getattr(args, flag[2:].replace("-", "_")) == kind(text)
    else:
        lines = err.getvalue().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and flag in lines[0], lines


@pytest.mark.parametrize("flag", sorted(FLAGS))
def test_cli_flag_value_double_dash(flag):
    """`--flag=--`: argparse itself drops the value "--" (the flag parsed to []); found by the fuzz test above."""
    test_cli_flag_values.hypothesis.inner_test(flag, "--", "chat")


# ---- sampler on values the CLI accepts ---------------------------------------------------------------------------
FINITE = st.floats(min_value=0, allow_infinity=False, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(t=st.just(0.0) | st.floats(1e-3, 1e3), p=st.floats(min_value=5e-324, max_value=1.0),
       r=st.floats(1e-3, 1e3), k=st.integers(0, 2 ** 31 - 1), seed=st.integers(0, 2 ** 64 - 1))
def test_sampler_any_accepted_params_gives_a_valid_id(t, p, r, k, seed):
    from cugraphllm.sampling import sample
    logits = np.random.default_rng(seed % 1000).standard_normal(97).astype(np.float32) * 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # overflow at extreme values is fine; an invalid id is not
        params = SamplingParams(temperature=t, top_k=k, top_p=p, repetition_penalty=r, seed=seed)
        tok = sample(logits, params, [3, 5, 96], 17)
    assert 0 <= tok < 97


@pytest.mark.parametrize("t", [1e-308, 1e-320, 5e-324, 1e-4, 1e4])
def test_extreme_temperature_is_refused(t):
    """logits / t would overflow (tiny t) or the float32 device copy would lose it: refused in one line."""
    with pytest.raises(ConfigError, match="temperature"):
        SamplingParams(temperature=t, seed=3)
