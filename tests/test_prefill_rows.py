"""RuntimeConfig.prefill_rows (--prefill-rows): the largest prefill bucket, which is also the chunk that longer
prompts are prefilled in. Pure Python: the bucket ladder per setting (512 must give the old list exactly), the
validation, the memory estimate, the engine's chunking (on a stand-in engine) and the CLI / bench / LLM.load plumbing.
The GPU side is tests/test_prefill_rows_gpu.py."""
import dataclasses
import types

import numpy as np
import pytest

from cugraphllm import bench_args, cli_args
from cugraphllm.config import PREFILL_ROWS_SIZES, ModelConfig, RuntimeConfig
from cugraphllm.errors import ConfigError
from cugraphllm.gpu import memory
from cugraphllm.gpu.attention import make_buckets

LADDER_ABOVE_512 = (768, 1024, 1536, 2048, 3072, 4096)
BAD = [500, 0, -512, 8192, 5000, 17, 2048.0, "1024", True, None]


def _old_prefill_buckets(S):
    """make_buckets' prefill list before prefill_rows existed (commit b21916e), the rule the default must keep."""
    prefill = [b for b in (16, 32, 64, 128, 192, 256, 384) if b < S]
    return prefill + [min(512, S)] if not prefill or prefill[-1] < min(512, S) else prefill


def _contexts():
    rng = np.random.default_rng(7)
    edges = [1, 2, 15, 16, 17, 31, 32, 33, 383, 384, 385, 511, 512, 513, 767, 768, 769, 1024, 2047, 2048, 2049,
             4095, 4096, 4097, 100000]
    return edges + [int(s) for s in rng.integers(1, 9000, 40)]


@pytest.mark.parametrize("S", _contexts())
def test_default_and_512_keep_the_old_lists(S):
    old = _old_prefill_buckets(S)
    assert make_buckets(S)[1] == old
    assert make_buckets(S, 512)[1] == old
    assert make_buckets(S, 2048)[0] == make_buckets(S)[0]  # decode buckets do not depend on it


@pytest.mark.parametrize("rows", PREFILL_ROWS_SIZES)
@pytest.mark.parametrize("S", [1, 16, 100, 512, 600, 1000, 1536, 2100, 4096, 8192])
def test_bucket_ladder(rows, S):
    got = make_buckets(S, rows)[1]
    top = min(rows, S)
    assert got[-1] == top and got == sorted(set(got))
    assert all(b in PREFILL_ROWS_SIZES and b < S for b in got[:-1])  # only ladder sizes below the context
    assert set(got[:-1]) == {b for b in PREFILL_ROWS_SIZES if b < top}  # and every one of them
    if rows >= 512:  # a larger setting only adds buckets above the old ones
        assert got[:len(_old_prefill_buckets(S))][:-1] == _old_prefill_buckets(S)[:-1]


def test_ladder_above_512():
    assert make_buckets(4096, 1024)[1][-3:] == [512, 768, 1024]
    assert make_buckets(4096, 2048)[1][-5:] == [512, 768, 1024, 1536, 2048]
    assert make_buckets(1800, 2048)[1][-4:] == [768, 1024, 1536, 1800]  # the context caps the largest
    assert make_buckets(4096, 4096)[1][-6:] == list(LADDER_ABOVE_512)
    assert make_buckets(4096, 256)[1] == [16, 32, 64, 128, 192, 256]


@pytest.mark.parametrize("bad", BAD)
def test_bad_prefill_rows_is_a_one_line_config_error(bad):
    with pytest.raises(ConfigError) as e:
        RuntimeConfig(prefill_rows=bad)
    msg = str(e.value)
    assert "\n" not in msg and "prefill_rows" in msg and "2048" in msg
    with pytest.raises(ConfigError):
        make_buckets(4096, bad)


def test_good_prefill_rows_accepted():
    for n in PREFILL_ROWS_SIZES:
        assert RuntimeConfig(prefill_rows=n).prefill_rows == n
    assert RuntimeConfig().prefill_rows == 512
    assert all(1 << k in PREFILL_ROWS_SIZES for k in range(4, 13))  # every power of two 16..4096


