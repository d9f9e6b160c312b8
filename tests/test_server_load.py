"""The server under load and faults (packaged stories260K, CPU): 50 concurrent streams each get their solo text,
clients that disconnect mid-stream stop their generation and leave no trace, a full queue answers 503 with
Retry-After, and SIGTERM finishes the stream in flight before the process exits."""
import json
import random
import signal
import threading
import time

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from cugraphllm.api import LLM  # noqa: E402
from server_helpers import ServerProc, stream_concurrently, text_of, wait_idle  # noqa: E402

WORDS = ["Once", "The cat", "A dog", "Lily", "Tom", "The sun", "One day", "Mom", "The bird", "A girl"]


@pytest.fixture(scope="module")
def llm(stories_dir):
    return LLM.load(stories_dir / "stories260K.bin", backend="numpy")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ServerProc(tmp_path_factory.mktemp("serve") / "stderr.txt")
    yield s
    s.stop()


def _request(i):
    """A distinct request per client: prompt, seed, temperature and length vary."""
    return {"prompt": WORDS[i % len(WORDS)], "max_tokens": 8 + i % 13, "seed": 1000 + i,
            "temperature": 0.0 if i % 3 == 0 else 0.8, "top_p": 0.9}


def _solo(llm, req):
    return llm.generate(req["prompt"], max_new_tokens=req["max_tokens"], temperature=req["temperature"],
                        top_p=req.get("top_p", 1.0), seed=req.get("seed", 0))


def test_50_concurrent_streams_get_their_solo_text(server, llm):
    reqs = [_request(i) for i in range(50)]
    want = [_solo(llm, r) for r in reqs]
    before = wait_idle(server)
    got, errors = stream_concurrently(server, reqs, 120)
    assert not errors and got == want
    after = wait_idle(server)
    key = 'cugraphllm_requests_total{route="/v1/completions",code="200"}'
    assert after[key] - before.get(key, 0) == 50
    ttft = "cugraphllm_time_to_first_token_seconds_count"
    assert after[ttft] - before.get(ttft, 0) == 50
    new = sum(r["max_tokens"] for r in reqs)   # stories260K rarely ends a story this early; EOS would stop sooner
    assert 0 < after["cugraphllm_generation_tokens_total"] - before["cugraphllm_generation_tokens_total"] <= new


def test_disconnects_at_random_points(server, llm):
    rng = random.Random(12)
    fresh = {"prompt": "The cat", "max_tokens": 30, "temperature": 0}
    want = _solo(llm, fresh)
    for k in range(8):
        req = {"prompt": rng.choice(WORDS), "max_tokens": 400, "temperature": 0.7, "seed": k}
        events, done = server.stream("/v1/completions", req, max_events=rng.randrange(0, 40))
        assert not done
        if k % 2:   # the next request right away, or after the aborted one has stopped
            wait_idle(server)
        events, done = server.stream("/v1/completions", fresh)
        assert done and text_of(events) == want
    m = wait_idle(server)
    assert m['cugraphllm_requests_finished_total{reason="abort"}'] >= 1
    # the aborted generations stopped long before their 400 tokens
    assert m["cugraphllm_generation_tokens_total"] < 8 * 400


def test_cancel_stops_within_one_token(llm):
    """LLM._run's on_token hook (what the server's disconnect sets) ends the generation at that token."""
    ids = llm.tokenizer.encode("Once upon a time")
    fresh = llm.generate("Once upon a time", max_new_tokens=20)
    for k in (1, 2, 7):
        seen = []
        text = "".join(llm._run(ids, llm.params(), 100, (), on_token=lambda t: seen.append(t) or len(seen) >= k))
        assert len(seen) == k and llm.last.new_tokens == k and llm.last.finish_reason == "interrupted"
        assert llm.engine.tokens == ids + llm.last.ids[:-1]      # the protocol's state: nothing extra cached
        assert fresh.startswith(text)
        assert "".join(llm._run(ids, llm.params(), 20, ())) == fresh   # the cache it left serves the next one


def test_queue_full_is_503_with_retry_after(tmp_path, llm):
    s = ServerProc(tmp_path / "stderr.txt", "--max-queue", "1")
    try:
        codes, lock, go = [], threading.Lock(), threading.Barrier(8)

        def client():
            c = s.conn()
            body = json.dumps({"prompt": "Once", "max_tokens": 300, "temperature": 0}).encode()
            go.wait(30)  # all 8 requests leave together: the queue is full whatever the machine's load
            c.request("POST", "/v1/completions", body=body, headers={"Authorization": "Bearer test-key"})
            r = c.getresponse()
            payload = json.loads(r.read())
            with lock:
                codes.append((r.status, r.getheader("Retry-After"), payload))
            c.close()

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        busy = [c for c in codes if c[0] == 503]
        assert len(codes) == 8 and busy and all(b[1] == "1" and b[2]["error"]["code"] == "queue_full" for b in busy)
        # one running and one waiting when the worker took the first job before the others arrived; only one when it
        # had not yet (the waiting slot then holds the first: seen on a loaded 2-core CI box)
        assert 1 <= sum(c[0] == 200 for c in codes) <= 8 - len(busy)
    finally:
        s.stop()


