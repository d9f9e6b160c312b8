"""scripts/startup.py without a GPU: --prefill-rows reaches the child process's RuntimeConfig, bad values are a
one-line argparse error (exit 2), and the child's source builds the engine with it."""
import json
import subprocess
import sys

import pytest

from scripts import startup


def test_prefill_rows_reaches_the_child(monkeypatch):
    calls = []

    def fake_run(cmd, env=None, capture_output=True, text=True):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout=json.dumps({"total_s": 1.0}) + "\n", stderr="")
    monkeypatch.setattr(startup.subprocess, "run", fake_run)
    monkeypatch.setattr(startup.time, "sleep", lambda s: None)
    assert startup.main(["--prefill-rows", "2048", "--max-seq-len", "3000"]) == 0
    assert len(calls) == 2 and all(c[-4:] == ["llama-2-7b", "hybrid", "3000", "2048"] for c in calls)
    assert startup.main([]) == 0 and calls[-1][-1] == "512"  # the default


def test_child_passes_prefill_rows_to_runtime_config():
    assert "prefill_rows=int(sys.argv[4])" in startup.CHILD
    compile(startup.CHILD, "child", "exec")


@pytest.mark.parametrize("bad", ["500", "x", "0"])
def test_bad_prefill_rows_is_a_one_line_usage_error(bad):
    r = subprocess.run([sys.executable, "-m", "scripts.startup", "--prefill-rows", bad], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "--prefill-rows" in r.stderr and "Traceback" not in r.stderr


def test_json_carries_date_device_and_versions(monkeypatch, tmp_path):
    """The report names when and where it ran; without a usable GPU here the device part is an error line."""
    def fake_run(cmd, env=None, capture_output=True, text=True):
        return subprocess.CompletedProcess(cmd, 0, stdout=json.dumps({"total_s": 1.0}) + "\n", stderr="")
    monkeypatch.setattr(startup.subprocess, "run", fake_run)
    monkeypatch.setattr(startup.time, "sleep", lambda s: None)
    out = tmp_path / "s.json"
    assert startup.main(["--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["date"].startswith("20") and doc["prefill_rows"] == 512 and doc["warm"] == {"total_s": 1.0}
    assert isinstance(doc["device"], dict) and ("name" in doc["device"] or "error" in doc["device"])
    assert isinstance(doc["versions"], dict) and doc["versions"]
