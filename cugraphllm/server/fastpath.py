"""The generation routes' short cuts: POST /v1/completions and /v1/chat/completions straight to their handler
(Dispatch), a stream's headers written by the loop straight to the socket (write_head), and its first text chunk
written by the engine thread straight to the client's socket.

Starlette's middleware stack, router and endpoint wrapper cost ~50 us a request on a host whose caches went cold
while it waited (measured between uvicorn's parse and the handler on the 2-vCPU CPU machine): Dispatch hands
the two POST routes to Server.generate with a bare Request, and everything else (other routes and methods, the
lifespan) to the Starlette app. An exception the handler lets through (a bug: it answers its own errors) reaches
uvicorn, which answers 500 Internal Server Error as Starlette's ServerErrorMiddleware would, and closes the
connection.

Through the event loop, the first token's chunk costs a thread hop: the engine thread hands the text over
(call_soon_threadsafe), the loop wakes from its poll, resumes the stream's task, formats the chunk and writes it
(0.2-0.3 ms of TTFT on the H200's host, 2026-11-30). Here the loop prepares everything before the prefill starts:
it gives the job a FirstChunk holding a dup() of the connection's socket, the chunk template and, where the
response has not begun, its start (the bytes uvicorn's send would write for the stream's headers) and opening
chunks (a chat's role chunk); the engine thread then formats the text and os.write()s headers, opening and chunk
in one write, with the chunked-encoding framing uvicorn would use, and sets the cycle's state as uvicorn's sends
would have left it. So the loop writes nothing between the request and its first token (the client is woken
once), and its work before the release is only the stream's set-up. The dup is owned by the job (closed after
that write, or when the job ends or leaves the queue), so a connection closed meanwhile never lets the write
reach a reused descriptor. Anything the kernel does not take at once goes to the transport through the loop,
ahead of the later chunks; a write it does not take at all leaves the response to the loop, which then writes the
headers first (sse.EventStream). Where the conditions do not hold (no response cycle exposed: uvicorn's h11
protocol; TLS; data still buffered; keep-alive off or an access log, where uvicorn writes other headers), the
headers go first through the loop and the chunk the same way or through the loop as the others do.

A stream's response start (write_head) is the bytes uvicorn's send would write, os.write()n by the loop with the
cycle's state set as that send sets it: no regex per header, and the GIL let go during the syscall, which on
loopback wakes the client (uvloop's write holds the GIL through it). Where uvicorn would write something else
(keep-alive off, an access log, a started response) or the write cannot go straight (TLS, data buffered, writes
paused), uvicorn's send does it.

The response cycle reaches the app through scope["extensions"] (CycleProtocol, passed to uvicorn as its HTTP
protocol class), as a weak reference, with the time the request's parsing began (arrived(): the timeline's zero).
"""
from __future__ import annotations

import os
import time
import weakref

from starlette.requests import Request

EXT = "cugraphllm.cycle"
ENABLED = True   # scripts/serve_variant.py's nodirect turns it off: every chunk goes through the loop
HEAD = True      # scripts/serve_variant.py's uvhead turns it off: a stream's headers go through uvicorn's send
DEFER_HEAD = True   # scripts/serve_variant.py's loophead turns it off: the loop writes the headers before the prefill
DISPATCH = True   # scripts/serve_variant.py's starlette turns it off: every route through Starlette's router
ROUTES = {"/v1/completions": "completion", "/v1/chat/completions": "chat"}


class Dispatch:
    """The ASGI app uvicorn runs: the generation routes' POSTs to server.generate(request, kind, path), the rest
    to `app` (the Starlette application with every route)."""

    def __init__(self, server, app):
        self.server, self.app = server, app

    async def __call__(self, scope, receive, send) -> None:
        kind = ROUTES.get(scope.get("path")) if DISPATCH and scope["type"] == "http" else None
        if kind is None or scope["method"] != "POST" or scope.get("root_path"):
            return await self.app(scope, receive, send)
        response = await self.server.generate(Request(scope, receive, send), kind, scope["path"])
        await response(scope, receive, send)


def protocol_class(http: str):
    """What uvicorn.Config(http=...) gets: for httptools, its protocol with the response cycle in each request's
    scope; otherwise the name as is (uvicorn's own protocol: no direct write)."""
    if http != "httptools":
        return http
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class CycleProtocol(HttpToolsProtocol):
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.scope["extensions"] = {EXT: {"arrived": time.perf_counter()}}   # its parsing starts

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            cycle = self.cycle   # this request's (not a previous one's, kept on an upgrade)
            if cycle is not None and cycle.scope is self.scope:
                self.scope["extensions"][EXT]["cycle"] = weakref.ref(cycle)

    return CycleProtocol


class FirstChunk:
    """job.first_chunk: called once by the engine thread with the first text; True once the chunk is written
    (then the loop never sees that text), False when the loop must write it. close() may come from any thread.
    prefix: what goes out in the same write before the chunk where the response has not begun (its headers and
    a chat's role chunk, framed), else b""."""

    def __init__(self, job, cycle, fd: int, chunk, prefix: bytes = b""):
        self.job, self.cycle, self.fd, self.chunk, self.prefix = job, cycle, fd, chunk, prefix

    def __call__(self, text: str) -> bool:
        fd = self.__dict__.pop("fd", None)   # atomic under the GIL: one writer, and close() cannot race it
        if fd is None:
            return False
        try:
            data = self.prefix + _frame(self.chunk(text))
            sending = time.perf_counter()
            try:
                n = os.write(fd, data)   # non-blocking: the dup shares the socket's file status flags
            except OSError:   # EAGAIN (nothing taken), or the client is gone (the loop's watch ends the stream)
                return False
        finally:
            os.close(fd)
        if self.prefix:   # the response has begun: uvicorn's sends of the later chunks go on from here
            _started(self.cycle)
        if n < len(data):   # the rest before any later chunk: those too are callbacks queued on the loop
            try:
                self.job.loop.call_soon_threadsafe(_write_rest, self.cycle, data[n:])
            except RuntimeError:   # the loop is closed: nobody reads the rest
                pass
        self.job.marks.setdefault("sending", sending)
        self.job.mark("written")
        self.job.first_by = "engine thread"
        os.sched_yield()   # a client woken onto this CPU reads the chunk now, not after this thread's next launch
        return True

    def close(self) -> None:
        fd = self.__dict__.pop("fd", None)
        if fd is not None:
            os.close(fd)


