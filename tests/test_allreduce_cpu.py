"""The custom all-reduce (gpu/allreduce.py, kernels/allreduce.cu and allreduce_lamport.cu) without a GPU: the buffer
layout, the backend choice, and model checks of both protocols under random interleavings of the ranks' blocks and
random delays of every store. Flags (custom): slots by parity, per-block sequence numbers in device memory, flags
released after the pushes, wait until flag - s >= 0. Lamport (tests/lamport_model.py): values as flags in three
generations, the reset of generation (s + 2) % 3, the kernel boundary, the call counter's wrap; above the decode cap
(prefill), several chunks per block in one generation, the later ones reset after they are read, mixed with decode
calls. Each variant of a protocol that would be a bug (one slot instead of two, waiting for flag == s, the flag not
fenced after the data; two generations, the wrong generation reset, no reset, a partial reset, no kernel boundary, a
wrap at 2^32, the sentinel's bits not mapped; a later chunk never reset, reset ahead only when covered, reset in the
wrong generation, polled in the wrong slot, chunks dealt to blocks differently per call) must be caught by the same
model, so the models can fail."""
import random
import re

import numpy as np
import pytest

from cugraphllm.errors import BackendError
from cugraphllm.gpu import allreduce as ar
from cugraphllm.gpu.cuda_kernels import kernel_dir
from interleave_model import Interleaver
from lamport_model import LamportModel

WRAP = 1 << 32


def test_layout_is_disjoint_and_inside_the_buffer():
    for world in (2, 3, 8):
        offs = {(p, s): ar.slot_offset(p, s, world) for p in (0, 1) for s in range(world)}
        assert sorted(offs.values()) == [i * ar.CAP for i in range(2 * world)]  # disjoint slots, no gap
        assert max(offs.values()) + ar.CAP == 2 * world * ar.CAP == (ar.buffer_bytes(world) // 4
                                                                    - ar.MAX_BLOCKS * (ar.MAX_WORLD + 1))
        gens = {ar.slot_offset(g, s, world) for g in range(ar.GENERATIONS) for s in range(world)}
        assert sorted(gens) == [i * ar.CAP for i in range(3 * world)]
        assert ar.buffer_bytes(world, "lamport") == 4 * (3 * world * ar.CAP + ar.SEQ_BLOCKS)
        for n, cap in ((512 * 4096, 512 * 4096), (3 * ar.CAP + 1000, 3 * ar.CAP + 1024), (100, ar.CAP)):
            assert ar.peer_cap("lamport", n) == cap and ar.peer_cap("custom", n) == ar.CAP
            assert ar.buffer_bytes(world, "lamport", n) == 4 * (3 * world * cap + ar.SEQ_BLOCKS)
            assert ar.buffer_bytes(world, "custom", n) == ar.buffer_bytes(world)
    idx = {ar.flag_index(b, s) for b in range(ar.MAX_BLOCKS) for s in range(ar.MAX_WORLD)}
    assert idx == set(range(ar.MAX_BLOCKS * ar.MAX_WORLD))
    assert [ar.blocks_for(n) for n in (1, ar.CHUNK, ar.CHUNK + 1, 4096, 5120, 8192, 16000, ar.CAP)] == \
        [1, 1, 2, 4, 5, 8, 16, ar.MAX_BLOCKS]
    for bad in (0, ar.CAP + 1):
        with pytest.raises(ValueError, match="elements per rank"):
            ar.blocks_for(bad)


