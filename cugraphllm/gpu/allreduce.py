"""The "custom" collective backends of tensor parallelism: one-shot all-reduce / all-gather of small f32 messages over
NVLink peer access (kernels/allreduce.cu, allreduce_lamport.cu), as an alternative to NCCL behind gpu/tp.py's Comm
interface.

Why: a decode step of a TP engine makes 2 all-reduces per layer of D f32 (16-32 KB) and one all-gather of the logits;
NCCL takes ~6.6 us each on 2 x H200 (430 us of a 2.7 ms 7B step). One kernel that pushes its chunk into every
peer's buffer, raises a flag there and sums what the peers pushed into its own buffer needs one NVLink trip.

Selection (per engine, at construction): CUGRAPHLLM_ALLREDUCE = custom | lamport | nccl | auto (default auto: lamport
when every pair of the engine's GPUs has peer access and N <= MAX_WORLD, else nccl; custom or lamport where it is
impossible is a one-line error). lamport is the default since its A/B on 2 x H200 (benchmarks/results/
lamport_2026-11-30f/): 2.21 us an all-reduce against 5.30 (custom) and 6.71 (NCCL); 7B TP2 2.385 -> 2.195 ms/token,
13B TP2 4.066 -> 3.827, greedy tokens identical. Two protocols over peer access (PROTOCOLS): custom
(kernels/allreduce.cu: the pushes, a system-scope fence, a per-block flag, a fence on the reader's side) and lamport
(kernels/allreduce_lamport.cu: every pushed value is its own readiness signal, buffers of three generations reset
to an empty bit pattern; no fence, no flag). Both sum in rank order: the same bits. Messages above CAP elements
(prefill: [M, D] f32, 256 KB to 16 MB per rank) take lamport's ar_lamport_wide where the buffers were sized for them
(PeerBuffers(n=...): tp_engine sizes them for its largest prefill bucket, rows x D), else NCCL, which the engine
keeps in any case; the flag protocol and every all-gather stay capped at CAP. CUGRAPHLLM_ALLREDUCE_WIDE_BLOCKS
(default 128, 64..1024): the grid of ar_lamport_wide, fixed per engine (lamport_chunks says why).
CUGRAPHLLM_ALLREDUCE_TIMEOUT_MS (default 1000): how long a kernel waits for a peer before it traps (an error on
every GPU instead of a hang when one GPU's launch never comes). The decode residual update (all-reduce, x += sum,
its 16-bit copy and the norm's partial sums) is one kernel, ar_residual (ar_lamport_residual), instead of two;
CUGRAPHLLM_ALLREDUCE_FUSE=0 keeps them apart (all-reduce, then kernels/tp.cu), for A/B. Prefill partial sums travel
in the activation dtype (launch_packed: half f32's NVLink bytes); CUGRAPHLLM_ALLREDUCE_T16=0 keeps f32 (A/B).

The layout (constants, chunks, slots, the lamport call rule) is pure Python in gpu/allreduce_layout.py, re-exported
here (tests/test_allreduce_cpu.py and tests/lamport_model.py model-check the protocols with it); the kernels get the
same constants as defines. The knobs' names and parsing and the peer-access setup are in gpu/allreduce_setup.py.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import BackendError
from . import cuda_kernels as ck
from . import pdl
from .allreduce_layout import (  # noqa: F401  (re-exported: the launchers' and tests' names)
    THREADS, CHUNK, MAX_BLOCKS, MAX_WORLD, CAP, GENERATIONS, SEQ_WRAP, EMPTY, WIDE_BLOCKS, SEQ_BLOCKS,
    WIDE_KERNEL, PROTOCOLS, blocks_for, peer_cap, lamport_chunks, slot_offset, lamport_call, flag_index,
    buffer_bytes)
from .allreduce_setup import (  # noqa: F401  (re-exported: the knobs' names and parsers)
    ENV, TIMEOUT_ENV, FUSE_ENV, WIDE_ENV, T16_ENV, enable_peers as _enable_peers, timeout_ns, wide_blocks)
from .tp import Comm
_cache: dict = {}                      # (device, world, kernel, dtype) -> RawKernel


# ---- selection ---------------------------------------------------------------------------------------------------
def peer_access(devices: list[int]) -> bool:
    """Every ordered pair of the devices can map the other's memory."""
    import cupy as cp
    return all(a == b or cp.cuda.runtime.deviceCanAccessPeer(a, b) for a in devices for b in devices)


