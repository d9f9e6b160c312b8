"""Disk cache of compiled attention kernels, and the subprocess that fills it.

An entry is keyed by sha256(kernel sources' text + specialization + numba-cuda version + compute capability) and
holds `<key>.cubin` (or `.ptx` when no linker is found) plus `<key>.json` (entry name, format). The json is written
last, atomically, so its presence means the entry is complete. Compiling happens only in a child process
(`python -m cugraphllm.gpu.jit_cache --cc 90 --cache-dir D SPEC_JSON...`): Numba holds the GIL for the whole
compile (0.3-2 s), which would stall the serving process. Importing this module imports neither Numba nor CuPy.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

_KERNEL_SOURCES = [Path(__file__).with_name(n) for n in ("attention_kernels.py", "decode_kernels.py",
                                                          "decode_combine.py", "numba_ptx.py")]
_PKG_PARENT = str(Path(__file__).resolve().parents[2])


def default_cache_dir() -> Path:
    env = os.environ.get("CUGRAPHLLM_CACHE_DIR")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cugraphllm"
    return base / "attention"


@functools.lru_cache(maxsize=None)
def _toolchain_tag() -> str:
    from importlib import metadata
    parts = []
    for dist in ("numba-cuda", "numba", "nvidia-nvvm"):
        try:
            parts.append(f"{dist}={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist}=none")
    return ";".join(parts)


@functools.lru_cache(maxsize=None)
def _source_digest() -> bytes:
    return hashlib.sha256(b"".join(p.read_bytes() for p in _KERNEL_SOURCES) + Path(__file__).read_bytes()).digest()


def cache_key(spec: dict, cc: str) -> str:
    h = hashlib.sha256(_source_digest())
    h.update(json.dumps(spec, sort_keys=True).encode())
    h.update(_toolchain_tag().encode())
    h.update(f"sm_{cc}".encode())
    return h.hexdigest()[:32]


def lookup(cache_dir: Path, key: str) -> tuple[bytes, dict] | None:
    """(image, meta) of a complete entry, else None."""
    meta_path = Path(cache_dir) / f"{key}.json"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        image = (Path(cache_dir) / meta["file"]).read_bytes()
    except (OSError, ValueError, KeyError):
        return None
    return image, meta


def start_compile(specs: list[dict], cc: str, cache_dir: Path) -> subprocess.Popen:
    """Start one child compiling `specs` into cache_dir; returns at once (never a thread: see module doc)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = _PKG_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "cugraphllm.gpu.jit_cache", "--cc", str(cc), "--cache-dir", str(cache_dir)]
    cmd += [json.dumps(s, sort_keys=True) for s in specs]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_compile(proc: subprocess.Popen) -> None:
    out, err = proc.communicate()
    if proc.returncode != 0:
        from ..errors import BackendError
        last = (err or out or "").strip().splitlines()[-1:] or ["no output"]
        raise BackendError(f"attention kernel compile failed (exit {proc.returncode}): {last[0]}")


# ---- child side -------------------------------------------------------------------------------------------------
def _link_cubin(ptx: str, cc: str) -> bytes | None:
    """PTX -> cubin with nvJitLink (its PTX ISA may be newer than the driver's JIT accepts); None if unavailable."""
    try:
        from cuda.core import Linker, LinkerOptions, ObjectCode
    except ImportError:
        try:
            from cuda.core.experimental import Linker, LinkerOptions, ObjectCode
        except ImportError:
            return None
    obj = ObjectCode.from_ptx(ptx.encode())
    return bytes(Linker(obj, options=LinkerOptions(arch=f"sm_{cc}")).link("cubin").code)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _pin_device_cc(cc):
    """Numba compiles device functions for the *current device's* cc, which needs a GPU and a context. The
    compile process targets `cc` explicitly, so answer that instead (works on a GPU-less build machine too)."""
    from numba.cuda import dispatcher

    class _Target:
        compute_capability = tuple(cc)

    dispatcher.get_current_device = lambda: _Target


def compile_ptx(spec, cc: tuple[int, int]) -> tuple[str, str]:
    """(ptx text, entry name) of one specialization (decode: decode_kernels, prefill: attention_kernels); needs
    libNVVM, not a GPU. Imports Numba."""
    import re

    from numba import cuda
    _pin_device_cc(cc)
    if spec["kind"] == "decode":
        from .decode_kernels import make_decode
        fn, sig = make_decode(spec)
    else:
        from .attention_kernels import make_prefill
        fn, sig = make_prefill(spec)
    ptx, _ = cuda.compile_ptx(fn, sig, cc=cc)
    name = re.search(r"\.visible\s+\.entry\s+(\S+?)\s*\(", ptx).group(1)
    return ptx, name


def compile_into(spec: dict, cc: str, cache_dir: Path) -> dict:
    t0 = time.perf_counter()
    ptx, name = compile_ptx(spec, (int(cc[:-1]), int(cc[-1])))
    t1 = time.perf_counter()
    cubin = _link_cubin(ptx, cc)
    key = cache_key(spec, cc)
    fmt, image = ("cubin", cubin) if cubin is not None else ("ptx", ptx.encode())
    _write_atomic(cache_dir / f"{key}.{fmt}", image)
    meta = {"name": name, "format": fmt, "file": f"{key}.{fmt}", "spec": spec, "cc": cc,
            "ptx_s": round(t1 - t0, 3), "link_s": round(time.perf_counter() - t1, 3), "pid": os.getpid()}
    _write_atomic(cache_dir / f"{key}.json", json.dumps(meta).encode())
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="compile attention kernel specializations into the disk cache")
    ap.add_argument("--cc", required=True, help="compute capability, e.g. 90")
    ap.add_argument("--cache-dir", required=True)
    ap.add_argument("specs", nargs="+", help="JSON specialization dicts")
    args = ap.parse_args(argv)
    import numpy as np
    if not hasattr(np, "row_stack"):  # numba-cuda 0.30.4 still calls it; numpy 2.5 removed it
        np.row_stack = np.vstack
    cache_dir = Path(args.cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for s in args.specs:
        spec = json.loads(s)
        if lookup(cache_dir, cache_key(spec, args.cc)) is None:  # another process may have done it
            meta = compile_into(spec, args.cc, cache_dir)
            print(json.dumps({k: meta[k] for k in ("file", "ptx_s", "link_s")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
