"""The one loader of kernels/*.cu: finds the sources, prepends #defines, compiles through cupy.RawModule, caches.

Sources are found in the checkout's top-level kernels/ or, when installed, in the package cugraphllm.kernels
(setup.cfg maps one onto the other). CuPy caches the compiled cubin on disk (CUPY_CACHE_DIR), so a second start
pays only the module load. Import of this module touches no GPU library.

Devices: a CuPy RawKernel loads its module per device by itself, but a function ATTRIBUTE (the dynamic shared-memory
limit) is set on the current device only. Every per-kernel or per-handle cache of the gpu package is therefore keyed
by `device_id()` (ops, gemm scratch, cuBLAS handles, `raise_smem_limit` here); objects that own device memory
(Attention, PrefillKernel, GraphRuntime, the engine) belong to the device current when they were made.

A/B switches that reach the kernels as #defines (scripts/device_prologue_fix.sh compares them):
CUGRAPHLLM_PDL_ORDER=early|late (default early) is READ AT IMPORT of this module and adds PDL_LATE to every module
compiled here (common.cuh pdl_enter: wait, then launch the dependents) and the decode attention kernels' spec
(gpu/attention.py): one order per process; the define is part of `_module`'s cache key.
CUGRAPHLLM_QG_LDCG=0|1 (default 1; `qg_ldcg`, read at each quantized GEMV compile, part of gpu/ops_quant.py's cache
key): the quantized GEMV prologue loads the activation and ss partials with __ldcg (gemv_quant.cuh QG_LDCG). With 0
(ld.global.nc) the int4 LM head on 16-warp tiles read stale values under PDL (7-9% logit error; H200, 2026-11-30,
benchmarks/results/tenth_2026-11-30/plgfix); 1 passed every test that showed it, at 1.76-1.78 vs 1.76 ms/token.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from ..errors import ConfigError
from .env import env_bit  # re-exported: quant_tiles, ops_quant and tests import it from here

_CHECKOUT_KERNELS = Path(__file__).resolve().parents[2] / "kernels"
_INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

# -std=c++17 is CuPy's default; no fast-math: RoPE and softmax keep IEEE expf/sincosf accuracy.
COMPILE_OPTIONS = ("-lineinfo",)
PDL_ORDER_ENV, LDCG_ENV = "CUGRAPHLLM_PDL_ORDER", "CUGRAPHLLM_QG_LDCG"
_PDL_ORDER_RAW = os.environ.get(PDL_ORDER_ENV)  # read once, at import (module docstring)


def kernel_dir() -> Path:
    if (_CHECKOUT_KERNELS / "common.cuh").exists():
        return _CHECKOUT_KERNELS
    from importlib import resources
    return Path(str(resources.files("cugraphllm.kernels")))


def kernel_sources() -> list[Path]:
    """Every .cu file we ship (CI compiles each for sm_90 and sm_80)."""
    return sorted(kernel_dir().glob("*.cu"))


def read_source(name: str, defines: dict | None = None) -> str:
    """Source of kernels/<name>, local "#include"s inlined (NVRTC has no include path to our folder)."""
    seen: set[str] = set()

    def inline(fname: str) -> str:
        if fname in seen:
            return ""
        seen.add(fname)
        text = (kernel_dir() / fname).read_text()
        return _INCLUDE_RE.sub(lambda m: inline(m.group(1)) if (kernel_dir() / m.group(1)).exists()
                               else m.group(0), text)

    head = "".join(f"#define {k} {v}\n" for k, v in sorted((defines or {}).items()))
    return head + inline(name)


def kernel_int(name: str, macro: str) -> int:
    """The integer of `#define MACRO <int>` in kernels/<name> (its includes inlined): launchers take a kernel's
    compile-time constants from the source instead of restating them."""
    found = re.findall(rf"^\s*#\s*define\s+{re.escape(macro)}\s+(\d+)\b", read_source(name), re.M)
    if len(set(found)) != 1:
        raise ConfigError(f"kernels/{name}: expected one integer #define {macro}, found {found or 'none'}")
    return int(found[0])


@functools.lru_cache(maxsize=None)
def _module(name: str, defines: tuple, options: tuple):
    import cupy as cp
    return cp.RawModule(code=read_source(name, dict(defines)), options=COMPILE_OPTIONS + options)


def device_id() -> int:
    """The current CUDA device: the key of every per-device cache (tests monkeypatch it)."""
    import cupy as cp
    return cp.cuda.runtime.getDevice()


SMEM_DEFAULT = 48 * 1024
_smem_set: dict = {}  # (device, CUfunction handle) -> dynamic shared-memory limit raised so far


def raise_smem_limit(fn, nbytes: int) -> None:
    """Raise a RawKernel's dynamic shared-memory limit to nbytes on the CURRENT device, once per (device, function);
    call it outside graph capture (warm-up). The key is the device's CUfunction handle (`fn.kernel.ptr`), where the
    attribute lives: a Python id could be reused by another kernel once the first is collected. The 48 KiB
    default bounds static plus dynamic shared memory, so the kernel's static bytes count (a kernel with ~1 KiB
    static asking for 47-48 KiB dynamic failed to launch without the raise)."""
    if nbytes <= SMEM_DEFAULT // 2:  # no kernel here has 24 KiB of static shared memory
        return
    key = (device_id(), fn.kernel.ptr)
    if _smem_set.get(key, 0) < nbytes:
        if nbytes + int(getattr(fn, "shared_size_bytes", 0)) > SMEM_DEFAULT:
            fn.max_dynamic_shared_size_bytes = nbytes
        _smem_set[key] = nbytes




def pdl_late(raw: str | None = None) -> bool:
    """CUGRAPHLLM_PDL_ORDER as read at import (or `raw`): False for early (default), True for late; a one-line
    ConfigError for anything else (raised at the first compile, inside the CLI's error handling)."""
    v = (_PDL_ORDER_RAW if raw is None else raw) or "early"
    if v.strip().lower() not in ("early", "late"):
        raise ConfigError(f"{PDL_ORDER_ENV}={v!r}: expected early or late")
    return v.strip().lower() == "late"


def qg_ldcg(raw: str | None = None) -> bool:
    """CUGRAPHLLM_QG_LDCG now (or `raw`): 1 / unset True, 0 False, a one-line ConfigError otherwise."""
    return env_bit(LDCG_ENV, raw)


def dtype_defines(dtype) -> dict:
    """The activation-dtype rule of every kernels/*.cu (common.cuh): bfloat16 storage compiles with CG_BF16."""
    return {"CG_BF16": 1} if str(dtype) in ("bfloat16", "bf16") else {}


def get_function(file: str, kernel: str, defines: dict | None = None, options: tuple = (), dtype=None):
    """cupy RawKernel-like function `kernel` from kernels/<file>, compiled once per (defines, options);
    `dtype` (a storage dtype or its name) adds dtype_defines(dtype); CUGRAPHLLM_PDL_ORDER=late adds PDL_LATE."""
    d = {**(defines or {}), **dtype_defines(dtype), **({"PDL_LATE": 1} if pdl_late() else {})}
    fn = _module(file, tuple(sorted(d.items())), tuple(options)).get_function(kernel)
    if CARVEOUT is not None or _carve:
        _carveout(fn)
    return fn


# Bench-only A/B (scripts/prefill_ab.py cuda_kernels.CARVEOUT=100): the shared-memory carveout preference (percent
# of the unified L1 / shared memory, -1 the driver's choice) of every kernel fetched from here while it is set; None
# (default) leaves every kernel at the driver's choice (a kernel set earlier in the process is put back at -1).
CARVEOUT = None
_carve: dict = {}  # (device, CUfunction handle) -> preference set


def _carveout(fn) -> None:
    key, want = (device_id(), fn.kernel.ptr), -1 if CARVEOUT is None else int(CARVEOUT)
    if _carve.get(key, -1) != want:
        fn.preferred_shared_memory_carveout = want
        _carve[key] = want
