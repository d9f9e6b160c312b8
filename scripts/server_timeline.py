"""The server's own view of the requests of scripts/bench_server.py, read from its per-request stderr lines
(worker.py): where the time to first token goes, and the longest gap between tokens, per prompt length.

Steps (median ms): request_in (client send -> handler start, on the machine's shared monotonic clock), then from
the handler's start worker.TIMELINE: submitted (JSON parsed, prompt tokenized, queued), released (a stream: its
headers written, the job let go to the engine), started (the engine thread took it), token (first token sampled),
handed (its text given to the loop), sending (its SSE chunk formatted, about to be written), written (the loop
resumed after the write: may come after the client read it), and response_out (sending -> read by the client).
"""
from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cugraphllm.server.worker import TIMELINE  # noqa: E402

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
        gap = re.search(r"longest gap ([\d.]+) ms \(before token (\d+)\)", head)
        if gap:
            row["gap"], row["gap_before"] = float(gap.group(1)), int(gap.group(2))
        rows.append(row)
    return rows


def timelines(log: str, lens, reps: int, warmup: int, sent: list, firsts: list) -> dict:
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
        keys = [k for k in STEPS if mine and all(k in r for r in mine)]
        if not keys:
            continue
        med = {k: float(np.median([r[k] for r in mine])) for k in keys}
        out[n] = {"median_ms": med, "steps": __doc__.split("Steps (median ms): ", 1)[1].strip()}
        print(f"prompt {n:4d}: server side (median ms): " + ", ".join(f"{k} {v:.3f}" for k, v in med.items()),
              file=sys.stderr)
        gaps = [r for r in mine if "gap" in r]
        if gaps:
            where, count = Counter(r["gap_before"] for r in gaps).most_common(1)[0]
            g = [r["gap"] for r in gaps]
            out[n]["engine_longest_gap_ms"] = {"median": float(np.median(g)), "max": float(max(g)),
                                               "most_often_before_token": where, "times": count}
            print(f"prompt {n:4d}: engine thread's longest gap between tokens per request: median "
                  f"{np.median(g):.3f} ms, max {max(g):.3f} ms; {count} of {len(g)} before token {where}",
                  file=sys.stderr)
    return out
