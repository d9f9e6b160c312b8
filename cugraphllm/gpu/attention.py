"""Attention, the dynamic part: Numba kernels specialized per bucket, compiled off the token path, launched by CuPy.

Specializations (kernels: decode_kernels.py, attention_kernels.py):
- decode, per sequence-length bucket L (attention_plan.plan_decode): ONE launch per layer; the true length pos[0]+1
  comes from device memory. Short buckets: one block per (KV head, slice of head_dim), all keys in one or two loop
  trips with every load in flight, no combine. Long buckets: split-K over `n_split` blocks per KV head of `chunk`
  keys each (about 2 blocks per SM), combined in the same launch (decode_combine.py: a thread block cluster, or the
  last block of each KV head by atomic ticket).
- prefill: one kernel per (head_dim, n_rep, dtype); the query bucket M only sets the grid, so every prefill
  bucket shares one compiled entry.
A compile runs in a child process (never in this one: Numba holds the GIL) and lands in the disk cache; this
process only loads cubins with cupy.cuda.function.Module and launches them like RawKernels (capturable).
"""
from __future__ import annotations

from pathlib import Path

from ..config import PREFILL_ROWS_DEFAULT, ModelConfig
from ..errors import BackendError, ConfigError
from . import cuda_kernels as ck, jit_cache, pdl
from .attention_plan import (BLOCKS_PER_SM, CLUSTER_MAX, DECODE_KNOBS, EARLY_SHORT, N_WARPS,  # noqa: F401
                             UNROLLED_FMAS, decode_geometry, lane_geometry, make_buckets, plan_decode, plan_prefill)
# (the plan names stay importable from here: scripts and tests use attention.DECODE_KNOBS, plan_decode, ...)
from .env import env_int


# env: the most compile processes one prepare_many starts (default half the CPUs). tests/conftest.py sets 1 under
# pytest-xdist: 14 workers that each started 8 NVVM compiles hung test_attention_gpu.py on the 16-core GPU machine
# (a worker died, s40c / s40d), the same tests passed serially (s40e).
COMPILE_JOBS_ENV = "CUGRAPHLLM_COMPILE_JOBS"