@pytest.mark.parametrize("preset,S", [("llama-2-7b", 4096), ("llama-2-70b", 4096), ("tiny", 1024)])
@pytest.mark.parametrize("mode", ["eager", "hybrid"])
def test_estimate_grows_with_prefill_rows(preset, S, mode):
    c = ModelConfig.from_preset(preset)
    est = {r: memory.estimate(c, S, mode, prefill_rows=r) for r in (256, 512, 1024, 2048, 4096)}
    assert est[512] == memory.estimate(c, S, mode)  # the default is unchanged
    for a, b in zip((256, 512, 1024, 2048), (512, 1024, 2048, 4096)):
        ra, rb = min(a, S), min(b, S)
        if rb == ra:
            assert est[b] == est[a]
            continue
        assert est[b]["total"] > est[a]["total"]
        # scratch: x f32, xn / q / att T, h T and the prompt ids per row (within CuPy's 512-byte rounding)
        per_row = c.dim * 4 + 3 * c.dim * 2 + c.hidden_dim * 2 + 4
        grow = est[b]["scratch"] - est[a]["scratch"]
        assert abs(grow - (rb - ra) * per_row) <= 6 * 512, (grow, (rb - ra) * per_row)
        gemm = est[b]["gemm_workspace"] - est[a]["gemm_workspace"]
        assert abs(gemm - (rb - ra) * max(c.qkv_dim, 2 * c.hidden_dim) * 2) <= 512
        extra = len(make_buckets(S, b)[1]) - len(make_buckets(S, a)[1])  # one more graph pair per bucket
        assert (est[b]["graphs"] > est[a]["graphs"]) == (mode != "eager" and extra > 0)
        assert est[b]["kv_cache"] == est[a]["kv_cache"] and est[b]["weights"] == est[a]["weights"]


def test_largest_context_shrinks_with_prefill_rows():
    c = ModelConfig.from_preset("llama-2-7b")
    free = memory.estimate(c, 4096, prefill_rows=512)["total"]
    assert memory.largest_context(c, free, 4096, prefill_rows=512) == 4096
    fit = memory.largest_context(c, free, 4096, prefill_rows=4096)
    assert 0 < fit < 4096 and memory.estimate(c, fit, prefill_rows=4096)["total"] <= free


class _StandIn:
    """What CudaEngine._prefill touches: attention buckets, the token list, host history, the step setter and the
    graph runtime; records every step."""

    def __init__(self, S, rows, tokens=()):
        self.attn = types.SimpleNamespace(prefill_buckets=make_buckets(S, rows)[1])
        self.tokens, self.steps, self.hist = list(tokens), [], {}
        self.rt = types.SimpleNamespace(step=lambda kind, n, greedy: self.steps.append((kind, n, self._set)))

    def _write_hist(self, a, values):
        self.hist.update({a + i: v for i, v in enumerate(values)})

    def _set_step(self, pos, n, prompt=None, token=None):
        self._set = (pos, n, list(prompt if prompt is not None else token))

    def sync(self):
        pass


@pytest.mark.parametrize("rows,n,cached", [(512, 3900, 0), (1024, 3900, 0), (2048, 3900, 0), (2048, 2100, 7),
                                           (1024, 1025, 0), (768, 1537, 3), (16, 100, 0)])
