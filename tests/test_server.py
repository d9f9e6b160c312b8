"""`python -m cugraphllm serve` against the real `openai` client and curl (the packaged stories260K, CPU):
greedy and seeded text equal to LLM.generate / ChatSession.send, SSE framing, usage and prefix reuse, /metrics,
and every kind of bad request as an OpenAI-style error."""
import json
import re
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

from cugraphllm.api import LLM  # noqa: E402
from cugraphllm.chat import dialog_tokens  # noqa: E402
from cugraphllm.server.worker import TIMELINE  # noqa: E402
from server_helpers import KEY, ServerProc, text_of, wait_idle  # noqa: E402

MODEL = "stories260K"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ServerProc(tmp_path_factory.mktemp("serve") / "stderr.txt")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def llm(stories_dir):
    return LLM.load(stories_dir / "stories260K.bin", backend="numpy")


def test_models(client, server):
    assert [m.id for m in client.models.list().data] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL
    assert server.request("GET", "/health")[0] == 200


@pytest.mark.parametrize("prompt", ["Once", "Once upon a time", "The cat"])
def test_completions_greedy_equal_library(client, llm, prompt):
    want = llm.generate(prompt, max_new_tokens=24, temperature=0)
    r = client.completions.create(model=MODEL, prompt=prompt, max_tokens=24, temperature=0)
    assert r.choices[0].text == want and r.choices[0].finish_reason == "length"
    assert r.usage.prompt_tokens == llm.last.prompt_tokens and r.usage.completion_tokens == 24
    chunks = list(client.completions.create(model=MODEL, prompt=prompt, max_tokens=24, temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == want
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == llm.last.prompt_tokens + 24


def test_completions_seeded_sampling_and_extensions(client, llm):
    kw = dict(temperature=0.9, top_p=0.95, seed=1234)
    want = llm.generate("The dog", max_new_tokens=30, top_k=20, repetition_penalty=1.2, **kw)
    r = client.completions.create(model=MODEL, prompt="The dog", max_tokens=30,
                                  extra_body={"top_k": 20, "repetition_penalty": 1.2}, **kw)
    assert r.choices[0].text == want


def test_completions_token_ids_and_stop(client, llm):
    ids = llm.tokenizer.encode("Once upon a time", bos=True)
    want = llm.generate("Once upon a time", max_new_tokens=40)
    r = client.completions.create(model=MODEL, prompt=ids, max_tokens=40, temperature=0)
    assert r.choices[0].text == want
    stop = want.split()[5]
    r = client.completions.create(model=MODEL, prompt=ids, max_tokens=40, temperature=0, stop=[stop, "zzz"])
    assert r.choices[0].text == want.split(stop)[0] and r.choices[0].finish_reason == "stop"


def test_chat_equal_library_and_prefix_reuse(client, llm):
    chat = llm.chat(system="You tell stories.")
    messages = [{"role": "system", "content": "You tell stories."}]
    for turn, user in enumerate(["Hello there", "What happened next?"]):
        want = chat.send(user, stream=False, max_new_tokens=20, temperature=0)
        messages.append({"role": "user", "content": user})
        r = client.chat.completions.create(model=MODEL, messages=messages, max_completion_tokens=20, temperature=0)
        assert r.choices[0].message.content == want and r.choices[0].message.role == "assistant"
        prompt_ids = dialog_tokens(llm.tokenizer, messages)
        assert r.usage.prompt_tokens == len(prompt_ids)
        if turn:   # turn 2 extends turn 1: only the new tokens are prefilled
            assert r.usage.prompt_tokens_details.cached_tokens >= len(first_ids)
        first_ids = prompt_ids
        stream = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=20, temperature=0,
                                                stream=True)
        chunks = list(stream)
        assert chunks[0].choices[0].delta.role == "assistant"
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == want
        messages.append({"role": "assistant", "content": want})


def test_sse_framing_with_curl(server):
    if shutil.which("curl") is None:
        pytest.skip("curl is absent")
    body = json.dumps({"model": MODEL, "prompt": "Once", "max_tokens": 6, "temperature": 0, "stream": True,
                       "stream_options": {"include_usage": True}})
    r = subprocess.run(["curl", "-sN", "-i", f"{server.base_url}/completions", "-H", f"Authorization: Bearer {KEY}",
                        "-H", "Content-Type: application/json", "-d", body], capture_output=True, timeout=30)
    head, _, payload = r.stdout.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200") and "content-type: text/event-stream" in head.lower()
    events = payload.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"          # every event ends with a blank line
    chunks = [json.loads(e[len("data: "):]) for e in events[:-2]]
    assert all(e.startswith("data: {") and "\n" not in e for e in events[:-2])
    assert {c["object"] for c in chunks} == {"text_completion"} and len({c["id"] for c in chunks}) == 1
    assert text_of(chunks).startswith(" upon a time") and chunks[-1]["usage"]["completion_tokens"] == 6


def test_metrics_count_requests(server, client):
    before = wait_idle(server)
    for _ in range(3):
        client.completions.create(model=MODEL, prompt="Hi", max_tokens=5, temperature=0)
    after = wait_idle(server)
    ok = 'cugraphllm_requests_total{route="/v1/completions",code="200"}'
    assert after[ok] - before.get(ok, 0) == 3
    assert after["cugraphllm_generation_tokens_total"] - before["cugraphllm_generation_tokens_total"] == 15
    assert after["cugraphllm_time_to_first_token_seconds_count"] - before["cugraphllm_time_to_first_token_seconds_count"] == 3
    assert after["cugraphllm_inter_token_latency_seconds_count"] - before["cugraphllm_inter_token_latency_seconds_count"] == 12


LONG = "Once upon a time " * 200
BAD = [  # (body or raw bytes, status, param)
    (b"{not json", 400, None), (b"\xff\xfe", 400, None), (b"[" * 100000, 400, None), ([1, 2], 400, None),
    ({"prompt": 5}, 400, "prompt"), ({"prompt": ["a", "b"]}, 400, "prompt"), ({"prompt": [1, 99999]}, 400, "prompt"),
    ({"prompt": []}, 400, "prompt"), ({}, 400, "prompt"), ({"prompt": "x", "max_tokens": "5"}, 400, "max_tokens"),
    ({"prompt": "x", "max_tokens": 0}, 400, "max_tokens"), ({"prompt": "x", "temperature": -1}, 400, "temperature"),
    ({"prompt": "x", "temperature": True}, 400, "temperature"), ({"prompt": "x", "top_p": 0}, 400, "top_p"),
    ({"prompt": "x", "top_k": 2 ** 40}, 400, "top_k"), ({"prompt": "x", "seed": -1}, 400, "seed"),
    ({"prompt": "x", "stop": [""]}, 400, "stop"), ({"prompt": "x", "stop": 3}, 400, "stop"),
    ({"prompt": "x", "stream": "yes"}, 400, "stream"), ({"prompt": "x", "n": 2}, 400, "n"),
    ({"prompt": "x", "logprobs": 1}, 400, "logprobs"), ({"prompt": "x", "echo": True}, 400, "echo"),
    ({"prompt": "x", "best_of": 3}, 400, "best_of"), ({"prompt": "x", "frobnicate": 1}, 400, "frobnicate"),
    ({"prompt": "x", "stream_options": {"include_usage": True}}, 400, "stream_options"),
    ({"prompt": "x", "repetition_penalty": 0}, 400, "repetition_penalty"),
    ({"prompt": "\ud800"}, 400, "prompt"), ({"prompt": LONG}, 400, "prompt"),
    ({"prompt": "x", "model": "gpt-4"}, 404, "model"), ({"prompt": "x", "model": 7}, 400, "model"),
    (b'{"prompt": "x", "\\ud800": 1}', 400, "\\ud800"), ({"prompt": "x", "max_tokens": 1e400}, 400, "max_tokens"),
]
BAD_CHAT = [({"messages": []}, 400, "messages"), ({"messages": "hi"}, 400, "messages"),
            ({"messages": [{"role": "tool", "content": "x"}]}, 400, "messages[0]"),
            ({"messages": [{"role": "assistant", "content": "x"}]}, 400, "messages"),
            ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, 400, "tools"),
            ({"messages": [{"role": "user", "content": "x"}], "logprobs": True}, 400, "logprobs"),
            ({"messages": [{"role": "user", "content": LONG}]}, 400, "messages")]


