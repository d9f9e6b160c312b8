"""The server side of scripts/bench_server.py: a server process (one variant, scripts/serve_variant.py), timed
by a small HTTP client (Connection; http.client with the variant httpclient), and its own view of the requests,
read from its per-request stderr lines (worker.py): where the time to first token goes, and the longest gap
between tokens, per prompt length.

Steps (median ms): request_in (client send -> the server begins parsing the request, on the machine's shared
monotonic clock; before 2026-12: -> handler start), then from there worker.TIMELINE: handler (uvicorn's and
Starlette's dispatch done, the route's handler starts), read (body received), parsed (validated), tokenized,
submitted (queued), released (a stream: its headers written, the job let go to the engine), started (the engine
thread took it), token (first token sampled), handed (its text out of the detokenizer), sending (its SSE chunk
formatted, about to be written: by the engine thread itself where it can, cugraphllm/server/fastpath.py, else by
the loop), written (the write returned; through the loop: the loop resumed after it, which may come after the
client read it), and response_out (sending -> read by the client); gpu_prefill (cuda): the prefill's GPU time
by CUDA events, so that started -> token minus it is host time.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
from cugraphllm.server.worker import TIMELINE

CLIENT_VARIANTS = ("onewrite", "httpclient")   # the client's; the server runs as shipped
STEPS = ("request_in", *TIMELINE, "response_out")
HTTP_ONLY = ("per request, the client's TTFT less the server's tokenizing (parsed -> tokenized) and its engine "
             "thread's time from taking the job to the first text (started -> handed), both of which the library "
             "pays too: what HTTP adds, free of the noise of those two (the engine's slowing by the loop's GIL "
             "use is not in it: compare started -> token)")


def parse(log: str) -> list[dict]:
    """One dict per request line, in order: step -> ms, "@" (arrival, s), "gap" (longest gap between
    tokens, ms) and "gap_before" (the index of the token after it), where the line has them."""
    rows = []
    for line in log.splitlines():
        if "timeline ms:" not in line:
            continue
        head, tail = line.split("timeline ms:", 1)
        row = {k: float(v) for k, v in re.findall(r"(\w+) \+([\d.]+)", tail)}
        row["@"] = float(re.search(r"(?:arrived|handler) @([\d.]+)", tail).group(1))
        gpu = re.search(r"gpu prefill ([\d.]+) ms", head)
        if gpu:
            row["gpu_prefill"] = float(gpu.group(1))
        gap = re.search(r"longest gap ([\d.]+) ms \(before token (\d+)\)", head)
        if gap:
            row["gap"], row["gap_before"] = float(gap.group(1)), int(gap.group(2))
        rows.append(row)
    return rows


def timelines(log: str, lens, reps: int, warmup: int, sent: list, firsts: list, label: str = "server") -> dict:
    """Per prompt length: the median of each step over the measured requests, and the engine thread's longest
    gap between tokens (median, max, and at which token it fell most often), printed as it goes."""
    rows = parse(log)
    if len(rows) != len(sent):   # a line lost or extra: no pairing
        rows = []
    for r, t0, first in zip(rows, sent, firsts):
        r["request_in"] = (r["@"] - t0) * 1e3
        if "sending" in r:
            r["response_out"] = (t0 + first - r["@"]) * 1e3 - r["sending"]
        if all(k in r for k in ("parsed", "tokenized", "started", "handed")):   # see HTTP_ONLY
            r["http_only"] = first * 1e3 - (r["tokenized"] - r["parsed"]) - (r["handed"] - r["started"])
    out = {}
    for i, n in enumerate(lens):
        mine = rows[i * (warmup + reps) + warmup:(i + 1) * (warmup + reps)]
        keys = [k for k in (*STEPS, "gpu_prefill") if mine and all(k in r for r in mine)]
        if not keys:
            continue
        med = {k: float(np.median([r[k] for r in mine])) for k in keys}
        out[n] = {"median_ms": med, "steps": __doc__.split("Steps (median ms): ", 1)[1].strip()}
        print(f"prompt {n:4d}: {label}: server side (median ms): "
              + ", ".join(f"{k} {v:.3f}" for k, v in med.items()), file=sys.stderr)
        if all("http_only" in r for r in mine):
            h = [r["http_only"] for r in mine]
            out[n]["http_only_ms"] = {"median": float(np.median(h)), "p90": float(np.percentile(h, 90)),
                                      "what": HTTP_ONLY}
            print(f"prompt {n:4d}: {label}: TTFT less tokenizing and the engine's started -> handed, per request: "
                  f"median {np.median(h):.3f} ms", file=sys.stderr)
        gaps = [r for r in mine if "gap" in r]
        if gaps:
            where, count = Counter(r["gap_before"] for r in gaps).most_common(1)[0]
            g = [r["gap"] for r in gaps]
            out[n]["engine_longest_gap_ms"] = {"median": float(np.median(g)), "max": float(max(g)),
                                               "most_often_before_token": where, "times": count}
            print(f"prompt {n:4d}: {label}: engine thread's longest gap between tokens per request: median "
                  f"{np.median(g):.3f} ms, max {max(g):.3f} ms; {count} of {len(g)} before token {where}",
                  file=sys.stderr)
    return out


class VariantServer:
    """A server process of one variant (cugraphllm's or the fake engine's serve arguments in `command`), its
    client's stamp(text, n) for bench_server's measure(), and finish(): its timeline read from its stderr."""

    def __init__(self, variant: str, command: list[str], args):
        self.variant, self.args = variant, args
        self.one_write = "onewrite" in variant.split(",")   # client-side variants: the server as shipped
        self.client = "httpclient" if "httpclient" in variant.split(",") else "raw"
        server_side = ",".join(v for v in variant.split(",") if v not in CLIENT_VARIANTS) or "default"
        if server_side != "default":
            rest = command[command.index("serve") + 1:]
            command = ["-m", "scripts.serve_variant", server_side,
                       "fake" if "scripts.fake_engine" in command else "serve", *rest]
        self.proc, self.port, self.log = start_server(command, args.start_timeout)
        self.sent, self.firsts, self.pool = [], [], []   # per request: client send time, first text chunk (s after)
        self.stack = re.search(r"uvicorn with (\w+) and (\w+)", Path(self.log).read_text())
        print(f"server ({variant}): port {self.port}, uvicorn with {self.stack and self.stack.group(1)} and "
              f"{self.stack and self.stack.group(2)}", file=sys.stderr)

    def stamp(self, text, n):
        s, c = stamps_server(self.port, text, n, self.sent, self.pool, self.args.fresh_connections, self.one_write,
                             self.client)
        if self.args.fresh_connections:
            c.close()
        else:
            self.pool.append(c)
        self.firsts.append(s[0] if s else float("nan"))
        return s

    def stop(self) -> str:
        """Stop the server; its stderr."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)
        text = Path(self.log).read_text()
        os.unlink(self.log)
        return text

    def finish(self, server: dict, texts: dict) -> dict:
        """Stop the server; {"server" (measure's rows), "timeline", "http", "loop"}."""
        inside = timelines(self.stop(), list(texts), self.args.reps, self.args.warmup, self.sent, self.firsts,
                           self.variant)
        http, loop = (self.stack.group(1), self.stack.group(2)) if self.stack else (None, None)
        return {"server": server, "timeline": inside, "http": http, "loop": loop}


