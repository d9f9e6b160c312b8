"""A model of kernels/allreduce_lamport.cu's protocol (value as flag, three generations, the reset of generation
(s + 2) % 3 in call s) for tests/test_allreduce_cpu.py: random interleavings of the ranks' blocks and random delays
of every store; each keyword argument switches on one way of getting the protocol wrong, so the tests can show that
the model catches it."""
from cugraphllm.gpu import allreduce as ar
from interleave_model import Interleaver

EMPTY = "EMPTY"          # the sentinel bit pattern (ar.EMPTY)
QNAN = "QNAN"            # what a sender pushes for an input whose bits are the sentinel's
ODD = (3, 0, 0, 0)       # (call, rank, block, element) whose input bits are the sentinel's


class LamportModel(Interleaver):
    """World ranks make the same calls (elements per rank) in order; a call's blocks run concurrently, a rank's next
    call starts when all of them are done, and (flush) at its pdl_enter every store of the rank's earlier calls is
    performed (griddepcontrol.wait). Memory: per (rank, generation, source, block) two representative elements, the
    chunk's first and last (the last only covered by a call that reaches the chunk's end); unwritten = EMPTY. A store
    is pending until the scheduler delivers it: in any order, but per writer and address in issue order; a fifth of
    the stores are slow, delivered only when no block can move and no other store is pending (or by a kernel
    boundary). A poll is a
    wait that is runnable when the element is not EMPTY, and the value seen then is the addend: it must be what the
    peer pushed in this very call.

    Variants (defaults = the kernel): schedule (a block's call count -> (s, generation pushed and polled,
    generation reset or None); default gpu/allreduce.py lamport_call, the kernel's arithmetic), whole_chunk (reset the
    whole chunk, not only the elements this call covers), flush (the kernel boundary), map_empty (a sender replaces
    the sentinel's bits)."""

    def __init__(self, world, calls, rng, schedule=ar.lamport_call, whole_chunk=True, flush=True, map_empty=True,
                 seq0=0):
        self.world, self.calls, self.rng, self.schedule = world, calls, rng, schedule
        self.whole_chunk, self.flush, self.map_empty = whole_chunk, flush, map_empty
        self.mem = {}
        self.seq = {(r, b): seq0 for r in range(world) for b in range(ar.MAX_BLOCKS)}
        self.pending, self.errors = [], []

    def pushed(self, k, p, b, e):
        """The value rank p pushes for element e of block b in call k (its input, the sentinel's bits mapped)."""
        if (k, p, b, e) != ODD:
            return (k, p, b, e)
        return QNAN if self.map_empty else EMPTY

    def _store(self, who, owner, addr, value):
        self.pending.append((who, owner, addr, value, self.rng.random() < 0.2))

    def _deliver(self, i):
        who, owner, addr = self.pending[i][:3]
        first = next(j for j, q in enumerate(self.pending) if q[:3] == (who, owner, addr))  # per writer, in order
        _, owner, addr, value, _ = self.pending.pop(first)
        self.mem[(owner, addr)] = value

    def _boundary(self, r):
        """Rank r's next kernel passed griddepcontrol.wait: its earlier stores are performed."""
        while self.flush and any(q[0][0] == r for q in self.pending):
            self._deliver(next(i for i, q in enumerate(self.pending) if q[0][0] == r))

    def block(self, r, k, b):
        """Rank r's block b in call k, one yield per step; a yielded callable is a wait (runnable when true)."""
        s, g, old = self.schedule(self.seq[r, b])
        n, me = self.calls[k], (r, b)
        covered = [e for e in (0, ar.CHUNK - 1) if b * ar.CHUNK + e < n]
        peers = [p for p in range(self.world) if p != r]
        yield None
        for p in peers:  # 1. push into generation g of every peer
            for e in covered:
                self._store(me, p, (g, r, b, e), self.pushed(k, r, b, e))
                yield None
        if old is not None:  # 2. reset own generation (s + 2) % 3
            for src in peers:
                for e in ((0, ar.CHUNK - 1) if self.whole_chunk else covered):
                    self._store(me, r, (old, src, b, e), EMPTY)
                    yield None
        for p in peers:  # 3. poll own generation g until not EMPTY; what it sees is the addend
            for e in covered:
                addr = (r, (g, p, b, e))
                yield lambda: self.mem.get(addr, EMPTY) != EMPTY
                got = self.mem[addr]
                if got != self.pushed(k, p, b, e):
                    self.errors.append(f"rank {r} call {k} block {b} element {e} read {got} from rank {p}")
        self.seq[r, b] = s  # 5.

    def _start(self, r):
        self._boundary(r)


    def _delivery(self, steps):
        fast = [i for i, q in enumerate(self.pending) if not q[4]]
        if self.pending and (not steps or (fast and self.rng.random() < 0.4)):
            return self.rng.choice(fast or range(len(self.pending)))
        return None
