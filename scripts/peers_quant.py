"""gpt-fast's weight-only quantization (its quantize.py, modes int8 and int4) for the peer in scripts/peers_gptfast.py.

- int8: symmetric, one scale per output row (scale = max|w| / 127.5, as gpt-fast's dynamically_quantize_per_channel
  with range [-128, 127]); the scale is stored in the weight's dtype and applied after the matmul:
  `F.linear(x, w_int8.to(x.dtype)) * scales`, which inductor fuses into one dequantizing kernel at batch 1.
- int4: asymmetric, groups of `group_size` along the input dimension, computed in bfloat16 as gpt-fast does:
  scale = (max - min) / 15, zero = min + 8 * scale, q = round((w - (zero - 8 * scale)) / scale) in [0, 15], so
  w ~ (q - 8) * scale + zero. scales_and_zeros is bf16 [K / group, N, 2]; the weight is packed by torch's
  tinygemm layout (`_convert_weight_to_int4pack`, inner_k_tiles 8) and multiplied by `_weight_int4pack_mm`,
  which takes bfloat16 activations on CUDA: the linear casts in and back out (gpt-fast runs in bf16 throughout).
The token embedding and the LM head stay 16-bit unless quant_head (gpt-fast's quantize.py does replace the head
too: every nn.Linear). Used only by scripts/bench_peers.py and its CPU tests; cugraphllm never imports torch.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

FORMATS = ("int8", "int4")
INNER_K_TILES = 8  # gpt-fast's default: 16-byte loads of B in the tinygemm kernel
LAYER_LINEARS = ("attention.wqkv", "attention.wo", "feed_forward.w13", "feed_forward.w2")


# ---- quantizers (torch tensors in, torch tensors out; same ops as gpt-fast's quantize.py) -----------------------
def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w [N, K] float -> (q int8 [N, K], scales [N] in w's dtype). Rounding uses the fp32 scale; the stored scale
    is rounded to w's dtype afterwards (gpt-fast stores `scales.to(mod.weight.dtype)`)."""
    w32 = w.float()
    lo, hi = torch.aminmax(w32, dim=1)
    amax = torch.maximum(-lo.clamp(max=0), hi.clamp(min=0))
    scales = (amax / 127.5).clamp(min=torch.finfo(torch.float32).eps)
    q = torch.clamp(torch.round(w32 / scales[:, None]), -128, 127).to(torch.int8)
    return q, scales.to(w.dtype)


def quantize_int4(w: torch.Tensor, group_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """w [N, K] float -> (q int32 [N, K] in [0, 15], scales_and_zeros bf16 [K / group, N, 2])."""
    N, K = w.shape
    if K % group_size or K % (INNER_K_TILES * 16) or N % 8:
        raise ValueError(f"int4: [{N}, {K}] needs K % {group_size} == 0, K % {INNER_K_TILES * 16} == 0, N % 8 == 0")
    g = w.to(torch.bfloat16).reshape(-1, group_size)            # gpt-fast quantizes the bf16 weight, in bf16
    hi, lo = g.amax(dim=1, keepdim=True), g.amin(dim=1, keepdim=True)
    scales = (hi - lo).clamp(min=1e-6) / 15
    zeros = lo + scales * 8
    q = g.sub(zeros - scales * 8).div(scales).round().clamp_(0, 15).to(torch.int32).reshape(N, K)
    sz = torch.stack([scales.reshape(N, -1), zeros.reshape(N, -1)], dim=2)   # [N, K / group, 2]
    return q, sz.transpose(0, 1).contiguous()


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """q int32 [N, K] in [0, 15] -> torch's tinygemm layout for this device's _weight_int4pack_mm."""
    if q.device.type == "cpu":  # the CPU kernel takes the int32 matrix itself (torch >= 2.5)
        return torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.contiguous(), INNER_K_TILES)
    u8 = ((q[:, ::2] << 4) | q[:, 1::2]).to(torch.uint8)         # [N, K/2]: column k even in the high nibble
    return torch.ops.aten._convert_weight_to_int4pack(u8.contiguous(), INNER_K_TILES)


