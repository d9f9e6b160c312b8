"""The bench's device and environment facts: engine memory, freeing it between engines, the device copy rate,
device name and driver, package versions. CuPy is imported only on the cuda backend."""
from __future__ import annotations

import gc
import platform

import numpy as np


def memory_bytes(engine, backend: str):
    """(total bytes, report) from engine.memory_report() (byte entries only), else CuPy's pool, else None."""
    report = engine.memory_report() if hasattr(engine, "memory_report") else None
    if report:
        return sum(v for k, v in report.items() if not k.startswith("n_")), report
    if backend == "cuda":
        import cupy
        return cupy.get_default_memory_pool().used_bytes(), None
    return None, None


def free_memory(backend: str) -> None:
    """After the caller dropped its engine: collect it and give CuPy's cached blocks back to the device."""
    gc.collect()
    if backend == "cuda":
        import cupy
        cupy.get_default_memory_pool().free_all_blocks()


def cuda_copy_gbps(nbytes: int = 1 << 30, reps: int = 20) -> float:
    """Device-to-device copy rate (bytes read + written), timed with CUDA events."""
    import cupy
    a = cupy.random.randint(0, 255, size=nbytes, dtype=cupy.uint8)
    b = cupy.empty_like(a)
    b.data.copy_from_device(a.data, nbytes)
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(reps):
        b.data.copy_from_device_async(a.data, nbytes)
    end.record()
    end.synchronize()
    ms = cupy.cuda.get_elapsed_time(start, end)
    del a, b
    cupy.get_default_memory_pool().free_all_blocks()
    return 2 * nbytes * reps / (ms * 1e-3) / 1e9


def device_info(backend: str) -> dict:
    if backend != "cuda":
        return {"name": f"CPU ({platform.processor() or platform.machine()}, NumPy)", "driver": "-",
                "copy_gbps": None}
    import subprocess

    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        driver = out.stdout.strip().splitlines()[0]
    except Exception:  # noqa: BLE001 - informational; fall back to the CUDA driver API version
        driver = f"CUDA {cupy.cuda.runtime.driverGetVersion()}"
    return {"name": name, "driver": driver, "copy_gbps": cuda_copy_gbps()}


def versions(backend: str) -> dict:
    from importlib import metadata

    from . import __version__
    v = {"cugraphllm": __version__, "python": platform.python_version(), "numpy": np.__version__}
    if backend == "cuda":
        import cupy
        v["cupy"] = cupy.__version__
        v["cuda_runtime"] = str(cupy.cuda.runtime.runtimeGetVersion())
        for pkg in ("numba-cuda", "numba"):
            try:
                v[pkg] = metadata.version(pkg)
            except metadata.PackageNotFoundError:
                pass
    return v
