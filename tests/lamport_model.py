"""A model of kernels/allreduce_lamport.cu's protocol (value as flag, three generations, the reset of generation
(s + 2) % 3 in call s; above the decode cap, several chunks per block, the later ones reset after they are read) for
tests/test_allreduce_cpu.py: random interleavings of the ranks' blocks and random delays of every store; each keyword
argument switches on one way of getting the protocol wrong, so the tests can show that the model catches it."""
from cugraphllm.gpu import allreduce as ar
from interleave_model import Interleaver

EMPTY = "EMPTY"          # the sentinel bit pattern (ar.EMPTY)
QNAN = "QNAN"            # what a sender pushes for an input whose bits are the sentinel's
ODD = (3, 0, 0, 0)       # (call, rank, chunk, element) whose input bits are the sentinel's
ENDS = (0, ar.CHUNK - 1)  # the representative elements of a chunk


class LamportModel(Interleaver):
    """World ranks make the same calls (elements per rank) in order; a call's blocks run concurrently, a rank's next
    call starts when all of them are done, and (flush) at its pdl_enter every store of the rank's earlier calls is
    performed (griddepcontrol.wait). Block b of a call handles the chunks ar.lamport_chunks gives it (one up to
    `small` chunks, the decode cap; above, b, b + wide, ...), all with the call's one generation. Memory: per (rank,
    generation, source, chunk) two representative elements, the chunk's first and last (the last only covered by a
    call that reaches the chunk's end); unwritten = EMPTY. A store is pending until the scheduler delivers it: in any
    order, but per writer and address in issue order; a fifth of the stores are slow, delivered only when no block
    can move and no other store is pending (or by a kernel boundary). A poll is a wait that is runnable when the
    element is not EMPTY, and the value seen then is the addend: it must be what the peer pushed in this very call.

    Variants (defaults = the kernel): schedule (a block's call count -> (s, generation pushed and polled,
    generation reset ahead or None); default gpu/allreduce.py lamport_call, the kernel's arithmetic), whole_chunk
    (reset ahead the whole first chunk, not only the elements this call covers), flush (the kernel boundary),
    map_empty (a sender replaces the sentinel's bits); plan (n -> every block's chunks; default lamport_chunks),
    later (how a block's later chunks are reset: "after" reading, generation g; "after+1": after reading, the wrong
    generation; "ahead": like the first chunk, generation (s + 2) % 3, but only chunks this call covers; None: never),
    polled (chunk, block -> the chunk whose slot the poll reads)."""

    def __init__(self, world, calls, rng, schedule=ar.lamport_call, whole_chunk=True, flush=True, map_empty=True,
                 seq0=0, small=ar.MAX_BLOCKS, wide=ar.WIDE_BLOCKS, plan=None, later="after", polled=None):
        self.world, self.calls, self.rng, self.schedule = world, calls, rng, schedule
        self.whole_chunk, self.flush, self.map_empty, self.later = whole_chunk, flush, map_empty, later
        self.plan = plan or (lambda n: ar.lamport_chunks(n, 1 << 40, wide, small))
        self.polled = polled or (lambda c, b: c)
        self.mem = {}
        self.seq = {(r, b): seq0 for r in range(world) for b in range(max(wide, small))}
        self.pending, self.errors = [], []

    def _blocks(self, k):
        return len(self.plan(self.calls[k]))

    def pushed(self, k, p, c, e):
        """The value rank p pushes for element e of chunk c in call k (its input, the sentinel's bits mapped)."""
        if (k, p, c, e) != ODD:
            return (k, p, c, e)
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
        chunks = list(self.plan(n)[b])
        covered = {c: [e for e in ENDS if c * ar.CHUNK + e < n] for c in chunks}
        peers = [p for p in range(self.world) if p != r]
        yield None
        for c in chunks:  # 1. push every chunk into generation g of every peer
            for p in peers:
                for e in covered[c]:
                    self._store(me, p, (g, r, c, e), self.pushed(k, r, c, e))
                    yield None
        for j, c in enumerate(chunks):  # 2. reset ahead own generation (s + 2) % 3: the first chunk
            if old is None or (j and self.later != "ahead"):
                continue
            for src in peers:
                for e in (ENDS if self.whole_chunk else covered[c]):
                    self._store(me, r, (old, src, c, e), EMPTY)
                    yield None
        for j, c in enumerate(chunks):  # 3. poll own generation g until not EMPTY; what it sees is the addend
            for p in peers:
                for e in covered[c]:
                    addr = (r, (g, p, self.polled(c, b), e))
                    yield lambda: self.mem.get(addr, EMPTY) != EMPTY
                    got = self.mem[addr]
                    if got != self.pushed(k, p, c, e):
                        self.errors.append(f"rank {r} call {k} block {b} chunk {c} element {e} read {got} from "
                                           f"rank {p}")
                    if j and self.later in ("after", "after+1"):  # the reset after read of a later chunk
                        self._store(me, r, ((g + (self.later == "after+1")) % 3, p, c, e), EMPTY)
                        yield None
        self.seq[r, b] = s  # 5.

    def _start(self, r):
        self._boundary(r)

    def _delivery(self, steps):
        fast = [i for i, q in enumerate(self.pending) if not q[4]]
        if self.pending and (not steps or (fast and self.rng.random() < 0.4)):
            return self.rng.choice(fast or range(len(self.pending)))
        return None
