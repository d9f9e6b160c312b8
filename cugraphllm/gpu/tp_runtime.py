"""How a tensor-parallel step runs (gpu/tp_engine.py): GraphRuntime's modes and keys, with every step on all GPUs.

- eager: gpu/model.py `forward` on every GPU at once, one thread per GPU (gpu/tp.py Workers; the collectives meet
  at the rendezvous of gpu/tp.py Group).
- capture: the same threads, each inside a capture of its GPU's capture stream; the group issues each collective
  into all capture streams, so graph r holds rank r's NCCL kernels. `MultiGraph` keeps the N graphs of a key.
- replay: the host launches graph 0, 1, ... on their GPUs' streams; launches are asynchronous, so all ranks' steps
  (and their collectives) are in flight together, which NCCL needs.
"""
from __future__ import annotations

import os
import time
import warnings

from .model import forward
from .runtime import GraphRuntime, capture_graph


class AttnGroup:
    """The per-GPU Attention objects seen as one by GraphRuntime: buckets from rank 0 (all ranks have the same),
    ready only when every rank has the kernel loaded. Rank 0 compiles (in the background where asked); the others
    load the compiled kernel from the shared disk cache (jit_cache) when they are asked or polled."""

    def __init__(self, attns: list):
        self.attns = attns
        a0 = attns[0]
        self.decode_buckets, self.prefill_buckets = a0.decode_buckets, a0.prefill_buckets

    def bucket_for(self, length: int, kind: str) -> int:
        return self.attns[0].bucket_for(length, kind)

    def ready(self, kind: str, bucket) -> bool:
        return all(a.ready(kind, bucket) for a in self.attns)

    def prepare(self, kind: str, bucket, background: bool = False) -> None:
        self.prepare_many([(kind, bucket)], background)

    def prepare_many(self, items, background: bool = False, jobs=None) -> None:
        self.attns[0].prepare_many(items, background, jobs)
        if not background:  # rank 0 has compiled them: the others load them from the cache
            for a in self.attns[1:]:
                a.prepare_many(items)

    def workspace_bytes(self) -> int:
        return self.attns[0].workspace_bytes()


class MultiGraph:
    """One captured graph per GPU for one key; launch() starts all of them on their GPUs' streams, from this thread
    (what the H200 probe measured), or with CUGRAPHLLM_TP_LAUNCH=threads from each GPU's worker thread: NCCL's
    documentation warns that a cudaGraphLaunch of a graph holding NCCL work may block in a single-threaded
    multi-GPU program (then NCCL_GRAPH_MIXING_SUPPORT=0 is the other remedy it names)."""

    def __init__(self, graphs: list, engine):
        self.graphs, self.e = graphs, engine
        self.threaded = os.environ.get("CUGRAPHLLM_TP_LAUNCH", "") == "threads"

    def launch(self, stream=None) -> None:
        import cupy as cp
        if self.threaded:
            self.e.workers.run(lambda r: self.graphs[r].launch(self.e.ranks[r].stream))
            return
        for g, rk in zip(self.graphs, self.e.ranks):
            with cp.cuda.Device(rk.device):
                g.launch(rk.stream)


def _free_bytes(devices) -> int:
    import cupy as cp
    total = 0
    for d in devices:
        with cp.cuda.Device(d):
            total += cp.cuda.runtime.memGetInfo()[0]
    return total


