"""The engine thread: batch 1 on purpose. One LLM serves one request at a time, the rest wait in a FIFO queue.

The event loop never touches the engine. A `Job` carries a validated request in and its events out:
("text", chunk)*, then ("done", Outcome) or ("error", exception), handed to the loop with call_soon_threadsafe.
The loop's work for a request is done before the engine starts it, so that none of it competes with the
prefill's host work for the GIL: a stream is queued (its place in the FIFO taken, or a 503) held, and released
(Worker.release) once its response is set up. Nothing reaches the loop before the first token, whose chunk the
engine thread writes itself where it can (job.first_chunk, fastpath.py: with the stream's headers, in one
write); otherwise it waits for the loop's write of that chunk (FLUSH_WAIT at most) rather than queueing the loop
behind its next step. The engine thread sleeps on a lock used
as a doorbell (a release wakes it with one semaphore post, no Condition round trip). A job whose client went
away is cancelled: its generation stops at the next token (LLM._run's on_token), or it is skipped if it has not
started.
"""
from __future__ import annotations

import asyncio
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field

from ..errors import CugraphError
from .metrics import Metrics
from .protocol import ApiError, GenRequest


@dataclass
class Outcome:
    finish_reason: str        # the engine's: eos, stop, length, context, interrupted
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    ttft_s: float             # request arrival to first token, queueing included
    queue_s: float


# a request's steps to its first token, for the per-request log line, from its arrival (uvicorn began parsing
# it, or the handler's start): the handler starts (uvicorn's and Starlette's dispatch), body read, validated,
# tokenized, queued (loop), released to the engine (loop; a stream, once its headers are written), taken by the
# engine thread, first token sampled, its text out of the detokenizer, its SSE chunk formatted and about to be
# written, written (by the engine thread, or the loop resumed after its write)
TIMELINE = ("handler", "read", "parsed", "tokenized", "submitted", "released", "started", "token", "handed", "sending",
            "written")
FLUSH_WAIT = 0.05   # seconds the engine thread waits at most for a stream's first chunk to be written
HOLD_LIMIT = 5.0    # seconds a held job may keep the head of the queue waiting for its release


class Latch:
    """threading.Event's set / is_set / wait(timeout) on one lock, held while unset (an Event builds a Condition
    and its lock in Python: two of them were ~4 us of every request's path, which runs with cold caches)."""

    __slots__ = ("_lock",)

    def __init__(self):
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:   # set already
            pass

    def is_set(self) -> bool:
        return not self._lock.locked()

    def wait(self, timeout: float | None = None) -> bool:
        if not self.take(timeout):
            return False
        self.set()   # leave it set (a set() meanwhile may have released it already)
        return True

    def take(self, timeout: float | None = None) -> bool:
        """wait, leaving it unset: one waiter consumes a set (several sets before it are one)."""
        return self._lock.acquire(timeout=-1 if timeout is None else timeout)


@dataclass
class Job:
    req: GenRequest
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    arrived: float = field(default_factory=time.perf_counter)
    cancelled: Latch = field(default_factory=Latch)
    flushed: Latch = field(default_factory=Latch)   # a stream's first chunk is written
    ready: bool = True   # False: queued but held until Worker.release (the loop still has work for it)
    first_chunk: object = None   # a stream's fastpath.FirstChunk: the engine thread writes the first chunk itself
    first_by: str = "loop"       # who wrote a stream's first chunk: "loop" or "engine thread" (the log line says)
    marks: dict = field(default_factory=dict)   # first perf_counter() of each TIMELINE step

    def mark(self, step: str) -> None:
        self.marks.setdefault(step, time.perf_counter())

    def timeline(self) -> str:
        """ms from arrival to each step seen so far: where the server's time to first token goes."""
        steps = ", ".join(f"{k} +{(self.marks[k] - self.arrived) * 1e3:.3f}" for k in TIMELINE if k in self.marks)
        # perf_counter() is CLOCK_MONOTONIC, shared by the processes of a machine: a client on it can place these
        return f"arrived @{self.arrived:.6f}, {steps}"

    def cancel(self) -> None:
        self.cancelled.set()
        self.flushed.set()   # a job whose stream is gone must not hold the engine thread

    def close_first_chunk(self) -> None:
        """Give back what the direct first-chunk write holds (its socket dup); any thread, any number of times."""
        if self.first_chunk is not None:
            self.first_chunk.close()

    def emit(self, kind: str, value) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody listens any more
            self.cancel()


