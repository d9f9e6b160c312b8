"""The server's short cuts (cugraphllm/server/fastpath.py): the first chunk written by the engine thread is the
byte string uvicorn would have written for it, whole, cut by a full socket buffer (the rest through the loop,
before anything else) or not taken at all (the loop writes it); the socket's dup never outlives the job; no direct
write where uvicorn's state says the connection is not a plain chunked response; and through a real server the
first chunk of a stream is the engine thread's where httptools runs, while the other routes still reach
Starlette."""
import asyncio
import json
import os
import random
import re
import socket
import threading
import weakref

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from cugraphllm.server import app as A  # noqa: E402
from cugraphllm.server import fastpath  # noqa: E402
from cugraphllm.server import sse as S  # noqa: E402
from cugraphllm.server.protocol import GenRequest  # noqa: E402
from cugraphllm.server.worker import Job  # noqa: E402
from server_helpers import KEY, ServerProc, text_of  # noqa: E402


class Transport:
    """What fastpath reads of a transport, over a real socket; write() records what the loop would write."""

    def __init__(self, sock):
        self.sock, self.written, self.buffered, self.closing = sock, [], 0, False

    def get_extra_info(self, name):
        return {"socket": self.sock}.get(name)

    def get_write_buffer_size(self):
        return self.buffered

    def is_closing(self):
        return self.closing

    def write(self, data):
        self.written.append(bytes(data))


DEFAULT_HEADERS = [(b"date", b"Mon, 30 Nov 2026 08:00:00 GMT"), (b"server", b"uvicorn")]
HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]


class Cycle:
    """The fields of uvicorn's RequestResponseCycle that fastpath reads and sets, in the state of a started
    stream (response_started=False: one whose headers wait for its first chunk)."""

    def __init__(self, transport):
        self.transport, self.flow = transport, type("Flow", (), {"write_paused": False})()
        self.response_started, self.response_complete, self.disconnected = True, False, False
        self.chunked_encoding, self.keep_alive, self.access_log = True, True, False
        self.scope, self.default_headers = {"method": "POST", "type": "http"}, list(DEFAULT_HEADERS)
        self.waiting_for_100_continue, self.expected_content_length = False, 0


def _text(rng, n):
    """Awkward text: JSON escapes, non-ASCII, a line separator, quotes."""
    pieces = ["é", "\n", '"', "\\", "\u2028", "日本", " the", "\t", "😀", "x"]
    return "".join(rng.choice(pieces) for _ in range(n))


def _uvicorn_bytes(*bodies: bytes, start: bool = False) -> tuple[bytes, object]:
    """What uvicorn's own cycle writes for body messages of a chunked response, after its start (HEADERS, on
    DEFAULT_HEADERS) where `start`; and that cycle, in the state its sends leave."""
    from uvicorn.protocols.http.flow_control import FlowControl
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

    out = Transport(None)
    out.pause_reading = out.resume_reading = lambda: None
    cycle = RequestResponseCycle(scope={"method": "POST", "type": "http"}, transport=out, flow=FlowControl(out),
                                 logger=None, access_logger=None, access_log=False,
                                 default_headers=list(DEFAULT_HEADERS) if start else [],
                                 message_event=asyncio.Event(), expect_100_continue=False, keep_alive=True,
                                 on_response=lambda: None)
    messages = [{"type": "http.response.body", "body": b, "more_body": True} for b in bodies]
    if start:
        messages.insert(0, {"type": "http.response.start", "status": 200, "headers": HEADERS})
    else:
        cycle.response_started, cycle.chunked_encoding = True, True

    async def send_all():
        for m in messages:
            await cycle.send(m)
    asyncio.run(send_all())
    return b"".join(out.written), cycle


def _uvicorn_frame(body: bytes) -> bytes:
    """What uvicorn's own cycle writes for one body message of a chunked response."""
    return _uvicorn_bytes(body)[0]


