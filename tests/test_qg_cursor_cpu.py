"""CUGRAPHLLM_QG_CURSOR=0|1 without a GPU: the switch (gpu/ops_quant.qg_cursor: values, one-line errors), its way
into the int4 tile compile as QG_CURSOR and into the cache key (other formats and paths untouched), and the
kernels it selects (kernels/gemv_quant_cursor.cuh): every int4 tile config the plan picks compiles with it in at
most the registers of today's occupancy, without spills on 8 warps (16 warps spill today already: at most 8 bytes
more, kept outside the loop, kernels/gemv_quant_tiles.cuh), its loop has no 64-bit row multiplies and < 0.8x the
PTX instructions a round, and QG_CURSOR=0 gives the PTX of no define at all.
Bit identity of the results: tests/test_qg_cursor_gpu.py."""
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from cugraphllm.errors import ConfigError, CugraphError

NVCC = shutil.which("nvcc") or shutil.which("nvcc", path="/usr/local/cuda/bin")
PTXAS = shutil.which("ptxas") or shutil.which("ptxas", path="/usr/local/cuda/bin")


@pytest.mark.parametrize("raw,on", [(None, True), ("", True), ("0", False), (" 0 ", False), ("1", True),
                                    (" 1\n", True)])
def test_qg_cursor_values(raw, on, monkeypatch):
    from cugraphllm.gpu import ops_quant as oq
    if raw is None:
        monkeypatch.delenv("CUGRAPHLLM_QG_CURSOR", raising=False)
    else:
        monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", raw)
    assert oq.qg_cursor() is on


@pytest.mark.parametrize("raw", ["2", "on", "true", "-1", "1,0"])
def test_qg_cursor_bad_value_is_one_line(raw, monkeypatch):
    from cugraphllm.gpu import ops_quant as oq
    monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", raw)
    with pytest.raises(ConfigError) as e:
        oq.qg_cursor()
    msg = str(e.value)
    assert isinstance(e.value, CugraphError) and "\n" not in msg
    assert "CUGRAPHLLM_QG_CURSOR" in msg and repr(raw.strip()) in msg


@pytest.fixture
def compiles(monkeypatch):
    """ops_quant with get_function recording (file, kernel, defines) instead of compiling."""
    from cugraphllm.gpu import ops as _ops
    from cugraphllm.gpu import ops_quant as oq
    calls = []
    monkeypatch.setattr(oq, "get_function", lambda file, kernel, defines, dtype=None: calls.append(
        (file, kernel, dict(defines))) or object())
    monkeypatch.setattr(oq, "device_id", lambda: 0)
    monkeypatch.setattr(oq, "_resident", lambda fn, threads, smem: 132)
    monkeypatch.setattr(_ops, "_need_smem", lambda fn, nbytes: None)
    monkeypatch.setattr(oq, "_cache", {})
    return oq, calls


# (kernel, K, row pairs): the 7B matrices on int4 tiles (wqkv 6144 pairs, w13 11008, LM head 16000)
TILE_OPS = [("qgemv_qkv_rope_norm", 4096, 6144), ("qgemv_silu_norm", 4096, 11008), ("qgemv_logits_norm", 4096, 16000)]


@pytest.mark.parametrize("kernel,K,pairs", TILE_OPS)
def test_qg_cursor_reaches_the_int4_tile_compile_and_its_key(compiles, monkeypatch, kernel, K, pairs):
    oq, calls = compiles
    monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", "0")
    oq._function(kernel, "int4", "float16", K, pairs, 0, 128)
    assert len(calls) == 1 and "QG_CURSOR" not in calls[0][2] and calls[0][2]["QG_MMA"] == 1  # the loop of before
    monkeypatch.delenv("CUGRAPHLLM_QG_CURSOR", raising=False)  # unset: the cursor loop (the default)
    oq._function(kernel, "int4", "float16", K, pairs, 0, 128)
    monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", "1")
    oq._function(kernel, "int4", "float16", K, pairs, 0, 128)  # cached: no third compile
    assert len(calls) == 2 and calls[1][2] == {**calls[0][2], "QG_CURSOR": 1}
    assert len(oq._cache) == 2 and sorted(k[-1] for k in oq._cache) == [False, True]
    monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", "0")
    oq._function(kernel, "int4", "float16", K, pairs, 0, 128)
    assert len(calls) == 2  # the default module again, from the cache
    monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", "yes")
    with pytest.raises(ConfigError, match="CUGRAPHLLM_QG_CURSOR"):
        oq._function(kernel, "int4", "float16", K, pairs, 0, 128)
    assert len(calls) == 2