def int4_mm(x2: torch.Tensor, packed: torch.Tensor, group_size: int, sz: torch.Tensor) -> torch.Tensor:
    """x2 bf16 [M, K] contiguous -> bf16 [M, N]."""
    if x2.device.type == "cpu":
        return torch.ops.aten._weight_int4pack_mm_for_cpu(x2, packed, group_size, sz)
    return torch.ops.aten._weight_int4pack_mm(x2, packed, group_size, sz)


def dequant_int4(q: torch.Tensor, sz: torch.Tensor, group_size: int) -> torch.Tensor:
    """float32 [N, K]: (q - 8) * scale + zero, the weight the int4 kernel multiplies by."""
    s, z = (sz[..., i].float().t().repeat_interleave(group_size, dim=1) for i in (0, 1))
    return (q.float() - 8) * s + z


# ---- linear layers ------------------------------------------------------------------------------------------------
class Int8Linear(nn.Module):
    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.out_features, self.in_features = w.shape
        q, s = quantize_int8(w)
        self.register_buffer("weight", q)
        self.register_buffer("scales", s)

    def forward(self, x):
        return F.linear(x, self.weight.to(dtype=x.dtype)) * self.scales


class Int4Linear(nn.Module):
    def __init__(self, w: torch.Tensor, group_size: int = 128):
        super().__init__()
        self.out_features, self.in_features = w.shape
        self.group_size = group_size
        q, sz = quantize_int4(w, group_size)
        self.register_buffer("weight", pack_int4(q))
        self.register_buffer("scales_and_zeros", sz)

    def forward(self, x):
        x2 = x.reshape(-1, self.in_features).to(torch.bfloat16).contiguous()
        y = int4_mm(x2, self.weight, self.group_size, self.scales_and_zeros)
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)


def quantized_linear(lin: nn.Linear, fmt: str, group_size: int = 128) -> nn.Module:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: {FORMATS}")
    w = lin.weight.detach()
    return Int8Linear(w) if fmt == "int8" else Int4Linear(w, group_size)


def _set(model: nn.Module, path: str, fmt: str, group_size: int) -> None:
    parent, _, name = path.rpartition(".")
    owner = model.get_submodule(parent) if parent else model
    setattr(owner, name, quantized_linear(getattr(owner, name), fmt, group_size))


@torch.no_grad()
def quantize_model(model: nn.Module, fmt: str, group_size: int = 128, quant_head: bool = False) -> None:
    """Replace the linear layers of a peers_gptfast.Transformer in place, one matrix at a time (no second copy
    of the model): each block's wqkv, wo, w13, w2, and the LM head with quant_head."""
    for i in range(len(model.layers)):
        for path in LAYER_LINEARS:
            _set(model, f"layers.{i}.{path}", fmt, group_size)
    if quant_head:
        _set(model, "output", fmt, group_size)


def read_bytes(model: nn.Module) -> int:
    """Weight bytes one decode token reads: every linear weight with its scales (norm gains too), one embedding row."""
    emb = model.tok_embeddings.weight
    total = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if not n.startswith("tok_emb"))
    total += sum(b.numel() * b.element_size() for n, b in model.named_buffers()
                 if n.endswith((".weight", ".scales", ".scales_and_zeros")))
    return total + emb.shape[1] * emb.element_size()


# ---- the self-check (numerics, not a timing) ----------------------------------------------------------------------
@torch.no_grad()
def _logits(model, prompt):
    return model(prompt, torch.arange(prompt.shape[1], device=prompt.device))[0].float()   # [L, vocab]


def _compare(ref: torch.Tensor, got: torch.Tensor) -> dict:
    err, sd = (got - ref).abs(), ref.std().item()
    return {"max_abs_err": err.max().item(), "mean_abs_err": err.mean().item(), "ref_sd": sd,
            "max_err_over_sd": err.max().item() / sd, "mean_err_over_sd": err.mean().item() / sd,
            "finite": bool(torch.isfinite(got).all())}