def _dups(sock) -> int:
    """Descriptors of this process other than sock's own that refer to sock's socket (fastpath's dup)."""
    ident, n = os.fstat(sock.fileno()), 0
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            st = os.fstat(fd)
        except OSError:   # the listing's own descriptor, or one closed meanwhile
            continue
        n += fd != sock.fileno() and (st.st_dev, st.st_ino) == (ident.st_dev, ident.st_ino)
    return n


@pytest.fixture
def pair():
    pytest.importorskip("httptools")  # the direct first-chunk write is httptools-only (fastpath.FirstChunk)
    a, b = socket.socketpair()
    a.setblocking(False)
    yield a, b
    a.close()
    b.close()


def _setup(sock, kind="completion", **cycle_state):
    loop = asyncio.new_event_loop()
    req = GenRequest(kind=kind, model="m", stream=True, id="cmpl-" + os.urandom(8).hex(), created=1234)
    job = Job(req, loop)
    cycle = Cycle(Transport(sock))
    for k, v in cycle_state.items():
        setattr(cycle, k, v)
    scope = {"extensions": {fastpath.EXT: {"cycle": weakref.ref(cycle)}}}
    return loop, job, cycle, scope, S.text_chunks(req)


@pytest.mark.parametrize("kind", ["completion", "chat"])
def test_first_chunk_is_uvicorns_frame_written_by_another_thread(pair, kind):
    a, b = pair
    rng = random.Random(5)
    loop, job, cycle, scope, chunk = _setup(a, kind)
    try:
        first = fastpath.first_chunk(scope, job, chunk)
        assert first is not None and _dups(a) == 1
        text = _text(rng, 37)
        got = [None]
        worker = threading.Thread(target=lambda: got.__setitem__(0, first(text)))
        worker.start()
        worker.join()
        want = _uvicorn_frame(chunk(text).encode())
        assert got[0] is True and b.recv(1 << 16) == want and cycle.transport.written == []
        assert json.loads(want.split(b"\r\n")[1][6:])["choices"][0]["text" if kind == "completion" else "delta"]
        assert _dups(a) == 0 and job.first_by == "engine thread"
        assert job.marks["sending"] <= job.marks["written"]
        assert first(text) is False   # once only
        first.close()
        first.close()
    finally:
        loop.close()


def _fill(a) -> int:
    """Fill the non-blocking socket a's (small) send buffer; returns the bytes it took."""
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sent = 0
    try:
        while True:
            sent += a.send(b"z" * 1024)
    except BlockingIOError:
        pass
    return sent


def test_full_socket_leaves_the_chunk_to_the_loop(pair):
    a, b = pair
    loop, job, cycle, scope, chunk = _setup(a)
    try:
        _fill(a)
        first = fastpath.first_chunk(scope, job, chunk)
        assert _dups(a) == 1 and first("Once") is False and _dups(a) == 0
        assert "written" not in job.marks and job.first_by == "loop"
    finally:
        loop.close()


def test_partial_write_sends_the_rest_through_the_loop(pair):
    a, b = pair
    loop, job, cycle, scope, chunk = _setup(a)
    try:
        sent = _fill(a)
        b.recv(3000)   # room for part of the chunk
        text = _text(random.Random(9), 20000)
        first = fastpath.first_chunk(scope, job, chunk)
        assert first(text) is True
        loop.run_until_complete(asyncio.sleep(0))   # the loop's callback: the rest, as the loop would write it
        b.setblocking(False)
        direct = b""
        try:
            while True:
                part = b.recv(1 << 20)
                if not part:
                    break
                direct += part
        except BlockingIOError:
            pass
        want = _uvicorn_frame(chunk(text).encode())
        rest = b"".join(cycle.transport.written)
        assert rest and len(direct) > 0
        assert (direct + rest).endswith(want) and len(direct) + len(rest) == sent - 3000 + len(want)
    finally:
        loop.close()


@pytest.mark.parametrize("state", [dict(chunked_encoding=False), dict(chunked_encoding=None),
                                   dict(disconnected=True), dict(response_complete=True),
                                   dict(response_started=False, defer=False),
                                   dict(response_started=False, keep_alive=False),
                                   dict(response_started=False, access_log=True),
                                   dict(response_started=False, scope={"method": "GET"})])
