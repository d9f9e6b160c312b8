"""TPEngine: the cuda backend over N GPUs of one host (`--tp N`, issue 11), Megatron-style (gpu/tp_shard.py).

Each GPU (a `Rank`, gpu/tp_rank.py) holds its slices of the weights (read from the checkpoint slice by slice:
tp_shard's lazy shards through the Stager), its KV cache of its KV heads, its Scratch (the residual stream x is
replicated: every GPU holds all of it), its Numba attention and a gpu/tp.py Comm. The step is gpu/model.py
`forward` unchanged, run by one thread per GPU (gpu/tp.py Workers); a residual update all-reduces its partial
product, the LM head all-gathers the logits, and every GPU runs the same sampler on the same logits, so all feed
back the same token.
Graph modes capture each GPU's step into its own graph (NCCL kernels inside) and launch all of them per step.

Everything else (pipelined decode, buckets, modes, the Engine protocol) is CudaEngine's; rank 0's stream, scratch
and pinned token history are the ones the host reads.
"""
from __future__ import annotations

import atexit
import gc
import time
import weakref

import numpy as np

from ..config import ModelConfig, RuntimeConfig
from ..errors import BackendError, ConfigError
from . import tp_shard
from .engine import CudaEngine
from .engine_load import quant_settings
from .state import storage_dtype, trim_pool
from .tp_rank import Rank, gemm_config, local_config
from .tp_runtime import AttnGroup, TPRuntime


def check_split(config: ModelConfig, n: int) -> list:
    """The ShardPlans of ranks 0..n-1, or a one-line ConfigError (heads, kv heads, hidden or vocab not split)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise ConfigError(f"tensor parallel needs at least 2 GPUs, got --tp {n!r}")
    plans = [tp_shard.plan(config, r, n) for r in range(n)]
    if config.vocab_size % n:  # the all-gather of the logits takes equal slices
        raise ConfigError(f"tensor parallel over {n} GPUs: vocab_size {config.vocab_size} is not divisible by {n}")
    return plans


def shard_bytes(config: ModelConfig, lc: ModelConfig, t: int = 2, fmt=None, group_size=128,
                quant_head=False) -> int:
    """Weight bytes on one GPU: the embedding (replicated) and this GPU's slices of every matrix (fmt: quantized
    linear layers, gpu/quant_upload.py sizes; the LM head too with quant_head)."""
    from .quant_upload import matrix_bytes
    d = config.dim
    layer = sum(matrix_bytes(N, K, fmt, group_size, t) for N, K in
                ((lc.qkv_dim, d), (d, lc.dim), (2 * lc.hidden_dim, d), (d, lc.hidden_dim)))
    head = matrix_bytes(lc.vocab_size, d, fmt if quant_head else None, group_size, t)
    return t * config.vocab_size * d + head + config.n_layers * layer + 4 * 3 * d


def check_quant(config: ModelConfig, lc: ModelConfig, world: int, fmt, group_size=128, quant_head=False) -> None:
    """A one-line ConfigError when --quant cannot quantize one GPU's slices (int4: group size vs its columns)."""
    if fmt is None:
        return
    from .quant_upload import check_shapes
    d = config.dim
    shapes = [("wqkv", (lc.qkv_dim, d)), ("wo", (d, lc.dim)), ("w13", (2 * lc.hidden_dim, d)),
              ("w2", (d, lc.hidden_dim))] + ([("output", (lc.vocab_size, d))] if quant_head else [])
    try:
        check_shapes(shapes, fmt, group_size)
    except ConfigError as exc:
        raise ConfigError(f"tensor parallel over {world} GPUs (one GPU's slices): {exc}") from None


def _free_bytes(device: int) -> int:
    """Free memory of a device once CuPy's cached blocks there are given back (tests monkeypatch it)."""
    import cupy as cp
    with cp.cuda.Device(device):
        trim_pool()
        return cp.cuda.runtime.memGetInfo()[0]