def test_engine_prefills_in_chunks_of_prefill_rows(rows, n, cached):
    from cugraphllm.gpu.engine import CudaEngine
    S = 4096
    e = _StandIn(S, rows, tokens=range(cached))
    new = np.random.default_rng(n).integers(0, 32000, n).tolist()
    CudaEngine._prefill(e, new, greedy=True)
    top = max(e.attn.prefill_buckets)
    assert top == rows
    fed, pos = [], cached
    for i, (kind, length, (p, m, chunk)) in enumerate(e.steps):
        assert p == pos and len(chunk) == m and m <= top  # contiguous chunks, each fits the largest bucket
        assert (kind, length) == (("decode", p + 1) if m == 1 else ("prefill", m))
        assert m == top or i == len(e.steps) - 1  # only the last chunk is short
        fed += chunk
        pos += m
    assert fed == new and len(e.steps) == -(-n // top)
    assert [e.hist[cached + i] for i in range(n)] == new


# ---- command line, bench and LLM.load ------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["generate", "chat", "serve"])
def test_cli_flag_parses(command):
    p = cli_args.build_parser()
    extra = ["--prompt", "x"] if command == "generate" else []
    assert p.parse_args([command, *extra]).prefill_rows == 512
    assert p.parse_args([command, *extra, "--prefill-rows", "2048"]).prefill_rows == 2048
    assert p.parse_args([command, *extra, "--prefill-rows=1536"]).prefill_rows == 1536


@pytest.mark.parametrize("bad", ["500", "0", "8192", "1e3", "two", "-16", ""])
@pytest.mark.parametrize("command", ["generate", "bench"])
def test_cli_flag_bad_values_exit_2_one_line(command, bad, capsys):
    with pytest.raises(SystemExit) as e:
        if command == "bench":
            bench_args.parse_args(["--prefill-rows", bad])
        else:
            cli_args.build_parser().parse_args(["generate", "--prompt", "x", "--prefill-rows", bad])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith("error: ") and "--prefill-rows" in err


def test_bench_flag_parses_and_reaches_the_runtime(monkeypatch):
    from cugraphllm import bench, engines
    assert bench_args.parse_args([]).prefill_rows == 512
    a = bench_args.parse_args(["--prefill-rows", "1024", "--lengths", "1000,2000", "--max-seq-len", "4096"])
    assert a.prefill_rows == 1024
    seen = []
    monkeypatch.setattr(engines, "_make_engine", lambda source, runtime: seen.append(runtime) or object())
    bench.make_engine(ModelConfig.from_preset("tiny"), "cuda", "hybrid", a, 4096)
    assert seen[0].prefill_rows == 1024 and seen[0].max_seq_len == 4096
    model = bench._model_entry(a, ModelConfig.from_preset("tiny"), "x", "numpy", {"format": "16-bit"}, 4)
    assert model["prefill_rows"] == 1024


def test_help_explains_the_flag():
    for text in (cli_args.build_parser()._subparsers._group_actions[0].choices["generate"].format_help(),
                 bench_args._parser().format_help()):
        flat = " ".join(text.split())
        assert "--prefill-rows N" in flat and "largest prefill bucket" in flat and "chunks" in flat


def test_cli_load_passes_prefill_rows(monkeypatch, stories_dir):
    from cugraphllm import api, cli
    seen = {}

    class Stop(Exception):
        pass

    def fake_load(model, **kw):
        seen.update(kw)
        raise Stop
    monkeypatch.setattr(api.LLM, "load", staticmethod(fake_load))
    args = cli_args.build_parser().parse_args(["generate", "--prompt", "x", "--model", str(stories_dir /
                                               "stories260K.bin"), "--prefill-rows", "3072"])
    with pytest.raises(Stop):
        cli._load(args)
    assert seen["prefill_rows"] == 3072


def test_llm_load_takes_prefill_rows(stories_dir):
    from cugraphllm.api import LLM
    path, tok = stories_dir / "stories260K.bin", stories_dir / "tok512.model"
    llm = LLM.load(path, tokenizer=tok, backend="numpy", prefill_rows=1024, progress=False)
    assert llm.runtime.prefill_rows == 1024
    with pytest.raises(ConfigError, match="prefill_rows"):
        LLM.load(path, tokenizer=tok, backend="numpy", prefill_rows=1000, progress=False)


# ---- quantized layers: gemm_quant's prefill buffers ----------------------------------------------------------
@pytest.mark.parametrize("fmt", ["fp8", "int8", "int4"])
def test_estimate_counts_the_quant_buffers_at_the_largest_bucket(fmt):
    from cugraphllm.gpu import gemm_quant
    c = ModelConfig.from_preset("llama-2-7b")
    for rows in (512, 2048):
        base, q = (memory.estimate(c, 4096, prefill_rows=rows, quant=f) for f in ((), (fmt,)))
        extra = q["gemm_workspace"] - base["gemm_workspace"]
        assert extra == gemm_quant.buffer_bytes(c, fmt, rows) and q["total"] - base["total"] == extra
    F, D, N = c.hidden_dim, c.dim, 2 * c.hidden_dim  # act [M, F] and g [M, 2F] in T, fp8: aq [M, F], d f32 [M, 2F]
    per_row = F * 2 + N * 2 + ((F + 4 + N * 4) if fmt == "fp8" else 0)
    grow = gemm_quant.buffer_bytes(c, fmt, 2048) - gemm_quant.buffer_bytes(c, fmt, 512)
    assert grow == 1536 * per_row and D < F


def test_layer_formats_of_runtime_and_packed_weights():
    from cugraphllm.gpu import gemm_quant
    from cugraphllm.gpu.engine_load import layer_formats
    from cugraphllm.loader import dummy_checkpoint
    from cugraphllm.quant.layers import QuantSpec, quantize_weights
    c = ModelConfig.from_preset("tiny")
    w = dummy_checkpoint(c, seed=3, dtype="float32").weights
    assert layer_formats(RuntimeConfig()) == set() and layer_formats(RuntimeConfig(), w) == set()
    assert layer_formats(RuntimeConfig(quant="int8")) == {"int8"}
    packed = quantize_weights(w, QuantSpec("int4", 32, True))
    assert gemm_quant.layer_formats(packed) == {"int4"} == layer_formats(RuntimeConfig(), packed)
    fp8 = quantize_weights(dummy_checkpoint(c, seed=4, dtype="float32").weights, QuantSpec("fp8", 128, False))
    packed.layers[1] = dataclasses.replace(packed.layers[1], w2=fp8.layers[1].w2)
    assert gemm_quant.layer_formats(packed) == {"int4", "fp8"}