def test_no_direct_write_outside_a_started_chunked_response(pair, monkeypatch, state):
    """Nothing written by the engine thread where uvicorn would write something else; a response not begun
    waits for its first chunk only where uvicorn's start would be _head's bytes (and DEFER_HEAD is on)."""
    monkeypatch.setattr(fastpath, "DEFER_HEAD", state.pop("defer", True))
    loop, job, cycle, scope, chunk = _setup(pair[0], **state)
    started = cycle.response_started
    try:
        assert fastpath.first_chunk(scope, job, chunk, HEADERS) is None and _dups(pair[0]) == 0
        assert not fastpath.defer_head(scope) and cycle.response_started == started
    finally:
        loop.close()


@pytest.mark.parametrize("kind", ["completion", "chat"])
def test_deferred_head_goes_out_with_the_first_chunk(pair, kind):
    """A stream whose headers wait: the engine thread writes uvicorn's bytes for the start, the opening chunks
    and the first chunk, in one write, and leaves the cycle as uvicorn's sends would (the loop's later sends are
    plain body chunks)."""
    a, b = pair
    loop, job, cycle, scope, chunk = _setup(a, kind, response_started=False, chunked_encoding=None)
    try:
        assert fastpath.defer_head(scope)
        opening = [S.sse({"role": _text(random.Random(3), 11)})] if kind == "chat" else []
        first = fastpath.first_chunk(scope, job, chunk, HEADERS, opening)
        text = _text(random.Random(4), 29)
        got = [None]
        worker = threading.Thread(target=lambda: got.__setitem__(0, first(text)))
        worker.start()
        worker.join()
        want, ref = _uvicorn_bytes(*[o.encode() for o in opening], chunk(text).encode(), start=True)
        assert got[0] is True and b.recv(1 << 16) == want and cycle.transport.written == []
        for name in ("response_started", "chunked_encoding", "waiting_for_100_continue", "expected_content_length"):
            assert getattr(cycle, name) == getattr(ref, name), name
        assert _dups(a) == 0 and job.first_by == "engine thread"
    finally:
        loop.close()


def test_deferred_head_on_a_full_socket_stays_with_the_loop(pair):
    """Nothing taken: the response has not begun (the loop writes the headers, then the chunk)."""
    a, b = pair
    loop, job, cycle, scope, chunk = _setup(a, response_started=False, chunked_encoding=None)
    try:
        _fill(a)
        first = fastpath.first_chunk(scope, job, chunk, HEADERS)
        assert first("Once") is False and _dups(a) == 0 and job.first_by == "loop"
        assert cycle.response_started is False and cycle.chunked_encoding is None
    finally:
        loop.close()


def test_no_direct_write_with_buffered_data_no_cycle_or_disabled(pair, monkeypatch):
    loop, job, cycle, scope, chunk = _setup(pair[0])
    try:
        cycle.transport.buffered = 17
        assert fastpath.first_chunk(scope, job, chunk) is None
        cycle.transport.buffered, cycle.transport.closing = 0, True
        assert fastpath.first_chunk(scope, job, chunk) is None
        cycle.transport.closing = False
        assert fastpath.first_chunk({}, job, chunk) is None
        monkeypatch.setattr(fastpath, "ENABLED", False)
        assert fastpath.first_chunk(scope, job, chunk) is None
        monkeypatch.setattr(fastpath, "ENABLED", True)
        first = fastpath.first_chunk(scope, job, chunk)
        assert _dups(pair[0]) == 1
        first.close()   # a job that ends without text: the dup goes
        assert _dups(pair[0]) == 0 and first("x") is False
    finally:
        loop.close()