def _check_error(status, payload, want_status, want_param):
    assert status == want_status, payload
    err = payload["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"] and "\n" not in err["message"]
    assert err["param"] == want_param


@pytest.mark.parametrize("route,cases", [("/v1/completions", BAD), ("/v1/chat/completions", BAD_CHAT)])
def test_bad_requests(server, route, cases):
    for body, status, param in cases:
        raw = body if isinstance(body, bytes) else None
        code, _, payload = server.request("POST", route, None if raw else body, raw=raw)
        _check_error(code, payload, status, param)
    assert server.request("GET", "/health")[0] == 200


def test_auth_and_routes(server, client):
    for key in (None, "wrong", KEY + "x"):
        code, _, payload = server.request("POST", "/v1/completions", {"prompt": "x"}, key=key)
        _check_error(code, payload, 401, None)
    assert server.request("GET", "/v1/models", key="wrong")[0] == 401
    bad = openai.OpenAI(base_url=server.base_url, api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.completions.create(model=MODEL, prompt="x")
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="llama-9000", prompt="x")
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], n=3)
    assert err.value.body["param"] == "n"
    code, _, payload = server.request("GET", "/v1/nothing")
    _check_error(code, payload, 404, None)


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                           max_leaves=8)
FIELDS = ["prompt", "messages", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "stream", "model",
          "repetition_penalty", "n", "logprobs", "stream_options", "user"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(["/v1/completions", "/v1/chat/completions"]),
       body=st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), json_values, max_size=5))
