"""Per-device caches of the gpu package, on the CPU: the current device is monkeypatched and the kernels are fakes
that behave like CuPy's RawKernel (a CUfunction per device; an attribute set lands on the current device only).

Issue 11: ops cached the raised shared-memory limit per kernel object, so the 32k-vocab sampler failed on GPU 1
after running on GPU 0. These tests fail on that keying."""
import itertools

import pytest

from cugraphllm.gpu import cublas, cuda_kernels, ops

_handles = itertools.count(0x1000)


class FakeDevice:
    def __init__(self):
        self.id = 0

    def __call__(self):
        return self.id


class FakeFunction:
    def __init__(self):
        self.ptr = next(_handles)
        self.max_dynamic_shared_size_bytes = 48 * 1024  # the driver's default per CUfunction


class FakeRawKernel:
    """A CUfunction per device, made on first use there (as cupy.RawKernel); attributes go to the current one."""

    def __init__(self, dev: FakeDevice, name: str = "k"):
        self.dev, self.name, self.per_device = dev, name, {}

    @property
    def kernel(self) -> FakeFunction:
        return self.per_device.setdefault(self.dev.id, FakeFunction())

    @property
    def max_dynamic_shared_size_bytes(self):
        return self.kernel.max_dynamic_shared_size_bytes

    @max_dynamic_shared_size_bytes.setter
    def max_dynamic_shared_size_bytes(self, n):
        self.kernel.max_dynamic_shared_size_bytes = n


@pytest.fixture
def dev(monkeypatch):
    d = FakeDevice()
    monkeypatch.setattr(cuda_kernels, "device_id", d)
    monkeypatch.setattr(cuda_kernels, "_smem_set", {})
    monkeypatch.setattr(ops, "_cache", {})
    monkeypatch.setattr(cublas, "_HANDLES", {})
    return d


def test_smem_limit_is_raised_on_every_device(dev):
    fn = FakeRawKernel(dev)
    need = 132_000  # above the 48 KiB default (the old single-block 32k-vocabulary sampler's need)
    for d in (0, 1, 0, 1):
        dev.id = d
        ops._need_smem(fn, need)
        assert fn.max_dynamic_shared_size_bytes == need, f"device {d} kept the default limit"
    assert set(fn.per_device) == {0, 1}
    dev.id = 1
    fn.max_dynamic_shared_size_bytes = 50_000  # a lower limit on device 1 only must not be mistaken ...
    dev.id = 0
    ops._need_smem(fn, need)                   # ... for device 0's state, nor device 0's for device 1's
    assert fn.per_device[0].max_dynamic_shared_size_bytes == need
    assert fn.per_device[1].max_dynamic_shared_size_bytes == 50_000


def test_smem_limit_raised_once_per_device_and_grows(dev):
    fn = FakeRawKernel(dev)
    calls = []

    class Counting(FakeRawKernel):
        @FakeRawKernel.max_dynamic_shared_size_bytes.setter
        def max_dynamic_shared_size_bytes(self, n):
            calls.append((self.dev.id, n))
            self.kernel.max_dynamic_shared_size_bytes = n

    fn = Counting(dev)
    for d, n in ((0, 60_000), (0, 60_000), (0, 50_000), (1, 50_000), (1, 70_000), (0, 70_000), (0, 1_000)):
        dev.id = d
        ops._need_smem(fn, n)
    assert calls == [(0, 60_000), (1, 50_000), (1, 70_000), (0, 70_000)]


def test_smem_limit_counts_static_shared_memory(dev):
    """48 KiB is the default for static + dynamic: 47.5 KiB dynamic beside 1 KiB static needs the raise, 40 KiB
    does not (the kernel's own limit is then left alone)."""
    calls = []

    class Static(FakeRawKernel):
        shared_size_bytes = 1024

        @FakeRawKernel.max_dynamic_shared_size_bytes.setter
        def max_dynamic_shared_size_bytes(self, n):
            calls.append(n)
            self.kernel.max_dynamic_shared_size_bytes = n

    for n in (40 * 1024, 47 * 1024 + 512):
        ops._need_smem(Static(dev, f"k{n}"), n)
    assert calls == [47 * 1024 + 512]


def test_kernel_cache_is_per_device(dev, monkeypatch):
    made = []

    def fake_get_function(file, kernel, defines=None, options=(), dtype=None):
        defines = {**(defines or {}), **cuda_kernels.dtype_defines(dtype)}
        made.append((dev.id, file, kernel, tuple(sorted(defines.items()))))
        return FakeRawKernel(dev, kernel)

    monkeypatch.setattr(cuda_kernels, "get_function", fake_get_function)
    a0 = ops._fn("sampling.cu", "sample", "float16", SAMPLE_HCOPIES=8)
    assert ops._fn("sampling.cu", "sample", "float16", SAMPLE_HCOPIES=8) is a0
    dev.id = 1
    a1 = ops._fn("sampling.cu", "sample", "float16", SAMPLE_HCOPIES=8)
    b1 = ops._fn("gemv.cu", "gemv_silu", "bfloat16", GEMV_WARPS=4)
    assert a1 is not a0 and b1 is not a1
    dev.id = 0
    assert ops._fn("sampling.cu", "sample", "float16", SAMPLE_HCOPIES=8) is a0
    assert [m[0] for m in made] == [0, 1, 1]
    assert made[2][3] == (("CG_BF16", 1), ("GEMV_WARPS", 4))


def test_cublas_handle_is_per_device(dev, monkeypatch):
    class FakeHandle:
        def __init__(self):
            self.device = dev.id

    monkeypatch.setattr(cublas, "Handle", FakeHandle)
    h0 = cublas.handle()
    dev.id = 1
    h1 = cublas.handle()
    assert h1 is not h0 and (h0.device, h1.device) == (0, 1)
    assert cublas.handle() is h1
    dev.id = 0
    assert cublas.handle() is h0