def test_server_streams_first_chunk_from_engine_thread(tmp_path):
    """A real server: streams of both routes (the chat's role chunk first) come out whole and equal to the plain
    answers, their first chunk written by the engine thread where httptools runs; other routes and methods
    still reach Starlette (404, 405 in OpenAI's error shape)."""
    pytest.importorskip("httptools")
    s = ServerProc(tmp_path / "stderr.txt")
    try:
        body = {"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 9, "temperature": 0}
        events, done = s.stream("/v1/completions", body)
        assert done and text_of(events) == s.request("POST", "/v1/completions", body)[2]["choices"][0]["text"]
        chat = {"model": "stories260K", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 7,
                "temperature": 0}
        events, done = s.stream("/v1/chat/completions", chat)
        plain = s.request("POST", "/v1/chat/completions", chat)[2]["choices"][0]["message"]["content"]
        assert done and events[0]["choices"][0]["delta"]["role"] == "assistant" and text_of(events, "chat") == plain
        code, _, payload = s.request("GET", "/v1/completions")
        assert code == 405 and payload["error"]["code"] == "method_not_allowed"
        assert s.request("GET", "/v1/models")[0] == 200
        assert s.request("POST", "/v1/completions", body, key="wrong")[0] == 401
        s.stop()
        lines = [ln for ln in s.stderr().splitlines() if "timeline ms:" in ln]
        streams = [ln for ln in lines if "first chunk by" in ln]
        assert len(lines) == 4 and len(streams) == 2
        assert all("first chunk by the engine thread" in ln for ln in streams), streams
    finally:
        s.stop()


class Recorder:
    """A job's first_chunk stand-in: takes the first text or declines it; counts close() calls."""

    def __init__(self, take: bool):
        self.take, self.texts, self.closed = take, [], 0

    def __call__(self, text):
        self.texts.append(text)
        return self.take

    def close(self):
        self.closed += 1


@pytest.mark.parametrize("take", [True, False])
def test_worker_hands_the_first_text_over_once_and_closes(stories_dir, take):
    """The engine thread offers the first text to job.first_chunk: taken, the loop never sees it; declined, the
    loop gets it as before; either way the rest follow in order and the writer is closed when the job ends (or
    leaves the queue unstarted)."""
    from cugraphllm.api import LLM
    from cugraphllm.server.metrics import Metrics
    from cugraphllm.server.worker import Worker

    llm = LLM.load(stories_dir / "stories260K.bin", backend="numpy")
    want = list(llm.generate("Once upon a time", max_new_tokens=8, temperature=0, stream=True))
    loop = asyncio.new_event_loop()
    w = Worker(llm, Metrics("m"), max_queue=4)
    try:
        req = GenRequest(kind="completion", model="m", ids=llm.tokenizer.encode("Once upon a time", bos=True),
                         max_tokens=8, sampling={"temperature": 0.0}, stream=True)
        job, gone = Job(req, loop), Job(req, loop)
        job.first_chunk, gone.first_chunk = Recorder(take), Recorder(take)
        w.submit(gone, hold=True)
        w.discard(gone)
        w.submit(job, hold=True)
        w.start()
        w.release(job)

        async def drain():
            out = []
            while True:
                kind, value = await asyncio.wait_for(job.events.get(), 30)
                if kind != "text":
                    return out, kind
                out.append(value)
        texts, end = loop.run_until_complete(drain())
        w.close()   # the engine thread is done with the job (its "done" event comes before its clean-up)
        assert end == "done" and job.first_chunk.texts == want[:1] and job.first_chunk.closed >= 1
        assert texts == (want[1:] if take else want)
        assert gone.first_chunk.texts == [] and gone.first_chunk.closed == 1
    finally:
        w.close()
        loop.close()


@pytest.mark.parametrize("stream", [False, True])
def test_dispatch_answers_as_starlettes_router(stories_dir, monkeypatch, stream):
    """The same POSTs through fastpath.Dispatch and through Starlette's router (DISPATCH off) get the same status,
    headers and body (ids and timestamps aside); a GET of a generation route still gets Starlette's 405."""
    from cugraphllm.api import LLM
    from cugraphllm.server.app import Server, create_app

    llm = LLM.load(stories_dir / "stories260K.bin", backend="numpy")
    server = Server(llm, "m", api_key=KEY)
    app = create_app(server)
    server.worker.start()

    def call(method, path, body):
        llm.engine.reset()   # no prefix reuse between the two runs of a request (the last one has ended)
        raw = json.dumps(body).encode()
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"authorization", f"Bearer {KEY}".encode()), (b"content-length", str(len(raw)).encode())],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}
        sent, inbox = [], [{"type": "http.request", "body": raw, "more_body": False}]

        async def receive():
            if inbox:
                return inbox.pop()
            await asyncio.sleep(3600)   # no disconnect: the response ends first

        async def send(message):
            sent.append(message)
        asyncio.run(app(scope, receive, send))
        start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
        text = body.decode()
        for key in ("id", "created"):   # per request
            text = re.sub(rf'"{key}":("[^"]*"|\d+)', f'"{key}":0', text)
        return start["status"], sorted(start["headers"]), text

    try:
        rng = random.Random(11)
        for path, body in [("/v1/completions", {"model": "m", "prompt": "Once upon", "max_tokens": 6}),
                           ("/v1/chat/completions", {"model": "m", "max_tokens": 5,
                                                     "messages": [{"role": "user", "content": "Hi"}]}),
                           ("/v1/completions", {"model": "m", "prompt": "x", "n": 2}),
                           ("/v1/completions", {"model": "nope", "prompt": "x"})]:
            body = {**body, "temperature": 0, "stream": stream, "seed": rng.randrange(1 << 30)}
            fast = call("POST", path, body)
            monkeypatch.setattr(fastpath, "DISPATCH", False)
            slow = call("POST", path, body)
            monkeypatch.setattr(fastpath, "DISPATCH", True)
            assert fast == slow and fast[0] in (200, 400, 404)
        status, _, text = call("GET", "/v1/completions", {})
        assert status == 405 and "method_not_allowed" in text
    finally:
        server.worker.close()


