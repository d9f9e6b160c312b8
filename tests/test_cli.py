"""`python -m cugraphllm` end to end, in subprocesses: golden generate, chat through stdin, --help, error exits."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import GPU, REPO, stories_golden

GENERATE_FLAGS = ["--model", "--tokenizer", "--prompt", "--max-new-tokens", "--temperature", "--top-k", "--top-p",
                  "--repetition-penalty", "--seed", "--backend", "--mode", "--dtype", "--max-seq-len", "--stop",
                  "--no-echo", "--quiet", "--tp", "--prefill-rows"]
CHAT_FLAGS = [f for f in GENERATE_FLAGS if f not in ("--prompt", "--no-echo")] + ["--system"]


def cli(*args, stdin="", timeout=120, **kw):
    return subprocess.run([sys.executable, "-m", "cugraphllm", *map(str, args)], input=stdin, capture_output=True,
                          text=True, cwd=REPO, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def model_args(stories_dir):
    return ["--model", stories_dir / "stories260K.bin", "--tokenizer", stories_dir / "tok512.model",
            "--backend", "numpy"]


def test_generate_golden(stories_dir, model_args):
    golden = stories_golden()
    r = cli("generate", *model_args, "--prompt", "Once upon a time", "--max-new-tokens", 60, "--temperature", 0)
    assert r.returncode == 0, r.stderr
    assert r.stdout == golden["text"] + "\n"
    assert "tokens/s" in r.stderr and "Traceback" not in r.stderr
    r = cli("generate", *model_args, "--prompt", "Once upon a time", "--max-new-tokens", 60, "--no-echo", "-q")
    assert r.stdout == golden["continuation_text"] + "\n" and r.stderr == ""


def test_generate_context_limit_message(model_args):
    r = cli("generate", *model_args, "--prompt", "Once upon a time", "--max-seq-len", 12, "--max-new-tokens", 50)
    assert r.returncode == 0 and "context limit of 12" in r.stderr


def reference_replies(stories_dir, turns):
    """What the library replies, greedy, with /reset starting a fresh session."""
    from cugraphllm.api import LLM
    llm = LLM.load(stories_dir / "stories260K.bin", tokenizer=stories_dir / "tok512.model", backend="numpy")
    chat, out = llm.chat(), []
    for text in turns:
        if text == "/reset":
            chat = llm.chat()
        else:
            out.append(chat.send(text, stream=False, max_new_tokens=24, temperature=0))
    return out


def test_chat_through_stdin(stories_dir, model_args):
    r = cli("chat", *model_args, "--max-new-tokens", 24, "--temperature", 0,
            stdin="Tell me a story.\nWhat happened next?\n/reset\nHello!\n/exit\nnot read\n")
    assert r.returncode == 0, r.stderr
    want = reference_replies(stories_dir, ["Tell me a story.", "What happened next?", "/reset", "Hello!"])
    assert all(want) and r.stdout == "".join(w + "\n" for w in want)
    assert "[conversation reset]" in r.stderr and ">>>" not in r.stdout + r.stderr   # no prompt: stdin is a pipe
    r = cli("chat", *model_args, "--max-new-tokens", 5, "--system", "Be kind.", stdin="Hi\n")  # EOF ends it
    assert r.returncode == 0 and r.stdout.count("\n") >= 1 and "Traceback" not in r.stderr


def test_chat_ctrl_c_twice_at_the_prompt_exits_0(model_args):
    p = subprocess.Popen([sys.executable, "-m", "cugraphllm", "chat", *map(str, model_args)], cwd=REPO, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert "loaded" in p.stderr.readline()
        assert any("chat:" in p.stderr.readline() for _ in range(3))              # now waiting for input
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert p.poll() is None                                     # the first Ctrl-C only arms
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=20) == 0
        assert "Traceback" not in p.stderr.read()
    finally:
        p.kill()


def test_chat_ctrl_c_during_replies(model_args):
    p = subprocess.Popen([sys.executable, "-m", "cugraphllm", "chat", *map(str, model_args),
                          "--max-new-tokens", "400"], cwd=REPO, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stderr.readline()
    p.stdin.write("Tell me a long story.\n" * 40)
    p.stdin.flush()
    time.sleep(0.15)
    p.send_signal(signal.SIGINT)                                    # lands in a reply or between two
    out, err = p.communicate(timeout=120)                           # closes stdin: end of input
    assert p.returncode == 0 and "Traceback" not in err and out


@pytest.mark.parametrize("command,flags", [("generate", GENERATE_FLAGS), ("chat", CHAT_FLAGS)])
def test_help_explains_every_flag(command, flags):
    r = cli(command, "--help")
    assert r.returncode == 0
    for flag in flags:
        assert flag in r.stdout, flag
    assert len(r.stdout.split()) > 150                              # each flag has a sentence, not a bare name


def bad_cases(tmp):
    (tmp / "empty").mkdir()
    (tmp / "bad.model").write_bytes(b"not a sentencepiece model")
    return [
        ["--model", tmp / "missing.bin", "--prompt", "x"],
        ["--model", tmp / "empty", "--prompt", "x"],
        ["--model", "dummy:llama-9b", "--prompt", "x"],
        ["MODEL", "--prompt", "x", "--tokenizer", tmp / "bad.model"],
        ["MODEL", "--prompt", "x", "--tokenizer", tmp / "missing.model"],
        ["MODEL", "--prompt", "x", "--top-p", "1.5"],
        ["MODEL", "--prompt", "x", "--top-p", "0"],
        ["MODEL", "--prompt", "x", "--max-new-tokens", "-1"],
        ["MODEL", "--prompt", "x", "--temperature", "-0.5"],
        ["MODEL", "--prompt", "x", "--temperature", "nan"],
        ["MODEL", "--prompt", "x", "--top-k", "two"],
        ["MODEL", "--prompt", "x", "--repetition-penalty", "0"],
        ["MODEL", "--prompt", "x", "--seed", "-1"],
        ["MODEL", "--prompt", "x", "--max-seq-len", "0"],
        ["MODEL", "--prompt", "x", "--tp", "0"],
        ["MODEL", "--prompt", "x", "--prefill-rows", "500"],
        ["MODEL", "--prompt", "x", "--tp", "2", "--backend", "numpy"],
        ["MODEL", "--prompt", "x", "--backend", "tpu"],
        ["MODEL", "--prompt", "x", "--dtype", "int4"],
        ["MODEL", "--prompt", "x", "--stop", ""],
        ["MODEL"],
        ["MODEL", "--prompt", "x", "--no-such-flag"],
    ]


def test_bad_inputs_exit_2_with_one_line(tmp_path, stories_dir):
    for case in bad_cases(tmp_path):
        args = [stories_dir / "stories260K.bin" if a == "MODEL" else a for a in case]
        if case[0] == "MODEL":
            args = ["--model"] + args
        r = cli("generate", *args, timeout=60)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2, (case, r.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), (case, r.stderr)
        assert r.stdout == "", case


def test_model_without_tokenizer_and_cuda_without_gpu(tmp_path, stories_dir):
    os.symlink(stories_dir / "stories260K.bin", tmp_path / "model.bin")
    r = cli("generate", "--model", tmp_path / "model.bin", "--prompt", "x", "--backend", "numpy")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "tokenizer" in r.stderr
    if not GPU:
        r = cli("chat", "--model", stories_dir / "stories260K.bin", "--backend", "cuda")
        assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1


def test_top_level_usage_and_bench_slot():
    r = cli()
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    if (Path(REPO) / "cugraphllm" / "bench.py").exists():
        r = cli("bench", "--help")                                  # dispatched to cugraphllm.bench.main
        assert r.returncode == 0 and "usage:" in r.stdout
    else:
        r = cli("bench")
        assert r.returncode == 2 and r.stderr.startswith("error: bench") and r.stderr.count("\n") == 1
