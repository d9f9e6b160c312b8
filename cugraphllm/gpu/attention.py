"""Attention, the dynamic part: Numba kernels specialized per bucket, compiled off the token path, launched by CuPy.

Specializations (kernels: decode_kernels.py, attention_kernels.py):
- decode, per sequence-length bucket L (plan_decode): ONE launch per layer; the true length pos[0]+1 comes from
  device memory. Short buckets: one block per (KV head, slice of head_dim), all keys in one or two loop trips with
  every load in flight, no combine. Long buckets: split-K over `n_split` blocks per KV head of `chunk` keys each
  (about 4 blocks per SM); the last block of each KV head combines the partials (atomic ticket).
- prefill: one kernel per (head_dim, n_rep, dtype); the query bucket M only sets the grid, so every prefill
  bucket shares one compiled entry.
A compile runs in a child process (never in this one: Numba holds the GIL) and lands in the disk cache; this
process only loads cubins with cupy.cuda.function.Module and launches them like RawKernels (capturable).
"""
from __future__ import annotations

from pathlib import Path

from ..config import PREFILL_ROWS_DEFAULT, PREFILL_ROWS_SIZES, ModelConfig, check_prefill_rows
from ..errors import BackendError, ConfigError
from . import cuda_kernels as ck, jit_cache, pdl

N_WARPS = 4  # prefill (Numba kernel)
BLOCKS_PER_SM = 2  # decode split-K: about 2 blocks of 8 warps per SM (H100 sweep: 4 and 8 were slower at 1K-4K)


def _pow2ceil(x: int) -> int:
    return 1 << max(0, (x - 1).bit_length())