@pytest.mark.parametrize("fmt,kernel,pairs", [("fp8", "qgemv_logits_norm", 16000), ("int8", "qgemv_silu_norm", 11008),
                                              ("int4", "qgemv_residual", 2048)])
def test_qg_cursor_leaves_other_paths_alone(compiles, monkeypatch, fmt, kernel, pairs):
    """fp8 / int8, and int4 off the tiles (7B wo: 2048 pairs, the half2 path), compile as before under =1 (one
    module, no QG_CURSOR define); a bad value still fails there."""
    oq, calls = compiles
    for v in ("0", "1"):
        monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", v)
        oq._function(kernel, fmt, "float16", 4096, pairs, 0, 128)
    assert len(calls) == 1 and "QG_CURSOR" not in calls[0][2]
    monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", "2")
    with pytest.raises(ConfigError):
        oq._function(kernel, fmt, "float16", 4096, pairs, 0, 128)


# ---- the kernels -----------------------------------------------------------------------------------------------
def _tile_configs():
    """{(warps, unroll, warps a tile): [entries]} the int4 plan gives the LLaMA-2 tile matrices (7B / 13B / 70B
    wqkv, w13, LM head at >= mma_min_pairs row pairs, and the wo / w2 / wqkv of its mma_shapes), from gemv_plan."""
    from cugraphllm.gpu import gemv_plan
    p = gemv_plan.plan_for("int4")
    shapes = [("qgemv_logits_norm", 4096, 16000)]
    for dim, kv, hidden in ((4096, 4096, 11008), (5120, 5120, 13824), (8192, 1024, 28672)):
        shapes += [("qgemv_qkv_rope_norm", dim, (dim + 2 * kv) // 2), ("qgemv_silu_norm", dim, hidden),
                   ("qgemv_residual_ss", dim, dim // 2), ("qgemv_residual_ss", hidden, dim // 2)]
    out: dict = {}
    for kernel, K, n in shapes:
        if p.use_mma(n, kernel, K):
            out.setdefault(p.gemv_config(kernel, K, n), set()).add(kernel)
    return out


def _nvcc(defines: dict, tmp_path, tag: str) -> str:
    from cugraphllm.gpu.cuda_kernels import dtype_defines, read_source
    src, ptx = tmp_path / f"{tag}.cu", tmp_path / f"{tag}.ptx"
    src.write_text(read_source("gemv_quant.cu", {**defines, **dtype_defines("float16")}))
    r = subprocess.run([NVCC, "-arch=sm_90", "-ptx", "-std=c++17", "-o", str(ptx), str(src)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return ptx.read_text()


def _ptxas(ptx: str, entries, tmp_path, tag: str) -> dict:
    """{entry: (registers, spill store bytes, spill load bytes)} from ptxas -v of those entries only"""
    (tmp_path / f"{tag}.ptx").write_text(ptx)
    r = subprocess.run([PTXAS, "-arch=sm_90", "-v", *[a for e in entries for a in ("-e", e)], "-o",
                        str(tmp_path / f"{tag}.cubin"), str(tmp_path / f"{tag}.ptx")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    out = {}
    for m in re.finditer(r"entry function '(\w+)'.*?(\d+) bytes spill stores, (\d+) bytes spill loads.*?Used (\d+) "
                         r"registers", r.stderr, re.S):
        out[m.group(1)] = (int(m.group(4)), int(m.group(2)), int(m.group(3)))
    assert set(out) == set(entries), r.stderr[-2000:]
    return out


def _loop_ops(ptx: str, entry: str, n_mma: int = 16) -> tuple[int, int]:
    """(instructions, 64-bit multiplies) of the innermost tile loop of `entry`: the backward branch whose range
    holds the n_mma mma.sync (int4 16, 8-bit 8) and 4 weight loads of a round (PTX lines that are instructions;
    labels, directives, comments not; division blocks of other group sizes left out)."""
    body = ptx[ptx.index(f".entry {entry}("):]
    body = body[:body.index(".entry ", 10)] if ".entry " in body[10:] else body
    op = re.compile(r"^(@!?%p\d+\s+)?[a-z][a-zA-Z0-9_.:]*(\s|;|$)")
    blocks, cur = [], ["entry", []]
    for line in body.splitlines():
        s = line.strip()
        if re.match(r"^\$L__BB\d+_\d+:", s):
            blocks.append(cur)
            cur = [s[:-1], []]
        elif op.match(s.lstrip("{ ")) and not s.lstrip("{ ").startswith("."):
            cur[1].append(s.lstrip("{ "))
    blocks.append(cur)
    at = {n: k for k, (n, _) in enumerate(blocks)}
    best = None
    for k, (_, ins) in enumerate(blocks):
        for x in ins:
            m = re.search(r"bra(?:\.uni)?\s+(\$L__BB\d+_\d+)", x)
            if m and at.get(m.group(1), k + 1) <= k:
                loop = [y for _, i in blocks[at[m.group(1)]:k + 1] if not any("div.s32" in z for z in i) for y in i]
                if sum("mma.sync" in y for y in loop) == n_mma and sum("no_allocate" in y for y in loop) == 4:
                    if best is None or len(loop) < best[0]:
                        best = (len(loop), sum(y.startswith("mul.lo.s64") for y in loop))
    assert best, f"{entry}: no tile loop found"
    return best


@pytest.fixture(scope="module")
def tile_builds(tmp_path_factory):
    """Per tile config: PTX with QG_CURSOR=0 and =1, and (the 7B wqkv config) without the define (in two threads:
    nvcc runs outside the GIL). QG_CURSOR=0 must give the PTX of no define (
    here on one config for the suite's time; the diff of every config, fp16 and bf16: the commit)."""
    if NVCC is None or PTXAS is None:
        pytest.skip("nvcc / ptxas not installed")
    tmp = tmp_path_factory.mktemp("qg_cursor")
    jobs = {}
    for (warps, unroll, ms), _ in _tile_configs().items():
        base = dict(QFMT=3, QG_WARPS=warps, QG_UNROLL=unroll, QG_KSPLIT=1, QG_HACC=0, QG_PFS=0, QG_PIPE=0, QG_MMA=1,
                    QG_MSPLIT=ms, QG_LDCG=1)
        for v in (0, 1) if (warps, ms) != (8, 4) else (None, 0, 1):  # no define: the 7B wqkv config's (time)
            jobs[(warps, unroll, ms, v)] = base if v is None else {**base, "QG_CURSOR": v}
    with ThreadPoolExecutor(2) as ex:
        futs = {k: ex.submit(_nvcc, d, tmp, "_".join(map(str, k))) for k, d in jobs.items()}
        return tmp, {k: f.result() for k, f in futs.items()}


def test_qg_cursor_0_is_todays_ptx(tile_builds):
    _, ptx = tile_builds
    assert ptx[(8, 2, 4, 0)] == ptx[(8, 2, 4, None)], "QG_CURSOR=0 changed the PTX of the 7B wqkv tiles"
    for (w, u, ms, v), text in ptx.items():
        if v == 0:
            assert text != ptx[(w, u, ms, 1)] and "mma.sync" in text


# Spill bytes the cursor loop may add over the old loop in a 512-thread tile config (64 registers; default 8).
# (16, 2, 4), 13B's wqkv since mma_waves=1 (twelfth session): the qkv kernel stores / loads 44 / 40 bytes against 20 /
# 16 (nvcc 13.0), and measured faster all the same: 16.67 us a call against 21.09 on (8, 2, 4) (s19f), 13B int4
# decode 3.39 -> 3.21 ms/token (twelfth session, s20c).
# (16, 2, 8), 70B's wo / w2 since the tile-contiguous layout (twentieth session): qgemv_residual_ss stores / loads
# 44 / 44 bytes against 16 / 16 (nvcc 13.0), and was measured faster than the half2 path all the same (wo 15.5 ->
# 13.9 us, w2 43.5 -> 39.6, s28g; 70B int4 decode 13.36 -> 12.94 ms/token, s28h).
SPILL_SLACK = {(16, 2, 4): 32, (16, 2, 8): 32}


def test_qg_cursor_tiles_registers_spills_and_loop(tile_builds):
    tmp, ptx = tile_builds
    configs = _tile_configs()
    assert {(8, 2, 4), (8, 2, 2), (16, 2, 2)} <= set(configs)  # 7B wqkv, w13, LM head
    for (w, u, ms), entries in configs.items():
        entries = sorted(entries)
        now = _ptxas(ptx[(w, u, ms, 0)], entries, tmp, f"r{w}{u}{ms}0")
        cur = _ptxas(ptx[(w, u, ms, 1)], entries, tmp, f"r{w}{u}{ms}1")
        cap = 65536 // (32 * w * (3 if w == 8 else 2))  # today's occupancy: 3 blocks of 8 warps, 2 of 16, an SM
        for e in entries:
            regs, st, ld = cur[e]
            assert regs <= max(cap // 8 * 8, now[e][0]), f"{e} tiles {w}/{u}/{ms}: {regs} registers (now {now[e]})"
            if w == 8:
                assert st == ld == 0, f"{e} tiles {w}/{u}/{ms} spills {st} / {ld} bytes"
            else:
                slack = SPILL_SLACK.get((w, u, ms), 8)
                assert st <= now[e][1] + slack and ld <= now[e][2] + slack, \
                    f"{e} tiles {w}/{u}/{ms}: {cur[e]} vs {now[e]}"
            n_now, _ = _loop_ops(ptx[(w, u, ms, 0)], e)
            n_cur, mul_cur = _loop_ops(ptx[(w, u, ms, 1)], e)
            assert mul_cur == 0, f"{e}: 64-bit row multiplies in the cursor loop"
            assert n_cur < 0.8 * n_now, f"{e} tiles {w}/{u}/{ms}: {n_cur} PTX instructions a round (now {n_now})"


@pytest.mark.parametrize("qfmt", [1, 2], ids=["fp8", "int8"])
def test_qg_cursor_8bit_tiles(tmp_path, qfmt):
    """fp8 / int8 on the tiles (off by default; bench_quant --sweep mma) under the cursor loop: no spills (8 warps:
    the (256, 3) bound, 80 registers; 16 warps: 64), no 64-bit row multiply in the loop, and fewer PTX
    instructions a round than the loop of before."""
    if NVCC is None or PTXAS is None:
        pytest.skip("nvcc / ptxas not installed")
    entries = ["qgemv_qkv_rope_norm", "qgemv_silu_norm", "qgemv_residual_ss", "qgemv_logits_norm"]
    for w, ms in ((8, 4), (16, 2)):
        base = dict(QFMT=qfmt, QG_WARPS=w, QG_UNROLL=2, QG_KSPLIT=1, QG_HACC=0, QG_PFS=0, QG_PIPE=0, QG_MMA=1,
                    QG_MSPLIT=ms, QG_LDCG=1)  # QG_PARK's default (off at 16 warps: int8's residual GEMV spills)
        old, cur = (_nvcc({**base, "QG_CURSOR": v}, tmp_path, f"q{qfmt}_{w}_{ms}_{v}") for v in (0, 1))
        for e, (regs, st, ld) in _ptxas(cur, entries, tmp_path, f"r{qfmt}{w}{ms}").items():
            assert regs <= (80 if w == 8 else 64) and st == ld == 0, f"{e} {w}/{ms}: {regs} registers, {st} spilled"
        for e in ("qgemv_qkv_rope_norm", "qgemv_silu_norm"):
            n_old, _ = _loop_ops(old, e, 8)
            n_cur, mul = _loop_ops(cur, e, 8)
            assert mul == 0 and n_cur < n_old, f"{e} {w}/{ms}: {n_cur} PTX instructions a round (before {n_old})"



# (defines, parked by default): QG_PARK's rule (kernels/gemv_quant.cuh) on the engine's row-pair and tile builds
PARK_CASES = [(dict(QFMT=3, QG_WARPS=16, QG_KSPLIT=1, QG_HACC=1, QG_PIPE=0), False),   # 70B int4 wo / w2
              (dict(QFMT=3, QG_WARPS=16, QG_KSPLIT=2, QG_HACC=1, QG_PIPE=0), True),    # 7B int4 wo / w2
              (dict(QFMT=2, QG_WARPS=16, QG_KSPLIT=1, QG_HACC=1, QG_PIPE=1), True),    # 7B int8
              (dict(QFMT=3, QG_WARPS=8, QG_KSPLIT=1, QG_HACC=0, QG_PIPE=0, QG_MMA=1, QG_MSPLIT=2, QG_CURSOR=1), True)]


@pytest.mark.parametrize("defines,parked", PARK_CASES, ids=lambda c: "-".join(map(str, c.values()))
                         if isinstance(c, dict) else str(c))
def test_qg_park_default(tmp_path, defines, parked):
    """The default build reads the activation once (its PTX differs from QG_PARK 0's) exactly where the rule says;
    elsewhere it is QG_PARK 0's build."""
    if NVCC is None:
        pytest.skip("nvcc not installed")
    d = {"QG_UNROLL": 2, "QG_PFS": 0, "QG_LDCG": 1, **defines}
    default, off = (_nvcc({**d, **extra}, tmp_path, f"p{i}") for i, extra in enumerate(({}, {"QG_PARK": 0})))
    assert (default != off) == parked