def test_fuzzed_bodies_never_500(server, route, body):
    body = {**body, "max_tokens": 2} if "max_tokens" not in body else body
    raw = json.dumps(body, allow_nan=True).encode()
    code, _, payload = server.request("POST", route, raw=raw)
    assert code in (200, 400, 404), payload
    if code != 200:
        assert set(payload["error"]) == {"message", "type", "param", "code"}
    elif body.get("stream") is True:
        assert payload.rstrip().endswith("data: [DONE]")


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(["completion", "chat"]), name=st.text(min_size=1, max_size=12),
       text=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=20))
def test_stream_chunks_are_the_dumped_envelope(kind, name, text):
    """A stream's text chunk, formatted from a per-request template, is byte for byte the dumped envelope."""
    from cugraphllm.server import protocol as P
    from cugraphllm.server.sse import sse, text_chunks
    req = P.GenRequest(kind=kind, model=name.replace("\0", ""), stream=True, id="cmpl-1f", created=1700000000)
    assert text_chunks(req)(text) == sse(P.envelope(req, [P.choice(req, text, None)], None))


def test_serve_usage_errors_are_one_line(server, monkeypatch):
    import sys

    from conftest import REPO
    from cugraphllm.errors import CugraphError
    from cugraphllm.server import check_installed
    r = subprocess.run([sys.executable, "-m", "cugraphllm", "serve", "--port", str(server.port), "-q"],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("error: serve: cannot listen on 127.0.0.1:")
    assert r.stderr.count("\n") == 1
    r = subprocess.run([sys.executable, "-m", "cugraphllm", "serve", "--port", "70000"], capture_output=True,
                       text=True, cwd=REPO, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--port" in r.stderr
    monkeypatch.setitem(sys.modules, "uvicorn", None)   # as if the [serve] extra were not installed
    with pytest.raises(CugraphError, match=r"\[serve\] extra"):
        check_installed()


def test_connections_get_tcp_nodelay():
    """listen()'s socket makes asyncio set TCP_NODELAY on each connection: without it, on a kept-alive connection
    a chunk waits for the client's delayed ACK of the previous one (Nagle: ~40 ms added to TTFT)."""
    import asyncio
    import socket

    from cugraphllm.server import listen

    async def main():
        seen = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        sock = listen("127.0.0.1", 0)
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        try:
            return await asyncio.wait_for(seen, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(main()) != 0


def test_kept_alive_connection_and_timeline(server, llm):
    """Streamed and plain requests in turn on one connection each get the library's text; each request's log line
    carries its timeline (scripts/bench_server.py reads it), its steps in order."""
    c = server.conn()
    try:
        for i, prompt in enumerate(["Once upon a time", "The dog", "Once upon a time there"]):
            want = llm.generate(prompt, max_new_tokens=12, temperature=0)
            body = {"model": MODEL, "prompt": prompt, "max_tokens": 12, "temperature": 0, "stream": i != 1}
            c.request("POST", "/v1/completions", body=json.dumps(body).encode(),
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
            r = c.getresponse()
            raw = r.read().decode()
            assert r.status == 200 and not r.will_close
            if i == 1:
                assert json.loads(raw)["choices"][0]["text"] == want
            else:
                events = [json.loads(x[6:]) for x in raw.split("\n\n") if x.startswith("data: {")]
                assert text_of(events) == want and raw.endswith("data: [DONE]\n\n")
    finally:
        c.close()
    wait_idle(server)
    lines = [ln for ln in server.stderr().splitlines() if "timeline ms:" in ln][-3:]
    assert len(lines) == 3
    for line in lines:
        steps = dict((k, float(v)) for k, v in re.findall(r"(\w+) \+([\d.]+)", line.split("timeline ms:")[1]))
        stream = "written" in steps   # a stream is released once its headers are out; a plain response has no chunk
        order = [k for k in TIMELINE if stream or k not in ("released", "sending", "written")]
        assert list(steps) == order and all(steps[a] <= steps[b] for a, b in zip(order, order[1:]))
    assert "written" in lines[0] and "written" not in lines[1] and "written" in lines[2]