def _compile_jobs() -> int:
    """CUGRAPHLLM_COMPILE_JOBS now: a whole number >= 1, unset / blank half the CPUs (at least one); a one-line
    ConfigError otherwise (0 or a typo used to fall back to the default silently)."""
    import os
    return env_int(COMPILE_JOBS_ENV, max(1, (os.cpu_count() or 2) // 2), 1)


class Attention:
    def __init__(self, config: ModelConfig, max_seq_len: int, dtype: str = "float16", cache_dir=None,
                 blocks_per_sm: int = BLOCKS_PER_SM, decode_knobs: dict | None = None,
                 prefill_rows: int = PREFILL_ROWS_DEFAULT):
        import cupy as cp
        if dtype not in ("float16", "bfloat16"):
            raise ConfigError(f"attention dtype must be float16 or bfloat16, got {dtype!r}")
        if config.head_dim > 256:
            raise ConfigError(f"attention supports head_dim <= 256, got {config.head_dim}")
        self.config, self.max_seq_len, self.dtype = config, int(max_seq_len), dtype
        self.cache_dir = Path(cache_dir) if cache_dir is not None else jit_cache.default_cache_dir()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._kv_shape = (self.max_seq_len, config.n_kv_heads, config.head_dim)
        dev = cp.cuda.Device()
        self.device = dev.id  # modules load here and launches must run here (split-K scratch, cubins are per device)
        self.cc = str(dev.compute_capability)  # CuPy gives "90"
        self.n_sm = dev.attributes["MultiProcessorCount"]
        self.decode_buckets, self.prefill_buckets = make_buckets(self.max_seq_len, prefill_rows)
        knobs = {**(decode_knobs or {}), **({} if int(self.cc) >= 90 else {"cluster": 0})}
        self._specs = {("decode", b): plan_decode(config, dtype, b, self.n_sm, blocks_per_sm, **knobs)
                       for b in self.decode_buckets}
        self._pdl = int(self.cc) >= 90 and pdl.PDL   # decode kernels built with pdl_enter, launched with PDL
        for s in self._specs.values():
            s["pdl"] = int(self._pdl)
            if self._pdl and ck.pdl_late():  # CUGRAPHLLM_PDL_ORDER=late (cuda_kernels.py); default specs unchanged
                s["pdl_order"] = "late"
        self._specs[("prefill", None)] = plan_prefill(config, dtype, self.max_seq_len)
        max_split = max(s["n_split"] for k, s in self._specs.items() if k[0] == "decode")
        # split-K scratch at fixed addresses: partial (acc[hd], m, l) per head and split; ticket counters
        self._part = cp.zeros(config.n_heads * max_split * (config.head_dim + 2), dtype=cp.float32)
        self._cnt = cp.zeros(config.n_kv_heads, dtype=cp.int32)
        self._loaded: dict[str, tuple] = {}   # cache key -> (module, function)
        self._pending: dict[str, object] = {}  # cache key -> compile Popen
        self._launch: dict = {}  # (kind, bucket) -> (function, grid, block, k/v alignment mask); filled on first use
        self._keys: dict = {}
        self.compiles = 0  # specializations this object sent to a compile process (0 on a warm cache)
        self.errors: list[str] = []

    # ---- specializations ----------------------------------------------------------------------------------------
    def bucket_for(self, length: int, kind: str) -> int:
        buckets = self.decode_buckets if kind == "decode" else self.prefill_buckets
        for b in buckets:
            if length <= b:
                return b
        raise ConfigError(f"{kind} length {length} exceeds the largest bucket {buckets[-1]}")

    def spec(self, kind: str, bucket: int | None) -> dict:
        if kind == "prefill":
            if bucket is not None and bucket not in self.prefill_buckets:
                raise ConfigError(f"no prefill bucket {bucket}; buckets: {self.prefill_buckets}")
            return self._specs[("prefill", None)]
        if kind != "decode":
            raise ConfigError(f"attention kind must be 'decode' or 'prefill', got {kind!r}")
        b = self.max_seq_len if bucket is None else bucket
        if ("decode", b) not in self._specs:
            raise ConfigError(f"no decode bucket {bucket}; buckets: {self.decode_buckets}")
        return self._specs[("decode", b)]

    def _key(self, kind, bucket) -> str:
        key = self._keys.get((kind, bucket))
        if key is None:
            key = self._keys[(kind, bucket)] = jit_cache.cache_key(self.spec(kind, bucket), self.cc)
        return key

    def _load(self, key: str) -> bool:
        import cupy as cp
        hit = jit_cache.lookup(self.cache_dir, key)
        if hit is None:
            return False
        image, meta = hit
        if meta["format"] == "ptx":
            image += b"\0"  # cuModuleLoadData reads PTX as a C string
        mod = cp.cuda.function.Module()
        with cp.cuda.Device(self.device):  # a CUmodule belongs to the context it was loaded in
            mod.load(image)
        self._loaded[key] = (mod, mod.get_function(meta["name"]))
        return True

    def prepare(self, kind: str, bucket: int | None, background: bool = False) -> None:
        self.prepare_many([(kind, bucket)], background=background)

    def prepare_many(self, items, background: bool = False, jobs: int | None = None) -> None:
        """prepare() for several (kind, bucket) at once, compiling the missing ones in up to `jobs` processes."""
        items = self._prepare_fast_prefill(items)
        missing = {}
        for kind, bucket in items:
            key = self._key(kind, bucket)
            if key in self._loaded or key in missing or self._load(key):
                continue
            if key not in self._pending:
                missing[key] = self.spec(kind, bucket)
        if missing:
            jobs = max(1, min(jobs or _compile_jobs(), len(missing)))
            keys = list(missing)
            for i in range(jobs):
                part = keys[i::jobs]
                proc = jit_cache.start_compile([missing[k] for k in part], self.cc, self.cache_dir)
                self.compiles += len(part)
                for k in part:
                    self._pending[k] = proc
        if not background:
            for kind, bucket in items:
                self._finish(self._key(kind, bucket), wait=True)

    def _finish(self, key: str, wait: bool) -> bool:
        proc = self._pending.get(key)
        if proc is not None:
            if not wait and proc.poll() is None:
                return False
            try:
                jit_cache.wait_compile(proc)
            except BackendError as e:
                self.errors.append(str(e))
                if wait:
                    raise
            finally:
                for k in [k for k, p in self._pending.items() if p is proc]:
                    del self._pending[k]
        return key in self._loaded or self._load(key)

    def ready(self, kind: str, bucket: int | None) -> bool:
        """Compiled AND loaded (loading a finished compile's cubin here takes well under a millisecond)."""
        if kind == "prefill" and self._fast_prefill_shape():
            self.spec(kind, bucket)  # validates the bucket
            return self._fast_prefill is not None
        key = self._key(kind, bucket)
        return key in self._loaded or self._finish(key, wait=False)

    def _function(self, kind, bucket):
        hit = self._launch.get((kind, bucket))
        if hit is None:
            fn = self._loaded.get(self._key(kind, bucket))
            if fn is None:
                raise BackendError(f"attention {kind} bucket {bucket} is not prepared (call prepare() first)")
            s = self.spec(kind, bucket)
            grid = (self.config.n_kv_heads, s.get("n_split", 1), s.get("n_dsplit", 1))
            cluster = (1, s["n_split"], 1) if s.get("cluster") else None
            hit = self._launch[(kind, bucket)] = (fn[1], grid, (32 * s["n_warps"],), 15 if s["vec"] == 8 else 7,
                                                  cluster)
        return hit

    # ---- launches (current CuPy stream; no allocation, no sync) --------------------------------------------------
    def _check(self, att, q, k, v, rows):
        # cheap checks only (this runs per layer per token in eager mode); a failed one then explains itself
        c = self.config
        if att.shape != (rows, c.dim) or q.shape != (rows, c.dim) or att.dtype.itemsize != 2:
            raise ConfigError(f"attention: q/att must be 2-byte [{rows}, {c.dim}], got {q.shape}/{att.shape}")
        if k.shape != self._kv_shape or v.shape != self._kv_shape or (k.data.ptr | v.data.ptr) & 7:
            raise ConfigError(f"attention: k/v must be 8-byte aligned [{self.max_seq_len}, {c.n_kv_heads}, "
                              f"{c.head_dim}] layer views of a contiguous cache")

    def decode(self, att, q, k, v, pos, bucket=None) -> None:
        self._check(att, q, k, v, 1)
        fn, grid, block, align, cluster = self._function("decode", bucket)
        if (k.data.ptr | v.data.ptr) & align:
            raise ConfigError(f"attention decode: k/v must be {align + 1}-byte aligned")
        pdl.launch(fn, grid, block, (att, q, k, v, pos, self._part, self._cnt), pdl=self._pdl, cluster=cluster)

    # ---- prefill: tensor-core kernel (attention_prefill.cu) for head_dim 64/128, else the Numba kernel --------------
    prefill_impl = "auto"  # "numba" forces the Numba kernel (benchmarks); set before prepare()
    _fast_prefill = None   # attention_prefill.PrefillKernel once prepared

    def _fast_prefill_shape(self) -> bool:
        from . import attention_prefill
        return self.prefill_impl == "auto" and attention_prefill.supported(self.config.head_dim)

    def _prepare_fast_prefill(self, items):
        """Compile/load the tensor-core prefill module (NVRTC, disk-cached by CuPy) when prefill is asked for and
        this shape has it; returns the items left for the Numba path."""
        items = list(items)
        if not self._fast_prefill_shape():
            return items
        rest = [(kind, b) for kind, b in items if kind != "prefill"]
        for kind, b in items:
            if kind == "prefill":
                self.spec(kind, b)  # validates the bucket
        if len(rest) < len(items) and self._fast_prefill is None:
            import cupy as cp
            from .attention_prefill import PrefillKernel
            with cp.cuda.Device(self.device):  # its shared-memory limit is raised on the current device only
                self._fast_prefill = PrefillKernel.for_config(self.config, self.dtype, self.max_seq_len)
        return rest

    def prefill(self, att, q, k, v, pos, n_tokens, bucket=None) -> None:
        rows = q.shape[0]
        self._check(att, q, k, v, rows)
        if self._fast_prefill is not None and self.prefill_impl == "auto":
            self._fast_prefill.launch(att, q, k, v, pos, n_tokens)
            return
        fn = self._function("prefill", bucket)[0]
        warps = N_WARPS if rows % N_WARPS == 0 else 1  # the kernel has no row bound: the grid must be exact
        fn((rows // warps, self.config.n_kv_heads), (32 * warps,), (att, q, k, v, pos, n_tokens))

    def workspace_bytes(self) -> int:
        fast = self._fast_prefill.nbytes if self._fast_prefill is not None else 0  # its key-split scratch
        return self._part.nbytes + self._cnt.nbytes + fast