def choose(devices: list[int], env: str | None = None) -> str:
    """'custom', 'lamport' or 'nccl' for an engine over `devices` (module docstring); a one-line BackendError for a
    bad value or for a peer-access protocol where the GPUs cannot map each other's memory."""
    want = (os.environ.get(ENV, "auto") if env is None else env).strip().lower() or "auto"
    if want not in ("auto", "nccl", *PROTOCOLS):
        raise BackendError(f"{ENV}={want!r}: expected custom, lamport, nccl or auto")
    if want == "nccl":
        return "nccl"
    ok = 2 <= len(devices) <= MAX_WORLD and peer_access(devices)
    if want in PROTOCOLS and not ok:
        raise BackendError(f"{ENV}={want}: GPUs {devices} do not all have peer access to each other (or more than "
                           f"{MAX_WORLD}); use nccl")
    return ("lamport" if want == "auto" else want) if ok else "nccl"


def _kernel(world: int, protocol: str = "custom", fused: bool = False, tname: str = "float16", wide: bool = False,
            packed: bool = False):
    """The protocol's all-reduce (fused residual; wide: lamport above CAP; packed: lamport's wide kernel over words
    of two tname values) kernel for `world` ranks on the current device (compiled once per world and storage
    dtype, loaded once per device)."""
    src, plain, residual, _ = PROTOCOLS[protocol]
    name = WIDE_KERNEL if wide or packed else residual if fused else plain
    key = (ck.device_id(), world, name, tname, packed)
    f = _cache.get(key)
    if f is None:
        defines = dict(AR_WORLD=world, AR_THREADS=THREADS, AR_CHUNK=CHUNK, AR_MAX_BLOCKS=MAX_BLOCKS,
                       AR_MAX_WORLD=MAX_WORLD, **({"AR_PACKED": 1} if packed else {}))
        f = _cache[key] = ck.get_function(src, name, defines=defines, dtype=tname)
    return f


def fusable(n: int, chunk: int, *arrays) -> bool:
    """Whether ar_residual can do a decode residual update of n elements with the norm's chunk (pure Python but for
    the arrays' addresses): n % 4 == 0 and <= CAP, 16-byte aligned f32 arrays, chunk / 4 a power of two <= 32."""
    lanes = chunk // 4
    return (0 < n <= CAP and n % 4 == 0 and chunk % 4 == 0 and 1 <= lanes <= 32 and lanes & (lanes - 1) == 0
            and all(a.data.ptr % 16 == 0 for a in arrays))


