"""The scheduler shared by the all-reduce protocol models (tests/test_allreduce_cpu.py's flag model,
tests/lamport_model.py): random interleavings of the ranks' blocks and of the delivery of their pending stores."""
from cugraphllm.gpu import allreduce as ar


class Interleaver:
    """Subclasses set world, calls, rng, pending, errors and define block(r, k, b) (a generator: one yield per step;
    a yielded callable is a wait, runnable when true), _deliver(i), and may override _start (before a rank's next
    call) and _delivery (which pending store to deliver now, or None to step a block)."""

    def _start(self, r) -> None:
        pass

    def _blocks(self, k) -> int:
        return ar.blocks_for(self.calls[k])

    def _delivery(self, steps):
        if self.pending and (not steps or self.rng.random() < 0.4):
            return self.rng.randrange(len(self.pending))
        return None

    def run(self, max_steps=200_000) -> str:
        """'' when every rank finished every call with correct reads, else what went wrong."""
        call = [0] * self.world
        live = {r: [] for r in range(self.world)}
        waits = {}
        for _ in range(max_steps):
            for r in range(self.world):
                if not live[r] and call[r] < len(self.calls):
                    self._start(r)
                    live[r] = [(b, self.block(r, call[r], b)) for b in range(self._blocks(call[r]))]
                    call[r] += 1
            if self.errors:
                return self.errors[0]
            steps = [(r, i) for r in live for i, (b, g) in enumerate(live[r])
                     if waits.get((r, b)) is None or waits[(r, b)]()]
            if not steps and not self.pending:
                done = all(c == len(self.calls) and not live[r] for r, c in enumerate(call))
                return "" if done else "deadlock"
            d = self._delivery(steps)
            if d is not None:
                self._deliver(d)
                continue
            r, i = self.rng.choice(steps)
            b, g = live[r][i]
            try:
                waits[(r, b)] = next(g)
            except StopIteration:
                waits.pop((r, b), None)
                live[r].pop(i)
        return "too many steps"
