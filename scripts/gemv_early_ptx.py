"""GEMV_EARLY=0 must leave kernels/gemv.cu as it was: compare `nvcc -ptx` (sm_90) of this checkout's gemv.cu with
-DGEMV_EARLY=0 against a reference checkout's (e.g. main) for every launch shape ops.py uses, float16 and bfloat16.
No -lineinfo: its .loc line numbers move with any edit of the file. CPU only (nvcc, no GPU).

    python3 -m scripts.gemv_early_ptx --ref /work/main        # exit 0: byte-identical everywhere
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from cugraphllm.gpu import gemv_plan

KERNELS = ("gemv_logits", "gemv_logits_norm", "gemv_residual", "gemv_residual_ss", "gemv_silu", "gemv_silu_norm",
           "gemv_qkv_rope", "gemv_qkv_rope_norm")
# (K, row pairs) of the one-GPU LLaMA-2 7B / 13B / 70B GEMVs and the TP shapes gemv_plan overrides.
SHAPES = [(4096, 3072), (4096, 2048), (4096, 11008), (11008, 2048), (4096, 16000), (5120, 7680), (5120, 2560),
          (5120, 13824), (13824, 2560), (8192, 5120), (8192, 4096), (8192, 28672), (28672, 4096), (2048, 2048),
          (5120, 3840), (5120, 6912), (2560, 2560), (6912, 2560), (4096, 1024), (4096, 5504), (5504, 2048)]


def configs() -> list[dict]:
    """Distinct gemv.cu defines of ops._gemv_fn over KERNELS x SHAPES, plus the shared-memory staging variant."""
    p = gemv_plan.plan_for("fp16")
    seen = {p.gemv_config(k, K, n) + (p.xsmem,) for k in KERNELS for K, n in SHAPES} | {(8, 2, 2, 1)}
    return [dict(GEMV_WARPS=w, GEMV_UNROLL=u, GEMV_KSPLIT=ks, GEMV_XSMEM=x) for w, u, ks, x in sorted(seen)]


def source(root: Path, defines: dict) -> str:
    """read_source of root's kernels/gemv.cu (the loader of that checkout, run in a subprocess)."""
    code = ("import sys, json; from cugraphllm.gpu.cuda_kernels import read_source, dtype_defines; "
            "d = json.loads(sys.argv[1]); sys.stdout.write(read_source('gemv.cu', d))")
    import json
    return subprocess.run([sys.executable, "-c", code, json.dumps(defines)], cwd=root, check=True,
                          capture_output=True, text=True).stdout


def ptx(src: str, tmp: Path) -> str:
    cu = tmp / "gemv_src.cu"
    cu.write_text(src)
    subprocess.run(["nvcc", "-ptx", "-arch=sm_90", "-std=c++17", str(cu), "-o", str(tmp / "out.ptx")], check=True)
    return (tmp / "out.ptx").read_text()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", required=True, help="reference checkout (before the GEMV_EARLY switch)")
    a = ap.parse_args(argv)
    here = Path(__file__).resolve().parents[1]
    bad = 0
    with tempfile.TemporaryDirectory() as t:
        for d in configs():
            for bf16 in (False, True):
                dd = dict(d, **({"CG_BF16": 1} if bf16 else {}))
                ref = ptx(source(Path(a.ref), dd), Path(t))
                new0 = ptx(source(here, dict(dd, GEMV_EARLY=0)), Path(t))
                new1 = ptx(source(here, dict(dd, GEMV_EARLY=1)), Path(t))
                same = ref == new0
                bad += not same
                print(f"{'bf16' if bf16 else 'fp16'} {d}: EARLY=0 {'identical' if same else 'DIFFERS'}, "
                      f"EARLY=1 {'identical' if ref == new1 else 'differs'} ({len(ref.splitlines())} PTX lines)")
    print("all identical" if not bad else f"{bad} configurations differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
