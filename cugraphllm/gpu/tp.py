"""Tensor parallelism over NCCL (`--tp N`): N GPUs of one host driven by ONE process, each GPU's step run by its own
Python thread (its device current), the collectives of all ranks issued together.

Why this shape: NCCL's one-process, several-devices mode needs every rank's call of a collective inside one
ncclGroupStart/End (a lone rank's call may block the host waiting for its peers), and a one-process-per-GPU probe
hung in init on the H200 host. So the model code (gpu/model.py `forward`) runs unchanged on every GPU, in one thread
per rank, and each collective is a rendezvous: every rank thread deposits its call (buffers, its current stream) at a
barrier, and the last one to arrive issues all ranks' calls in one group (threading.Barrier's action), as the
measured probe did. The same code path serves eager steps and graph capture: while capturing, the group's calls
land in each rank's capture stream and every rank's graph holds its NCCL kernel; replaying the graphs of all ranks
(launched one after the other from the host, asynchronously) puts the collectives of all ranks in flight together.

NVLink multicast (NVLS) stays off: the variables of NVLS_ENV are set before NCCL is loaded or initialized.
"""
from __future__ import annotations

import os
import queue
import threading

from ..errors import BackendError

# NVLink multicast off, in every library that could use it (the device README: it can take a shared host down)
NVLS_ENV = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


def nvls_off() -> None:
    os.environ.update(NVLS_ENV)


def check_devices(n: int) -> list[int]:
    """The devices [0, n) of a --tp n run; a one-line BackendError when fewer GPUs are visible."""
    import cupy as cp
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception:  # no driver, no GPU: CuPy raises its own runtime error
        count = 0
    if count < n:
        raise BackendError(f"--tp {n}: needs {n} CUDA GPUs, {count} visible")
    return list(range(n))


def _nccl():
    nvls_off()
    try:
        from cupy.cuda import nccl
        ok = nccl.available
    except Exception:
        ok = False
    if not ok:
        raise BackendError("tensor parallel: NCCL is not usable from CuPy here (pip install nvidia-nccl-cu13)")
    return nccl


class Group:
    """The NCCL communicators of N devices of this process and the rendezvous of their collectives."""

    def __init__(self, devices: list[int]):
        nccl = _nccl()
        self.devices, self.world, self._nccl = list(devices), len(devices), nccl
        try:
            self.comms = nccl.NcclCommunicator.initAll(self.devices)
        except Exception as exc:
            raise BackendError(f"tensor parallel: NCCL init on GPUs {self.devices} failed: "
                               f"{' '.join(str(exc).split())}") from None
        self._calls: list = [None] * self.world
        self._error = ""
        self._barrier = threading.Barrier(self.world, action=self._issue)

    def collective(self, rank: int, call: tuple) -> None:
        """Rank `rank`'s part of a collective: call = (kind, send ptr, recv ptr, count, stream ptr), kind
        "allreduce" (f32 sum) or "allgather" (f32, count elements per rank). Returns once every rank's call is
        queued on its stream (asynchronous on the device)."""
        self._calls[rank] = call
        try:
            self._barrier.wait()
        except Exception:
            raise BackendError(self._error or "tensor parallel: another GPU's step failed") from None

    def meet(self, rank: int, count: int) -> None:
        """The rendezvous alone (no NCCL call): the custom backend (gpu/allreduce.py) launches its own kernels once
        every rank has reached the same collective (count elements)."""
        self.collective(rank, ("meet", 0, 0, count, 0))

    def _issue(self) -> None:
        nccl, calls = self._nccl, list(self._calls)
        kinds = {c[0] for c in calls}
        try:
            if len(kinds) != 1 or len({c[3] for c in calls}) != 1:
                raise RuntimeError(f"ranks disagree on the collective: {calls}")
            if kinds == {"meet"}:
                return
            import cupy as cp
            nccl.groupStart()
            try:
                for r, (kind, send, recv, count, stream) in enumerate(calls):
                    with cp.cuda.Device(self.devices[r]):
                        if kind == "allreduce":
                            self.comms[r].allReduce(send, recv, count, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, stream)
                        else:
                            self.comms[r].allGather(send, recv, count, nccl.NCCL_FLOAT32, stream)
            finally:
                nccl.groupEnd()
        except Exception as exc:
            self._error = f"tensor parallel: NCCL {'/'.join(sorted(kinds))} failed: {' '.join(str(exc).split())}"
            raise

    def abort(self) -> None:
        """Release every rank waiting at (or later arriving at) the rendezvous with an error."""
        self._barrier.abort()

    def reset(self) -> None:
        self._barrier.reset()
        self._error = ""

    def close(self) -> None:
        for c in getattr(self, "comms", []):
            try:
                c.destroy()
            except Exception:
                pass
        self.comms = []


