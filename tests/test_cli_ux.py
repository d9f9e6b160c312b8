"""Issue 14, driven as a user drives it (subprocesses): one-line errors where tracebacks were, notes where the CLI
was silent, chat stats and commands, prompt sources, bench defaults, and the READMEs' download commands."""
import json
import re
import shutil
import subprocess
import sys

import pytest

from conftest import GPU, REPO
from cugraphllm import __version__
from cugraphllm.config import ModelConfig
from cugraphllm.convert import write_hf
from cugraphllm.loader import dummy_weights
from cugraphllm.reference import available_memory


def cli(*args, stdin="", timeout=120):
    return subprocess.run([sys.executable, "-m", "cugraphllm", *map(str, args)], input=stdin, capture_output=True,
                          text=True, cwd=REPO, timeout=timeout)


def assert_one_line_error(r, *words):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr and all(w in lines[0] for w in words), (words, r.stderr)
    return lines[0]


@pytest.fixture(scope="module")
def model_args(stories_dir):
    return ["--model", stories_dir / "stories260K.bin", "--tokenizer", stories_dir / "tok512.model",
            "--backend", "numpy"]


def test_version():
    r = cli("--version")
    assert r.returncode == 0 and r.stdout == f"cugraphllm {__version__}\n"


def test_prompt_from_stdin_and_from_a_file(tmp_path, model_args):
    flags = [*model_args, "--max-new-tokens", 16, "-q"]
    want = cli("generate", *flags, "--prompt", "Tom had a red ball")
    assert want.returncode == 0 and want.stdout.startswith("Tom had a red ball") and len(want.stdout) > 30
    assert cli("generate", *flags, "--prompt", "-", stdin="Tom had a red ball\n").stdout == want.stdout
    (tmp_path / "p.txt").write_bytes(b"Tom had a red ball\r\n")
    assert cli("generate", *flags, "--prompt-file", tmp_path / "p.txt").stdout == want.stdout
    assert_one_line_error(cli("generate", *flags, "--prompt-file", tmp_path / "none.txt"), "none.txt")
    (tmp_path / "bad.txt").write_bytes(b"Tom \xff\xfe")
    assert_one_line_error(cli("generate", *flags, "--prompt-file", tmp_path / "bad.txt"), "not UTF-8")
    assert_one_line_error(cli("generate", *flags, "--prompt", "x", "--prompt-file", tmp_path / "p.txt"))


def test_notes_for_a_clamped_context_and_a_tokenizer_folder(tmp_path, stories_dir):
    shutil.copy(stories_dir / "tok512.model", tmp_path / "tok512.model")
    r = cli("generate", "--model", stories_dir / "stories260K.bin", "--tokenizer", tmp_path, "--backend", "numpy",
            "--prompt", "Once upon a time", "--max-new-tokens", 5, "--max-seq-len", 100000)
    assert r.returncode == 0, r.stderr
    assert "note: --max-seq-len 100000 is above the model's context of 512 tokens; using 512" in r.stderr
    assert "context 512" in r.stderr


def hf_folder(folder, stories_dir, **overrides):
    cfg = ModelConfig(dim=48, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=overrides.pop("vocab", 512),
                      hidden_dim=64, max_seq_len=64)
    write_hf(folder, cfg, dummy_weights(cfg, seed=2, dtype="float32"), tokenizer=stories_dir / "tok512.model")
    c = json.loads((folder / "config.json").read_text())
    c.update(overrides)
    (folder / "config.json").write_text(json.dumps(c))
    return folder


def test_huge_max_position_embeddings(tmp_path, stories_dir):
    folder = hf_folder(tmp_path / "m", stories_dir, max_position_embeddings=1e12)
    r = cli("generate", "--model", folder, "--backend", "numpy", "--prompt", "Once", "--max-new-tokens", 4)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert re.search(r"note: context \d+ tokens: the model's 1000000000000 would need .*--max-seq-len", r.stderr)
    assert_one_line_error(cli("generate", "--model", folder, "--backend", "numpy", "--prompt", "Once",
                              "--max-seq-len", 10 ** 11), "out of memory", "--max-seq-len")


@pytest.mark.skipif(available_memory() is None or available_memory() > 250 << 30, reason="a 70B model fits here")
def test_numpy_model_too_big_for_memory_is_one_line(stories_dir):
    r = cli("generate", "--model", "dummy:llama-2-70b", "--tokenizer", stories_dir / "tok512.model",
            "--backend", "numpy", "--prompt", "x")
    assert_one_line_error(r, "out of memory", "GiB are available", "needs")
    r = cli("bench", "--backend", "numpy", "--preset", "llama-2-70b", "--no-plot", "--prompt-lens", "4")
    assert_one_line_error(r, "out of memory", "GiB are available", "needs")


def test_tokenizer_far_smaller_than_the_vocabulary(tmp_path, stories_dir):
    r = cli("generate", "--model", hf_folder(tmp_path, stories_dir, vocab=4096), "--backend", "numpy",
            "--prompt", "x")
    assert_one_line_error(r, "512 pieces", "4096", "wrong tokenizer") and r.stdout == ""


# ---- chat ----------------------------------------------------------------------------------------------------
def test_chat_stats_help_and_non_chat_note(model_args):
    r = cli("chat", *model_args, "--max-new-tokens", 12, "--temperature", 0,
            stdin="Tell me a story.\n/help\nWhat next?\n")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert len(r.stdout.splitlines()) == 2                       # two replies; /help prints on stderr only
    assert "does not look like a chat model" in r.stderr and "/reset" in r.stderr and "/exit" in r.stderr
    stats = re.findall(r"\[(\d+) prompt \((\d+) reused from the cache\) \+ (\d+) new tokens in .* s; "
                       r"first token \d+ ms; decode [\d.]+ tokens/s; finish: \w+\]", r.stderr)
    assert len(stats) == 2 and stats[0][1] == "0" and int(stats[0][0]) <= int(stats[1][1]) < int(stats[1][0])
    q = cli("chat", *model_args, "--max-new-tokens", 12, "--temperature", 0, "-q",
            stdin="Tell me a story.\n/help\nWhat next?\n")
    assert q.returncode == 0 and q.stdout == r.stdout and "reused from the cache" not in q.stderr and "note" not in q.stderr