DEFAULT_HEADERS = [(b"server", b"uvicorn"), (b"date", b"Mon, 30 Nov 2026 06:40:00 GMT")]


def _uvicorn_cycle(transport, **state):
    """A real uvicorn RequestResponseCycle of a POST on `transport` (a test Transport), before its response."""
    from uvicorn.protocols.http.flow_control import FlowControl
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

    transport.pause_reading = transport.resume_reading = lambda: None
    cycle = RequestResponseCycle(scope={"method": "POST", "type": "http"}, transport=transport,
                                 flow=FlowControl(transport), logger=None, access_logger=None, access_log=False,
                                 default_headers=list(DEFAULT_HEADERS), message_event=asyncio.Event(),
                                 expect_100_continue=True, keep_alive=True, on_response=lambda: None)
    for k, v in state.items():
        setattr(cycle, k, v)
    return cycle


STATE = ("response_started", "chunked_encoding", "expected_content_length", "waiting_for_100_continue", "keep_alive")


def test_head_is_uvicorns_response_start(pair):
    """write_head puts on the socket the bytes uvicorn's send writes for the stream's start and leaves its cycle
    in the same state, so that the body messages after it (uvicorn's or the engine thread's) frame alike."""
    a, b = pair
    headers = S.EventStream.raw_headers
    theirs = _uvicorn_cycle(Transport(None))
    asyncio.run(theirs.send({"type": "http.response.start", "status": 200, "headers": list(headers)}))
    ours = _uvicorn_cycle(Transport(a))
    scope = {"extensions": {fastpath.EXT: {"cycle": weakref.ref(ours)}}}
    assert fastpath.write_head(scope, headers) is True
    assert b.recv(1 << 16) == b"".join(theirs.transport.written) and ours.transport.written == []
    assert [getattr(ours, k) for k in STATE] == [getattr(theirs, k) for k in STATE]
    assert fastpath.write_head(scope, headers) is False   # started already
    text = _text(random.Random(3), 50).encode()
    for cycle in (ours, theirs):
        asyncio.run(cycle.send({"type": "http.response.body", "body": text, "more_body": True}))
    assert ours.transport.written == theirs.transport.written[1:]


def test_head_on_a_full_socket_goes_through_the_transport(pair):
    a, b = pair
    _fill(a)
    cycle = _uvicorn_cycle(Transport(a))
    assert fastpath.write_head({"extensions": {fastpath.EXT: {"cycle": weakref.ref(cycle)}}}, []) is True
    (data,) = cycle.transport.written   # all of it, in order, by the loop's transport
    assert data.startswith(b"HTTP/1.1 200 OK\r\nserver: uvicorn\r\n") and data.endswith(b"chunked\r\n\r\n")


