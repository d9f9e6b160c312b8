"""`python -m cugraphllm serve`: an OpenAI-compatible HTTP server (Starlette + uvicorn, the `[serve]` extra).

    python -m cugraphllm serve --model weights/llama-2-7b-chat --port 8000 --api-key secret

Batch 1 on purpose: one engine thread serves one request at a time from a FIFO queue (worker.py); a request
whose prompt extends the previous one's reuses the cached prefix. app.py holds the routes, protocol.py the
request validation and the OpenAI response shapes, metrics.py the Prometheus counters.
"""
from __future__ import annotations

import gc
import importlib.util
import signal
import socket
import sys
from pathlib import Path

from ..errors import CugraphError


SERVE_DESCRIPTION = ("Serve /v1/completions, /v1/chat/completions and /v1/models (the OpenAI API, streaming "
                     "included), /health and /metrics. One request at a time; the rest wait in a FIFO queue. "
                     "Ctrl-C or SIGTERM stops after the streams in flight.")


def add_server_flags(parser, checked) -> None:
    """The server's own flags (the model flags are generate's); checked(kind, ok, what) builds an argparse type."""
    g = parser.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    g.add_argument("--port", type=checked(int, lambda v: 0 <= v < 65536, "a port in [0, 65535]"), default=8000,
                   help="TCP port (default 8000; 0 = any free port, printed at start)")
    g.add_argument("--api-key", metavar="KEY", help="require Authorization: Bearer KEY on the /v1 routes")
    g.add_argument("--served-model-name", metavar="NAME",
                   help="the model id clients send (default: the file or folder name of --model)")
    g.add_argument("--max-queue", type=checked(int, lambda v: v >= 0, "an integer >= 0"), default=64, metavar="N",
                   help="requests allowed to wait for the engine; past it, 503 with Retry-After (default 64)")
    parser.set_defaults(seed=0)  # the load-time seed; each request brings its own


def served_name(model) -> str:
    """The default --served-model-name: the file stem or folder name of the model (dummy:<preset> as is)."""
    text = str(model)
    if text.startswith("dummy:"):
        return text
    p = Path(text)
    return p.stem if p.suffix else p.name


def check_installed() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise CugraphError(f'serve needs the [serve] extra (pip install "cugraphllm[serve]"): {err}') from None


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket (port 0: any free port); a taken port is a one-line error."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0]
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections of such a socket; without it a
        # chunk written while the previous one is unacknowledged waits for the client's delayed ACK (Nagle), which
        # added ~40 ms to the TTFT of every request after the first on a kept-alive connection
        sock = socket.socket(info[0], socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(2048)
    except OSError as err:
        raise CugraphError(f"serve: cannot listen on {host}:{port}: {err.strerror or err}") from None
    return sock


def _fastest(fast: str, fallback: str) -> str:
    """uvicorn's http / loop choice, named (what its "auto" picks): httptools parses a request ~0.2 ms faster than
    the pure-Python h11 (the [serve] extra installs it); uvloop, where present, wakes faster than asyncio's loop."""
    return fast if importlib.util.find_spec(fast) is not None else fallback


def serve(llm, args, status) -> int:
    """Serve `llm` until SIGINT/SIGTERM (the streams in flight finish first). status(text): one stderr line."""
    import uvicorn

    from .app import Server, create_app
    from .fastpath import protocol_class

    name = args.served_model_name or served_name(llm.name)
    sock = listen(args.host, args.port)
    server = Server(llm, name, api_key=args.api_key, max_queue=args.max_queue, log=status)
    http, loop = _fastest("httptools", "h11"), _fastest("uvloop", "asyncio")
    # proxy_headers off: X-Forwarded-* would only rewrite the client's address, which nothing here reads
    config = uvicorn.Config(create_app(server), http=protocol_class(http), loop=loop, log_level="warning",
                            access_log=False, lifespan="on", timeout_graceful_shutdown=None, proxy_headers=False)
    host, port = sock.getsockname()[:2]
    status(f"serving {name!r} on http://{host}:{port}/v1 (OpenAI API; max queue {args.max_queue}"
           f"{', API key required' if args.api_key else ''}; uvicorn with {http} and {loop}); Ctrl-C or SIGTERM "
           f"stops after the streams in flight")
    sys.stderr.flush()
    # uvicorn handles SIGTERM (stop accepting, finish the streams in flight), then restores the previous handler
    # and raises the signal again: a no-op handler here makes that a clean exit 0 instead of death by signal
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    # the engine thread holds the GIL while it launches work (an eager prefill: one launch per kernel); a 0.1 ms
    # switch interval (default 5 ms) bounds how long the event loop waits for it to write headers or a token that
    # is ready (0.1 ms measured ~0.2 ms less TTFT than 0.5 ms with scripts/bench_server.py --fake; 20 us no better)
    sys.setswitchinterval(1e-4)
    # what is loaded now (the model, CuPy, Numba: ~10^6 objects) lives as long as the server: out of the collector's
    # sight, a full collection walks only what requests leave behind instead of pausing both threads for ms
    gc.collect()
    gc.freeze()
    uvicorn.Server(config).run(sockets=[sock])
    status("server stopped")
    return 0