@pytest.mark.parametrize("wide", [ar.MAX_BLOCKS, ar.WIDE_BLOCKS, 132])
def test_lamport_chunks_deal_every_chunk_once_to_its_fixed_block(wide):
    """Every chunk of a call exactly once; up to CAP block b has chunk b alone (the decode layout); above, chunk c
    always goes to block c % wide, first (c < wide) or later, in increasing order; sizes of 70B / 7B prefills."""
    for n in (1, 4100, ar.CAP, ar.CAP + 1, ar.CAP + 4, 3 * ar.CAP + 1000, 128 * 5120, 512 * 4096, 512 * 8192):
        plan = ar.lamport_chunks(n, 512 * 8192, wide)
        chunks = -(-n // ar.CHUNK)
        assert sorted(c for cs in plan for c in cs) == list(range(chunks)), n
        assert len(plan) == (chunks if n <= ar.CAP else min(wide, chunks))
        for b, cs in enumerate(plan):
            assert cs[0] == b and all(c % wide == b for c in cs) and list(cs) == sorted(cs), (n, b)
            assert len(cs) == 1 or n > ar.CAP
    assert ar.lamport_chunks(512 * 8192, 512 * 8192, 128)[5] == range(5, 4096, 128)  # 32 chunks a block
    for bad in ((0,), (ar.CAP + 1,), (100, ar.CAP, ar.MAX_BLOCKS - 1)):
        with pytest.raises(ValueError, match="lamport all-reduce"):
            ar.lamport_chunks(*bad)


def test_wide_blocks_setting(monkeypatch):
    monkeypatch.delenv(ar.WIDE_ENV, raising=False)
    assert ar.wide_blocks() == ar.WIDE_BLOCKS == 128
    monkeypatch.setenv(ar.WIDE_ENV, "64")
    assert ar.wide_blocks() == 64
    for bad in ("63", "1025", "many", "96.5"):
        monkeypatch.setenv(ar.WIDE_ENV, bad)
        with pytest.raises(BackendError, match="whole number of blocks from 64 to 1024") as e:
            ar.wide_blocks()
        assert "\n" not in str(e.value)


def test_kernel_defaults_match_the_python_constants():
    """allreduce*.cu compile on their own (CI) with these defaults; the launcher passes the same values."""
    src = (kernel_dir() / "allreduce_common.cuh").read_text()
    got = {k: int(v) for k, v in re.findall(r"#define (AR_\w+) (\d+)\n", src)}
    assert got == {"AR_WORLD": 2, "AR_THREADS": ar.THREADS, "AR_CHUNK": ar.CHUNK, "AR_MAX_BLOCKS": ar.MAX_BLOCKS,
                   "AR_MAX_WORLD": ar.MAX_WORLD}
    assert ar.CHUNK == 4 * ar.THREADS  # one float4 per thread (static_assert in the kernel)
    for name, (file, plain, fused, _) in ar.PROTOCOLS.items():
        text = (kernel_dir() / file).read_text()
        assert '#include "allreduce_common.cuh"' in text
        assert all(f"\n{k}(" in text for k in (plain, fused)), name
    lp = dict(re.findall(r"#define (AR_\w+) (\w+)", (kernel_dir() / "allreduce_lamport.cu").read_text()))
    assert (int(lp["AR_GENS"]), int(lp["AR_SEQ_WRAP"].rstrip("u")), int(lp["AR_EMPTY"].rstrip("u"), 16)) == \
        (ar.GENERATIONS, ar.SEQ_WRAP, ar.EMPTY)
    assert np.array(ar.EMPTY, np.uint32).view(np.float32) != np.array(ar.EMPTY, np.uint32).view(np.float32)  # NaN
    lp_src = (kernel_dir() / "allreduce_lamport.cu").read_text()  # the arithmetic of ar.lamport_call (the model's)
    assert "s_seq = s == AR_SEQ_WRAP ? 0u : s;" in lp_src and "g = s % AR_GENS, old = (s + 2u) % AR_GENS;" in lp_src
    wide = lp_src[lp_src.index("ar_lamport_wide(const float* in"):]  # lamport_chunks' dealing, lamport_call's s
    assert "s_seq = s == AR_SEQ_WRAP ? 0u : s;" in wide and "g = k.s % AR_GENS, old = (k.s + 2u) % AR_GENS;" in wide
    assert "k.m = ((n + AR_CHUNK - 1) / AR_CHUNK - b + G - 1) / G;" in wide and "G = gridDim.x" in wide
    assert f"\nextern \"C\" __global__ void __launch_bounds__(AR_THREADS)\n{ar.WIDE_KERNEL}(" in lp_src
    assert "if (j + u == 0) continue;" in lp_src  # a block's first chunk: no reset after read (reset ahead)


def test_lamport_generations_step_by_one_across_the_wrap():
    seqs = list(range(ar.SEQ_WRAP - 7, ar.SEQ_WRAP)) + list(range(0, 7))
    calls = [ar.lamport_call(q) for q in seqs]
    assert [s for s, _, _ in calls] == [(q + 1) % ar.SEQ_WRAP for q in seqs] and calls[6][0] == 0
    for (s, g, old), (s2, g2, _) in zip(calls, calls[1:]):
        assert g2 == (g + 1) % 3 and old == (g - 1) % 3  # call s resets what call s - 1 used


def test_backend_choice(monkeypatch):
    monkeypatch.setattr(ar, "peer_access", lambda devices: True)
    assert ar.choose([0, 1], "auto") == "lamport" and ar.choose([0, 1], "") == "lamport"
    assert ar.choose([0, 1], " NCCL ") == "nccl" and ar.choose([0, 1], "custom") == "custom"
    assert ar.choose([0, 1], "Lamport") == "lamport"
    assert ar.choose(list(range(9)), "auto") == "nccl"  # beyond MAX_WORLD
    monkeypatch.setenv(ar.ENV, "nccl")
    assert ar.choose([0, 1]) == "nccl"
    monkeypatch.setattr(ar, "peer_access", lambda devices: False)
    assert ar.choose([0, 1], "auto") == "nccl"
    for env, what in (("custom", "do not all have peer access"), ("lamport", "do not all have peer access"),
                      ("mpi", "expected custom, lamport, nccl or auto")):
        with pytest.raises(BackendError, match=what) as e:
            ar.choose([0, 1], env)
        assert "\n" not in str(e.value)


def test_timeout_setting(monkeypatch):
    monkeypatch.delenv(ar.TIMEOUT_ENV, raising=False)
    assert ar.timeout_ns() == 1_000_000_000
    monkeypatch.setenv(ar.TIMEOUT_ENV, "2.5")
    assert ar.timeout_ns() == 2_500_000
    for bad in ("0", "-3", "soon"):
        monkeypatch.setenv(ar.TIMEOUT_ENV, bad)
        with pytest.raises(BackendError, match="positive number of milliseconds"):
            ar.timeout_ns()


# ---- the protocol model ------------------------------------------------------------------------------------------
class Model(Interleaver):
    """World ranks run the same calls (elements per rank) in order; a call's blocks run concurrently, the next call
    starts when all of them are done (a kernel boundary on the rank's stream). Memory: one representative element per
    (slot, block) and the flag words, keyed by (owner, name). Every store a block makes is pending until the
    scheduler delivers it (in order per address: coherence); the fence delivers all of the block's pending stores.
    A block's reads check that each peer's element carries (call, peer, block)."""

    def __init__(self, world, calls, rng, parities=2, fence=True, wait_ge=True, seq0=0):
        self.world, self.calls, self.rng = world, calls, rng
        self.parities, self.fence, self.wait_ge = parities, fence, wait_ge
        self.mem = {(r, ("f", ar.flag_index(b, p))): seq0 for r in range(world) for b in range(ar.MAX_BLOCKS)
                    for p in range(world)}
        self.seq = {(r, b): seq0 for r in range(world) for b in range(ar.MAX_BLOCKS)}
        self.pending, self.errors = [], []

    def _store(self, who, owner, addr, value):
        self.pending.append((who, owner, addr, value))

    def _deliver(self, i):
        who, owner, addr, value = self.pending[i]
        first = next(j for j, q in enumerate(self.pending) if q[1:3] == (owner, addr))  # coherence order
        who, owner, addr, value = self.pending.pop(first)
        self.mem[(owner, addr)] = value

    def block(self, r, k, b):
        """Rank r's block b in call k, one yield per step; a yielded callable is a wait (runnable when true)."""
        s = (self.seq[r, b] + 1) % WRAP
        par = s % 2 if self.parities == 2 else 0
        peers = [p for p in range(self.world) if p != r]
        me = (r, b)
        yield None
        for p in peers:  # 1. push
            self._store(me, p, ("d", ar.slot_offset(par, r, self.world) + b * ar.CHUNK), (k, r, b))
            yield None
        if self.fence:  # 2. fence.acq_rel.sys: this block's stores are performed before the flags
            while any(q[0] == me for q in self.pending):
                self._deliver(next(i for i, q in enumerate(self.pending) if q[0] == me))
        for p in peers:  # st.release.sys of the flag
            self._store(me, p, ("f", ar.flag_index(b, r)), s)
            yield None
        for p in peers:  # 3. wait
            addr = (r, ("f", ar.flag_index(b, p)))
            if self.wait_ge:
                yield lambda: (self.mem[addr] - s) % WRAP < WRAP // 2  # (int)(flag - s) >= 0
            else:
                yield lambda: self.mem[addr] == s
        for p in peers:  # 4. read the peers' elements
            got = self.mem.get((r, ("d", ar.slot_offset(par, p, self.world) + b * ar.CHUNK)))
            if got != (k, p, b):
                self.errors.append(f"rank {r} call {k} block {b} read {got} from rank {p}")
            yield None
        self.seq[r, b] = s  # 5.



CALLS = [1500, 3000, 1, 2048, 3000, 700, 2500, 1024, 4096, 1]  # 2, 3, 1, 2, 3, 1, 3, 1, 4, 1 blocks


@pytest.mark.parametrize("world", [2, 3])
def test_protocol_never_reads_stale_or_future_data_nor_deadlocks(world):
    for seed in range(60):
        rng = random.Random(seed * 10 + world)
        seq0 = WRAP - 7 if seed % 2 else 0  # odd seeds cross the 32-bit wrap of the sequence numbers
        out = Model(world, CALLS, rng, seq0=seq0).run()
        assert out == "", f"seed {seed}: {out}"


@pytest.mark.parametrize("bug, what", [
    (dict(parities=1), "read"),            # one slot: a fast rank overwrites what a slow peer has not read yet
    (dict(wait_ge=False), "deadlock"),     # flag == s: a peer already one call ahead wrote s + 1
    (dict(fence=False), "read"),           # the flag overtakes the data
])
def test_the_model_catches_each_broken_variant(bug, what):
    outs = [Model(2, CALLS, random.Random(seed), **bug).run() for seed in range(60)]
    assert any(what in o for o in outs), outs


# ---- the lamport protocol's model (tests/lamport_model.py) -----------------------------------------------------------
@pytest.mark.parametrize("world", [2, 3])
def test_lamport_never_reads_stale_or_overwritten_data_nor_deadlocks(world):
    for seed in range(60):
        rng = random.Random(seed * 10 + world + 5)
        seq0 = ar.SEQ_WRAP - 4 if seed % 2 else 0  # odd seeds cross the wrap of the call counter
        out = LamportModel(world, CALLS, rng, seq0=seq0).run()
        assert out == "", f"seed {seed}: {out}"


def _schedule(wrap=ar.SEQ_WRAP, gens=3, ahead=2):
    """A wrong lamport_call: the counter wrapping at `wrap`, `gens` generations, a reset of (s + ahead) % gens."""
    def call(seq):
        s = (seq + 1) % wrap
        return s, s % gens, None if ahead is None else (s + ahead) % gens
    return call


@pytest.mark.parametrize("bug, what", [
    (dict(schedule=_schedule(gens=2, ahead=1)), "deadlock"),  # 2 generations: the reset erases a next-call value
    (dict(schedule=_schedule(ahead=1)), "deadlock"),          # resets the generation the next call uses
    (dict(schedule=_schedule(ahead=None)), "read"),           # no reset: an old call's value looks fresh
    (dict(whole_chunk=False), "read"),                        # only this call's elements reset: a stale tail
    (dict(flush=False), "read"),                              # no kernel boundary: the reset lands late
    (dict(schedule=_schedule(wrap=WRAP), seq0=WRAP - 4), "read"),  # wrap at 2^32: a generation twice in a row
    (dict(map_empty=False), "deadlock"),                      # an input with the sentinel's bits is never seen
])
def test_the_lamport_model_catches_each_broken_variant(bug, what):
    outs = [LamportModel(2, CALLS, random.Random(seed), **bug).run() for seed in range(60)]
    assert any(what in o for o in outs), outs


# Above the decode cap: a model with a cap of SMALL chunks and grids of `wide` blocks (the kernel's 64 and 128 scaled
# down), so that blocks take several chunks: decode calls (<= 2 chunks) between prefill ones of 3 to 12 chunks, whole
# and partial, whose blocks cover different chunks from call to call.
SMALL = 2
WIDE_CALLS = [1500, 9000, 1, 4096, 12000, 700, 7000, 2048, 12288, 3000, 9000, 5000]


@pytest.mark.parametrize("world, wide", [(2, 2), (2, 3), (3, 3)])
def test_lamport_prefill_chunks_never_read_stale_or_overwritten_data_nor_deadlock(world, wide):
    for seed in range(40):
        rng = random.Random(seed * 10 + world + wide)
        seq0 = ar.SEQ_WRAP - 5 if seed % 2 else 0  # odd seeds cross the wrap of the call counter
        out = LamportModel(world, WIDE_CALLS, rng, seq0=seq0, small=SMALL, wide=wide).run()
        assert out == "", f"seed {seed}: {out}"


def _contiguous(n, small=SMALL, wide=3):
    """A wrong lamport_chunks: above the cap, block b takes a contiguous run of chunks (its owner changes with n)."""
    chunks = -(-n // ar.CHUNK)
    if chunks <= small:
        return [range(b, b + 1) for b in range(chunks)]
    per = -(-chunks // min(wide, chunks))
    return [range(b, min(chunks, b + per)) for b in range(0, chunks, per)]


@pytest.mark.parametrize("bug, what", [
    (dict(later=None), "read"),                  # a later chunk never reset: a value 3 calls old looks fresh
    (dict(later="ahead"), "read"),               # reset ahead, but only when covered: a stale value survives
    (dict(later="after+1"), "deadlock"),         # reset after read in generation g + 1: erases a peer's next value
    (dict(polled=lambda c, b: b), "read"),       # every chunk polled in the slot of the block's first
    (dict(plan=_contiguous), "read"),            # chunks dealt per call: blocks' counters disagree on a chunk
    (dict(flush=False), "read"),                 # no kernel boundary: a reset after read lands in the next use
])
def test_the_lamport_model_catches_each_broken_prefill_variant(bug, what):
    outs = [LamportModel(2, WIDE_CALLS, random.Random(seed), small=SMALL, wide=3, **bug).run() for seed in range(40)]
    assert any(what in o for o in outs), outs


# ---- CustomComm's dispatch, with a fake group and fake peer buffers -------------------------------------------------
class _Buf:
    def __init__(self, size, ptr):
        self.size, self.data = size, type("Mem", (), {"ptr": ptr})()


@pytest.mark.parametrize("cap", [ar.CAP, 512 * 4096])
def test_custom_comm_dispatch(monkeypatch, cap):
    """all_reduce of at most peers.cap elements (custom: CAP; lamport: as sized), all_gather of at most CAP: the
    rendezvous alone, then the kernel (in place for all_reduce); above: NCCL's collective through the same group."""
    import cupy as cp
    calls = []

    class Group:
        world = 2

        def meet(self, rank, n):
            calls.append(("meet", rank, n))

        def collective(self, rank, call):
            calls.append((call[0], rank, call[3]))

    class Peers:
        def launch(self, rank, src, dst, n, gather):
            calls.append(("kernel", rank, n, gather, src is dst))

    Peers.cap = cap
    monkeypatch.setattr(cp.cuda, "get_current_stream", lambda: type("S", (), {"ptr": 5})())
    c = object.__new__(ar.CustomComm)
    c.group, c.rank, c.world, c.peers = Group(), 1, 2, Peers()
    c.all_reduce(_Buf(4096, 64))
    c.all_reduce(_Buf(ar.CAP + 1, 64))
    c.all_reduce(_Buf(cap + 1, 64))
    c.all_gather(_Buf(16000, 64), _Buf(32000, 128))
    c.all_gather(_Buf(ar.CAP + 8, 64), _Buf(2 * ar.CAP + 16, 128))
    big = [("allreduce", 1, ar.CAP + 1)] if cap == ar.CAP else [("meet", 1, ar.CAP + 1),
                                                                ("kernel", 1, ar.CAP + 1, False, True)]
    assert calls == [("meet", 1, 4096), ("kernel", 1, 4096, False, True), *big, ("allreduce", 1, cap + 1),
                     ("meet", 1, 16000), ("kernel", 1, 16000, True, False), ("allgather", 1, ar.CAP + 8)]
    with pytest.raises(ValueError, match="expected 2 x 16000"):
        c.all_gather(_Buf(16000, 64), _Buf(16000, 128))


class _Dev(np.ndarray):
    """A NumPy array with the `.data.ptr` and `.device.id` (GPU 0) that the launchers' checks read."""
    @property
    def data(self):
        return type("Mem", (), {"ptr": self.ctypes.data})()

    @property
    def device(self):
        return type("Dev", (), {"id": 0})()


def _dev(a):
    return np.ascontiguousarray(a).view(_Dev)


@pytest.mark.parametrize("protocol, n_sized", [("lamport", 512 * 8192), ("lamport", ar.CAP), ("custom", 512 * 8192)])
def test_peer_launch_picks_kernel_grid_and_cap(monkeypatch, protocol, n_sized):
    """PeerBuffers.launch: up to CAP the decode kernel on blocks_for(n) blocks; above CAP (lamport sized for it) the
    wide kernel on lamport_chunks' grid; every kernel gets the slot stride cap = peer_cap (the fused one too); beyond
    the cap, an all-gather above CAP, or a custom message above CAP: a ValueError before any launch."""
    got = []
    monkeypatch.setattr(ar, "_kernel", lambda world, protocol, fused=False, tname="float16", wide=False:
                        ("wide" if wide else "fused" if fused else "plain"))
    monkeypatch.setattr(ar.pdl, "launch", lambda fn, grid, block, args, pdl=False: got.append((fn, grid, args)))
    pb = object.__new__(ar.PeerBuffers)
    pb.devices, pb.world, pb.protocol, pb.timeout_ns, pb.fused = [0, 1], 2, protocol, 5, {"float16"}
    pb.cap, pb.wide, pb.seq, pb._ptrs = ar.peer_cap(protocol, n_sized), 96, [None], (np.uint64(0),) * 8
    for n in (4096, 4098, ar.CAP, ar.CAP + 4, 3 * ar.CAP + 1001, 512 * 4096, 512 * 8192):
        buf = _dev(np.ones(n + 1, np.float32))
        assert buf.data.ptr % 16 == 0  # NumPy's allocations are 16-byte aligned: buf[1:] is not
        for a in (buf[:n], buf[1:]):  # vector and (4-byte offset) scalar path
            got.clear()
            if n > pb.cap:
                with pytest.raises(ValueError, match=f"expected 1..{pb.cap}"):
                    pb.launch(0, a, a, n, False)
                assert got == []
                continue
            pb.launch(0, a, a, n, False)
            (fn, grid, args), = got
            assert fn == ("wide" if n > ar.CAP else "plain") and grid == (len(ar.lamport_chunks(n, pb.cap, 96)),)
            tail = args[:-1] if n > ar.CAP else args  # the wide kernel's last argument: add (0 here)
            assert n <= ar.CAP or args[-1] == 0
            assert tail[-2] == pb.cap and tail[-3] == (n % 4 == 0 and a.data.ptr % 16 == 0)
            assert args[11] == n and len(args) == 17
    if pb.cap > ar.CAP:  # add (the prefill residual update): the wide kernel with add = 1, into another buffer only
        n = ar.CAP + 4
        a, x = _dev(np.ones(n, np.float32)), _dev(np.ones(n, np.float32))
        got.clear()
        pb.launch(0, a, x, n, False, add=True)
        (fn, _, args), = got
        assert fn == "wide" and args[-1] == 1
        for bad in ((a, a, n), (a[:4096], x[:4096], 4096)):
            with pytest.raises(ValueError, match="add needs"):
                pb.launch(0, *bad, False, add=True)
    big = _dev(np.ones(ar.CAP + 4, np.float32))
    with pytest.raises(ValueError, match=f"expected 1..{ar.CAP}"):
        pb.launch(0, big, _dev(np.ones(2 * (ar.CAP + 4), np.float32)), ar.CAP + 4, True)
    got.clear()
    x = _dev(np.ones(4096, np.float32))
    pb.launch_residual(0, x, x, _dev(np.ones(4096, np.float16)), _dev(np.ones(512, np.float32)), 8)
    assert got[0][0] == "fused" and got[0][1] == (4,) and got[0][2][-2] == pb.cap
    assert (pb.cap > ar.CAP) == (protocol == "lamport" and n_sized > ar.CAP)


def test_fusable_rules():
    a16 = _dev(np.zeros(4100, np.float32))
    assert a16.data.ptr % 16 == 0  # NumPy's allocations are 16-byte aligned
    assert ar.fusable(4096, 8, a16) and ar.fusable(4100, 4, a16) and ar.fusable(64, 128, a16)
    assert not ar.fusable(4098, 8, a16)                  # n % 4
    assert not ar.fusable(ar.CAP + 4, 8, a16)            # above CAP
    assert not ar.fusable(4096, 12, a16) and not ar.fusable(4096, 6, a16) and not ar.fusable(4096, 256, a16)
    assert not ar.fusable(4096, 8, a16[1:])              # 4-byte offset


@pytest.mark.parametrize("fused", [True, False])
def test_decode_residual_tries_the_fused_kernel_first(monkeypatch, fused):
    """ops.matmul_residual, decode with a communicator: the partial product, then comm.all_reduce_residual; only
    where that declines, the all-reduce and kernels/tp.cu's add."""
    from cugraphllm.gpu import ops
    from cugraphllm.gpu.state import Residual
    D, K = 64, 48
    calls = []

    class Comm:
        part = _dev(np.zeros((4, D), np.float32))

        def all_reduce_residual(self, p, r, chunk):
            calls.append("fused")
            assert p.shape == (1, D) and np.shares_memory(p, Comm.part) and chunk == ops.norm_chunk(D)
            return fused

        def all_reduce(self, p):
            calls.append("all_reduce")

    monkeypatch.setattr(ops, "_launch_gemv", lambda kernel, t, K_, n, args: calls.append(kernel))
    monkeypatch.setattr(ops, "_fn", lambda file, kernel, t, **d: lambda grid, block, args: calls.append(kernel))
    r = Residual(_dev(np.zeros((1, D), np.float32)), _dev(np.zeros((1, D), np.float16)),
                 _dev(np.zeros(D // 2, np.float32)), Comm())
    ops.matmul_residual(r, _dev(np.ones((1, K), np.float16)), _dev(np.ones((D, K), np.float16)))
    assert calls == ["gemv_logits", "fused"] + ([] if fused else ["all_reduce", "residual_add_ss"])


def test_custom_comm_fused_residual_dispatch(monkeypatch):
    calls = []

    class Group:
        def meet(self, rank, n):
            calls.append(("meet", n))

    class Peers:
        fused = {"float16"}

        def launch_residual(self, rank, p, x, xh, ss, chunk):
            calls.append(("kernel", rank, chunk))

    c = object.__new__(ar.CustomComm)
    c.group, c.rank, c.world, c.peers, c.fuse = Group(), 0, 2, Peers(), True
    p = _dev(np.zeros(4096, np.float32))
    r = type("R", (), dict(x=_dev(np.zeros(4096, np.float32)), xn=np.zeros(4096, np.float16), ss=None))()
    assert c.all_reduce_residual(p, r, 8) and calls == [("meet", 4096), ("kernel", 0, 8)]
    calls.clear()
    r16 = type("R", (), dict(x=r.x, xn=np.zeros(4096, np.float32), ss=None))()  # a dtype not warmed up
    assert not c.all_reduce_residual(p, r16, 8) and not c.all_reduce_residual(p, r, 12)
    c.fuse = False
    assert not c.all_reduce_residual(p, r, 8) and calls == []  # declined: no rendezvous, no kernel