@pytest.mark.parametrize("state", [dict(keep_alive=False), dict(access_log=True), dict(response_started=True),
                                   dict(disconnected=True), dict(scope={"method": "HEAD"})])
def test_head_left_to_uvicorn_where_its_send_would_differ(pair, state):
    a, b = pair
    cycle = _uvicorn_cycle(Transport(a), **state)
    scope = {"extensions": {fastpath.EXT: {"cycle": weakref.ref(cycle)}}}
    assert fastpath.write_head(scope, []) is False and fastpath.write_head({}, []) is False
    cycle.transport.buffered = 1
    assert fastpath.write_head(scope, []) is False
    assert cycle.response_started is state.get("response_started", False) and cycle.transport.written == []
    b.setblocking(False)
    with pytest.raises(BlockingIOError):
        b.recv(1)


def test_head_left_to_uvicorn_when_disabled(pair, monkeypatch):
    cycle = _uvicorn_cycle(Transport(pair[0]))
    monkeypatch.setattr(fastpath, "HEAD", False)   # the variant uvhead
    assert fastpath.write_head({"extensions": {fastpath.EXT: {"cycle": weakref.ref(cycle)}}}, []) is False
    assert not cycle.response_started and cycle.transport.written == []


def test_latch_is_an_event():
    from cugraphllm.server.worker import Latch
    latch = Latch()
    assert not latch.is_set() and latch.wait(0.001) is False
    threading.Timer(0.02, latch.set).start()
    assert latch.wait(10) is True and latch.is_set()
    latch.set()
    assert latch.is_set() and latch.wait(0) is True and latch.is_set()


def test_body_read_from_receive(stories_dir):
    """The handler reads the body from the ASGI receive itself: a body in several messages is joined, a too long
    one (by its content-length, or by what arrives) is a 413, a client gone before its body is not answered."""
    from starlette.requests import ClientDisconnect

    from cugraphllm.api import LLM
    from cugraphllm.server.app import MAX_BODY, Server, create_app

    app = create_app(Server(LLM.load(stories_dir / "stories260K.bin", backend="numpy"), "m"))

    def call(messages, length):
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/completions", "raw_path": b"/v1/completions", "query_string": b"",
                 "root_path": "", "headers": [(b"content-length", str(length).encode())],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}
        sent, inbox = [], list(messages)

        async def receive():
            return inbox.pop(0)

        async def send(message):
            sent.append(message)
        asyncio.run(app(scope, receive, send))
        return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:]))

    raw = json.dumps({"model": "not-m", "prompt": "x" * 1000}).encode()
    parts = [{"type": "http.request", "body": raw[i:i + 97], "more_body": i + 97 < len(raw)}
             for i in range(0, len(raw), 97)]
    status, body = call(parts, len(raw))
    assert status == 404 and body["error"]["code"] == "model_not_found"   # parsed whole: the model was read
    status, body = call(parts, MAX_BODY + 1)
    assert status == 413 and body["error"]["code"] == "request_too_large"
    big = [{"type": "http.request", "body": b" " * (1 << 20), "more_body": True}] * 9
    assert call(big, 0)[0] == 413
    with pytest.raises(ClientDisconnect):
        call([parts[0], {"type": "http.disconnect"}], len(raw))


