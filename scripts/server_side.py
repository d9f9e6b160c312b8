"""The server side of scripts/bench_server.py: a server process (one variant, scripts/serve_variant.py), timed
by a stdlib HTTP client, and its own view of the requests, read from its per-request stderr lines (worker.py):
where the time to first token goes, and the longest gap between tokens, per prompt length.

Steps (median ms): request_in (client send -> handler start, on the machine's shared monotonic clock), then from
the handler's start worker.TIMELINE: read (body received), parsed (validated), tokenized, submitted (queued),
released (a stream: its headers written, the job let go to the engine), started (the engine thread took it), token (first token sampled),
handed (its text given to the loop), sending (its SSE chunk formatted, about to be written), written (the loop
resumed after the write: may come after the client read it), and response_out (sending -> read by the client);
gpu_prefill (cuda): the prefill's GPU time by CUDA events, so that started -> token minus it is host time.
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

STEPS = ("request_in", *TIMELINE, "response_out")


def parse(log: str) -> list[dict]:
    """One dict per request line, in order: step -> ms, "@" (handler start, s), "gap" (longest gap between
    tokens, ms) and "gap_before" (the index of the token after it), where the line has them."""
    rows = []
    for line in log.splitlines():
        if "timeline ms:" not in line:
            continue
        head, tail = line.split("timeline ms:", 1)
        row = {k: float(v) for k, v in re.findall(r"(\w+) \+([\d.]+)", tail)}
        row["@"] = float(re.search(r"handler @([\d.]+)", tail).group(1))
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


def run_variant(variant: str, command: list[str], measure, texts: dict, args) -> dict:
    """Serve `command` (cugraphllm's or the fake engine's serve arguments) as `variant`, time every text through
    it with measure(stamp, ...), and read the server's timeline: {"server", "timeline", "http", "loop"}."""
    one_write = "onewrite" in variant.split(",")   # a client-side variant: the server as shipped
    server_side = ",".join(v for v in variant.split(",") if v != "onewrite") or "default"
    if server_side != "default":
        rest = command[command.index("serve") + 1:]
        command = ["-m", "scripts.serve_variant", server_side, "fake" if "scripts.fake_engine" in command else "serve",
                   *rest]
    proc, port, log = start_server(command, args.start_timeout)
    sent, firsts, pool = [], [], []   # per request, in order: client send time, first text chunk (s after it)
    stack = re.search(r"uvicorn with (\w+) and (\w+)", Path(log).read_text())
    print(f"server ({variant}): port {port}, uvicorn with {stack and stack.group(1)} and {stack and stack.group(2)}",
          file=sys.stderr)

    def stamp(text, n):
        s, c = stamps_server(port, text, n, sent, pool, args.fresh_connections, one_write)
        if args.fresh_connections:
            c.close()
        else:
            pool.append(c)
        firsts.append(s[0] if s else float("nan"))
        return s
    try:
        server = measure(stamp, texts, args.new_tokens, args.warmup)
    finally:
        proc.terminate()
        proc.wait(60)
        text = Path(log).read_text()
        os.unlink(log)
    inside = timelines(text, list(texts), args.reps, args.warmup, sent, firsts, variant)
    return {"server": server, "timeline": inside, "http": stack and stack.group(1), "loop": stack and stack.group(2)}


class OneWrite(http.client.HTTPConnection):
    """http.client sends a request's headers and its body in two writes (as the openai client's httpx does), and
    the server's handler then waits for the second; this client sends them in one, as curl does a small body."""

    def _send_output(self, message_body=None, encode_chunked=False):
        self._buffer.extend((b"", b""))
        head = b"\r\n".join(self._buffer)
        del self._buffer[:]
        self.send(head + (message_body or b""))


def stamps_server(port: int, text: str, n: int, sent: list, pool: list, fresh: bool, one_write: bool = False):
    """One streamed request. `pool` holds a kept-alive connection (as the openai client's pool does), or stays
    empty (--fresh-connections: each request pays a TCP connect and the server's accept, ~0.5 ms on a slow host)."""
    body = json.dumps({"prompt": text, "max_tokens": n, "temperature": 0, "stream": True}).encode()
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