def test_sigterm_finishes_the_stream_in_flight(tmp_path, llm):
    s = ServerProc(tmp_path / "stderr.txt")
    req = {"prompt": "Once", "max_tokens": 200, "temperature": 0}
    want = _solo(llm, req)
    c = s.conn()
    c.request("POST", "/v1/completions", body=json.dumps({**req, "stream": True}).encode(),
              headers={"Authorization": "Bearer test-key"})
    r = c.getresponse()
    first = r.readline()
    assert first.startswith(b"data: ")
    s.proc.send_signal(signal.SIGTERM)
    rest = r.read().decode()
    c.close()
    events = [json.loads(x[6:]) for x in (first.decode() + rest).split("\n\n") if x.startswith("data: {")]
    assert rest.endswith("data: [DONE]\n\n") and text_of(events) == want
    t0 = time.monotonic()
    assert s.stop(timeout=20) == 0 and time.monotonic() - t0 < 20


def test_a_queued_job_whose_client_left_frees_its_place(llm):
    import asyncio

    from cugraphllm.server.metrics import Metrics
    from cugraphllm.server.protocol import ApiError, GenRequest
    from cugraphllm.server.worker import Job, Worker
    loop = asyncio.new_event_loop()
    try:
        w = Worker(llm, Metrics("m"), max_queue=2)   # not started: jobs stay queued
        jobs = [Job(GenRequest(kind="completion", model="m", ids=[1, 2]), loop) for _ in range(2)]
        for j in jobs:
            w.submit(j)
        with pytest.raises(ApiError) as err:
            w.submit(Job(GenRequest(kind="completion", model="m", ids=[1]), loop))
        assert err.value.status == 503 and err.value.headers == {"Retry-After": "1"}
        w.discard(jobs[0])
        assert w.waiting == 1 and w.metrics.waiting == 1 and w.metrics.finished["abort"] == 1
        w.submit(Job(GenRequest(kind="completion", model="m", ids=[1]), loop))   # its place is free again
        assert w.waiting == 2 and jobs[0].cancelled.is_set() and not jobs[1].cancelled.is_set()
    finally:
        loop.close()


def test_a_held_job_waits_for_its_release_and_keeps_its_place(llm):
    """A stream is queued held (its headers not yet written): the engine thread starts neither it nor the jobs
    behind it before Worker.release; a held job whose client left (discard) lets the next one run; one never
    released starts after HOLD_LIMIT."""
    import asyncio

    from cugraphllm.server.metrics import Metrics
    from cugraphllm.server.protocol import GenRequest
    from cugraphllm.server import worker
    from cugraphllm.server.worker import Job, Worker

    hold_limit = worker.HOLD_LIMIT

    def job(prompt):
        req = GenRequest(kind="completion", model="m", ids=llm.tokenizer.encode(prompt), max_tokens=3,
                         sampling={"temperature": 0.0})
        return Job(req, loop)

    def until(cond, timeout=20.0):
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            time.sleep(0.005)
        return cond()

    loop = asyncio.new_event_loop()
    worker.HOLD_LIMIT = 1.0   # > the 0.3 s waits below
    w = Worker(llm, Metrics("m"), max_queue=8)
    w.start()
    try:
        held, behind, gone, last = job("Once"), job("The cat"), job("A dog"), job("Lily")
        w.submit(held, hold=True)
        w.submit(behind)
        time.sleep(0.3)   # time enough for the engine thread to take a job (it must not)
        assert "started" not in held.marks and "started" not in behind.marks and w.waiting == 2
        w.release(held)
        assert until(lambda: "handed" in behind.marks)
        assert held.marks["started"] < behind.marks["started"]   # FIFO
        w.submit(gone, hold=True)
        w.submit(last)
        time.sleep(0.3)
        assert "started" not in last.marks
        w.discard(gone)
        assert until(lambda: "handed" in last.marks) and "started" not in gone.marks
        assert until(lambda: w.waiting == 0 and w.metrics.finished["abort"] == 1)
        stuck = job("Tom")   # a release that never comes: the job starts anyway, the queue does not stall
        w.submit(stuck, hold=True)
        assert until(lambda: "handed" in stuck.marks, timeout=5.0)
    finally:
        worker.HOLD_LIMIT = hold_limit
        w.close()
        loop.close()