class Comm:
    """One rank's view of the group, as the ops take it (state.Residual.comm): its scratch for the partial
    residual product, part f32 [rows, D], and for its slice of the logits, logits f32 [1, V / world]. NCCL here;
    gpu/allreduce.py CustomComm is the same interface over NVLink peer access."""
    backend = "nccl"

    def __init__(self, group: Group, rank: int, rows: int, dim: int, vocab_local: int):
        import cupy as cp
        self.group, self.rank, self.world = group, rank, group.world
        self.part = cp.zeros((rows, dim), cp.float32)
        self.logits = cp.zeros((1, vocab_local), cp.float32)

    def add_16bit(self, n: int, tname: str) -> bool:
        """Whether the prefill residual update takes a 16-bit partial sum (allreduce.CustomComm); never over NCCL."""
        return False

    def all_reduce(self, buf) -> None:
        """buf f32 (contiguous) = its sum over the ranks, in place, on the current stream."""
        import cupy as cp
        self.group.collective(self.rank, ("allreduce", buf.data.ptr, buf.data.ptr, buf.size,
                                          cp.cuda.get_current_stream().ptr))

    def all_gather(self, send, recv) -> None:
        """recv f32 [world * send.size] = every rank's send, in rank order, on the current stream."""
        import cupy as cp
        if recv.size != send.size * self.world:
            raise ValueError(f"all_gather: recv has {recv.size} elements, expected {self.world} x {send.size}")
        self.group.collective(self.rank, ("allgather", send.data.ptr, recv.data.ptr, send.size,
                                          cp.cuda.get_current_stream().ptr))

    @property
    def nbytes(self) -> int:
        return int(self.part.nbytes + self.logits.nbytes)


class Workers:
    """One thread per rank with that rank's device current; run(fn) calls fn(rank) on all of them at once and
    returns when all are done, raising the first error (after releasing the others from the rendezvous)."""

    def __init__(self, devices: list[int], group: Group | None):
        self.devices, self.group = list(devices), group
        self._todo = [queue.SimpleQueue() for _ in self.devices]
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._loop, args=(r,), daemon=True, name=f"tp-rank{r}")
                         for r in range(len(self.devices))]
        for t in self._threads:
            t.start()

    def _loop(self, r: int) -> None:
        import cupy as cp
        cp.cuda.Device(self.devices[r]).use()
        while True:
            fn = self._todo[r].get()
            if fn is None:
                return
            try:
                fn(r)
                self._done.put((r, None))
            except BaseException as exc:  # noqa: BLE001 (handed to the caller)
                if self.group is not None:
                    self.group.abort()
                self._done.put((r, exc))

    def run(self, fn) -> None:
        for q in self._todo:
            q.put(fn)
        done: list = []
        try:
            while len(done) < len(self._todo):
                done.append(self._done.get())
        except BaseException:  # Ctrl-C: every rank still finishes this step (no stale result for the next run)
            while len(done) < len(self._todo):
                done.append(self._done.get())
            raise
        errors = [e for _, e in sorted(done, key=lambda d: d[0]) if e is not None]
        if errors:
            if self.group is not None:
                self.group.reset()
            # the root cause, not a rank released from the rendezvous by it
            first = next((e for e in errors if "another GPU's step failed" not in str(e)), errors[0])
            raise first

    def close(self) -> None:
        for q in self._todo:
            q.put(None)
        for t in self._threads:
            t.join(timeout=5)