def _frame(text: str) -> bytes:
    """uvicorn's chunked framing of one body message."""
    body = text.encode()
    return b"%x\r\n%b\r\n" % (len(body), body)


def _head(cycle, headers) -> bytes:
    """The bytes uvicorn's send writes for a 200 start with `headers`, chunked: its default headers first."""
    lines = [b"%s: %s\r\n" % (name.lower(), value) for name, value in [*cycle.default_headers, *headers]]
    return b"".join([b"HTTP/1.1 200 OK\r\n", *lines, b"transfer-encoding: chunked\r\n\r\n"])


def _started(cycle) -> None:
    """The cycle's state as uvicorn's send of a chunked response start leaves it."""
    cycle.response_started, cycle.waiting_for_100_continue = True, False
    cycle.chunked_encoding, cycle.expected_content_length = True, 0


def _may_start(cycle) -> bool:
    """A response start may be written here instead of by uvicorn's send: it would write just _head's bytes."""
    return not (cycle is None or cycle.response_started or cycle.disconnected or not cycle.keep_alive
                or cycle.access_log or cycle.flow.write_paused or cycle.scope.get("method") != "POST")


def defer_head(scope) -> bool:
    """A stream's headers may wait for its first chunk, in one write by the engine thread (loop thread)."""
    return _may_defer(_cycle(scope))


def _may_defer(cycle) -> bool:
    return ENABLED and HEAD and DEFER_HEAD and _may_start(cycle)


def write_head(scope, headers) -> bool:
    """A stream's response start (200, `headers` as (name, value) bytes pairs, chunked) written straight to the
    socket: the bytes uvicorn's send would write (its default headers first, then ours, then its
    transfer-encoding), with its cycle's state set as its send sets it. Loop thread only. uvicorn's send runs a
    regex per header and its transport's write holds the GIL through the syscall, which wakes the client (~0.1
    ms on the 2-vCPU machine); os.write lets the GIL go. False where the conditions do not hold (no cycle exposed,
    a response started, keep-alive off, an access log, TLS, data buffered, writes paused): the caller sends the
    start through uvicorn."""
    cycle = _cycle(scope) if HEAD else None
    if not _may_start(cycle):
        return False
    transport = _plain_transport(cycle)
    if transport is None:
        return False
    try:
        fd = transport.get_extra_info("socket").fileno()
    except (AttributeError, OSError, ValueError):
        return False
    data = _head(cycle, headers)
    _started(cycle)
    try:
        n = os.write(fd, data)   # non-blocking socket: whatever the kernel takes now
    except OSError:   # EAGAIN, or the client is gone: the transport writes it (or notices the loss) as always
        n = 0
    if n < len(data):
        transport.write(data[n:])
    return True


def _ext(scope) -> dict:
    """What CycleProtocol put in the request's scope (empty under another protocol)."""
    return (scope.get("extensions") or {}).get(EXT, {})


def _cycle(scope):
    """uvicorn's request cycle of `scope` (weakly held by CycleProtocol), or None."""
    ref = _ext(scope).get("cycle")
    return ref() if ref is not None else None


def _plain_transport(cycle):
    """The cycle's transport where bytes may go to its socket directly: open, nothing buffered, no TLS."""
    transport = cycle.transport
    if (transport.is_closing() or transport.get_write_buffer_size()
            or transport.get_extra_info("sslcontext") is not None):
        return None
    return transport


def _write_rest(cycle, data: bytes) -> None:
    if not cycle.disconnected and not cycle.transport.is_closing():
        cycle.transport.write(data)


def arrived(scope) -> float | None:
    """perf_counter() when uvicorn began parsing the request (CycleProtocol), or None."""
    return _ext(scope).get("arrived")


def first_chunk(scope, job, chunk, headers=(), opening=()) -> FirstChunk | None:
    """A FirstChunk for `job` (loop thread), or None where the chunk must go through the loop. chunk(text) -> the
    SSE text of a chunk. A stream whose headers are out: the chunk alone. One whose headers wait (defer_head):
    `headers` (the start's, as write_head takes them) and the `opening` SSE texts go out with the chunk."""
    cycle = _cycle(scope) if ENABLED else None
    if cycle is None or cycle.response_complete or cycle.disconnected or cycle.flow.write_paused:
        return None
    if cycle.response_started:
        if cycle.chunked_encoding is not True:
            return None
        prefix = b""
    elif _may_defer(cycle):
        prefix = _head(cycle, headers) + b"".join(_frame(text) for text in opening)
    else:
        return None
    transport = _plain_transport(cycle)
    if transport is None:
        return None
    try:
        fd = os.dup(transport.get_extra_info("socket").fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return FirstChunk(job, cycle, fd, chunk, prefix)