class PeerBuffers:
    """The device state of one group for a peer-access protocol (PROTOCOLS), for all-reduces of up to cap =
    peer_cap(protocol, n) elements per rank: per rank (on its device) data f32 [slots * world * cap] (custom: zero;
    lamport: EMPTY), custom's flags u32 [MAX_BLOCKS * MAX_WORLD] (zero) and seq u32 [MAX_BLOCKS] (lamport:
    [SEQ_BLOCKS]; zero); peer access between all devices; the kernels loaded on every device (a first launch must
    not compile while a peer's kernel already waits for it)."""

    def __init__(self, devices: list[int], protocol: str = "custom", n: int = CAP):
        import cupy as cp
        self.devices, self.world, self.protocol = list(devices), len(devices), protocol
        if protocol not in PROTOCOLS:
            raise ValueError(f"peer all-reduce: protocol {protocol!r}, expected one of {sorted(PROTOCOLS)}")
        if not 1 <= self.world <= MAX_WORLD:
            raise BackendError(f"{protocol} all-reduce: {self.world} GPUs, at most {MAX_WORLD}")
        self.timeout_ns, self.cap = timeout_ns(), peer_cap(protocol, n)
        self.wide = wide_blocks() if self.cap > CAP else MAX_BLOCKS  # ar_lamport_wide's grid, fixed from here on
        self.fused: set = set()  # storage dtypes whose fused residual kernel is loaded on every device (warmup)
        self.packed: set = set()  # storage dtypes whose packed wide kernel is loaded on every device (lamport)
        _enable_peers(self.devices)
        self.data, self.flags, self.seq = [], [], []
        lamport, slots = protocol == "lamport", PROTOCOLS[protocol][3]
        for d in self.devices:
            with cp.cuda.Device(d):
                words = slots * self.world * self.cap
                self.data.append(cp.full(words, np.uint32(EMPTY), cp.uint32).view(cp.float32) if lamport
                                 else cp.zeros(words, cp.float32))
                if not lamport:
                    self.flags.append(cp.zeros(MAX_BLOCKS * MAX_WORLD, cp.uint32))
                self.seq.append(cp.zeros(SEQ_BLOCKS if lamport else MAX_BLOCKS, cp.uint32))
                _kernel(self.world, protocol).attributes  # compile and load here, outside any step
                if self.cap > CAP:
                    _kernel(self.world, protocol, wide=True).attributes
                cp.cuda.Device().synchronize()  # written before any peer's kernel can look
        pad = [0] * (MAX_WORLD - self.world)
        flags = [a.data.ptr for a in self.flags] + pad if self.flags else []
        self._ptrs = tuple(np.uint64(p) for p in [a.data.ptr for a in self.data] + pad + flags)

    @property
    def nbytes(self) -> int:
        """Bytes on each device."""
        return buffer_bytes(self.world, self.protocol, self.cap)

    def warmup(self, tname: str) -> None:
        """Load the fused residual kernel (and lamport's packed wide kernel) for storage dtype tname on every device
        (before any step: never compile mid-collective)."""
        import cupy as cp
        lamport = self.protocol == "lamport"
        for d in self.devices:
            with cp.cuda.Device(d):
                _kernel(self.world, self.protocol, True, tname).attributes
                if lamport:
                    _kernel(self.world, self.protocol, tname=tname, packed=True).attributes
        self.fused.add(tname)
        if lamport:
            self.packed.add(tname)

    def packable(self, n: int, tname: str) -> bool:
        """Whether launch_packed can add a 16-bit message of n elements of tname (its kernel loaded, n % 8 == 0,
        n / 2 words within the slots)."""
        return tname in self.packed and n % 8 == 0 and 0 < n // 2 <= self.cap

    def launch_packed(self, rank: int, p, x) -> None:
        """x f32 [n] += the sum over ranks of p T [n] (16-bit, T warmed up), each rank's values widened to f32 and
        added in rank order: ar_lamport_wide under AR_PACKED, p's n / 2 words moved as f32 elements are (so the
        protocol, chunks and slots are those of an all-reduce of n / 2 f32). n % 8 == 0 (one 16-byte vector of p a
        thread), n / 2 <= cap, p and x contiguous, 16-byte aligned, on the rank's device. Same call order rules as
        launch()."""
        n, t = p.size, p.dtype.name
        ok = (self.packable(n, t) and x.dtype == np.float32 and x.size == n and p.flags.c_contiguous
              and x.flags.c_contiguous and p.data.ptr % 16 == 0 and x.data.ptr % 16 == 0)
        if not ok or p.device.id != self.devices[rank] or x.device.id != self.devices[rank]:
            raise ValueError(f"custom all-reduce: packed add of p {t} {tuple(p.shape)} into x {x.dtype} "
                             f"{tuple(x.shape)} (rank {rank}; n % 8 == 0, n / 2 <= {self.cap}, aligned, loaded: "
                             f"{sorted(self.packed)})")
        self._launch_wide(rank, p, x, n // 2, 1, True, _kernel(self.world, self.protocol, tname=t, packed=True))

    def _launch_wide(self, rank: int, src, dst, n: int, vec, add: bool, fn) -> None:
        """ar_lamport_wide (fn: its f32 or packed build) over n f32 / words per rank on lamport_chunks' grid."""
        pdl.launch(fn, (min(self.wide, -(-n // CHUNK)),), (THREADS,), (
            src, dst, self.seq[rank], *self._ptrs, np.int32(n), np.int32(rank), np.int32(vec), np.int64(self.cap),
            np.int64(self.timeout_ns), np.int32(bool(add))), pdl=True)

    def launch_residual(self, rank: int, p, x, xh, ss, chunk: int) -> None:
        """The fused residual kernel (ar_residual / ar_lamport_residual) on the current stream: x f32 [1, n] += (sum
        over ranks of p f32 [1, n]), xh T [1, n] = T(x), ss f32 [>= ceil(n / chunk)] = the norm's partial sums of
        squares. Same call order rules as launch()."""
        n = p.size
        if x.dtype != np.float32 or p.dtype != np.float32 or x.size != n or xh.size != n or ss.size < -(-n // chunk):
            raise ValueError(f"custom all-reduce: residual shapes p {p.shape}, x {x.shape}, xh {xh.shape}, ss "
                             f"{ss.shape} for chunk {chunk}")
        if xh.dtype.name not in self.fused or not fusable(n, chunk, p, x):
            raise ValueError(f"custom all-reduce: no fused residual for {xh.dtype.name}, n {n}, chunk {chunk}")
        pdl.launch(_kernel(self.world, self.protocol, True, xh.dtype.name), (blocks_for(n),), (THREADS,), (
            p, x, xh, ss, self.seq[rank], *self._ptrs, np.int32(n), np.int32(rank), np.int32(chunk),
            np.int64(self.cap), np.int64(self.timeout_ns)), pdl=True)

    def launch(self, rank: int, src, dst, n: int, gather: bool, add: bool = False) -> None:
        """Rank `rank`'s kernel on the current stream (its device current): dst = sum over ranks of src (n f32 each,
        at most cap; dst may be src) or, gather, dst [world * n] = every rank's src in rank order (n at most CAP);
        add (lamport, CAP < n): dst += the sum (dst not src). Every rank must make the same calls in the same order
        (the sequence numbers live on the device)."""
        if not 0 <= rank < self.world:
            raise ValueError(f"custom all-reduce: rank {rank} of {self.world}")
        if add and (gather or n <= CAP or src.data.ptr == dst.data.ptr):
            raise ValueError(f"custom all-reduce: add needs an all-reduce of more than {CAP} elements into another "
                             "buffer")
        if not 0 < n <= (CAP if gather else self.cap):
            raise ValueError(f"custom all-reduce: {n} elements per rank, expected 1..{CAP if gather else self.cap}")
        for name, a, size in (("src", src, n), ("dst", dst, n * (self.world if gather else 1))):
            if a.dtype != np.float32 or not a.flags.c_contiguous or a.size != size:
                raise ValueError(f"custom all-reduce: {name} must be contiguous float32 of {size} elements, got "
                                 f"{a.dtype} {tuple(a.shape)}")
            if a.device.id != self.devices[rank]:
                raise ValueError(f"custom all-reduce: {name} is on GPU {a.device.id}, rank {rank} is GPU "
                                 f"{self.devices[rank]}")
        vec = n % 4 == 0 and src.data.ptr % 16 == 0 and dst.data.ptr % 16 == 0
        if n > CAP:  # lamport only (self.cap is CAP for custom)
            self._launch_wide(rank, src, dst, n, vec, add, _kernel(self.world, self.protocol, wide=True))
        else:
            pdl.launch(_kernel(self.world, self.protocol), (blocks_for(n),), (THREADS,), (
                src, dst, self.seq[rank], *self._ptrs, np.int32(n), np.int32(rank), np.int32(bool(gather)),
                np.int32(vec), np.int64(self.cap), np.int64(self.timeout_ns)), pdl=True)


class CustomComm(Comm):
    """tp.Comm over PeerBuffers: all_reduce of at most peers.cap elements per rank (lamport: as sized; custom: CAP)
    and all_gather of at most CAP run the peers' protocol (kernels/allreduce.cu or allreduce_lamport.cu; backend =
    its name), larger ones NCCL. Each call still meets the other ranks at the group's rendezvous on the host (no
    NCCL call): a rank whose step fails before its collective releases the others with an error instead of leaving
    their kernels waiting on the device; graph replays involve no host at all."""
    backend = "custom"

    def __init__(self, group, rank: int, rows: int, dim: int, vocab_local: int, peers: PeerBuffers):
        super().__init__(group, rank, rows, dim, vocab_local)
        self.peers, self.backend = peers, peers.protocol
        self.fuse = os.environ.get(FUSE_ENV, "1").strip() != "0"
        self.t16 = os.environ.get(T16_ENV, "1").strip() != "0"

    def all_reduce_residual(self, p, r, chunk: int) -> bool:
        """The decode residual update (ops.matmul_residual, M = 1) in one kernel: r.x += all_reduce(p), r.xn = T(x),
        r.ss = partial sums of squares in `chunk`s. False (nothing done, on every rank alike) where the fused kernel
        does not apply: the caller all-reduces and adds as usual."""
        if not (self.fuse and r.xn.dtype.name in self.peers.fused and fusable(p.size, chunk, p, r.x)):
            return False
        self.group.meet(self.rank, p.size)
        self.peers.launch_residual(self.rank, p, r.x, r.xn, r.ss, chunk)
        return True

    def add_16bit(self, n: int, tname: str) -> bool:
        """Whether all_reduce_add takes a partial sum of n elements in the 16-bit dtype tname (launch_packed)."""
        return self.t16 and self.fuse and self.peers.packable(n, tname)

    def all_reduce_add(self, p, x) -> bool:
        """The prefill residual update: x += all_reduce(p) in one kernel (ar_lamport_wide with add; the same f32
        operations as the all-reduce then kernels/tp.cu residual_add; a 16-bit p where add_16bit says so, its
        values summed in f32). False (nothing done, on every rank alike) where it does not apply (decode sizes,
        another protocol, a message past the buffers)."""
        if p.dtype != np.float32:
            if not self.add_16bit(p.size, p.dtype.name):
                return False
            self.group.meet(self.rank, p.size)
            self.peers.launch_packed(self.rank, p.reshape(-1), x.reshape(-1))
            return True
        if not (self.fuse and self.peers.protocol == "lamport" and CAP < p.size <= self.peers.cap
                and x.size == p.size):
            return False
        self.group.meet(self.rank, p.size)
        self.peers.launch(self.rank, p.reshape(-1), x.reshape(-1), p.size, False, add=True)
        return True

    def all_reduce(self, buf) -> None:
        if buf.size > self.peers.cap:
            return super().all_reduce(buf)
        self.group.meet(self.rank, buf.size)
        self.peers.launch(self.rank, buf, buf, buf.size, False)

    def all_gather(self, send, recv) -> None:
        if send.size > CAP:
            return super().all_gather(send, recv)
        if recv.size != send.size * self.world:
            raise ValueError(f"all_gather: recv has {recv.size} elements, expected {self.world} x {send.size}")
        self.group.meet(self.rank, send.size)
        self.peers.launch(self.rank, send, recv, send.size, True)

    @property
    def nbytes(self) -> int:
        return super().nbytes + self.peers.nbytes
