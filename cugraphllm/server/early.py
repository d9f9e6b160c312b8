"""A stream request started as its last byte is parsed: from uvicorn's protocol callback (fastpath's
CycleProtocol.on_message_complete), inside the loop's read of the socket, before uvicorn's ASGI task for it runs.

The ordinary path (app.Server.generate) starts a request's job only after the task has been scheduled and run,
the app dispatched, the body received through ASGI and the stream's response set up: ~0.2-0.3 ms of Python on the
loop between the request's last byte and the engine thread's wake-up on the H200's host (2026-11-30 timelines:
parse -> handler 0.12-0.14 ms, body read 0.05, the stream's set-up to the release 0.1). Here the same checks
(key, JSON, validation, tokenization, the queue) run in that callback and the job goes to the engine at once with
its first-chunk writer (headers deferred); the task then finds the job (fastpath.early_job) and only streams its
events. Anything unusual is left to the ordinary path, which answers it as always: a request that is not a stream,
fails a check (it will again, with the error body), has a long prompt (tokenized off the loop), is pipelined behind
a response still in flight, or a full queue (503 there). Nothing raised here reaches uvicorn.
"""
from __future__ import annotations

import json
import time

from . import fastpath
from . import protocol as P
from .worker import Job

ENABLED = True   # scripts/serve_variant.py's noearly turns it off


def start(server, scope, body: bytes, loop) -> None:
    """Queue scope's request as an early job if it is a plain stream; else leave it (loop thread)."""
    from .app import LONG_TEXT, _EventStream, _text_chunks, stream_opening

    kind = fastpath.ROUTES.get(scope.get("path"))
    if not ENABLED or kind is None or scope.get("method") != "POST" or scope.get("root_path"):
        return
    handler = time.perf_counter()
    try:
        server.check_key(scope["headers"])
        req = P.parse(json.loads(body), kind, server.name, server.llm.tokenizer.vocab_size)
        parsed = time.perf_counter()
        chars = len(req.prompt) if isinstance(req.prompt, str) else sum(
            len(m["content"]) for m in req.prompt if isinstance(m, dict))
        if not req.stream or chars > LONG_TEXT:
            return
        req.ids = server._ids(req)
    except Exception:  # noqa: BLE001 - the ordinary path answers it (the same error, in OpenAI's shape)
        return
    job = Job(req, loop, arrived=fastpath.arrived(scope) or handler)
    job.marks.update(handler=handler, read=handler, parsed=parsed, tokenized=time.perf_counter())
    job.first_chunk = fastpath.first_chunk(scope, job, _text_chunks(req), _EventStream.raw_headers,
                                           stream_opening(req))
    job.deferred = job.first_chunk is not None   # else the task writes the headers first, as the ordinary path
    try:
        server.worker.submit(job)
    except P.ApiError:   # a full queue or shutting down: the ordinary path answers 503
        job.close_first_chunk()
        return
    job.mark("submitted")
    job.mark("released")
    fastpath.set_early_job(scope, job)
