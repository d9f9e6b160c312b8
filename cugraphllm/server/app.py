"""The Starlette application: OpenAI routes, SSE streaming, API key, errors as {"error": {...}}, /health, /metrics.

Routes: GET /v1/models (and /v1/models/{id}), POST /v1/completions, POST /v1/chat/completions, GET /health,
GET /metrics. Tokenization and validation run on the event loop; generation runs on the engine thread (worker.py).
"""
from __future__ import annotations

import asyncio
import hmac
import json
import time
from functools import partial

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..chat import dialog_tokens
from ..errors import ContextLimitError, CugraphError
from . import fastpath
from . import protocol as P
from .metrics import Metrics
from .sse import EventStream
from .worker import Job, Worker

MAX_BODY = 8 << 20   # bytes of a request body
LONG_TEXT = 1 << 16  # characters of prompt text above which tokenization leaves the event loop


def _error(err: P.ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


class Server:
    """State shared by the routes: the LLM (used only by the worker), its name, the key, the metrics."""

    def __init__(self, llm, name: str, api_key: str | None = None, max_queue: int = 64, log=None):
        self.llm, self.name, self.api_key = llm, name, api_key
        self.metrics = Metrics(name)
        self.worker = Worker(llm, self.metrics, max_queue, log)
        self.created = int(time.time())

    # ---- helpers ------------------------------------------------------------------------------------------------
    def _auth(self, request: Request) -> None:
        if self.api_key is None:
            return
        got = request.headers.get("authorization", "")
        if not hmac.compare_digest(got.encode(), f"Bearer {self.api_key}".encode()):
            raise P.ApiError(401, "invalid or missing API key (send Authorization: Bearer <key>)",
                             code="invalid_api_key")

    async def _body(self, request: Request):
        """The decoded JSON body, read from the ASGI receive itself (Starlette's Request.body and headers wrap it
        in a stream generator and a Headers object: more Python on the request's path, which runs cold)."""
        for name, value in request.scope["headers"]:
            if name == b"content-length" and int(value or 0) > MAX_BODY:
                raise P.ApiError(413, f"the request body exceeds {MAX_BODY} bytes", code="request_too_large")
        raw, more = b"", True
        while more:
            message = await request.receive()
            if message["type"] != "http.request":   # the client left before its body was in
                raise ClientDisconnect()
            raw += message.get("body", b"")
            more = message.get("more_body", False)
            if len(raw) > MAX_BODY:
                raise P.ApiError(413, f"the request body exceeds {MAX_BODY} bytes", code="request_too_large")
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as err:  # bad JSON, bad UTF-8, absurd nesting
            raise P.ApiError(400, f"the body is not valid JSON: {' '.join(str(err).split())[:200]}",
                             code="invalid_json") from None

    def _ids(self, req: P.GenRequest) -> list[int]:
        tok, context = self.llm.tokenizer, self.llm.engine.max_seq_len
        param = "prompt" if req.kind == "completion" else "messages"
        try:
            if req.kind == "chat":
                ids = dialog_tokens(tok, req.prompt)
            else:
                ids = tok.encode(req.prompt, bos=True) if isinstance(req.prompt, str) else req.prompt
        except CugraphError as err:
            raise P.ApiError(400, f"{param}: {' '.join(str(err).split())}", param=param) from None
        if len(ids) >= context:
            raise P.ApiError(400, f"{param}: {len(ids)} prompt tokens do not fit the context of {context} tokens "
                                  f"(at most {context - 1}, leaving room for one new token)", param=param,
                             code="context_length_exceeded")
        return ids

    # ---- routes -------------------------------------------------------------------------------------------------
    async def generate(self, request: Request, kind: str, route: str) -> Response:
        # TTFT counts HTTP parsing and tokenization too: from the request's first bytes where uvicorn says when
        handler = time.perf_counter()
        job, arrived = None, fastpath.arrived(request.scope) or handler
        try:
            self._auth(request)
            body = await self._body(request)
            read = time.perf_counter()
            req = P.parse(body, kind, self.name, self.llm.tokenizer.vocab_size)
            parsed = time.perf_counter()
            # a long text is tokenized off the loop (other streams keep flowing); a short one here (no thread hop)
            chars = len(req.prompt) if isinstance(req.prompt, str) else sum(
                len(m["content"]) for m in req.prompt if isinstance(m, dict))
            req.ids = await asyncio.to_thread(self._ids, req) if chars > LONG_TEXT else self._ids(req)
            tokenized = time.perf_counter()
            job = Job(req, asyncio.get_running_loop(), arrived=arrived)
            job.marks.update(handler=handler, read=read, parsed=parsed, tokenized=tokenized)
            # a stream holds its place in the queue; EventStream releases it once its response is set up
            self.worker.submit(job, hold=req.stream)
            job.mark("submitted")
            if req.stream:
                self.metrics.request(route, 200)
                return EventStream(self, job)
            first = event, value = await self._next(request, job)
            if event == "error":
                raise value
            if event == "gone":
                return Response(status_code=499)   # the client left while queued; nobody reads this
        except P.ApiError as err:
            self.metrics.request(route, err.status)
            return _error(err)
        except ContextLimitError as err:
            self.metrics.request(route, 400)
            return _error(P.ApiError(400, str(err), code="context_length_exceeded"))
        except asyncio.CancelledError:  # the client left while queued or before the first token
            if job is not None:
                self.worker.discard(job)
            raise
        self.metrics.request(route, 200)
        try:
            text, outcome = await self._collect(request, job, first)
        except Exception as err:  # noqa: BLE001 - the engine failed mid-generation: an error body, not a traceback
            return _error(P.ApiError(500, " ".join(str(err).split()) or type(err).__name__, kind="server_error"))
        finally:
            job.cancel()
        if outcome is None:
            return Response(status_code=499)   # the client is gone; nobody reads this
        usage = P.usage(outcome.prompt_tokens, outcome.completion_tokens, outcome.cached_tokens)
        return JSONResponse(P.envelope(req, [P.choice(req, text, P.finish_reason(outcome.finish_reason))], usage))

    async def _next(self, request: Request, job: Job):
        """The job's next event, or ("gone", None) once the client disconnects (the job is then cancelled)."""
        get = asyncio.ensure_future(job.events.get())
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            done, _ = await asyncio.wait({get, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not get.done():
                get.cancel()
        if get in done:
            return get.result()
        self.worker.discard(job)
        return "gone", None

    async def _collect(self, request: Request, job: Job, first):
        parts, (event, value) = [], first
        while True:
            if event == "text":
                parts.append(value)
            elif event == "done":
                return "".join(parts), value
            elif event == "gone":
                return None, None
            elif event == "error":
                raise value
            event, value = await self._next(request, job)

    def _release(self, job: Job) -> None:   # once
        if "released" not in job.marks:
            self.worker.release(job)
            job.mark("released")

    async def models(self, request: Request) -> Response:
        try:
            self._auth(request)
        except P.ApiError as err:
            return _error(err)
        card = {"id": self.name, "object": "model", "created": self.created, "owned_by": "cugraphllm",
                "max_model_len": self.llm.engine.max_seq_len}
        if "model" in request.path_params:
            if request.path_params["model"] != self.name:
                return _error(P.ApiError(404, f"the model {request.path_params['model']!r:.80} does not exist",
                                         param="model", code="model_not_found"))
            return JSONResponse(card)
        return JSONResponse({"object": "list", "data": [card]})

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": self.name, "queue_length": self.worker.waiting})

    async def prometheus(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.text(), media_type="text/plain; version=0.0.4")


async def _disconnected(request: Request) -> None:
    """Returns once the client has disconnected (the body has been read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _http_error(request: Request, exc: HTTPException) -> Response:
    kind = "not_found" if exc.status_code == 404 else "method_not_allowed" if exc.status_code == 405 else None
    return _error(P.ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", code=kind))


def create_app(server: Server):
    """The ASGI app: fastpath.Dispatch in front of the Starlette application."""
    return fastpath.Dispatch(server, _starlette(server))


def _starlette(server: Server) -> Starlette:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        server.worker.start()
        try:
            yield
        finally:   # uvicorn has let the streams in flight finish (SIGTERM): the queue is empty
            await asyncio.get_running_loop().run_in_executor(None, server.worker.close)

    routes = [Route(path, partial(server.generate, kind=kind, route=path), methods=["POST"])
              for path, kind in fastpath.ROUTES.items()]   # what fastpath.Dispatch sends past the router
    routes += [Route("/v1/models", server.models, methods=["GET"]),
               Route("/v1/models/{model:path}", server.models, methods=["GET"]),
               Route("/health", server.health, methods=["GET"]),
               Route("/metrics", server.prometheus, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error})
