"""Attention planning, PTX generation and the disk-cache compiler, all without a GPU (needs numba-cuda + libNVVM
for the PTX tests; skipped cleanly otherwise)."""
import json
import os
import re
import subprocess
import sys

import pytest

from cugraphllm.config import ModelConfig
from cugraphllm.gpu import attention as A
from cugraphllm.gpu import jit_cache


def cfg(n_heads, n_kv_heads, head_dim):
    return ModelConfig(dim=n_heads * head_dim, n_layers=1, n_heads=n_heads, n_kv_heads=n_kv_heads,
                       vocab_size=32, hidden_dim=64, max_seq_len=4096)


def test_buckets_cover_context():
    assert A.make_buckets(4096) == ([64, 128, 256, 512, 1024, 2048, 4096], [16, 32, 64, 128, 192, 256, 384, 512])
    assert A.make_buckets(600) == ([64, 128, 256, 512, 600], [16, 32, 64, 128, 192, 256, 384, 512])
    assert A.make_buckets(300) == ([64, 128, 256, 300], [16, 32, 64, 128, 192, 256, 300])
    assert A.make_buckets(100) == ([64, 100], [16, 32, 64, 100])
    assert A.make_buckets(8) == ([8], [8])


@pytest.mark.parametrize("shape", [(32, 32, 128), (64, 8, 128), (16, 8, 64), (6, 3, 72), (4, 2, 6), (8, 8, 8),
                                   (32, 4, 256)])
@pytest.mark.parametrize("lmax", [1, 63, 64, 200, 600, 4096])
@pytest.mark.parametrize("knobs", [{}, {"short_iters": 0, "split_keys": 0}, {"short_iters": 99},
                                   {"short_iters": 2, "split_keys": 0}, {"unroll": 4, "n_warps": 4}, {"dsplit_keys": 0},
                                   {"one_trip": 0}, {"one_trip": 4096}])
