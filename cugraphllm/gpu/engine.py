"""CudaEngine: the `cuda` backend. It owns one non-blocking stream, the weights, the KV cache, the scratch
buffers, the attention kernels and the graph runtime, and implements the Engine protocol of docs/DESIGN.md.

Decode is pipelined one step ahead: step i+1 is queued before the host waits for token i, and token i is read
from pinned memory that the sampler wrote directly, so reading it never stalls the GPU.
"""
from __future__ import annotations

import gc
import time

import numpy as np

from ..config import ModelConfig, RuntimeConfig
from ..errors import ContextLimitError
from ..sampling import SamplingParams
from .engine_load import (check_gpu, layer_formats, model_weight_bytes, out_of_memory, quant_settings,
                          release_and_raise, upload)
from .state import KVCache, Scratch, dummy_device_weights, storage_dtype, trim_pool


class CudaEngine:
    def __init__(self, config: ModelConfig, weights, runtime: RuntimeConfig | None = None, *,
                 _device_weights=None, progress=None):
        import cupy as cp
        from .runtime import GraphRuntime
        t0 = time.perf_counter()
        self.config, self.runtime = config, runtime or RuntimeConfig(backend="cuda")
        self.max_seq_len = self.runtime.context(config)
        if _device_weights is None:
            from .state import STAGE_BYTES
            check_gpu(config, self.runtime, model_weight_bytes(config, self.runtime, weights), 2 * STAGE_BYTES,
                       layer_formats(self.runtime, weights))
        dtype = storage_dtype(self.runtime.dtype)
        self.stream = cp.cuda.Stream(non_blocking=True)
        oom = out_of_memory(lambda: self._allocate(config, weights, _device_weights, dtype, progress))
        if oom:
            self.__dict__.clear()
            release_and_raise(oom)
        # Weights made or uploaded on another stream (dummy() uses the legacy default stream, which our
        # non-blocking stream does not wait for) must be complete before the first step reads them.
        cp.cuda.Device().synchronize()
        self.rt = GraphRuntime(self, self.runtime.mode)
        self.tokens: list[int] = []
        self.load_s = time.perf_counter() - t0
        self._warmup()
        self.startup_s = time.perf_counter() - t0

    def _allocate(self, config, weights, device_weights, dtype, progress) -> None:
        from .attention import Attention
        with self.stream:
            self.w = device_weights or upload(weights, dtype, self.runtime, progress)
            from .quant_tiles import tile_weights
            tile_weights(self.w)  # int4 matrices the decode tiles read: tile-contiguous words (one GPU only)
            trim_pool()  # nothing of the load stays cached: the KV cache and scratch get that memory
            self.kv = KVCache(config, self.max_seq_len, dtype)
            self.attn = Attention(config, self.max_seq_len, self.runtime.dtype, prefill_rows=self.runtime.prefill_rows)
            rows = max(self.attn.prefill_buckets)
            self.s = Scratch(config, self.max_seq_len, rows, dtype)
            from . import ops
            self.s.prefill_norm = ops.prefill_norm_ok(config, self.w)
            from . import gemm  # cuBLAS handle + workspace before any capture (stack.md section 3)
            gemm.prepare(rows, max(config.qkv_dim, 2 * config.hidden_dim), dtype)
            from . import gemm_quant
            gemm_quant.allocate_layers(config, self.w, rows, self.runtime.dtype)

    @classmethod
    def dummy(cls, config: ModelConfig, runtime: RuntimeConfig | None = None, seed: int = 0):
        from .quant_upload import dummy_quant_weights
        runtime = runtime or RuntimeConfig(backend="cuda")
        check_gpu(config, runtime, model_weight_bytes(config, runtime), 0, layer_formats(runtime))
        fmt, group, head = quant_settings(runtime)
        dtype = storage_dtype(runtime.dtype)
        make = ((lambda: dummy_device_weights(config, dtype, seed)) if fmt is None else
                (lambda: dummy_quant_weights(config, dtype, fmt, group, head, seed)))
        box = []
        oom = out_of_memory(lambda: box.append(make()))
        if oom:
            release_and_raise(oom)
        return cls(config, None, runtime, _device_weights=box.pop())

    # ---- start-up ---------------------------------------------------------------------------------------
    def _warmup(self) -> None:
        """Compile and load every kernel (generic attention synchronously, specialized buckets in the
        background), run each step shape once eagerly (kernels must run before capture), capture what the
        first request needs."""
        t0 = time.perf_counter()
        a = self.attn
        decode, prefill = [("decode", None)], [("prefill", None)]
        if self.runtime.mode != "graph":
            decode.append(("decode", a.decode_buckets[0]))
            prefill += [("prefill", b) for b in a.prefill_buckets]
        self._compile_kernels(decode, prefill)
        if self.runtime.mode != "graph":
            for b in a.decode_buckets[1:]:
                a.prepare("decode", b, background=True)
        self.compile_s = time.perf_counter() - t0
        self._set_sampling(SamplingParams(temperature=1.0))
        for rows in [1] + list(a.prefill_buckets):
            self._set_step(pos=0, n=1 if rows == 1 else rows)
            for greedy in (True, False):
                self.rt.step("decode" if rows == 1 else "prefill", rows, greedy)
        self.sync()
        if self.runtime.mode != "eager":
            for greedy in (True, False):
                for key in [("decode", None, greedy)] + self.rt.wanted("decode", 1, greedy):
                    self.rt.capture(key)
                for b in a.prefill_buckets:
                    self.rt.capture(("prefill", b, greedy))
        self.reset()

    def _warmup_quant(self) -> None:
        from ..quant.formats import QuantLinear
        from . import ops_quant
        fmts = {m.fmt for lw in self.w.layers for m in (lw.wqkv, lw.wo, lw.w13, lw.w2) if isinstance(m, QuantLinear)}
        head = isinstance(self.w.output, QuantLinear)
        fields = [(f, getattr(lw, f)) for lw in self.w.layers for f in ("wqkv", "wo", "w13", "w2")]
        tiled = {f for f, m in fields + [("output", self.w.output)] if getattr(m, "tiles", 0)}
        for fmt in fmts | ({self.w.output.fmt} if head else set()):
            ops_quant.warmup(self.config, self.runtime.dtype, fmt, head=head and self.w.output.fmt == fmt,
                             tiled=tiled if fmt == "int4" else frozenset())
        from . import gemm_quant, gemm_w4
        for fmt in fmts & {"int4", "int8"}:  # the prefill GEMMs' wgmma kernels (gemm_w4.py), before any capture
            groups = {gemm_w4.kernel_key(m) for lw in self.w.layers for m in (lw.wqkv, lw.wo, lw.w13, lw.w2)
                      if isinstance(m, QuantLinear) and m.fmt == fmt}
            gemm_quant.warmup(fmt, self.runtime.dtype, self.attn.prefill_buckets, groups=tuple(groups))

    def _compile_kernels(self, decode, prefill) -> None:
        from . import gemm, ops
        a = self.attn
        a.prepare_many(decode, background=True)  # Numba compiles start in other processes ...
        a.prepare_many(prefill, background=True)
        ops.warmup(self.config, self.runtime.dtype)  # ... while this process compiles the RawKernels (NVRTC)
        self._warmup_quant()
        gemm.warmup(self.runtime.dtype, a.prefill_buckets)  # "float16" | "bfloat16"
        a.prepare_many(decode + prefill)  # then waits for what the first request needs

    # ---- Engine protocol --------------------------------------------------------------------------------
    def reset(self) -> None:
        self.tokens = []

    def truncate(self, n: int) -> None:
        if not 0 <= n <= len(self.tokens):
            raise ValueError(f"truncate({n}): the cache holds {len(self.tokens)} tokens")
        del self.tokens[n:]

    def wait_ready(self) -> None:
        """Block until every bucket is compiled and every graph captured (start-up normally does not wait)."""
        self.rt.capture_all()

    def sync(self) -> None:
        self.stream.synchronize()

    def _set_step(self, pos: int, n: int, prompt=None, token=None) -> None:
        self._set_step_on(self.s, self.stream, pos, n, prompt, token)

    @staticmethod
    def _set_step_on(s, stream, pos: int, n: int, prompt=None, token=None) -> None:
        s.pos.set(np.array([pos], np.int32), stream=stream)
        s.n_tokens.set(np.array([n], np.int32), stream=stream)
        if prompt is not None:
            buf = np.zeros(s.prompt.shape[0], np.int32)
            buf[:len(prompt)] = prompt
            s.prompt.set(buf, stream=stream)
        if token is not None:
            s.token.set(np.array(token, np.int32), stream=stream)

    def _set_sampling(self, p: SamplingParams) -> None:
        self._set_sampling_on(self.s, self.stream, p)

    @staticmethod
    def _set_sampling_on(s, stream, p: SamplingParams) -> None:
        s.params.set(np.array([p.temperature, p.top_p, p.repetition_penalty, p.top_k], np.float32), stream=stream)
        s.seed.set(np.array([p.seed], np.uint64), stream=stream)

    def _write_hist(self, a: int, values) -> None:
        """Token ids at positions [a, a + len(values)) of the pinned history (the sampler's repetition penalty)."""
        self.s.hist_host[a:a + len(values)] = values

    def _prefill(self, new: list[int], greedy: bool) -> None:
        """Append `new` to the cache in chunks of the largest prefill bucket; the last chunk samples."""
        rows = max(self.attn.prefill_buckets)
        start = len(self.tokens)
        self._write_hist(start, new)  # repetition penalty sees the prompt
        for i in range(0, len(new), rows):
            chunk = new[i:i + rows]
            if len(chunk) == 1:
                self._set_step(start + i, 1, token=chunk)
                self.rt.step("decode", start + i + 1, greedy)
            else:
                self._set_step(start + i, len(chunk), chunk)
                self.rt.step("prefill", len(chunk), greedy)
            if i + rows < len(new):  # a non-final chunk's sampler overwrote hist at the chunk edge
                self.sync()
                self._write_hist(start, new)

    def generate(self, new_tokens, params: SamplingParams, max_new_tokens: int):
        """Checks the context now (before any GPU work), then returns the token iterator."""
        new = [int(t) for t in new_tokens]
        if not new:
            raise ContextLimitError("generate needs at least one new token to condition on")
        total = len(self.tokens) + len(new)
        if total > self.max_seq_len:
            raise ContextLimitError(f"prompt of {total} tokens does not fit the context of {self.max_seq_len}")
        budget = min(max_new_tokens, self.max_seq_len - total + 1)  # token i needs position total+i-1 < S
        return self._generate(new, params, budget)

    def _generate(self, new, params, budget):
        import cupy as cp
        if budget <= 0:
            return
        total = len(self.tokens) + len(new)
        greedy = params.temperature == 0.0
        ev = [cp.cuda.Event(disable_timing=True) for _ in range(3)]
        timing = [cp.cuda.Event() for _ in range(3)]  # GPU time: start, after prefill, after the last step
        self._timing, self._timing_steps = None, 0
        gc_on = gc.isenabled()
        gc.disable()  # a collector pass costs the host up to ~1 ms: none while this request's tokens flow
        try:
            timing[0].record(self.stream)
            self._set_sampling(params)
            self._prefill(new, greedy)
            ev[0].record(self.stream)
            timing[1].record(self.stream)
            self.tokens.extend(new)
            for i in range(budget):
                pos = total + i  # position of token i (the one being yielded)
                more = i + 1 < budget
                if more:  # queue the step that feeds token i back before waiting for it
                    self.rt.step("decode", pos + 1, greedy)
                    self._timing_steps += 1
                    ev[(i + 1) % 3].record(self.stream)
                    self.rt.poll("decode", pos + 1, greedy)
                ev[i % 3].synchronize()
                tok = int(self.s.hist_host[pos])
                yield tok
                if more:  # the consumer asked for the next token: token i's K/V is (being) written
                    self.tokens.append(tok)
        finally:
            timing[2].record(self.stream)
            self.stream.synchronize()  # Ctrl-C or early stop: nothing in flight, cache consistent with tokens
            self._timing = timing
            if gc_on:
                gc.enable()

    def last_gpu_times(self):
        """CUDA-event times of the last generation: (prefill ms, decode ms, decode steps), or None."""
        import cupy as cp
        t = getattr(self, "_timing", None)
        if t is None:
            return None
        return (cp.cuda.get_elapsed_time(t[0], t[1]), cp.cuda.get_elapsed_time(t[1], t[2]), self._timing_steps)

    # ---- reports ---------------------------------------------------------------------------------------
    def memory_report(self) -> dict:
        from . import gemm
        w = self.w.nbytes()
        return {"weights": w, "kv_cache": self.kv.nbytes, "scratch": self.s.nbytes,
                "gemm_workspace": gemm.workspace_bytes(), "attention_scratch": self.attn.workspace_bytes(),
                "graphs": self.rt.graph_bytes, "n_graphs": len(self.rt.graphs)}

    def describe(self) -> str:
        from .quant_upload import weights_format
        m = self.memory_report()
        return (f"cuda engine: {self.runtime.mode} mode, {self.runtime.dtype}, linear layers {weights_format(self.w)}"
                f"{' (LM head too)' if hasattr(self.w.output, 'fmt') else ''}, context {self.max_seq_len}, "
                f"weights {m['weights'] / 2**30:.2f} GiB, KV {m['kv_cache'] / 2**30:.2f} GiB, "
                f"{m['n_graphs']} graphs {m['graphs'] / 2**20:.1f} MiB, ready in {self.startup_s:.2f} s")