def test_chat_model_gets_no_note(tmp_path, stories_dir):
    folder = tmp_path / "stories-chat"
    folder.mkdir()
    (folder / "stories260K.bin").symlink_to(stories_dir / "stories260K.bin")
    (folder / "tokenizer.model").symlink_to(stories_dir / "tok512.model")
    r = cli("chat", "--model", folder, "--backend", "numpy", "--max-new-tokens", 4, stdin="Hi\n")
    assert r.returncode == 0 and "chat model" not in r.stderr and r.stdout.strip()


def test_piped_chat_exit_code_when_every_message_failed(model_args):
    long = "story " * 80
    r = cli("chat", *model_args, "--max-seq-len", 40, "--max-new-tokens", 4, stdin=f"{long}\n{long}\n")
    err = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode == 2 and len(err) == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert all("shorten the message" in e and "/reset" not in e for e in err)
    r = cli("chat", *model_args, "--max-seq-len", 40, "--max-new-tokens", 4, stdin=f"{long}\nHi\n")
    assert r.returncode == 0 and r.stdout.strip()                # one message succeeded
    assert cli("chat", *model_args, stdin="/help\n").returncode == 0   # no message sent: nothing failed


# ---- bench ---------------------------------------------------------------------------------------------------
def test_bench_errors_are_one_line():
    assert_one_line_error(cli("bench", "--reps", "0"), "--reps")
    assert_one_line_error(cli("bench", "--no-such-flag"), "--no-such-flag")
    assert_one_line_error(cli("bench", "--prompt-lens", "a,b"), "--prompt-lens")
    if not GPU:  # no CuPy, or CuPy without a driver
        assert_one_line_error(cli("bench", "--backend", "cuda", "--no-plot"), "cuda")


def test_bench_help_defaults_and_output_folder():
    from cugraphllm import bench
    r = cli("bench", "--help")
    assert r.returncode == 0
    for default in ("(default: 128)", "(default: 5)", "(default: auto)", "(default: float16)", "(default: 0)",
                    "(default: bench-results)", "on numpy the packaged stories260K"):
        assert default in " ".join(r.stdout.split()), default
    a = bench.parse_args([])
    assert a.out == "bench-results" and a.preset is None
    assert "bench-results/" in (REPO / ".gitignore").read_text().splitlines()
    ignored = subprocess.run(["git", "check-ignore", "-q", "bench-results/x.json"], cwd=REPO)
    assert ignored.returncode in (0, 128)                          # 128: not a git checkout (an sdist)
    ck, name = bench.load_source(a, "numpy")                       # no flags on numpy: not the 27 GB 7B but
    assert name == "stories260K.bin" and ck.config.dim == 64       # the packaged model
    a = bench.parse_args([])
    assert bench.load_source(a, "cuda")[0] == ModelConfig.from_preset("llama-2-7b")


# ---- READMEs -------------------------------------------------------------------------------------------------
def _download(text: str) -> str:
    """The `hf download` command of a README, continuation lines joined and spaces normalized."""
    m = re.search(r"^\s*hf download .*?(?<!\\)$(?:\n.*?(?<!\\)$)?", text.replace("\\\n", " "), re.M)
    assert m, "no hf download command"
    return " ".join(m.group(0).split())


def test_readmes_agree_on_the_download_and_the_folder():
    main, weights = (REPO / "README.md").read_text(), (REPO / "weights" / "README.md").read_text()
    cmd = _download(main)
    assert cmd == _download(weights)
    folder = re.search(r"--local-dir (\S+)", cmd).group(1)
    assert folder.startswith("weights/") and "tokenizer.model" in cmd and "*.safetensors" in cmd
    used = re.findall(r"(?:--model |LLM\.load\(\")(weights/[\w.-]+)", main)
    used = [u for u in used if "GPTQ" not in u and "AWQ" not in u]  # quantized downloads are other folders
    assert used and set(used) == {folder}, used
    for text in (main, weights):
        assert "hf auth login" in text and "huggingface-cli login" in text


def test_interactive_chat_in_a_pty(model_args):
    """On a terminal: the >>> prompt, /help, a reply with its stats line, end of input (Ctrl-D) exits 0."""
    import os
    import pty
    import select
    import time

    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "cugraphllm", "chat", *map(str, model_args), "--max-new-tokens", "8",
                          "--temperature", "0"], cwd=REPO, stdin=slave, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    os.close(slave)
    err = b""

    def wait_for_prompt(count):
        nonlocal err
        deadline = time.time() + 60
        while err.count(b">>> ") < count and time.time() < deadline:
            if select.select([p.stderr], [], [], 0.5)[0]:
                err += os.read(p.stderr.fileno(), 4096)
        assert err.count(b">>> ") >= count, err

    try:
        for n, line in enumerate([b"/help\n", b"Tell me a story.\n", b"\x04"], start=1):
            wait_for_prompt(n)
            os.write(master, line)
        out, rest = p.communicate(timeout=60)
    finally:
        p.kill()
        os.close(master)
    err = (err + rest).decode()
    assert p.returncode == 0 and "Traceback" not in err
    assert "commands: /help" in err and "reused from the cache" in err and "Ctrl-C stops a reply" in err
    assert out.decode().strip()                                   # the reply, on stdout
