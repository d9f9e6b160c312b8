"""Which code runs a step: a captured CUDA graph, or the same kernels launched one by one.

Modes (for ablation). eager and hybrid launch the same kernels and agree bit for bit; graph mode's generic
attention sums in another order, so it agrees to rounding (the same greedy tokens on stories260K, tested):
- eager:  every kernel launched from Python each step (attention specialized per bucket when compiled).
- graph:  one graph per step kind, with the one generic attention kernel (compiled for the whole context).
- hybrid: the paper's design: graphs per (sequence-length bucket) whose attention is JIT-specialized for that
          bucket. Compiles run in a background process; a graph is captured as soon as its kernels are ready,
          at most one per step, right after a step is launched (the GPU is busy then). A step whose graph is not
          ready runs on the generic graph (or eagerly if none): it never waits for a compile.

Graph keys: ("decode", attention_bucket_or_None, greedy) and ("prefill", rows, greedy).
"""
from __future__ import annotations

import time
import warnings

from .model import forward


def capture_graph(st, fn):
    """fn() captured on stream st (current device), uploaded: the graph."""
    with st:
        try:  # begin inside the try: an interrupt right after it must still end the capture
            st.begin_capture()
            fn()
        finally:
            g = st.end_capture() if st.is_capturing() else None
        if g is None:
            raise RuntimeError("capture did not start")
        g.upload(st)
    st.synchronize()
    return g


class GraphRuntime:
    def __init__(self, engine, mode: str):
        import cupy as cp
        self.e, self.mode = engine, mode
        self.graphs: dict = {}
        self.failed: set = set()
        self.graph_bytes = 0
        self.capture_s = 0.0
        self._requested: set = set()
        self._capture_stream = cp.cuda.Stream(non_blocking=True)

    # ---- keys -----------------------------------------------------------------------------------------
    def _key(self, kind: str, length: int, greedy: bool):
        """length: keys attended (decode) or real prompt tokens (prefill)."""
        a = self.e.attn
        if kind == "decode":
            bucket = a.bucket_for(length, "decode") if self.mode != "graph" else None  # eager: same kernels as hybrid
            return ("decode", bucket, greedy)
        return ("prefill", a.bucket_for(length, "prefill"), greedy)

    def _attn_bucket(self, key):
        kind, b, _ = key
        if self.mode == "graph":
            return None
        if kind == "decode":
            return b if b is not None and self.e.attn.ready("decode", b) else None
        return b if self.e.attn.ready("prefill", b) else None

    # ---- running --------------------------------------------------------------------------------------
    def step(self, kind: str, length: int, greedy: bool) -> None:
        """Launch one step on the engine's stream (asynchronous)."""
        key = self._key(kind, length, greedy)
        g = self.graphs.get(key)
        if g is None and self.mode != "eager" and kind == "decode":
            g = self.graphs.get(("decode", None, greedy))  # generic graph: better than eager, never waits
        if g is not None:
            g.launch(self.e.stream)
            return
        rows = 1 if kind == "decode" else key[1]
        with self.e.stream:
            self._forward(rows, self._attn_bucket(key), greedy)

    def _forward(self, rows, attn_bucket, greedy):
        e = self.e
        forward(e.config, e.w, e.kv, e.s, e.attn, rows, attn_bucket, greedy)

    def capture(self, key) -> bool:
        """Capture the graph for key on a side stream; on failure warn once and fall back to eager."""
        import cupy as cp
        if key in self.graphs or key in self.failed:
            return key in self.graphs
        kind, b, greedy = key
        if self.mode == "hybrid" and b is not None and not self.e.attn.ready(kind, b):
            return False  # its specialized kernel is still compiling: not a failure, try again later
        rows = 1 if kind == "decode" else b
        attn_bucket = None if self.mode == "graph" or kind == "decode" and b is None else b
        t0 = time.perf_counter()
        free0 = cp.cuda.runtime.memGetInfo()[0]
        try:
            g = capture_graph(self._capture_stream, lambda: self._forward(rows, attn_bucket, greedy))
        except Exception as exc:  # a failed capture must not take the runtime down: eager still works
            self.failed.add(key)
            warnings.warn(f"CUDA graph capture failed for {key}: {exc}; running that step eagerly")
            return False
        self.graph_bytes += max(0, free0 - cp.cuda.runtime.memGetInfo()[0])
        self.graphs[key] = g
        self.capture_s += time.perf_counter() - t0
        return True

    # ---- ahead-of-need ---------------------------------------------------------------------------------
    def wanted(self, kind: str, length: int, greedy: bool, lookahead: int = 64) -> list:
        """Keys that the next steps will use: this bucket, and the next one once within `lookahead`."""
        if self.mode == "eager":
            return []
        keys = [self._key(kind, length, greedy)]
        if kind == "decode" and self.mode == "hybrid":
            nxt = self._key(kind, min(length + lookahead, self.e.max_seq_len), greedy)
            if nxt != keys[0]:
                keys.append(nxt)
        return keys

    def poll(self, kind: str, length: int, greedy: bool) -> None:
        """Between steps: start background compiles for buckets soon needed; capture at most one ready graph."""
        for key in self.wanted(kind, length, greedy):
            if key in self.graphs or key in self.failed:
                continue
            b = key[1]
            if self.mode == "hybrid" and b is not None and not self.e.attn.ready(key[0], b):
                if key[:2] not in self._requested:  # start its compile once; ready() polls it cheaply
                    self._requested.add(key[:2])
                    self.e.attn.prepare(key[0], b, background=True)
                continue
            self.capture(key)
            return

    def capture_all(self) -> None:
        """Compile every bucket (waiting) and capture every graph the mode uses: for benchmarks and tests that
        must not depend on how far the background compiles got."""
        a = self.e.attn
        if self.mode == "eager":
            a.prepare_many([("decode", b) for b in a.decode_buckets] + [("prefill", b) for b in a.prefill_buckets])
            return
        decode = a.decode_buckets if self.mode == "hybrid" else [None]
        if self.mode == "hybrid":
            a.prepare_many([("decode", b) for b in decode] + [("prefill", b) for b in a.prefill_buckets])
        for greedy in (True, False):
            for b in decode:
                self.capture(("decode", b, greedy))
            for b in a.prefill_buckets:
                self.capture(("prefill", b, greedy))