class TPEngine(CudaEngine):
    def __init__(self, config: ModelConfig, weights, runtime: RuntimeConfig, *, progress=None):
        """weights: host Weights (arrays or LazyMatrix: each GPU reads its slices) or None for seeded dummy
        weights. One-line errors, nothing left allocated: too few GPUs, a model that does not split, too little
        memory on a GPU, an NCCL failure."""
        t0 = time.perf_counter()
        self.config, self.runtime, self.world = config, runtime, runtime.tp
        self.max_seq_len = runtime.context(config)
        self.ranks: list = []
        plans = check_split(config, self.world)
        for p in plans:
            check_quant(config, local_config(config, p), self.world, *quant_settings(runtime))
        from .tp import Group, Workers, check_devices
        from . import allreduce
        self.devices = check_devices(self.world)
        self.allreduce = allreduce.choose(self.devices)  # "custom" / "lamport" (NVLink peer access) or "nccl"
        from .attention import make_buckets
        # the largest prefill residual per rank
        self.comm_n = max(make_buckets(self.max_seq_len, runtime.prefill_rows)[1]) * config.dim
        self._preflight(plans, weights)
        self.group = self.workers = self.peers = None
        try:
            self.group = Group(self.devices)
            self.workers = Workers(self.devices, self.group)
            if self.allreduce in allreduce.PROTOCOLS:
                self.peers = allreduce.PeerBuffers(self.devices, self.allreduce, self.comm_n)  # lamport: prefill too
                self.peers.warmup(np.dtype(storage_dtype(runtime.dtype)).name)
            self._allocate(plans, weights, progress)
        except BaseException as exc:
            import cupy as cp
            if not isinstance(exc, cp.cuda.memory.OutOfMemoryError):
                self.close()
                raise
            n, msg = self.world, " ".join(str(exc).split())
            exc.__traceback__ = None  # its frames hold the partial allocations: drop them before freeing
            self.close()
            raise BackendError(f"cuda backend (--tp {n}): out of GPU memory while allocating the engine ({msg}); "
                               "try a smaller --max-seq-len or a larger --tp") from None
        _LIVE.add(self)
        r0 = self.ranks[0]
        self.stream, self.s, self.kv, self.w = r0.stream, r0.s, r0.kv, r0.w
        self.attn = AttnGroup([rk.attn for rk in self.ranks])
        self.rt = TPRuntime(self, self.runtime.mode)
        self.tokens: list[int] = []
        self.load_s = time.perf_counter() - t0
        try:
            self._warmup()
        except BaseException:
            self.close()
            raise
        self.startup_s = time.perf_counter() - t0

    def _preflight(self, plans, weights=None) -> None:
        """Per GPU: gpu/memory.py's estimate of its share (weights, KV, scratch, workspaces, graphs, plus the
        full-width residual stream, the quantized prefill buffers and the Comm buffers) against its free memory."""
        import cupy as cp
        from . import gemm_quant, memory
        from .engine_load import layer_formats
        from .attention import make_buckets
        from .state import STAGE_BYTES
        c, S = self.config, self.max_seq_len
        rows = max(make_buckets(S, self.runtime.prefill_rows)[1])
        for r, p in enumerate(plans):
            lc = local_config(c, p)
            with cp.cuda.Device(self.devices[r]):
                n_sm = cp.cuda.Device().attributes["MultiProcessorCount"]
            free = _free_bytes(self.devices[r])
            wb = shard_bytes(c, lc, 2, *quant_settings(self.runtime))
            need = memory.estimate(lc, S, mode=self.runtime.mode, weight_bytes=wb, n_sm=n_sm,
                                   staging=2 * STAGE_BYTES, prefill_rows=self.runtime.prefill_rows)["total"]
            need += memory.scratch_bytes(c, S, rows) + rows * c.dim * 4 + lc.vocab_size * 4
            need += sum(gemm_quant.buffer_bytes(gemm_config(c, lc), f, rows, self.runtime.dtype)
                        for f in sorted(layer_formats(self.runtime, weights)))
            if self.allreduce != "nccl":
                from .allreduce import buffer_bytes
                need += buffer_bytes(self.world, self.allreduce, self.comm_n)
            if need > free:
                raise BackendError(f"cuda backend (--tp {self.world}): out of GPU memory on GPU {self.devices[r]}: "
                                   f"context {S} needs {need / 2**30:.2f} GiB per GPU but {free / 2**30:.2f} GiB "
                                   f"are free; try a smaller --max-seq-len, a larger --tp or a smaller model")

    def make_comm(self, r: int, rows: int, dim: int, vocab_local: int):
        """Rank r's communicator over the engine's backend (gpu/allreduce.py chooses it)."""
        from .tp import Comm
        if self.peers is None:
            return Comm(self.group, r, rows, dim, vocab_local)
        from .allreduce import CustomComm
        return CustomComm(self.group, r, rows, dim, vocab_local, self.peers)

    def _allocate(self, plans, weights, progress) -> None:
        dtype = storage_dtype(self.runtime.dtype)
        for r, p in enumerate(plans):
            self.ranks.append(Rank(self, r, p, weights, dtype, progress))

    # ---- start-up: compile on every GPU (rank 0 compiles the attention; the others load it from the cache) ------
    def _compile_kernels(self, decode, prefill) -> None:
        import cupy as cp
        from . import gemm, ops
        a0 = self.ranks[0].attn
        a0.prepare_many(decode, background=True)
        a0.prepare_many(prefill, background=True)
        for rk in self.ranks:
            with cp.cuda.Device(rk.device):
                ops.warmup(self.config, self.runtime.dtype)
                ops.warmup_tp(self.config, rk.local, self.runtime.dtype)
                gemm.warmup(self.runtime.dtype, a0.prefill_buckets)
                self._warmup_quant_rank(rk, a0.prefill_buckets)
        self.attn.prepare_many(decode + prefill)

    def _warmup_quant_rank(self, rk, buckets) -> None:
        """The quantized kernels of one GPU's slices at its shapes (that GPU current), one GPU after the other,
        before the first step runs on all GPUs' threads at once."""
        from ..quant.formats import QuantLinear
        from . import gemm_quant, ops_quant
        w, lc, D = rk.w, rk.local, self.config.dim
        t = "bfloat16" if self.runtime.dtype in ("bfloat16", "bf16") else "float16"
        head = w.output.fmt if isinstance(w.output, QuantLinear) else None
        v = (lc.vocab_size + 1) // 2
        fmts = {m.fmt for lw in w.layers for m in (lw.wqkv, lw.wo, lw.w13, lw.w2) if isinstance(m, QuantLinear)}
        for fmt in fmts | ({head} if head else set()):
            todo = [("qgemv_qkv_rope_norm", D, lc.qkv_dim // 2), ("qgemv_silu_norm", D, lc.hidden_dim),
                    ("qgemv_logits", lc.dim, (D + 1) // 2), ("qgemv_logits", lc.hidden_dim, (D + 1) // 2)]
            todo += [("qgemv_logits_norm", D, v), ("qgemv_logits", D, v)] if head == fmt else []
            for kernel, K, pairs in todo:  # wo / w2 partial products: the f32-output (logits) GEMV
                ops_quant._function(kernel, fmt, t, K, pairs)[0].attributes
            gemm_quant.warmup(fmt, t, buckets)

    # ---- state written by the host: every GPU gets the same ----------------------------------------------
    def _set_step(self, pos: int, n: int, prompt=None, token=None) -> None:
        import cupy as cp
        for rk in self.ranks:
            with cp.cuda.Device(rk.device):
                self._set_step_on(rk.s, rk.stream, pos, n, prompt, token)

    def _set_sampling(self, p) -> None:
        import cupy as cp
        for rk in self.ranks:
            with cp.cuda.Device(rk.device):
                self._set_sampling_on(rk.s, rk.stream, p)

    def _write_hist(self, a: int, values) -> None:
        for rk in self.ranks:
            rk.s.hist_host[a:a + len(values)] = values

    def sync(self) -> None:
        for rk in self.ranks:
            rk.stream.synchronize()

    # ---- reports -----------------------------------------------------------------------------------------
    def memory_report(self) -> dict:
        """Bytes per GPU (rank 0; the others hold the same shapes) plus n_gpus."""
        import cupy as cp
        from . import gemm
        rk = self.ranks[0]
        with cp.cuda.Device(rk.device):
            gw = gemm.workspace_bytes()
        return {"weights": rk.w.nbytes(), "kv_cache": rk.kv.nbytes, "scratch": rk.s.nbytes + rk.comm.nbytes,
                "gemm_workspace": gw, "attention_scratch": rk.attn.workspace_bytes(),
                "graphs": self.rt.graph_bytes // self.world, "n_graphs": len(self.rt.graphs), "n_gpus": self.world}

    def describe(self) -> str:
        return super().describe().replace("cuda engine:", f"cuda engine, tensor parallel over {self.world} GPUs "
                                          f"({self.allreduce} all-reduce; sizes per GPU):", 1)

    def collective_us(self, reps: int = 50) -> float:
        """Device time of one decode step's collectives alone (2 all-reduces of D f32 per layer and the logits
        all-gather), from a graph of just those captured on every GPU: microseconds per step."""
        from .tp_runtime import time_collectives
        return time_collectives(self, reps)

    def close(self) -> None:
        """Free everything on every GPU (idempotent; also the clean-up of a failed start and, through atexit, of an
        engine still alive at exit). Order: the GPUs idle, then the graphs (they hold NCCL's captured work), then
        the threads and communicators, then the memory."""
        import cupy as cp
        devices = getattr(self, "devices", [])
        for d in devices:
            with cp.cuda.Device(d):
                cp.cuda.Device().synchronize()
        if getattr(self, "rt", None) is not None:
            self.rt.graphs.clear()
        gc.collect()
        if getattr(self, "workers", None) is not None:
            self.workers.close()
        if getattr(self, "group", None) is not None:
            self.group.close()
        _LIVE.discard(self)
        self.__dict__.clear()
        gc.collect()
        for d in devices:
            with cp.cuda.Device(d):
                trim_pool()


_LIVE: "weakref.WeakSet[TPEngine]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """At exit, close engines still alive in the order close() keeps (not the interpreter's teardown order)."""
    for e in list(_LIVE):
        try:
            e.close()
        except Exception:
            pass
