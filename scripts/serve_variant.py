"""`cugraphllm serve` (or scripts/fake_engine.py serve) with one of the server's latency choices undone, so that
scripts/bench_server.py --variants can weigh each against the default in one run on the same machine:

    python -m scripts.serve_variant early serve --model dummy:llama-2-7b --backend cuda --port 0
    python -m scripts.serve_variant h11 fake --prefill-ms 5 --decode-ms 3 --port 0

Variants (comma-separated to combine):
  default      the server as shipped
  early        a stream's job goes to the engine as soon as it is queued, not once its headers are written: the
               loop's remaining work for it (the response, the headers) overlaps the prefill's host work
  h11          uvicorn parses HTTP with the pure-Python h11, not httptools
  asyncio      asyncio's own event loop, not uvloop
  nofreeze     no gc.freeze() of what is loaded before serving
  noflushwait  the engine thread does not wait for the first chunk's write before its next step
  switch5ms    the interpreter's default 5 ms switch interval instead of the server's 0.1 ms
  nodirect     the first text chunk goes through the event loop as the others do, instead of being written by
               the engine thread (cugraphllm/server/fastpath.py)
  starlette    the generation routes through Starlette's router and middleware, as the other routes
  loophead     a stream's headers are written by the loop before its job goes to the engine (as before the fifth
               session of 2026-11-30), not by the engine thread in one write with the first chunk
               (fastpath.DEFER_HEAD)
  uvhead       a stream's headers go through uvicorn's send, not straight to the socket (fastpath.write_head)
  legacy       nodirect, starlette, uvhead and loophead together: the request path of 2026-11-30 (bar the engine
               thread's doorbell, the per-request arrival mark, the SSE response's headers built once, uvicorn's proxy
               headers off, and the 2026-12 request path's leaner body read and job)
(scripts/bench_server.py also knows two client-side variants: onewrite, its client sends each request's headers
and body in one write, as curl does a small body, instead of two, as http.client and the openai client do; and
httpclient, the requests go through the stdlib's http.client, as before 2026-12.)
"""
from __future__ import annotations

import sys


VARIANTS = ("default", "early", "h11", "asyncio", "nofreeze", "noflushwait", "switch5ms", "nodirect", "starlette",
            "loophead", "uvhead", "legacy", "onewrite", "httpclient")


def apply(variant: str) -> None:
    import gc

    import cugraphllm.server as srv
    from cugraphllm.server import worker

    fastest = srv._fastest
    if variant == "early":
        submit = worker.Worker.submit
        worker.Worker.submit = lambda self, job, hold=False: submit(self, job)
    elif variant in ("h11", "asyncio"):
        srv._fastest = lambda fast, fallback: variant if fallback == variant else fastest(fast, fallback)
    elif variant == "nofreeze":
        gc.freeze = lambda: None
    elif variant == "noflushwait":
        worker.FLUSH_WAIT = 0.0
    elif variant == "switch5ms":
        sys.setswitchinterval = lambda interval: None
    elif variant in ("nodirect", "starlette", "loophead", "uvhead", "legacy"):
        from cugraphllm.server import fastpath
        fastpath.ENABLED = fastpath.ENABLED and variant not in ("nodirect", "legacy")
        fastpath.HEAD = fastpath.HEAD and variant not in ("uvhead", "legacy")
        fastpath.DISPATCH = fastpath.DISPATCH and variant not in ("starlette", "legacy")
        fastpath.DEFER_HEAD = fastpath.DEFER_HEAD and variant not in ("loophead", "legacy")
    elif variant not in ("default", "onewrite", "httpclient"):   # the last two: the client's (bench_server)
        raise SystemExit(f"serve_variant: unknown variant {variant!r} (known: {', '.join(VARIANTS)})")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[1] not in ("serve", "fake"):
        raise SystemExit("usage: serve_variant.py VARIANT[,VARIANT] {serve|fake} ARGS... (see the docstring)")
    for variant in argv[0].split(","):
        apply(variant)
    if argv[1] == "fake":
        from scripts.fake_engine import main as fake_main
        return fake_main(["serve", *argv[2:]])
    from cugraphllm.cli import main as cli_main
    return cli_main(["serve", *argv[2:]])


if __name__ == "__main__":
    sys.exit(main())
