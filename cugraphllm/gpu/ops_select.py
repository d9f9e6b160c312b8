"""Token selection on the device (kernels/sampling.cu), the last ops of a step: argmax, and the multi-block
top-k / top-p sampler with its per-logits-buffer workspace. Re-exported by gpu/ops.py (the ops API); the kernels go
through ops._fn, so whatever wraps ops._fn (scripts/decode_anatomy.py) sees these launches too.

Three implementations of the same rule (same token, bit for bit): "new" (sample_prep_v2 + sample_draw_v3, the
default), "v2" (sample_prep_v2 + sample_draw_v2) and "old" (sample_prep + sample_draw), chosen per call by SAMPLER
(env CUGRAPHLLM_SAMPLER=old|v2|new; set the attribute before capture for an A/B in one process). All use the same
workspace."""
from __future__ import annotations

import os

import numpy as np

from . import ops as _ops
from . import pdl as _pdl

SAMPLE_THREADS = 1024
SAMPLE_CHUNK, SAMPLE_NB = 1024, 2048  # logits per sampler block (v2), value bins (kernels/sampling.cu)
OLD_CHUNK = 4096                      # logits per block of the old kernels
SAMPLER = os.environ.get("CUGRAPHLLM_SAMPLER", "new")
KERNELS = {"new": ("sample_prep_v2", "sample_draw_v3"), "v2": ("sample_prep_v2", "sample_draw_v2"),
           "old": ("sample_prep", "sample_draw")}
KO = 0  # bench only (bench_sampler.py --ko): SAMPLE_KO of the v3 draw (sampling_v3.cuh); 5 launches the prep alone
_sample_work: dict = {}  # (device, logits address, V) -> SampleWork


def _select_check(token, hist, pos, n_tokens, logits):
    _ops._scalar("token", token)
    _ops._scalar("pos", pos)
    _ops._scalar("n_tokens", n_tokens)
    if hist.ndim != 1:
        raise ValueError(f"hist: expected int32 [S + 1], got shape {tuple(hist.shape)}")
    _ops._check("hist", hist, dtype="int32")
    if logits.ndim not in (1, 2) or (logits.ndim == 2 and logits.shape[0] != 1):
        raise ValueError(f"logits: expected float32 [1, V], got shape {tuple(logits.shape)}")
    _ops._check("logits", logits, dtype="float32")
    return logits.shape[-1]


def argmax(token, hist, pos, n_tokens, logits):
    """Greedy: token[0] = argmax(logits), hist[pos + n_tokens] = token, pos += n_tokens."""
    V = _select_check(token, hist, pos, n_tokens, logits)
    _ops._fn("sampling.cu", "argmax", "float16")(
        (1,), (SAMPLE_THREADS,), (token, hist, pos, n_tokens, logits, np.int32(V), np.int32(hist.size)))


class SampleWork:
    """Device scratch of `sample` for one logits buffer (kernels/sampling.cu, "Workspace")."""

    def __init__(self, V: int):
        import cupy as cp
        g = self.blocks = -(-V // SAMPLE_CHUNK)           # >= the old kernels' ceil(V / OLD_CHUNK)
        self.old_blocks = -(-V // OLD_CHUNK)
        self.s = cp.empty(V, cp.float32)                  # processed logits
        self.pmax, self.parg, self.pmin = cp.empty(g, cp.float32), cp.empty(g, cp.int32), cp.empty(g, cp.float32)
        self.bcnt, self.bmass = cp.empty(SAMPLE_NB, cp.uint32), cp.empty(SAMPLE_NB, cp.uint64)
        self.sbin = cp.empty(V, cp.uint16)                # each logit's bin (v2's gather)
        self.skey = cp.empty(g * SAMPLE_CHUNK, cp.uint64) # v3: each block's comp keys, sorted by bin
        self.bend = cp.empty(g * SAMPLE_NB, cp.uint16)    # v3: each block's inclusive count through each bin
        self.ctr = cp.zeros(2, cp.uint32)                 # last-block ticket (the kernel leaves it at 0); v3's path

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.s, self.pmax, self.parg, self.pmin, self.bcnt, self.bmass, self.sbin,
                                      self.skey, self.bend, self.ctr))


def sample_workspace(logits) -> SampleWork:
    """The workspace of `sample` for this logits buffer, allocated on first use: call it before graph capture
    (state.Scratch does). Keyed by the buffer's address and V, so two engines never share one."""
    key = (_ops.ck.device_id(), logits.data.ptr, int(logits.shape[-1]))
    w = _sample_work.get(key)
    if w is None:
        import cupy as cp
        if cp.cuda.get_current_stream().is_capturing():
            raise ValueError("sample: no workspace for this logits buffer; call ops.sample_workspace before capture")
        w = _sample_work[key] = SampleWork(key[2])
    return w


def sample(token, hist, pos, n_tokens, logits, params, seed):
    """SamplingParams on the device; params f32 [4] = (temperature, top_p, repetition_penalty, top_k),
    seed uint64 [1]. Writes like argmax. Two launches of ceil(V / SAMPLE_CHUNK) blocks (kernels/sampling.cu;
    SAMPLER "old": ceil(V / OLD_CHUNK))."""
    V = _select_check(token, hist, pos, n_tokens, logits)
    _ops._check("params", params, shape=(4,), dtype="float32")
    _ops._scalar("seed", seed, dtype="uint64")
    if SAMPLER not in KERNELS:
        raise ValueError(f"CUGRAPHLLM_SAMPLER must be one of {sorted(KERNELS)}, got {SAMPLER!r}")
    w = sample_workspace(logits)
    new = SAMPLER != "old"
    grid, block, n = (w.blocks if new else w.old_blocks,), (SAMPLE_THREADS,), np.int32(hist.size)
    part = (w.s, w.pmax, w.parg, w.pmin, w.bcnt, w.bmass)
    ko = {"SAMPLE_KO": KO} if KO and SAMPLER == "new" else {}  # the default build has no define
    prep, draw = (_ops._fn("sampling.cu", k, "float16", **ko) for k in KERNELS[SAMPLER])
    tail = {"new": (w.skey, w.bend, w.ctr), "v2": (w.sbin, w.ctr), "old": (w.ctr,)}[SAMPLER]
    # the v2 / v3 kernels call pdl_enter first: each may start while the kernel before it finishes
    _pdl.launch(prep, grid, block, (logits, hist, pos, n_tokens, params, np.int32(V), n) + part, pdl=new)
    if KO == 5:
        return
    _pdl.launch(draw, grid, block, (token, hist, pos, n_tokens, params, seed, np.int32(V), n) + part + tail, pdl=new)


def sampling_params_array(params) -> np.ndarray:
    """Host float32 [4] for `sample` from a SamplingParams (copy it into the device `params` buffer)."""
    return np.array([params.temperature, params.top_p, params.repetition_penalty, params.top_k], np.float32)