def lane_geometry(head_dim: int, n_rep: int) -> dict:
    """Word width (elements per load) and lanes per key row: about 8 elements per lane (4 when n_rep > 4, to
    bound registers: each lane keeps q and acc for all n_rep heads)."""
    vec = 4 if head_dim % 4 == 0 else 2
    per_lane = 8 if n_rep <= 4 else 4
    g = min(32, _pow2ceil(-(-head_dim // per_lane)))
    return {"vec": vec, "g": g}


# decode plan defaults (H100 sweeps, benchmarks/results/attention_2026-11-23_decode*.json): 8 warps, up to 8 key
# steps in flight per lane, no key split while a block needs <= 2 loop trips; those short buckets use the dim split
# instead (2 blocks per KV head beat 4 and 8 at 64-256 keys; no split below 32 keys per block)
# early: a block loads its first trip's K/V rows below the current one before the PDL wait (they were written by
# earlier steps), so the K/V read overlaps the qkv GEMV's tail instead of following it. cluster: a key split of at
# most CLUSTER_MAX blocks a KV head is combined in a thread block cluster (decode_combine.py; sm_90). Each is 0
# (off), 1 (on) or 2 (on for key-split plans of one wave: at most one block an SM, see _one_wave)
DECODE_KNOBS = {"n_warps": 8, "unroll": 8, "wide": True, "short_iters": 2, "max_dsplit": 2, "dsplit_keys": 32,
                "n_split": None, "n_dsplit": None, "early": 2, "cluster": 2}
CLUSTER_MAX = 8  # the portable cluster size
UNROLLED_FMAS = 128  # unroll * n_rep * elements per lane: above this NVVM leaves the register arrays in local memory


def decode_geometry(head_dim: int, n_rep: int, wide: bool = True) -> dict:
    """16-byte words (8 elements, one word per lane) when head_dim % 8 == 0 and n_rep <= 4; else lane_geometry's
    8/4-byte words (n_rep > 4: fewer elements per lane bound the registers for q and acc of all n_rep heads)."""
    if wide and head_dim % 8 == 0 and n_rep <= 4:
        return {"vec": 8, "g": min(32, _pow2ceil(head_dim // 8))}
    return lane_geometry(head_dim, n_rep)


def _dim_split(words: int, n_kv_heads: int, n_sm: int, limit: int) -> int:
    d = 1
    while 2 * d <= limit and words % (2 * d) == 0 and 2 * d * n_kv_heads <= n_sm:
        d *= 2
    return d


def plan_decode(config: ModelConfig, dtype: str, lmax: int, n_sm: int = 132, blocks_per_sm: int = BLOCKS_PER_SM,
                **knobs) -> dict:
    """Launch plan of the decode kernel for keys 0..lmax-1 (decode_kernels.py): block of n_warps warps that loads
    `unroll` key steps per lane before using them; short buckets: one block per (KV head, V slice), no combine;
    long buckets: split-K over about blocks_per_sm*n_sm blocks, combined by the last block (atomic ticket)."""
    kn = {**DECODE_KNOBS, **knobs}
    hd, r, kvh = config.head_dim, config.n_rep, config.n_kv_heads
    geo = decode_geometry(hd, r, kn["wide"])
    kps, nw, u = 32 // geo["g"], kn["n_warps"], kn["unroll"]
    words = hd // geo["vec"]
    while nw > 1 and nw * r * hd * 4 > 32768:  # per-warp partials in shared memory
        nw //= 2
    while u > 1 and u * r * -(-words // geo["g"]) * geo["vec"] > UNROLLED_FMAS:
        u //= 2
    while u > 1 and nw * kps * u >= 2 * lmax:  # tiny buckets: do not load far past the end
        u //= 2
    while nw > 1 and nw * kps * u >= 2 * lmax:
        nw //= 2
    step = nw * kps * u  # keys a block consumes per loop trip
    n_split = kn["n_split"]
    if n_split is None:
        trips = -(-lmax // step)
        n_split = 1 if trips <= kn["short_iters"] else min(trips, -(-blocks_per_sm * n_sm // kvh))
    chunk = -(-(-(-lmax // n_split)) // step) * step
    n_split = -(-lmax // chunk)
    limit = min(kn["max_dsplit"], max(1, lmax // kn["dsplit_keys"])) if kn["dsplit_keys"] else kn["max_dsplit"]
    d = kn["n_dsplit"] or (_dim_split(words, kvh, n_sm, limit) if n_split == 1 else 1)
    if words % d:
        raise ConfigError(f"n_dsplit {d} must divide the {words} words of a head")
    return {"kind": "decode", "head_dim": hd, "n_rep": r, "n_kv_heads": kvh, "dtype": dtype, "n_warps": nw,
            "unroll": u, "lmax": lmax, "chunk": chunk, "n_split": n_split, "n_dsplit": d,
            "early": _switch(kn["early"], n_split, d, kvh, n_sm),
            "cluster": int(_switch(kn["cluster"], n_split, d, kvh, n_sm) and 1 < n_split <= CLUSTER_MAX and d == 1),
            **geo}


def _switch(knob: int, n_split: int, n_dsplit: int, n_kv_heads: int, n_sm: int) -> int:
    """A 0 / 1 / 2 knob of the plan: 2 means on for key-split plans of one wave (one block an SM at most: the H200
    A/B of 2026-11-30 gained there (7B TP2 at 512-1024 keys) and lost at 256 blocks (7B at 2048 keys))."""
    if knob == 2:
        return int(n_split > 1 and n_kv_heads * n_split * n_dsplit <= n_sm)
    return int(bool(knob))


def plan_prefill(config: ModelConfig, dtype: str, max_seq_len: int) -> dict:
    return {"kind": "prefill", "head_dim": config.head_dim, "n_rep": config.n_rep,
            "n_kv_heads": config.n_kv_heads, "dtype": dtype, "n_warps": N_WARPS, "lmax": max_seq_len,
            **lane_geometry(config.head_dim, config.n_rep)}


def make_buckets(max_seq_len: int, prefill_rows: int = PREFILL_ROWS_DEFAULT) -> tuple[list[int], list[int]]:
    decode = [b for b in (64 << i for i in range(16)) if b < max_seq_len] + [max_seq_len]
    # 1.5x steps above 128 rows: a 300-token prompt pays for 384 rows, not 512 (prefill is GEMM-bound, ~linear
    # in rows there). Every prefill bucket shares one compiled kernel; each costs only a graph (~0.5 MiB).
    # The largest, min(prefill_rows, S), is the chunk longer prompts are prefilled in (CudaEngine._prefill).
    top = min(check_prefill_rows(prefill_rows), max_seq_len)
    return decode, [b for b in PREFILL_ROWS_SIZES if b < top] + [top]


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
        import os
        items = self._prepare_fast_prefill(items)
        missing = {}
        for kind, bucket in items:
            key = self._key(kind, bucket)
            if key in self._loaded or key in missing or self._load(key):
                continue
            if key not in self._pending:
                missing[key] = self.spec(kind, bucket)
        if missing:
            jobs = max(1, min(jobs or max(1, (os.cpu_count() or 2) // 2), len(missing)))
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
        return self._part.nbytes + self._cnt.nbytes
