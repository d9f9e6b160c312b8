"""The server on the cuda backend (packaged stories260K): the engine runs on the server's worker thread, not the
thread that built it. Greedy text through HTTP equals the golden greedy run; concurrent streams and a client
that disconnects mid-stream leave every later answer equal to a fresh one."""
import pytest

from conftest import stories_golden
from server_helpers import ServerProc, stream_concurrently, text_of, wait_idle

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("mode", ["eager", "hybrid"])
def test_server_cuda_golden_and_disconnect(tmp_path, mode):
    pytest.importorskip("starlette")
    golden = stories_golden()
    s = ServerProc(tmp_path / "stderr.txt", "--mode", mode, backend="cuda", timeout=600)
    try:
        req = {"prompt": golden["prompt"], "max_tokens": len(golden["generated_ids"]), "temperature": 0}
        events, done = s.stream("/v1/completions", req)
        assert done and text_of(events) == golden["continuation_text"]
        s.stream("/v1/completions", {**req, "max_tokens": 300, "prompt": "The cat"}, max_events=5)  # disconnect
        got, errors = stream_concurrently(s, [req] * 8, 300)
        assert not errors and got == [golden["continuation_text"]] * 8
        wait_idle(s)
    finally:
        assert s.stop() == 0
