"""`import cugraphllm` is cheap: no GPU library, no torch/jax, until a GPU path is used."""
import subprocess
import sys

from conftest import REPO

HEAVY = ("cupy", "numba", "torch", "jax")


def _modules_after(code: str) -> set:
    probe = code + "\nimport sys\nprint(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_import_is_side_effect_free():
    loaded = _modules_after("import cugraphllm\ncugraphllm.LLM, cugraphllm.ChatSession, cugraphllm.SamplingParams")
    assert "cugraphllm" in loaded
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_cpu_modules_import_no_gpu_library():
    code = "\n".join(f"import cugraphllm.{m}" for m in
                     ("api", "cli", "reference", "loader", "tokenizer", "chat", "sampling", "config"))
    loaded = _modules_after(code)
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_cli_help_imports_no_gpu_library():
    loaded = _modules_after("import sys\nfrom cugraphllm.cli import build_parser\nbuild_parser().format_help()")
    assert not loaded & set(HEAVY)


def test_every_subpackage_is_installed():
    """setup.cfg lists its packages by hand: a subpackage left out is missing from the install (and every import of
    it fails there, while the checkout works)."""
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "cugraphllm").rglob("__init__.py")}
    assert found and found <= listed, sorted(found - listed)
