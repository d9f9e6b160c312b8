"""Quantize at load (`--quant fp8|int8|int4`), layer by layer, and the checks every loaded QuantLinear passes.

Norm gains are folded BEFORE quantizing (as gpu/state.py upload_weights folds them for 16-bit weights):
wqkv' = Q(wqkv * attention_norm), w13' = Q(w13 * ffn_norm), and with --quant-head output' = Q(output * norm);
each product in float32, one layer at a time, and the folded norm fields then hold ones. The embedding always
stays 16-bit; the LM head is quantized only with quant_head (it is then untied from the embedding).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import ModelConfig
from ..errors import CheckpointError, ConfigError
from ..weights import LayerWeights, Weights
from .formats import FORMATS, QuantLinear, quantize

# (field, input dimension attribute) of each quantized matrix of a layer
LINEARS = (("wqkv", "dim"), ("wo", "dim"), ("w13", "dim"), ("w2", "hidden_dim"))


@dataclass(frozen=True)
class QuantSpec:
    """What quantize-at-load does. strict=False (quality measurements only): a matrix whose input dimension the
    group does not divide stays 16-bit (folded) instead of being an error."""
    fmt: str
    group_size: int = 128
    quant_head: bool = False
    strict: bool = True

    def __post_init__(self):
        if self.fmt not in FORMATS:
            raise ConfigError(f"--quant {self.fmt!r} is not supported; supported: {', '.join(FORMATS)}")
        g = self.group_size
        if isinstance(g, bool) or not isinstance(g, int) or not (g == -1 or (g > 0 and g % 8 == 0)):
            raise ConfigError(f"--group-size {g!r} is not supported; supported: -1 (one group per row) or a "
                              "positive multiple of 8 (e.g. 32, 64, 128)")

    def group_for(self, k: int) -> int:
        return k if self.group_size == -1 else self.group_size

    def fits(self, k: int) -> bool:
        """Whether a matrix with input dimension k can take this format."""
        return self.fmt != "int4" or (k % 8 == 0 and k % self.group_for(k) == 0)


def check_spec(cfg: ModelConfig, spec: QuantSpec, source: str) -> None:
    """Refuse, before anything is loaded, a group size that does not divide an input dimension."""
    if not spec.strict:
        return
    for field, attr in LINEARS + ((("output", "dim"),) if spec.quant_head else ()):
        k = getattr(cfg, attr)
        if not spec.fits(k):
            raise ConfigError(f"{source}: {field} [{k} inputs]: int4 --group-size {spec.group_size} does not "
                              f"divide the input dimension {k}; supported: a multiple of 8 that divides {k}, "
                              "or -1 (one group per row)")


def fold_quantize(w, gain, spec: QuantSpec):
    """Q(w * gain) (gain None: no fold), the product in float32; a matrix that does not fit stays plain."""
    wf = np.asarray(w, dtype=np.float32)
    if gain is not None:
        wf = wf * np.asarray(gain, np.float32)[None, :]
    k = wf.shape[1]
    if not spec.fits(k):  # strict=False only (check_spec refused it otherwise)
        return wf.astype(np.asarray(w).dtype if np.asarray(w).dtype == np.float16 else np.float32)
    return quantize(wf, spec.fmt, spec.group_for(k))


def quantize_layer(lw: LayerWeights, spec: QuantSpec) -> LayerWeights:
    ones = np.ones_like(np.asarray(lw.attention_norm, np.float32))
    return LayerWeights(attention_norm=ones, wqkv=fold_quantize(lw.wqkv, lw.attention_norm, spec),
                        wo=fold_quantize(lw.wo, None, spec), ffn_norm=ones.copy(),
                        w13=fold_quantize(lw.w13, lw.ffn_norm, spec), w2=fold_quantize(lw.w2, None, spec))


def quantize_head(w: Weights, spec: QuantSpec) -> Weights:
    """The LM head with the final norm folded in (quant_head), else w unchanged."""
    if not spec.quant_head:
        return w
    out = fold_quantize(w.output, w.norm, spec)
    return Weights(tok_embeddings=w.tok_embeddings, layers=w.layers,
                   norm=np.ones_like(np.asarray(w.norm, np.float32)), output=out)


def quantize_weights(w: Weights, spec: QuantSpec) -> Weights:
    """Quantize loaded Weights in place, layer by layer (each unquantized layer is freed as the next is made)."""
    for i, lw in enumerate(w.layers):
        w.layers[i] = quantize_layer(lw, spec)
    return quantize_head(w, spec)


def is_quantized(w: Weights) -> bool:
    return any(isinstance(a, QuantLinear) for lw in w.layers for a in vars(lw).values()) or \
        isinstance(w.output, QuantLinear)


# ---- checks of loaded packed tensors -------------------------------------------------------------------------
def check_scales(scales: np.ndarray, where: str) -> None:
    s = np.asarray(scales, np.float32)
    bad = ~np.isfinite(s) | (s == 0)
    if bad.any():
        i = tuple(int(v) for v in np.unravel_index(int(np.argmax(bad)), s.shape))
        raise CheckpointError(f"{where}: {int(bad.sum())} scales are NaN, Inf or 0 (first at {list(i)}: "
                              f"{s[i]}); supported: finite non-zero scales")


def check_quant(ql: QuantLinear, where: str) -> QuantLinear:
    """Shapes, dtypes and values of a QuantLinear against the layouts of formats.py; returns it."""
    N, K = ql.shape
    want = {"fp8": ((N, K), np.uint8, (N,)), "int8": ((N, K), np.int8, (N,))}
    if ql.fmt == "int4":
        g = ql.group_size
        if g <= 0 or g % 8 or K % g:
            raise CheckpointError(f"{where}: int4 group size {g} does not divide the input dimension {K}; "
                                  "supported: a multiple of 8 that divides it")
        want["int4"] = ((N, K // 8), np.uint32, (N, K // g))
    if ql.fmt not in want:
        raise CheckpointError(f"{where}: format {ql.fmt!r} is not supported; supported: {', '.join(FORMATS)}")
    qshape, qdtype, sshape = want[ql.fmt]
    parts = [("qweight", ql.qweight, qshape), ("scales", ql.scales, sshape)]
    if ql.fmt == "int4":
        parts.append(("zeros", ql.zeros, sshape))
    parts += [(n, a, (K,)) for n, a in (("perm", ql.perm), ("gain", ql.gain)) if a is not None]
    for name, a, shape in parts:
        if a is None or tuple(a.shape) != shape:
            got = None if a is None else list(a.shape)
            raise CheckpointError(f"{where}: {name} has shape {got}, expected {list(shape)} for {ql.fmt} "
                                  f"[{N}, {K}]")
    if np.dtype(ql.qweight.dtype) != qdtype:
        raise CheckpointError(f"{where}: qweight has dtype {ql.qweight.dtype}, expected {np.dtype(qdtype)}")
    check_scales(ql.scales, where)
    if ql.fmt == "int4":
        z = np.asarray(ql.zeros, np.float32)
        if not np.all((z >= 0) & (z <= 16) & (z == np.rint(z))):
            raise CheckpointError(f"{where}: zeros must be integers in 0..16")
    if ql.perm is not None and not np.array_equal(np.sort(ql.perm), np.arange(K)):
        raise CheckpointError(f"{where}: perm is not a permutation of 0..{K - 1}")
    return ql
