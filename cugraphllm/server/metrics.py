"""Prometheus text exposition (format 0.0.4) of the server's counters, written by hand: no client library.

Updated from the event loop and the engine thread, so every update holds one lock.
"""
from __future__ import annotations

import threading
from collections import Counter

TTFT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48)
ITL_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0)


class Histogram:
    def __init__(self, buckets):
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)   # the last one is +Inf
        self.sum = 0.0

    def observe(self, v: float) -> None:
        i = next((k for k, b in enumerate(self.buckets) if v <= b), len(self.buckets))
        self.counts[i] += 1
        self.sum += v

    def lines(self, name: str) -> list[str]:
        out, cum = [], 0
        for b, c in zip(self.buckets + (float("inf"),), self.counts):
            cum += c
            out.append(f'{name}_bucket{{le="{"+Inf" if b == float("inf") else repr(b)}"}} {cum}')
        return out + [f"{name}_sum {self.sum!r}", f"{name}_count {cum}"]


class Metrics:
    def __init__(self, model: str):
        self.model = model
        self.lock = threading.Lock()
        self.requests = Counter()          # (route, HTTP status) -> count
        self.finished = Counter()          # finish reason (stop, length, abort, error) -> count
        self.prompt_tokens = self.generation_tokens = self.cached_tokens = 0
        self.waiting = self.running = 0
        self.ttft = Histogram(TTFT_BUCKETS)
        self.itl = Histogram(ITL_BUCKETS)

    def request(self, route: str, status: int) -> None:
        with self.lock:
            self.requests[(route, status)] += 1

    def add(self, **values) -> None:
        """Add to counters and gauges by name (waiting=+1, running=-1, generation_tokens=5, ...)."""
        with self.lock:
            for k, v in values.items():
                setattr(self, k, getattr(self, k) + v)

    def observe(self, ttft: float | None = None, itl: float | None = None) -> None:
        with self.lock:
            if ttft is not None:
                self.ttft.observe(ttft)
            if itl is not None:
                self.itl.observe(itl)

    def finish(self, reason: str) -> None:
        with self.lock:
            self.finished[reason] += 1

    def text(self) -> str:
        p, lines = "cugraphllm_", []

        def family(name, kind, help_, rows):
            lines.extend([f"# HELP {p}{name} {help_}", f"# TYPE {p}{name} {kind}"] + rows)

        with self.lock:
            family("requests_total", "counter", "HTTP requests by route and status code",
                   [f'{p}requests_total{{route="{r}",code="{c}"}} {n}' for (r, c), n in sorted(self.requests.items())])
            family("requests_finished_total", "counter", "generations by finish reason (abort: client gone)",
                   [f'{p}requests_finished_total{{reason="{r}"}} {n}' for r, n in sorted(self.finished.items())])
            family("queue_length", "gauge", "requests waiting for the engine", [f"{p}queue_length {self.waiting}"])
            family("requests_running", "gauge", "requests on the engine (0 or 1: batch 1)",
                   [f"{p}requests_running {self.running}"])
            family("prompt_tokens_total", "counter", "prompt tokens", [f"{p}prompt_tokens_total {self.prompt_tokens}"])
            family("cached_prompt_tokens_total", "counter", "prompt tokens reused from the KV cache",
                   [f"{p}cached_prompt_tokens_total {self.cached_tokens}"])
            family("generation_tokens_total", "counter", "generated tokens",
                   [f"{p}generation_tokens_total {self.generation_tokens}"])
            family("time_to_first_token_seconds", "histogram", "request arrival to first token, queueing included",
                   self.ttft.lines(f"{p}time_to_first_token_seconds"))
            family("inter_token_latency_seconds", "histogram", "time between consecutive tokens of a request",
                   self.itl.lines(f"{p}inter_token_latency_seconds"))
        return "\n".join(lines) + "\n"
