"""A stream's server-sent events: the SSE text of the OpenAI chunks (one JSON encoder, each token's chunk built
around a pre-dumped envelope) and EventStream, the ASGI response that writes a stream's headers and chunks as its
job's events come (the first chunk, with the headers, by the engine thread where fastpath.py can)."""
from __future__ import annotations

import asyncio
import json

from starlette.responses import StreamingResponse

from . import fastpath
from . import protocol as P
from .worker import Job

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))   # json.dumps(**these) builds one per call
json_text = _ENCODER.encode


def sse(obj) -> str:
    return f"data: {json_text(obj)}\n\n"


def text_chunks(req: P.GenRequest):
    """text -> the SSE chunk of a stream's text (the bytes sse(envelope(...)) gives): the envelope is dumped once
    per request around a placeholder, so that each token dumps only its text (on the first token's path)."""
    head, tail = sse(P.envelope(req, [P.choice(req, "\0", None)], None)).split(json_text("\0"))
    return lambda text: head + json_text(text) + tail


class EventStream:
    """The SSE response of a stream, written by hand rather than by StreamingResponse's anyio task group (whose
    setup cost ~0.3 ms of TTFT): the headers (StreamingResponse's, built once), then each chunk as the job's
    events come; a task watches for the client leaving, which cancels the job and ends the response."""

    raw_headers = StreamingResponse((), media_type="text/event-stream",
                                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}).raw_headers

    def __init__(self, server, job: Job):
        self.server, self.job = server, job

    async def _watch(self, receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.job.cancel()
        self.job.events.put_nowait(("gone", None))

    async def __call__(self, scope, receive, send) -> None:
        job = self.job
        # OpenAI's first chat chunk carries the role. Where the headers can wait (fastpath.defer_head), the engine
        # thread writes them, this and the first text in one write once the first token is out: the loop's work
        # before the release is then only the stream's set-up, and the client wakes once
        opening = [sse(P.envelope(job.req, [P.choice(job.req, None, None, first=True)], None))] \
            if job.req.kind == "chat" else []
        deferred = fastpath.defer_head(scope)
        chunks = self._events(scope, opening)
        watch = asyncio.ensure_future(self._watch(receive))
        try:
            if not deferred:
                await self._open(scope, send, opening)
            async for chunk in chunks:
                if deferred:   # the first chunk this loop writes: the response starts here unless it began
                    deferred = False
                    if job.first_by != "engine thread":
                        await self._open(scope, send, opening)
                await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})
            if deferred:   # the stream ended with nothing written (the client left): nothing more to send
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watch.cancel()
            await chunks.aclose()
            self.server.worker.discard(job)

    async def _open(self, scope, send, opening) -> None:
        """The response start (headers) and the opening chunks, through the loop."""
        if not fastpath.write_head(scope, self.raw_headers):
            await send({"type": "http.response.start", "status": 200, "headers": list(self.raw_headers)})
        for text in opening:
            await send({"type": "http.response.body", "body": text.encode(), "more_body": True})

    async def _events(self, scope, opening):
        """SSE chunks of the job's events (__call__ writes them; ("gone", None): the client left). The first
        text chunk is written by the engine thread where it can be (fastpath.py), with the headers and `opening`
        where the response has not begun: the loop then never sees it."""
        job = self.job
        req = job.req
        chunk = text_chunks(req)
        # the writer before the release: a fast prefill (the CPU backend's small models) must not find it unset.
        # (A stream whose response never gets here is started by Worker._next's HOLD_LIMIT.)
        job.first_chunk = fastpath.first_chunk(scope, job, chunk, self.raw_headers, opening)
        self.server._release(job)
        event, value = await job.events.get()
        while True:
            if event == "text":
                text = chunk(value)
                job.mark("sending")
                yield text
                job.mark("written")   # resumed: the chunk is written
                job.flushed.set()
            elif event == "error":
                yield sse(P.ApiError(500, " ".join(str(value).split()), kind="server_error").body())
                break
            elif event == "done":
                yield sse(P.envelope(req, [P.choice(req, None, P.finish_reason(value.finish_reason))], None))
                if req.include_usage:
                    usage = P.usage(value.prompt_tokens, value.completion_tokens, value.cached_tokens)
                    yield sse(P.envelope(req, [], usage))
                break
            elif event == "gone":
                return
            event, value = await job.events.get()
        yield "data: [DONE]\n\n"