class TPRuntime(GraphRuntime):
    def __init__(self, engine, mode: str):
        import cupy as cp
        super().__init__(engine, mode)
        self._capture_streams = []
        for rk in engine.ranks:
            with cp.cuda.Device(rk.device):
                self._capture_streams.append(cp.cuda.Stream(non_blocking=True))

    def _forward(self, rows, attn_bucket, greedy):
        e = self.e

        def one(r):
            rk = e.ranks[r]
            with rk.stream:
                forward(e.config, rk.w, rk.kv, rk.s, rk.attn, rows, attn_bucket, greedy)
        e.workers.run(one)

    def capture(self, key) -> bool:
        """Capture key's step on every GPU (GraphRuntime.capture's contract: warn once and run eagerly on
        failure)."""
        if key in self.graphs or key in self.failed:
            return key in self.graphs
        kind, b, greedy = key
        if self.mode == "hybrid" and b is not None and not self.e.attn.ready(kind, b):
            return False
        rows = 1 if kind == "decode" else b
        attn_bucket = None if self.mode == "graph" or kind == "decode" and b is None else b
        e, graphs = self.e, [None] * len(self.e.ranks)
        t0, free0 = time.perf_counter(), _free_bytes(e.devices)

        def one(r):
            rk = e.ranks[r]
            graphs[r] = capture_graph(self._capture_streams[r], lambda: forward(
                e.config, rk.w, rk.kv, rk.s, rk.attn, rows, attn_bucket, greedy))
        try:
            e.workers.run(one)
        except Exception as exc:
            self.failed.add(key)
            warnings.warn(f"CUDA graph capture failed for {key} (--tp {len(graphs)}): {exc}; running that step "
                          "eagerly")
            return False
        self.graph_bytes += max(0, free0 - _free_bytes(e.devices))
        self.graphs[key] = MultiGraph(graphs, e)
        self.capture_s += time.perf_counter() - t0
        return True


def time_collectives(engine, reps: int = 50) -> float:
    """Microseconds of device time per decode step spent in the step's collectives alone: a graph per GPU holding
    exactly the step's all-reduces (2 per layer, D f32 each) and the logits all-gather, on the engine's backend
    (rk.comm: NCCL or gpu/allreduce.py's custom kernels), replayed `reps` times between CUDA events on rank 0
    (each replay waits for all ranks, so rank 0's clock covers them)."""
    L = engine.config.n_layers

    def collectives(rk):
        p = rk.comm.part[:1]
        for _ in range(2 * L):
            rk.comm.all_reduce(p)
        rk.comm.all_gather(rk.comm.logits, rk.s.logits)
    return _time_graphs(engine, collectives, reps)


def time_collective(engine, kind: str = "allreduce", n: int | None = None, calls: int = 64, reps: int = 20) -> float:
    """Microseconds per single collective on the engine's backend: a graph per GPU of `calls` back-to-back
    all-reduces of n f32 (default D; n <= the rows of comm.part times D) or all-gathers of the logits slice."""
    def body(rk):
        c = rk.comm
        p = c.part.reshape(-1)[:n or engine.config.dim]
        for _ in range(calls):
            if kind == "allreduce":
                c.all_reduce(p)
            else:
                c.all_gather(c.logits, rk.s.logits)
    return _time_graphs(engine, body, reps) / calls


def _time_graphs(engine, body, reps: int) -> float:
    """body(rank) captured into one graph per GPU (comm.part zeroed first: repeated sums of zeros stay finite),
    replayed `reps` times together: microseconds per replay on rank 0's clock."""
    import cupy as cp
    e = engine
    streams = []
    for rk in e.ranks:
        with cp.cuda.Device(rk.device):
            streams.append(cp.cuda.Stream(non_blocking=True))
    graphs = [None] * len(e.ranks)

    def cap(r):
        with streams[r]:
            e.ranks[r].comm.part.fill(0)
        streams[r].synchronize()
        graphs[r] = capture_graph(streams[r], lambda: body(e.ranks[r]))
    e.sync()
    e.workers.run(cap)
    mg = MultiGraph(graphs, e)
    mg.launch()  # warm-up replay
    e.sync()
    r0 = e.ranks[0]
    with cp.cuda.Device(r0.device):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record(r0.stream)
    for _ in range(reps):
        mg.launch()
    with cp.cuda.Device(r0.device):
        end.record(r0.stream)
    e.sync()
    with cp.cuda.Device(r0.device):
        ms = cp.cuda.get_elapsed_time(start, end)
    return 1000.0 * ms / reps
