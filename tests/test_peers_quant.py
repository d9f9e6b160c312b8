"""The quantized torch peer (scripts/peers_quant.py, gpt-fast's int8 / int4 weight-only scheme): its quantizers
against a NumPy float64 dequantized reference, its linears (torch's int4 tinygemm op included) against that
reference, and the whole peer model against its own fp16 logits. Needs torch, which cugraphllm never depends on:
skipped where torch is absent (CI). The cuda cases run where torch sees a GPU (the lead's H200 image)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cugraphllm.config import ModelConfig  # noqa: E402
from scripts import peers_quant as pq  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                  reason="torch sees no CUDA GPU"))]
ULP = {torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8}   # relative spacing of each 16-bit format


def _weight(rng, N, K, dtype, device):
    # LLaMA-like magnitudes, with one outlier row scaled up so rows differ in scale
    w = rng.standard_normal((N, K)) * 0.02
    w[N // 3] *= 9.0
    return torch.from_numpy(w).to(dtype).to(device)


def _f64(t):
    return t.detach().float().cpu().numpy().astype(np.float64)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("N,K", [(203, 4096), (11008 // 8 + 1, 11008)])
def test_int8_round_trip_and_linear(device, dtype, N, K):
    rng = np.random.default_rng(N + K)
    w = _weight(rng, N, K, dtype, device)
    q, s = pq.quantize_int8(w)
    assert q.dtype == torch.int8 and q.shape == (N, K) and s.dtype == dtype and s.shape == (N,)
    w64, s64, q64 = _f64(w), _f64(s), _f64(q)
    np.testing.assert_allclose(s64, np.abs(w64).max(1) / 127.5, rtol=ULP[dtype])  # symmetric, range [-128, 127]
    assert set(np.abs(q64).max(1)) <= {127.0, 128.0}  # every row's largest weight lands on the end of the range
    # rounding used the fp32 scale, the reference the stored one: half a step plus |q| <= 128 times its rounding
    err = np.abs(w64 - q64 * s64[:, None]) / s64[:, None]
    assert err.max() <= 0.5 + 128 * ULP[dtype]
    x = torch.from_numpy(rng.standard_normal((3, K))).to(dtype).to(device)
    y = torch.full((3, N), float("nan"), device=device)
    y[:] = pq.Int8Linear(w)(x)
    ref = _f64(x) @ (q64 * s64[:, None]).T
    assert np.isfinite(_f64(y)).all()
    assert (np.abs(_f64(y) - ref) / (np.abs(ref) + ref.std())).max() <= 4 * ULP[dtype]  # two roundings + sums


def _int4_ref(q, sz, group):
    """NumPy float64 dequantization of gpt-fast's int4: w = (q - 8) * scale + zero, per group along K."""
    s, z = (np.repeat(_f64(sz[..., i]).T, group, axis=1) for i in (0, 1))
    return (_f64(q) - 8) * s + z, s, z


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("group", [128, 64])
@pytest.mark.parametrize("N,K", [(208, 4096), (1360, 11008)])
def test_int4_round_trip_and_packed_mm(device, group, N, K):
    rng = np.random.default_rng(N * group + K)
    w = _weight(rng, N, K, torch.float16, device)
    q, sz = pq.quantize_int4(w, group)
    assert q.shape == (N, K) and sz.shape == (K // group, N, 2) and sz.dtype == torch.bfloat16
    w_ref, s, z = _int4_ref(q, sz, group)
    wb = _f64(w.to(torch.bfloat16))            # gpt-fast quantizes the bf16 weight
    qg = _f64(q).reshape(N, K // group, group)
    assert (qg.min(2) == 0).all() and (qg.max(2) == 15).all()   # asymmetric: min -> 0, max -> 15 in every group
    # half a step, plus bf16 rounding of (w - min), of the quotient (<= 15) and of min = zero - 8 * scale
    err = np.abs(wb - w_ref) / s
    assert err.max() <= 0.5 + (30 + np.abs(z / s - 8).max()) * ULP[torch.bfloat16]
    x = torch.from_numpy(rng.standard_normal((5, K))).to(torch.bfloat16).to(torch.float16).to(device)
    y = torch.full((5, N), float("nan"), dtype=torch.float16, device=device)
    y[:] = pq.Int4Linear(w, group)(x)
    ref = _f64(x) @ w_ref.T
    assert np.isfinite(_f64(y)).all()
    assert (np.abs(_f64(y) - ref) / (np.abs(ref) + ref.std())).max() <= 2 * ULP[torch.bfloat16]  # bf16 output


def test_int4_rejects_shapes_torch_cannot_pack():
    w = torch.ones(208, 4096 + 64)
    with pytest.raises(ValueError, match="K % 128"):
        pq.quantize_int4(w, 128)


TINY = ModelConfig(dim=256, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=1024, hidden_dim=768)


def _expected_bytes(cfg, fmt, group, quant_head):
    def matrix(N, K, quantized):
        if not quantized:
            return 2 * N * K
        return N * K + 2 * N if fmt == "int8" else N * K // 2 + 2 * 2 * N * (K // group)
    c = cfg
    layer = sum(matrix(N, K, True) for N, K in ((c.qkv_dim, c.dim), (c.dim, c.dim), (2 * c.hidden_dim, c.dim),
                                                   (c.dim, c.hidden_dim)))
    norms = 2 * c.dim * (2 * c.n_layers + 1)
    return c.n_layers * layer + norms + matrix(c.vocab_size, c.dim, quant_head) + 2 * c.dim


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fmt,quant_head,bound", [("int8", False, 0.05), ("int4", False, 0.5), ("int4", True, 0.8)])
def test_peer_model_against_its_fp16_logits(device, fmt, quant_head, bound):
    from scripts.peers_gptfast import GptFastRunner
    runner = GptFastRunner(TINY, max_seq=48, compile_decode=False, device=device)
    prompt = torch.randint(3, TINY.vocab_size, (1, 21), generator=torch.Generator().manual_seed(7)).to(device)
    info = pq.quantize_with_check(runner.model, fmt, 128, quant_head, prompt)
    kinds = {type(m).__name__ for m in runner.model.modules()}
    assert ("Linear" in kinds) != quant_head and {"Int8Linear": fmt == "int8", "Int4Linear": fmt == "int4"} == {
        k: k in kinds for k in ("Int8Linear", "Int4Linear")}
    lc, kc = info["logits_check"], info["kernel_check"]
    assert lc["finite"] and kc["finite"] and lc["prompt_len"] == 21
    assert 0 < lc["max_err_over_sd"] < bound and kc["max_err_over_sd"] < 0.03
    assert info["bytes_per_token"] == _expected_bytes(TINY, fmt, 128, quant_head)
    ttft, itl = runner.run(prompt, 4)                      # the timed path runs on the quantized model
    assert ttft > 0 and len(itl) == 3
    info["quantize_s"] = 0.0
    notes = pq.quant_notes(f"gptfast-{fmt}", info)
    assert f"{lc['max_err_over_sd']:.4f}" in notes[1] and "NON-FINITE" not in " ".join(notes)


def test_bench_peers_cli_accepts_quant_systems_and_rejects_bad_groups():
    from scripts import bench_peers
    a = bench_peers.parse_args(["--systems", "gptfast-int8,gptfast-prefill-int4", "--group-size", "64"])
    assert a.systems == ["gptfast-int8", "gptfast-prefill-int4"] and a.group_size == 64 and a.check_len == 128
    assert bench_peers.parse_args([]).systems == ["gptfast", "gptfast-prefill", "hf-eager", "hf-compile"]
    for bad in (["--group-size", "100"], ["--check-len", "-1"], ["--systems", "gptfast-int3"]):
        with pytest.raises(SystemExit) as e:
            bench_peers.parse_args(bad)
        assert e.value.code == 2
