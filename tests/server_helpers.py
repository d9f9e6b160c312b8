"""A `python -m cugraphllm serve` subprocess on a free loopback port, and a small stdlib HTTP/SSE client."""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

from conftest import REPO

KEY = "test-key"


class ServerProc:
    """Starts the server (port 0: the OS picks a free one, read back from its status line); stderr to a file."""

    def __init__(self, log_path, *flags, backend="numpy", timeout=60.0):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "cugraphllm", "serve", "--port", "0", "--backend", backend,
                                      "--api-key", KEY, *map(str, flags)], cwd=REPO, stdout=subprocess.DEVNULL,
                                     stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(r"on http://127\.0\.0\.1:(\d+)/v1", self.stderr())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start: {self.stderr()}")
            time.sleep(0.05)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        for _ in range(200):  # the socket listens before uvicorn runs: wait until it answers
            try:
                if self.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)

    def stderr(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def conn(self, timeout=60.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, key=KEY, raw=None, headers=None):
        """(status, headers dict, decoded JSON or text)."""
        c = self.conn()
        try:
            h = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {}),
                 **(headers or {})}
            data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            text = r.read().decode()
            try:
                payload = json.loads(text)
            except ValueError:
                payload = text
            return r.status, dict(r.getheaders()), payload
        finally:
            c.close()

    def stream(self, path, body, max_events=None):
        """POST with stream true; (list of decoded events, saw [DONE]). Stops reading after max_events (then the
        connection is closed mid-stream: a client disconnect)."""
        c = self.conn()
        try:
            c.request("POST", path, body=json.dumps({**body, "stream": True}).encode(),
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
            r = c.getresponse()
            assert r.status == 200, r.read()
            events, done = [], False
            while max_events is None or len(events) < max_events:
                line = r.readline()
                if not line:
                    break
                if line == b"\n":
                    continue
                assert line.startswith(b"data: ") and line.endswith(b"\n"), line
                if line == b"data: [DONE]\n":
                    done = True
                    break
                events.append(json.loads(line[6:]))
            return events, done
        finally:
            c.close()

    def metrics(self) -> dict:
        """The /metrics samples as {name{labels}: value}."""
        _, _, text = self.request("GET", "/metrics")
        return {k: float(v) for k, v in (ln.rsplit(" ", 1) for ln in text.splitlines() if not ln.startswith("#"))}

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def text_of(events, kind="completion") -> str:
    if kind == "completion":
        return "".join(e["choices"][0]["text"] for e in events if e["choices"])
    return "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])


def stream_concurrently(server, reqs, join_s, path="/v1/completions"):
    """Each request streamed from its own thread at once; (texts, errors): texts[i] None where request i failed or
    did not see [DONE], errors the repr of each exception a client raised."""
    got, errors = [None] * len(reqs), []

    def client(i):
        try:
            events, done = server.stream(path, reqs[i])
            assert done, f"request {i} ended without [DONE]"
            got[i] = text_of(events)
        except Exception as err:  # noqa: BLE001 - returned to the test
            errors.append(repr(err))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(reqs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(join_s)
    return got, errors


def wait_idle(server, timeout=10.0):
    """Until no request runs or waits (a cancelled generation has stopped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = server.metrics()
        if m["cugraphllm_requests_running"] == 0 and m["cugraphllm_queue_length"] == 0:
            return m
        time.sleep(0.02)
    raise AssertionError("the server did not become idle")


os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")  # the openai client must not go through a proxy