@pytest.mark.parametrize("kind", ["completion", "chat"])
def test_declined_deferred_head_is_opened_by_the_loop(pair, kind):
    """The engine thread could not write (a full socket): the loop writes the headers (straight to the socket,
    or through the transport), then the opening chunk and the texts in order, as a stream whose headers went
    first."""
    from cugraphllm.server.metrics import Metrics
    from cugraphllm.server.worker import Outcome

    a, b = pair
    loop, job, cycle, scope, chunk = _setup(a, kind, response_started=False, chunked_encoding=None)
    server = A.Server(None, "m")
    job.ready = False
    sent = []

    async def receive():
        await asyncio.sleep(3600)   # no disconnect

    async def send(message):
        sent.append(message)

    async def engine():   # what the engine thread does, once the job is released
        while not job.ready:
            await asyncio.sleep(0)
        assert job.first_chunk("Once") is False
        for text in ("Once", " upon"):
            job.emit("text", text)
        job.emit("done", Outcome("length", 3, 2, 0, 0.01, 0.0))

    try:
        _fill(a)
        assert fastpath.defer_head(scope)
        async def both():
            await asyncio.gather(S.EventStream(server, job)(scope, receive, send), engine())
        loop.run_until_complete(both())
        head = b"".join(cycle.transport.written)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n") and cycle.response_started
        bodies = [m["body"].decode() for m in sent]
        assert [m["more_body"] for m in sent] == [True] * (len(sent) - 1) + [False] and bodies[-1] == ""
        texts = [json.loads(x[6:]) for x in bodies[:-2]]
        if kind == "chat":
            assert texts.pop(0)["choices"][0]["delta"]["role"] == "assistant"
        assert bodies[:2 + (kind == "chat")][-2:] == [chunk("Once"), chunk(" upon")]
        assert texts[-1]["choices"][0]["finish_reason"] == "length" and bodies[-2] == "data: [DONE]\n\n"
        assert job.first_by == "loop"
    finally:
        loop.close()


def _raw_stream(port, body: dict, split: bool, path="/v1/completions") -> bytes:
    """One streamed request over a raw kept-alive socket, headers and body in one write or two; the whole
    response."""
    data = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if split:
            s.sendall(head)
            s.sendall(data)
        else:
            s.sendall(head + data)
        out = b""
        while not out.endswith(b"\r\n0\r\n\r\n"):
            out += s.recv(1 << 16)
    return out


def _sse_texts(raw: bytes, kind="completion") -> str:
    """The text of a chunked SSE response (the chunk framing removed)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"transfer-encoding: chunked" in head.lower(), head
    body, pos = b"", 0
    while True:
        end = rest.index(b"\r\n", pos)
        n = int(rest[pos:end], 16)
        if n == 0:
            break
        body += rest[end + 2:end + 2 + n]
        pos = end + 4 + n
    events = [json.loads(x[6:]) for x in body.decode().split("\n\n") if x.startswith("data: {")]
    assert body.decode().rstrip().endswith("data: [DONE]")
    return text_of(events, kind)


def test_streams_whole_for_both_write_patterns_and_pipelined(tmp_path):
    """A real server: a stream whose body comes with its headers, or in a later packet, answers as the plain
    request does, its headers and first chunk written by the engine thread; two streams pipelined in one write on
    one connection come back whole, one after the other, with the texts of their plain requests."""
    pytest.importorskip("httptools")
    s = ServerProc(tmp_path / "stderr.txt")
    try:
        bodies = [{"model": "stories260K", "prompt": p, "max_tokens": 12, "temperature": 0, "stream": True}
                  for p in ("Once upon a time", "The dog")]
        plain = [s.request("POST", "/v1/completions", {**b, "stream": False})[2]["choices"][0]["text"]
                 for b in bodies]
        for split in (False, True):
            assert _sse_texts(_raw_stream(s.port, bodies[0], split)) == plain[0]
        reqs = b""
        for b in bodies:
            data = json.dumps(b).encode()
            reqs += (f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                     f"Content-Length: {len(data)}\r\n\r\n").encode() + data
        with socket.create_connection(("127.0.0.1", s.port), timeout=30) as c:
            c.sendall(reqs)
            raw, got = b"", []
            while len(got) < 2:
                raw += c.recv(1 << 16)
                got = re.findall(rb"HTTP/1\.1 200 OK.*?\r\n0\r\n\r\n", raw, re.S)
        assert [_sse_texts(r) for r in got] == plain
        s.stop()
        streams = [ln for ln in s.stderr().splitlines() if "first chunk by" in ln]
        assert len(streams) == 4 and all("first chunk by the engine thread" in ln for ln in streams[:2]), streams
    finally:
        s.stop()