def test_decode_plan_covers_every_key_once(shape, lmax, knobs):
    c = cfg(*shape)
    p = A.plan_decode(c, "float16", lmax, **knobs)
    step = p["n_warps"] * p["unroll"] * 32 // p["g"]  # keys per block per loop trip
    assert p["chunk"] % step == 0
    assert p["n_split"] * p["chunk"] >= lmax > (p["n_split"] - 1) * p["chunk"]  # no split is always empty
    assert p["n_split"] * c.n_kv_heads <= max(4 * 132 + c.n_kv_heads, c.n_kv_heads)
    words = c.head_dim // p["vec"]
    assert p["g"] * -(-words // p["g"]) >= words and p["g"] in (1, 2, 4, 8, 16, 32)
    assert words % p["n_dsplit"] == 0 and (p["n_dsplit"] == 1 or p["n_split"] == 1 or "n_dsplit" in knobs)
    assert p["n_warps"] * c.n_rep * c.head_dim * 4 <= 32768 and 32 * p["n_warps"] <= 256  # smem, launchable
    assert (p["vec"] == 8) == (c.head_dim % 8 == 0 and c.n_rep <= 4)
    assert p["unroll"] * c.n_rep * -(-words // p["g"]) * p["vec"] <= A.UNROLLED_FMAS or p["unroll"] == 1


def test_decode_plan_short_buckets_skip_the_combine():
    c = cfg(32, 32, 128)  # 7B: up to 128 keys in one trip of one block -> 2 blocks per head, no key split
    for lmax, d in ((64, 2), (128, 2)):
        p = A.plan_decode(c, "float16", lmax)
        assert (p["n_split"], p["n_dsplit"], p["vec"]) == (1, d, 8)
    p = A.plan_decode(c, "float16", 256)  # one_trip: 16 key steps in flight a lane, one trip, early loads
    assert (p["n_split"], p["n_dsplit"], p["chunk"], p["unroll"], p["cluster"], p["early"]) == (1, 2, 256, 16, 0, 1)
    p = A.plan_decode(c, "float16", 256, one_trip=0)  # else two trips: two one-trip blocks a head, in a cluster
    assert (p["n_split"], p["n_dsplit"], p["chunk"], p["cluster"], p["early"]) == (2, 1, 128, 1, 1)
    assert A.plan_decode(c, "float16", 512)["unroll"] == 8  # above one_trip the split plans keep 8
    assert A.plan_decode(c, "float16", 512)["n_split"] > 1
    p = A.plan_decode(cfg(64, 8, 128), "float16", 64)  # 70B: two trips at 64 keys, below split_keys: dim split
    assert (p["n_split"], p["n_dsplit"]) == (1, 2)
    assert A.plan_decode(cfg(64, 8, 128), "float16", 64, split_keys=0)["n_split"] == 2


def test_cache_key_depends_on_spec_and_cc():
    s = A.plan_decode(cfg(32, 32, 128), "float16", 512)
    assert jit_cache.cache_key(s, "90") == jit_cache.cache_key(dict(s), "90")
    assert jit_cache.cache_key(s, "90") != jit_cache.cache_key(s, "80")
    assert jit_cache.cache_key(s, "90") != jit_cache.cache_key({**s, "dtype": "bfloat16"}, "90")


def test_import_touches_no_gpu_library():
    code = "import sys, cugraphllm.gpu.attention, cugraphllm.gpu.jit_cache; print('numba' in sys.modules, 'cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


SPECS = [  # (config shape, dtype, lmax): fast paths 64/128, GQA, bf16, the 2-element word path, short + long plans
    ((32, 32, 128), "float16", 4096),
    ((32, 32, 128), "float16", 64),
    ((32, 32, 128), "float16", 256),  # one_trip: 16 key steps in flight a lane
    ((32, 4, 128), "bfloat16", 512),
    ((16, 8, 64), "float16", 64),
    ((4, 2, 6), "bfloat16", 600),
]


@pytest.fixture(scope="module")
def kernels():
    pytest.importorskip("numba.cuda")
    try:
        from cugraphllm.gpu import jit_cache
        jit_cache.compile_ptx(A.plan_prefill(cfg(8, 8, 8), "float16", 64), (9, 0))
    except Exception as e:  # no libNVVM here
        pytest.skip(f"numba-cuda cannot compile here: {type(e).__name__}: {e}")
    return jit_cache


@pytest.mark.parametrize("shape,dtype,lmax", SPECS)
@pytest.mark.parametrize("kind", ["decode", "prefill"])
def test_ptx_abi_and_code_quality(kernels, kind, shape, dtype, lmax):
    c = cfg(*shape)
    spec = A.plan_decode(c, dtype, lmax) if kind == "decode" else A.plan_prefill(c, dtype, lmax)
    ptx, name = kernels.compile_ptx(spec, (9, 0))
    params = re.search(re.escape(name) + r"\((.*?)\)", ptx, re.S).group(1)
    assert params.count(".param .u64") == (7 if kind == "decode" else 6)  # one pointer per argument
    assert not re.search(r"\.f64\b", ptx), "accidental float64 math"
    assert ".local" not in ptx, "register arrays spilled to local memory"
    wide = spec["vec"] == 8  # decode: 16-byte K/V words; else 8-byte words when head_dim % 4 == 0
    assert ("ld.global.nc.v2.u64" in ptx) == wide
    assert wide or ("ld.global.u64" in ptx) == (c.head_dim % 4 == 0)
    if kind == "decode" and spec["n_split"] > 1:  # split-K: combined in a cluster (DSMEM) or by atomic ticket
        assert ("mapa" in ptx and "barrier.cluster" in ptx and "atom" not in ptx) if spec["cluster"] else \
            ("atom" in ptx and "mapa" not in ptx)
    if kind == "decode":
        assert ("griddepcontrol" in ptx) == bool(spec.get("pdl"))
    if dtype == "float16":
        assert "cvt.f32.f16" in ptx and "cvt.rn.f16.f32" in ptx


@pytest.mark.parametrize("knobs", [{"ko": 1}, {"ko": 2}], ids=str)
def test_knockouts_drop_what_they_name(kernels, knobs):
    """The knockouts (bench_attention variants) stay out of the default plan; each drops what it names: ko 1 the
    ticket (no atomic), ko 2 the key walk (no K/V load), without local memory."""
    c = cfg(32, 32, 128)
    assert "ko" not in A.plan_decode(c, "float16", 4096)
    spec = A.plan_decode(c, "float16", 4096, **knobs)
    assert spec["n_split"] == 8 and not spec["cluster"] and {k: spec[k] for k in knobs} == knobs
    ptx, _ = kernels.compile_ptx(spec, (9, 0))
    base, _ = kernels.compile_ptx(A.plan_decode(c, "float16", 4096), (9, 0))
    assert ".local" not in ptx and ptx != base
    if knobs.get("ko") == 1:
        assert "atom" not in ptx and "atom" in base
    if knobs.get("ko") == 2:
        assert "ld.global.nc.v2.u64" not in ptx


@pytest.mark.parametrize("shape", [(32, 32, 128), (40, 40, 128), (64, 8, 128), (16, 16, 128), (20, 20, 128),
                                   (32, 4, 128), (52, 52, 128), (48, 6, 128)])
def test_key_split_plans_cover_each_bucket(shape):
    """A key-split plan's chunks cover its bucket with no empty split, and its grid is the wave of the split-K
    occupancy rounded up (13B at 4096 keys: 7 splits of 40 KV heads, 280 blocks, measured faster than 6 in s34b);
    early loads on every key-split plan, on buckets of <= EARLY_SHORT keys and on one-trip plans of <= one_trip."""
    c = cfg(*shape)
    for lmax in [64 << i for i in range(7)]:
        s = A.plan_decode(c, "float16", lmax)
        assert s["n_split"] * s["chunk"] >= lmax and (s["n_split"] - 1) * s["chunk"] < lmax
        assert s["n_kv_heads"] * (s["n_split"] - 1) < A.BLOCKS_PER_SM * 132, (shape, lmax, s["n_split"])
        one_trip = s["n_split"] == 1 and s["chunk"] == lmax <= A.DECODE_KNOBS["one_trip"]  # lmax: powers of 2
        assert s["early"] == int(s["n_split"] > 1 or lmax <= A.EARLY_SHORT or one_trip), (shape, lmax)
    assert A.plan_decode(cfg(40, 40, 128), "float16", 4096)["n_split"] == 7


def test_ticket_combine_loads_at_once(kernels):
    """7B at 4096 keys (8 splits, ticket): after the ticket the combine issues its 3 x n_split partial loads with no
    loop between them; two fences (thread 0's release and acquire); the early loads are on (every key-split plan)."""
    spec = A.plan_decode(cfg(32, 32, 128), "float16", 4096)
    assert spec["n_split"] == 8 and spec["early"] == 1 and not spec["cluster"]
    ptx, _ = kernels.compile_ptx(spec, (9, 0))
    tail = ptx[ptx.index("atom.global.add"):]
    assert tail.count("ld.global.f32") == 3 * spec["n_split"] and ptx.count("membar.gl") == 2


def test_compile_subprocess_fills_cache_once(kernels, tmp_path):
    spec = A.plan_decode(cfg(8, 4, 16), "float16", 128)
    cmd = [sys.executable, "-m", "cugraphllm.gpu.jit_cache", "--cc", "90", "--cache-dir", str(tmp_path),
           json.dumps(spec)]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-2000:]
    assert len(first.stdout.strip().splitlines()) == 1
    hit = jit_cache.lookup(tmp_path, jit_cache.cache_key(spec, "90"))
    assert hit is not None and hit[1]["format"] in ("cubin", "ptx") and len(hit[0]) > 1000
    second = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert second.stdout.strip() == ""  # cache hit: nothing compiled


SIM_CASES = [  # [n_heads, n_kv_heads, head_dim, dtype, lmax, knobs]: small enough for the CPU simulator
    [4, 2, 16, "float16", 64, {"early": 1}],  # 16-byte words, dim split 2, no key split, loads before the wait
    [4, 2, 16, "bfloat16", 64, {"n_split": 4, "n_dsplit": 2, "unroll": 1, "n_warps": 1, "early": 1}],  # + ticket
    [2, 1, 12, "float16", 40, {"n_warps": 2, "unroll": 2}],  # 8-byte words, 2 per lane, 3 per row
    [4, 2, 6, "float16", 50, {"n_warps": 1, "unroll": 1, "n_split": 2}],  # 4-byte words, key split
    [8, 1, 16, "float16", 33, {"n_warps": 2, "unroll": 2}],  # n_rep 8 -> 8-byte words
    [2, 1, 8, "bfloat16", 70, {"n_warps": 1, "unroll": 2, "n_split": 2}],  # one lane per key
    [4, 2, 16, "float16", 64, {"n_split": 2, "n_warps": 2, "unroll": 2, "early": 0}],  # every load after the wait
    [4, 2, 16, "float16", 96, {"n_warps": 1, "unroll": 2, "n_split": 3}],  # the ticket, 2 keys a lane-step
]


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CUGRAPHLLM_SIMULATOR") != "1",
                    reason="Numba's CUDA simulator takes 5-25 min on a 2-core box: set CUGRAPHLLM_SIMULATOR=1")
