"""Latency statistics and the bench report: JSON (schema `cugraphllm-bench/1`), Markdown table, PNG plot.

Shared by `python -m cugraphllm bench` and `scripts/bench_peers.py` (which runs under PyTorch), so this module
imports only numpy and the standard library; matplotlib is optional and imported lazily.
Times come in as seconds (host clock) and leave as milliseconds.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

SCHEMA = "cugraphllm-bench/1"
GIB = float(1 << 30)


# ---- statistics ---------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """q-th percentile (0..100), linear interpolation between closest ranks (numpy's default)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("percentile of an empty sample")
    return float(np.percentile(arr, q))


def ttft_stats(samples_ms: Sequence[float]) -> dict:
    arr = np.asarray(samples_ms, dtype=np.float64)
    return {"median": percentile(arr, 50), "p99": percentile(arr, 99),
            "mean": float(arr.mean()), "min": float(arr.min())}


def itl_stats(samples_ms: Sequence[float]) -> dict:
    return {f"p{q}": percentile(samples_ms, q) for q in (50, 90, 99)}


def step_bytes(config, itemsize: int, context: float) -> float:
    """Bytes one decode step must read: every weight matrix but the embedding table (one row of it), plus the
    K and V of `context` cached tokens in every layer."""
    weights = config.n_params() - (0 if config.tie_embeddings else config.vocab_size * config.dim)
    kv = 2 * config.n_layers * context * config.kv_dim
    return float((weights + kv) * itemsize)


def result_entry(prompt_len: int, new_tokens: int, ttft_s: Sequence[float], itl_runs: Sequence[Sequence[float]],
                 config=None, itemsize: int = 2) -> dict:
    """One row of a system's results.

    ttft_s: one TTFT per repetition (s). itl_runs: per full-length run, the N-1 host intervals between yields (s).
    tpot is the mean interval; achieved GB/s uses the mean decode context, prompt_len + new_tokens / 2.
    """
    if not ttft_s:
        raise ValueError("no TTFT samples")
    itl_ms = [1e3 * t for run in itl_runs for t in run]
    row = {"prompt_len": int(prompt_len), "new_tokens": int(new_tokens), "reps": len(ttft_s),
           "decode_reps": len(itl_runs), "ttft_ms": ttft_stats([1e3 * t for t in ttft_s]),
           "tpot_ms": None, "itl_ms": None, "tokens_per_s": None, "gbps": None}
    if itl_ms:
        tpot = float(np.mean(itl_ms))
        row.update(tpot_ms=tpot, itl_ms=itl_stats(itl_ms), tokens_per_s=1e3 / tpot,
                   itl_samples_ms=[round(t, 4) for t in itl_ms])
        if config is not None:
            row["gbps"] = step_bytes(config, itemsize, prompt_len + new_tokens / 2) / (tpot * 1e-3) / 1e9
    return row


# ---- the document -------------------------------------------------------------------------------
def make_doc(device: dict, versions: dict, model: dict, systems: list, notes: Sequence[str] = ()) -> dict:
    return {"schema": SCHEMA, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "device": device, "versions": versions, "model": model, "systems": systems, "notes": list(notes)}


def system_entry(name: str, startup_s, gpu_mem_bytes, results: list, **extra) -> dict:
    mem = None if gpu_mem_bytes is None else gpu_mem_bytes / GIB
    return {"system": name, "startup_s": startup_s, "gpu_mem_gib": mem, "results": results, **extra}


def validate(doc: dict) -> list[str]:
    """Problems with `doc` against the schema; [] when it conforms."""
    errs = []
    if doc.get("schema") != SCHEMA:
        errs.append(f"schema is {doc.get('schema')!r}, expected {SCHEMA!r}")
    for key, fields in (("device", ("name", "driver", "copy_gbps")), ("model", ("name", "dtype", "weight_bytes"))):
        sub = doc.get(key)
        if not isinstance(sub, dict):
            errs.append(f"{key} missing")
            continue
        errs += [f"{key}.{f} missing" for f in fields if f not in sub]
    for key in ("date", "versions", "systems"):
        if key not in doc:
            errs.append(f"{key} missing")
    for s in doc.get("systems", []):
        errs += _validate_system(s)
    return errs


def _validate_system(s: dict) -> list[str]:
    name = s.get("system", "?")
    errs = [f"{name}: {f} missing" for f in ("system", "startup_s", "gpu_mem_gib", "results") if f not in s]
    for r in s.get("results", []):
        where = f"{name}@{r.get('prompt_len')}"
        for f in ("prompt_len", "new_tokens", "reps", "ttft_ms", "tpot_ms", "itl_ms", "tokens_per_s", "gbps"):
            if f not in r:
                errs.append(f"{where}: {f} missing")
        ttft = r.get("ttft_ms") or {}
        errs += [f"{where}: ttft_ms.{f} missing" for f in ("median", "p99", "mean", "min") if f not in ttft]
        if r.get("itl_ms") is not None:
            errs += [f"{where}: itl_ms.{f} missing" for f in ("p50", "p90", "p99") if f not in r["itl_ms"]]
        for v in ttft.values():
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                errs.append(f"{where}: ttft_ms value {v!r} is not a finite time")
    return errs


def merge(docs: Sequence[dict]) -> dict:
    """One document holding every system of `docs`; device and model from the first, mismatches noted.
    A system named twice keeps its last occurrence."""
    if not docs:
        raise ValueError("nothing to merge")
    base = docs[0]
    notes = [n for d in docs for n in d.get("notes", [])]
    systems: dict[str, dict] = {}
    for d in docs:
        for key in ("device", "model"):
            if d[key].get("name") != base[key].get("name"):
                notes.append(f"merged {key} {d[key].get('name')!r} differs from {base[key].get('name')!r}")
        for s in d["systems"]:
            systems[s["system"]] = s
    versions = {}
    for d in docs:
        versions.update(d.get("versions", {}))
    doc = make_doc(base["device"], versions, base["model"], list(systems.values()), list(dict.fromkeys(notes)))
    doc["date"] = base["date"]  # when the first document was measured
    return doc


# ---- rendering ----------------------------------------------------------------------------------
def _f(v, fmt="{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def to_markdown(doc: dict) -> str:
    dev, model = doc["device"], doc["model"]
    copy = dev.get("copy_gbps")
    wb = model["weight_bytes"]
    size = f"{wb / 1e9:.2f} GB" if wb >= 1e8 else f"{wb / 1e6:.2f} MB"
    lines = [f"**{model['name']}** ({model['dtype']}, {size} of weights), batch 1, "
             f"on {dev['name']} (driver {dev['driver']}, measured copy {_f(copy, '{:.0f}')} GB/s), {doc['date']}.",
             "", "| system | prompt | new | TTFT median ms | TTFT P99 ms | TPOT ms | ITL P50 / P90 / P99 ms | tok/s "
             "| GB/s (% copy) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in doc["systems"]:
        for r in s["results"]:
            itl = r.get("itl_ms")
            itl_s = "-" if not itl else f"{itl['p50']:.2f} / {itl['p90']:.2f} / {itl['p99']:.2f}"
            gb = r.get("gbps")
            gb_s = "-" if gb is None else f"{gb:.0f}" + (f" ({100 * gb / copy:.0f}%)" if copy else "")
            lines.append(f"| {s['system']} | {r['prompt_len']} | {r['new_tokens']} | {r['ttft_ms']['median']:.2f} | "
                         f"{r['ttft_ms']['p99']:.2f} | {_f(r.get('tpot_ms'))} | {itl_s} | "
                         f"{_f(r.get('tokens_per_s'), '{:.1f}')} | {gb_s} |")
    lines += ["", "| system | start-up s | GPU memory GiB |", "| --- | ---: | ---: |"]
    lines += [f"| {s['system']} | {_f(s.get('startup_s'))} | {_f(s.get('gpu_mem_gib'), '{:.3g}')} |"
              for s in doc["systems"]]
    gpu = [(s["system"], r) for s in doc["systems"] for r in s["results"] if r.get("gpu_prefill_ms")]
    if gpu:  # device time from CUDA events, beside the host wall clock above
        lines += ["", "| system | prompt | GPU prefill median / P99 ms | GPU ms per decode step |",
                  "| --- | ---: | ---: | ---: |"]
        lines += [f"| {name} | {r['prompt_len']} | {r['gpu_prefill_ms']['median']:.2f} / "
                  f"{r['gpu_prefill_ms']['p99']:.2f} | {_f(r.get('gpu_tpot_ms'), '{:.3f}')} |" for name, r in gpu]
    if doc.get("notes"):
        lines += [""] + [f"- {n}" for n in doc["notes"]]
    return "\n".join(lines) + "\n"


def plot(doc: dict, path: Path) -> str | None:
    """TTFT (median, P99 dashed) against prompt length per system, and the ITL distribution per system.
    Returns None when written, else a one-line reason (matplotlib missing)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no PNG (pip install matplotlib)"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    itl_data, itl_names = [], []
    for s in doc["systems"]:
        rs = sorted(s["results"], key=lambda r: r["prompt_len"])
        xs = [r["prompt_len"] for r in rs]
        line, = ax1.plot(xs, [r["ttft_ms"]["median"] for r in rs], "o-", label=s["system"])
        ax1.plot(xs, [r["ttft_ms"]["p99"] for r in rs], "--", color=line.get_color(), alpha=0.6)
        samples = [t for r in rs for t in r.get("itl_samples_ms", [])]
        if samples:
            itl_data.append(samples)
            itl_names.append(s["system"])
    ax1.set(xlabel="prompt length (tokens)", ylabel="TTFT ms (median; P99 dashed)", title="Time to first token")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    if itl_data:
        ax2.boxplot(itl_data, showfliers=True, whis=(1, 99))
        ax2.set_xticks(range(1, len(itl_names) + 1), itl_names, rotation=20, fontsize=8)
        ax2.set_yscale("log")
    ax2.set(ylabel="inter-token latency ms, log (whiskers P1-P99)", title="Inter-token latency, all lengths")
    ax2.grid(alpha=0.3)
    fig.suptitle(f"{doc['model']['name']} {doc['model']['dtype']}, batch 1, {doc['device']['name']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def write_outputs(doc: dict, out_dir: Path, stem: str, png: bool = True, log=None) -> dict:
    """Write <stem>.json, <stem>.md and (optionally) <stem>.png under out_dir; returns {kind: path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{stem}.json", "md": out_dir / f"{stem}.md"}
    paths["json"].write_text(json.dumps(doc, indent=1) + "\n")
    paths["md"].write_text(to_markdown(doc))
    if png:
        why = plot(doc, out_dir / f"{stem}.png")
        if why is None:
            paths["png"] = out_dir / f"{stem}.png"
        elif log:
            log(why)
    return paths


def load(path: str | Path) -> dict:
    doc = json.loads(Path(path).read_text())
    errs = validate(doc)
    if errs:
        raise ValueError(f"{path}: not a {SCHEMA} document: {errs[0]}")
    return doc