class Worker:
    def __init__(self, llm, metrics: Metrics, max_queue: int, log=None):
        self.llm, self.metrics, self.max_queue, self.log = llm, metrics, max_queue, log
        self._jobs: deque[Job] = deque()
        self._lock = threading.Lock()   # the queue and _closed
        self._bell = Latch()   # set to wake the engine thread, which sleeps in take(): a ring before it sleeps is
        #                        not lost, several rings are one
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="cugraphllm-engine", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Finish the job in flight and whatever is queued, then stop the thread."""
        with self._lock:
            self._closed = True
        self._bell.set()
        self._thread.join(timeout)

    @property
    def waiting(self) -> int:
        return len(self._jobs)

    def submit(self, job: Job, hold: bool = False) -> None:
        """Queue `job`; a full queue is a 503 with Retry-After. hold: the engine thread does not start it (nor is
        woken for it) before release(job)."""
        job.ready = not hold
        with self._lock:
            if self._closed:
                raise ApiError(503, "the server is shutting down", code="shutting_down", kind="server_error")
            if len(self._jobs) >= self.max_queue:
                raise ApiError(503, f"the server is busy: {len(self._jobs)} requests are waiting (--max-queue "
                                    f"{self.max_queue}); retry later", code="queue_full", kind="server_error",
                               headers={"Retry-After": "1"})
            self._jobs.append(job)
            self.metrics.add(waiting=1)
        if job.ready:
            self._bell.set()

    def release(self, job: Job) -> None:
        """Let the engine thread start a held job (FIFO: not before the jobs queued ahead of it)."""
        job.ready = True
        self._bell.set()

    def discard(self, job: Job) -> None:
        """Cancel `job`; one still waiting leaves the queue now (its client is gone: it holds no place)."""
        job.cancel()
        job.close_first_chunk()   # a running job's too: its socket need not outlive the client
        job.ready = True
        with self._lock:
            queued = job in self._jobs
            if queued:
                self._jobs.remove(job)
                self.metrics.add(waiting=-1)
                self.metrics.finish("abort")
        if queued:
            self._bell.set()   # it may have held the head of the queue

    def _loop(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            if job.cancelled.is_set():
                job.close_first_chunk()
                self.metrics.finish("abort")
                continue
            self.metrics.add(running=1)
            try:
                self._generate(job)
            except CugraphError as err:  # e.g. the prompt does not fit: the app answers 400
                self.metrics.finish("error")
                job.emit("error", err)
            except Exception as err:  # noqa: BLE001 - a bug must not kill the engine thread
                traceback.print_exc()
                self.metrics.finish("error")
                job.emit("error", err)
            finally:
                job.close_first_chunk()
                self.metrics.add(running=-1)

    def _next(self) -> Job | None:
        """The next job to run, once the head of the queue may start; None once closed with nothing queued."""
        while True:
            with self._lock:
                if self._head_ready() or (self._closed and self._jobs):
                    self.metrics.add(waiting=-1)
                    return self._jobs.popleft()
                if self._closed:
                    return None
            self._bell.take(HOLD_LIMIT)   # a held job is queued without a ring: look now and then

    def _head_ready(self) -> bool:
        """The first job may start: released, or held past HOLD_LIMIT (a release that never comes, whatever the
        reason, must not stall the queue: starting it is what an unheld job does)."""
        return bool(self._jobs) and (self._jobs[0].ready or time.perf_counter() - self._jobs[0].arrived > HOLD_LIMIT)

    def _generate(self, job: Job) -> None:
        req, llm, m = job.req, self.llm, self.metrics
        job.mark("started")
        started = job.marks["started"]
        clock = _TokenClock(job, m)
        max_new = req.max_tokens or llm.engine.max_seq_len
        chunks = llm._run(req.ids, llm.params(**req.sampling), max_new, req.stop, on_token=clock.on_token)
        stats = llm.last
        cached = stats.cached_tokens
        try:
            for text in chunks:
                if "handed" in job.marks:
                    job.emit("text", text)
                    continue
                job.mark("handed")
                if job.first_chunk is None or not job.first_chunk(text):   # else written by this thread
                    job.emit("text", text)
                    if job.req.stream:
                        job.flushed.wait(FLUSH_WAIT)
                clock.observe_first()
        finally:
            chunks.close()
            clock.observe_first()
        reason = "abort" if stats.finish_reason == "interrupted" else stats.finish_reason
        out = Outcome(reason, len(req.ids), stats.new_tokens, cached,
                      stats.first_token_s + started - job.arrived, started - job.arrived)
        m.add(prompt_tokens=len(req.ids), cached_tokens=cached, generation_tokens=stats.new_tokens)
        m.finish(reason)
        job.emit("done", out)
        if self.log is not None:
            self.log(f"[{req.id[-8:]}] {req.kind}: prompt {len(req.ids)} tokens ({cached} cached), {stats.new_tokens} "
                     f"new; TTFT {out.ttft_s * 1e3:.1f} ms (queued {out.queue_s * 1e3:.1f} ms); "
                     f"{stats.decode_tokens_per_s:.1f} tokens/s; {clock}{_gpu_prefill(llm.engine)}; "
                     f"finish {reason}; {f'first chunk by the {job.first_by}; ' if req.stream else ''}"
                     f"timeline ms: {job.timeline()}")


def _gpu_prefill(engine) -> str:
    """The last prefill's GPU time (CUDA events; the cuda engine only): the engine thread's wall time to its first
    token minus this is host time, to set beside the library's."""
    times = engine.last_gpu_times() if hasattr(engine, "last_gpu_times") else None
    return f"; gpu prefill {times[0]:.3f} ms" if times else ""


class _TokenClock:
    """on_token of a job's generation: the TTFT and inter-token metrics, the job's "token" mark, the longest gap
    between tokens (for the log line: a stall's size and place), and the job's cancellation."""

    def __init__(self, job: Job, metrics: Metrics):
        self.job, self.metrics = job, metrics
        self.prev, self.tokens, self.longest, self.longest_before, self.observed = 0.0, 0, 0.0, 0, False

    def on_token(self, _token) -> bool:
        now = time.perf_counter()
        if self.tokens:
            gap = now - self.prev
            self.metrics.observe(itl=gap)
            if gap > self.longest:
                self.longest, self.longest_before = gap, self.tokens
        else:
            self.job.marks["token"] = now   # its TTFT goes to the metrics once its text is out (observe_first)
        self.prev, self.tokens = now, self.tokens + 1
        return self.job.cancelled.is_set()

    def observe_first(self) -> None:
        """The TTFT into the metrics (once): after the first text is handed over, off the first token's path."""
        if self.tokens and not self.observed:
            self.observed = True
            self.metrics.observe(ttft=self.job.marks["token"] - self.job.arrived)

    def __str__(self) -> str:
        return f"longest gap {self.longest * 1e3:.2f} ms (before token {self.longest_before})"