@pytest.mark.parametrize("cases", [SIM_CASES[0::2], SIM_CASES[1::2]])
def test_decode_kernel_on_cuda_simulator(kernels, cases):
    """The decode kernel body, run by Numba's CPU simulator (tests/decode_sim.py), matches the float64 reference
    for lengths at every chunk edge; K/V rows past the length are NaN."""
    from pathlib import Path
    import os
    script = Path(__file__).with_name("decode_sim.py")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    r = subprocess.run([sys.executable, str(script), json.dumps(cases)], capture_output=True, text=True, env=env,
                       timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    for case, res in zip(cases, json.loads(r.stdout.strip().splitlines()[-1])):
        assert res["worst"] <= 0, f"{case}: {res}"


def test_cache_key_covers_every_kernel_module():
    """The cubin cache key hashes the sources of the Numba kernels: every gpu/ module that they import (directly or
    through each other) must be among them, or an edit there would reuse stale cubins. Parsed, not imported (no
    Numba needed)."""
    import ast
    from pathlib import Path
    from cugraphllm.gpu import jit_cache
    gpu = Path(jit_cache.__file__).parent
    hashed = {p.name for p in jit_cache._KERNEL_SOURCES}
    todo, seen = ["attention_kernels.py", "decode_kernels.py"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(ast.parse((gpu / name).read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                mods = [node.module] if node.module else [a.name for a in node.names]
                todo += [f"{m}.py" for m in mods if (gpu / f"{m}.py").exists()]
    assert seen <= hashed, f"kernel modules missing from jit_cache._KERNEL_SOURCES: {sorted(seen - hashed)}"
    assert {"decode_combine.py", "numba_ptx.py"} <= seen


def test_compile_jobs_env(monkeypatch):
    from cugraphllm.errors import ConfigError
    from cugraphllm.gpu import attention
    default = max(1, (os.cpu_count() or 2) // 2)  # unset or blank: half the CPUs, at least one
    for good, want in (("3", 3), (" 1 ", 1), ("", default), (None, default)):
        if good is None:
            monkeypatch.delenv(attention.COMPILE_JOBS_ENV, raising=False)
        else:
            monkeypatch.setenv(attention.COMPILE_JOBS_ENV, good)
        assert attention._compile_jobs() == want, good
    for bad in ("0", "-2", "x", "2.5"):  # used to fall back to the default silently
        monkeypatch.setenv(attention.COMPILE_JOBS_ENV, bad)
        with pytest.raises(ConfigError, match=f"{attention.COMPILE_JOBS_ENV}='{bad}': expected a whole number >= 1"):
            attention._compile_jobs()


def test_bench_attention_lengths_option():
    import argparse
    from scripts import bench_attention as ba
    assert ba.parse_lengths("129, 520,4096") == [129, 520, 4096]
    for bad in ("", "0", "x", "4097", "64,,-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            ba.parse_lengths(bad)