@torch.no_grad()
def kernel_check(lin: nn.Linear, fmt: str, group_size: int, rows: int = 4, seed: int = 0) -> dict:
    """One quantized matrix against float32 x @ dequant(W)^T: isolates the kernel and the packing from the rounding."""
    w = lin.weight.detach()
    gen = torch.Generator(device=w.device).manual_seed(seed)
    x = torch.randn(rows, w.shape[1], generator=gen, device=w.device).to(w.dtype)
    if fmt == "int8":
        q, s = quantize_int8(w)
        w_dq = q.float() * s.float()[:, None]
    else:
        q, sz = quantize_int4(w, group_size)
        w_dq = dequant_int4(q, sz, group_size)
        x = x.to(torch.bfloat16).to(w.dtype)  # the kernel sees bf16 activations: compare on the same inputs
    got = quantized_linear(lin, fmt, group_size)(x).float()
    return {"shape": list(w.shape), **_compare(x.float() @ w_dq.t(), got)}


@torch.no_grad()
def quantize_with_check(model, fmt: str, group_size: int, quant_head: bool, prompt) -> dict:
    """Quantize `model` in place; with a prompt [1, L], also compare its logits with its own 16-bit logits on that
    prompt (writes the KV cache rows [0, L), which every later run overwrites) and check layer 0's w13 kernel."""
    info = {"format": fmt, "group_size": group_size if fmt == "int4" else None, "quant_head": quant_head,
            "inner_k_tiles": INNER_K_TILES if fmt == "int4" else None}
    if prompt is not None:
        ref = _logits(model, prompt)
        info["kernel_check"] = kernel_check(model.layers[0].feed_forward.w13, fmt, group_size)
    quantize_model(model, fmt, group_size, quant_head)
    if prompt is not None:
        got = _logits(model, prompt)
        agree = (got.argmax(-1) == ref.argmax(-1)).float().mean().item()
        info["logits_check"] = {"prompt_len": prompt.shape[1], **_compare(ref, got), "argmax_agreement": agree}
    info["bytes_per_token"] = read_bytes(model)
    return info


# ---- report lines (plain Python) -----------------------------------------------------------------------------------
def quant_notes(name: str, info: dict) -> list[str]:
    out = [f"{name}: {info['format']}" + (f" group {info['group_size']}" if info["group_size"] else "")
           + f", LM head {'quantized' if info['quant_head'] else '16-bit'}, "
           f"{info['bytes_per_token'] / 1e9:.2f} GB of weights read per token, quantized in {info['quantize_s']:.1f} s"]
    lc, kc = info.get("logits_check"), info.get("kernel_check")
    if lc:
        out.append(f"{name} self-check: logits vs its own fp16 logits on a {lc['prompt_len']}-token prompt: "
                   f"max |err| / sd {lc['max_err_over_sd']:.4f} (max |err| {lc['max_abs_err']:.4g}, sd "
                   f"{lc['ref_sd']:.4g}), mean |err| / sd {lc['mean_err_over_sd']:.4f}, argmax agreement "
                   f"{100 * lc['argmax_agreement']:.1f}%" + ("" if lc["finite"] else ", NON-FINITE logits"))
    if kc:
        out.append(f"{name} self-check: layer 0 w13 {kc['shape']} vs x @ dequant(W)^T in float32: max |err| / sd "
                   f"{kc['max_err_over_sd']:.4f}" + ("" if kc["finite"] else ", NON-FINITE output"))
    return out


def quant_gbps(rows: list, cfg, weight_bytes: int, new: int) -> None:
    """GB/s from the bytes the quantized peer reads per token (its packed weights and scales) plus the KV cache."""
    for r in rows:
        if r.get("tpot_ms"):
            kv = 2 * cfg.n_layers * (r["prompt_len"] + new / 2) * cfg.kv_dim * 2
            r["gbps"] = (weight_bytes + kv) / (r["tpot_ms"] * 1e-3) / 1e9