def run_variant(variant: str, command: list[str], measure, texts: dict, args) -> dict:
    """Serve `command` as `variant`, time every text through it with measure(stamp, ...), and read the server's
    timeline: {"server", "timeline", "http", "loop"}."""
    srv = VariantServer(variant, command, args)
    try:
        server = measure(srv.stamp, texts, args.new_tokens, args.warmup)
    except BaseException:
        srv.stop()
        raise
    return srv.finish(server, texts)


class OneWrite(http.client.HTTPConnection):
    """http.client sends a request's headers and its body in two writes (as the openai client's httpx does), and
    the server's handler then waits for the second; this client sends them in one, as curl does a small body."""

    def _send_output(self, message_body=None, encode_chunked=False):
        self._buffer.extend((b"", b""))
        head = b"\r\n".join(self._buffer)
        del self._buffer[:]
        self.send(head + (message_body or b""))


class Connection:
    """The bench's HTTP/1.1 client: one blocking socket (TCP_NODELAY), the request http.client would send (same
    headers, headers and body in two writes as http.client and the openai client's httpx, or one: onewrite), and
    the streamed response read with recv() and parsed here. Each text chunk is stamped once its JSON is decoded:
    the text in hand, as the library side stamps a chunk once generate() yields it. (http.client's response
    reader, layered file objects and chunked decoding in Python, took ~0.1 ms per first chunk before the stamp on
    the 2-vCPU machine: latency of that client, not of HTTP: variant httpclient.)"""

    def __init__(self, port: int, one_write: bool = False):
        self.port, self.sock, self.one_write, self.buf = port, None, one_write, b""
        self.host = f"127.0.0.1:{port}".encode()

    def connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=600)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # the body's write must not wait (Nagle)

    def close(self) -> None:
        self.sock.close()

    def _more(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise SystemExit("the server closed the connection mid-response")
        self.buf += data

    def _line(self) -> bytes:
        while (i := self.buf.find(b"\r\n")) < 0:
            self._more()
        line, self.buf = self.buf[:i], self.buf[i + 2:]
        return line

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def stream(self, path: str, body: bytes) -> tuple[float, list[float]]:
        """POST `body` (stream: true) to `path`; (t0, each text chunk's stamp in s after t0)."""
        t0 = time.perf_counter()
        if self.sock is None:   # --fresh-connections: the connect counts, as http.client's does
            self.connect()
        head = (b"POST %s HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: identity\r\nContent-Length: %d\r\n"
                b"Content-Type: application/json\r\n\r\n" % (path.encode(), self.host, len(body)))
        if self.one_write:
            self.sock.sendall(head + body)
        else:
            self.sock.sendall(head)
            self.sock.sendall(body)
        status, headers = self._line(), []
        while line := self._line():
            headers.append(line.lower())
        if not status.startswith(b"HTTP/1.1 200 ") or b"transfer-encoding: chunked" not in headers:
            raise SystemExit(f"server answered {status!r} {headers!r}")
        out, events = [], b""
        while size := int(self._line().split(b";")[0], 16):   # one chunk per body message; 0 ends the body
            events += self._take(size)
            self._take(2)
            while (i := events.find(b"\n\n")) >= 0:   # a whole server-sent event
                event, events = events[:i], events[i + 2:]
                if event.startswith(b"data: {") and json.loads(event[6:])["choices"][0]["text"]:
                    out.append(time.perf_counter() - t0)
        self._take(2)   # the empty trailer
        return t0, out


def stamps_server(port: int, text: str, n: int, sent: list, pool: list, fresh: bool, one_write: bool = False,
                  client: str = "raw"):
    """One streamed request. `pool` holds a kept-alive connection (as the openai client's pool does), or stays
    empty (--fresh-connections: each request pays a TCP connect and the server's accept, ~0.5 ms on a slow host).
    client "httpclient": the stdlib's http.client instead of Connection (variant httpclient)."""
    body = json.dumps({"prompt": text, "max_tokens": n, "temperature": 0, "stream": True}).encode()
    if client == "raw":
        c = pool.pop() if pool else Connection(port, one_write)
        if c.sock is None and not fresh:
            c.connect()
        t0, out = c.stream("/v1/completions", body)
        sent.append(t0)
        return out, c
    if pool:
        c = pool.pop()
    else:
        c = (OneWrite if one_write else http.client.HTTPConnection)("127.0.0.1", port, timeout=600)
        if not fresh:   # connect now; no Nagle: http.client sends the headers and the body in two writes, and
            c.connect()   # on a reused connection the body would wait ~40 ms for the server's delayed ACK
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.perf_counter()
    sent.append(t0)
    c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise SystemExit(f"server answered {r.status}: {r.read()[:300]!r}")
    out = []
    while True:
        line = r.readline()
        if not line or line == b"data: [DONE]\n":
            break
        if line.startswith(b"data: {"):
            now = time.perf_counter() - t0
            if json.loads(line[6:])["choices"][0]["text"]:
                out.append(now)
    r.read()   # the last chunk of the chunked body: the connection is then ready for the next request
    return out, c


def start_server(command: list[str], start_timeout: float):
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, *command, "--port", "0"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        m = re.search(r"on http://127\.0\.0\.1:(\d+)/v1", Path(log.name).read_text())
        if m:
            return proc, int(m.group(1)), log.name
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the server did not start:\n{Path(log.name).read_text()[-2000:]}")
